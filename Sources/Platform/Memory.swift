// dmabench — Platform
//
// Page-granular memory: mmap, mprotect, munmap. Used for DMA buffers and for the
// conformance suite's guarded allocator ("free" = mprotect(PROT_NONE)).

#if os(Linux)
import Glibc

public enum PageMemory {
    public static let pageSize: Int = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// Rounds `n` up to a whole number of pages (at least one page).
    public static func roundUp(_ n: Int) -> Int {
        let p = pageSize
        return max(p, (n + p - 1) / p * p)
    }

    /// Maps `byteCount` bytes (rounded up to pages) of anonymous, private, zero-filled memory.
    public static func map(byteCount: Int, prefault: Bool = false) throws(SystemError) -> UnsafeMutableRawPointer {
        let len = roundUp(byteCount)
        var flags = MAP_PRIVATE | MAP_ANONYMOUS
        if prefault { flags |= MAP_POPULATE }
        let p = mmap(nil, len, PROT_READ | PROT_WRITE, flags, -1, 0)
        if p == MAP_FAILED || p == nil {
            let e = errno
            throw SystemError("mmap(\(len))", errno: e)
        }
        return p!
    }

    /// Maps `byteCount` bytes of a file, shared, read-write.
    public static func mapShared(fd: Int32, offset: Int, byteCount: Int) throws(SystemError) -> UnsafeMutableRawPointer {
        let p = mmap(nil, roundUp(byteCount), PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(offset))
        if p == MAP_FAILED || p == nil {
            let e = errno
            throw SystemError("mmap(fd \(fd))", errno: e)
        }
        return p!
    }

    public static func unmap(_ p: UnsafeMutableRawPointer, byteCount: Int) {
        munmap(p, roundUp(byteCount))
    }

    public enum Protection { case none, read, readWrite }

    public static func protect(_ p: UnsafeMutableRawPointer, byteCount: Int, _ prot: Protection) throws(SystemError) {
        let flags: Int32
        switch prot {
        case .none: flags = PROT_NONE
        case .read: flags = PROT_READ
        case .readWrite: flags = PROT_READ | PROT_WRITE
        }
        if mprotect(p, roundUp(byteCount), flags) != 0 { throw SystemError("mprotect", errno: errno) }
    }
}
#endif
