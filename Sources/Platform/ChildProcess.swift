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
        initAttributes(&attr)
        defer { posix_spawnattr_destroy(&attr) }
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
        return Result(status: waitForExit(pid), output: String(decoding: output, as: UTF8.self))
    }

    /// Starts `path` with `arguments` in the background, its standard output and error sent
    /// to /dev/null, with an empty signal mask and SIGINT, SIGTERM and SIGPIPE at their
    /// defaults (so that a signal the test sends reaches it).
    public static func start(_ path: String, _ arguments: [String]) throws(SystemError) -> Running {
        var attr = posix_spawnattr_t()
        initAttributes(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var pid: pid_t = 0
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        let rc = posix_spawn(&pid, path, &actions, &attr, argv, environ)
        guard rc == 0 else { throw SystemError("posix_spawn(\(path))", errno: rc) }
        return Running(pid: pid)
    }

    /// A child started with `start`. Dropping it kills and reaps the child if it still runs.
    public final class Running: @unchecked Sendable {
        public let pid: pid_t
        private var status: Int32?

        init(pid: pid_t) { self.pid = pid }

        /// Sends `signal` to the child.
        public func signal(_ signal: Int32) { if status == nil { kill(pid, signal) } }

        /// Waits for the child; its exit status (128 + signal when a signal ended it).
        @discardableResult
        public func wait() -> Int32 {
            if let status { return status }
            let s = waitForExit(pid)
            status = s
            return s
        }

        /// Sends `signal`, waits up to `timeoutSeconds` for the exit, then SIGKILLs; returns
        /// the exit status as `wait()` does.
        @discardableResult
        public func stop(with signal: Int32 = SIGINT, timeoutSeconds: Double = 10) -> Int32 {
            if let status { return status }
            kill(pid, signal)
            var raw: Int32 = 0
            let deadline = MonotonicClock.now() + UInt64(timeoutSeconds * 1e9)
            while waitpid(pid, &raw, WNOHANG) == 0 {
                if MonotonicClock.now() > deadline {
                    kill(pid, SIGKILL)
                    return wait()
                }
                MonotonicClock.sleep(nanoseconds: 5_000_000)
            }
            let s = ChildProcess.decode(raw)
            status = s
            return s
        }

        deinit { if status == nil { stop(with: SIGKILL, timeoutSeconds: 5) } }
    }

    /// An empty signal mask, and SIGINT, SIGTERM and SIGPIPE at their defaults: the child
    /// must not inherit the blocked or ignored signals of the thread that spawns it.
    static func initAttributes(_ attr: inout posix_spawnattr_t) {
        posix_spawnattr_init(&attr)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var dfl = sigset_t()
        sigemptyset(&dfl)
        sigaddset(&dfl, SIGINT)
        sigaddset(&dfl, SIGTERM)
        sigaddset(&dfl, SIGPIPE)
        posix_spawnattr_setsigdefault(&attr, &dfl)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    }

    static func waitForExit(_ pid: pid_t) -> Int32 {
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        return decode(raw)
    }

    static func decode(_ raw: Int32) -> Int32 { (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f) }
}
#endif
