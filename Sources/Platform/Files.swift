// dmabench — Platform
//
// Files: the atomic write that result files need (temporary file, fsync, rename), small
// reads of /proc and /sys, and a direct write to standard error for a process that may be
// about to fault. Each call's errno is read right after the call, before anything else can
// change it.

#if os(Linux)
import Glibc

public enum Files {
    /// Writes `bytes` to `path` atomically: into `path`'s directory as a temporary file,
    /// fsync, then rename over `path`. On failure the temporary file is removed and `path`
    /// keeps its old content. The directory must exist.
    public static func writeAtomically(_ bytes: UnsafeRawBufferPointer, to path: String) throws(SystemError) {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let tmp = dir + "/." + name + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 {
            let e = errno
            throw SystemError("open(\(tmp))", errno: e)
        }
        var failure: SystemError?
        var off = 0
        while off < bytes.count {
            let n = write(fd, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                failure = SystemError("write(\(tmp))", errno: e)
                break
            }
            off += n
        }
        if failure == nil && fsync(fd) != 0 {
            let e = errno
            failure = SystemError("fsync(\(tmp))", errno: e)
        }
        close(fd)
        if let failure {
            unlink(tmp)
            throw failure
        }
        if rename(tmp, path) != 0 {
            let e = errno
            unlink(tmp)
            throw SystemError("rename(\(tmp), \(path))", errno: e)
        }
    }

    /// The first `limit` bytes of a small file (a /proc or /sys entry); nil when it cannot
    /// be opened or read.
    public static func readSmall(_ path: String, limit: Int = 4096) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: limit)
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress!, limit) }
        guard n >= 0 else { return nil }
        return Array(buf[0..<n])
    }

    /// Writes `line` to file descriptor 2 with one write(2) and no buffering: for a report
    /// that must be out before the process may fault.
    public static func writeToStandardError(_ line: String) {
        line.withCString { _ = write(2, $0, strlen($0)) }
    }
}
#endif
