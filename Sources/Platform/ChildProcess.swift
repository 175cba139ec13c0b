// dmabench — Platform
//
// Running a child program, wrapped once: posix_spawn(3) with an empty signal mask and a
// pipe for its output. Foundation's Process is avoided on purpose: in the numa-vm guests it
// fails to create its CFSocket wake-up pair and hangs, and its children inherit a blocked
// signal mask.

#if os(Linux)
import Glibc

public enum ChildProcess {
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
    }

    /// Runs `argv` (argv[0] looked up on PATH), waits for it, and returns its exit status and
    /// standard output (standard error is discarded unless `captureStandardError`).
    public static func run(_ argv: [String], captureStandardError: Bool = false) throws(SystemError) -> Result {
        precondition(!argv.isEmpty, "ChildProcess.run needs a program")
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SystemError("pipe", errno: errno) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        if captureStandardError {
            posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_addclose(&actions, fds[1])
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var dfl = sigset_t()
        sigemptyset(&dfl)
        sigaddset(&dfl, SIGINT)
        sigaddset(&dfl, SIGPIPE)
        posix_spawnattr_setsigdefault(&attr, &dfl)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let cargs = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        let rc = posix_spawnp(&pid, argv[0], &actions, &attr, cargs, environ)
        close(fds[1])
        if rc != 0 {
            close(fds[0])
            throw SystemError("posix_spawnp(\(argv[0]))", errno: rc)
        }
        var output: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fds[0], &buf, buf.count)
            if n > 0 { output.append(contentsOf: buf[0..<n]) } else if n < 0 && errno == EINTR { continue } else { break }
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = (status & 0x7f) == 0
        return Result(status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), output: String(decoding: output, as: UTF8.self))
    }
}
#endif
