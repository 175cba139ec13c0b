// dmabench — DMAEngineURing
//
// The coherent pool: one file mapped MAP_SHARED, carved into page-aligned buffers. The
// kernel reads a descriptor's source from this file at the buffer's offset, so only memory
// from here can be a memcpy source (the analogue of `dma_alloc_coherent()`).

import CURing
import DMAEngine
import Glibc
import Platform

/// The pool file, its mapping and a first-fit allocator over it.
final class URingPool: @unchecked Sendable {
    /// The pool file; -1 once closed by `release()`. Read only while the ring exists.
    private(set) var fd: Int32
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    let backing: URingPoolBacking

    /// Free ranges (offset, length), sorted by offset, and live allocations (offset → length).
    /// Its lock also orders `closeFile` (allocation is not on the hot path).
    private struct Ranges {
        var free: [(Int, Int)]
        var live: [Int: Int] = [:]
    }
    private let ranges: LockedValue<Ranges>

    /// Opens the pool file and maps it. The corresponding kernel call is
    /// `dma_alloc_coherent()`'s backing store; here `memfd_create(2)` or `open(O_TMPFILE)`
    /// plus `ftruncate(2)` and `mmap(MAP_SHARED)`.
    init(backing: URingPoolBacking, byteCount requested: Int) throws(DMAError) {
        guard requested > 0 else {
            throw .invalidArgument("coherentPoolBytes = \(requested); it must be > 0")
        }
        let size = PageMemory.roundUp(requested)
        let rc: Int32
        switch backing {
        case .memfd:
            rc = curing_open_pool_memfd(size)
        case .file(let dir), .registeredFile(let dir):
            rc = curing_open_pool_file(dir, size)
            if rc == -EXDEV {
                throw .invalidArgument(
                    "pool directory \(dir) is on tmpfs/ramfs, whose reads go through io-wq workers; choose a directory on a disk filesystem (ext4, xfs) or URingPoolBacking.memfd")
            }
        }
        if rc < 0 {
            throw .unavailable("cannot create the \(backing) pool file: \(Errno.message(-rc)) (\(Errno.name(-rc)))")
        }
        fd = rc
        do {
            base = try PageMemory.mapShared(fd: fd, offset: 0, byteCount: size)
        } catch {
            close(rc)
            throw .unavailable("cannot map the pool file: \(error)")
        }
        byteCount = size
        self.backing = backing
        ranges = LockedValue(Ranges(free: [(0, size)]))
    }

    deinit {
        PageMemory.unmap(base, byteCount: byteCount)
        closeFile()
    }

    /// Closes the file (idempotent). The mapping stays valid: a shared mapping keeps its
    /// own reference to the file. Called once no ring can read from it any more.
    func closeFile() {
        let f = ranges.withLock { _ -> Int32 in
            let f = fd
            fd = -1
            return f
        }
        if f >= 0 { close(f) }
    }

    /// The file offset of `pointer` if `[pointer, pointer + length)` lies in the pool.
    @inline(__always)
    func offset(of pointer: UnsafeRawPointer, length: Int) -> Int? {
        let p = UInt(bitPattern: pointer), b = UInt(bitPattern: base)
        guard p >= b, length >= 0, p - b <= UInt(byteCount), UInt(length) <= UInt(byteCount) - (p - b) else { return nil }
        return Int(p - b)
    }

    /// Carves a zero-filled, page-aligned buffer (first fit).
    func allocate(byteCount n: Int) throws(DMAError) -> DMABuffer {
        guard n > 0 else { throw .invalidArgument("byteCount = \(n); it must be > 0") }
        let len = PageMemory.roundUp(n)
        let off = ranges.withLock { r -> Int? in
            guard let i = r.free.firstIndex(where: { $0.1 >= len }) else { return nil }
            let (o, l) = r.free[i]
            if l == len { r.free.remove(at: i) } else { r.free[i] = (o + len, l - len) }
            r.live[o] = len
            return o
        }
        guard let off else {
            throw .invalidArgument(
                "allocateCoherent(byteCount: \(n)): the coherent pool (\(byteCount) bytes) has no free range that large; raise DMAChannelOptions.coherentPoolBytes")
        }
        let p = base + off
        memset(p, 0, len)
        return DMABuffer(base: p, count: n)
    }

    /// Returns a buffer to the pool, merging it with free neighbours. Unknown buffers are ignored.
    func free(_ buffer: DMABuffer) {
        guard let o = offset(of: buffer.base, length: 0) else { return }
        ranges.withLock { r in
            guard let len = r.live.removeValue(forKey: o) else { return }
            let i = r.free.firstIndex(where: { $0.0 > o }) ?? r.free.count
            r.free.insert((o, len), at: i)
            if i + 1 < r.free.count, r.free[i].0 + r.free[i].1 == r.free[i + 1].0 {
                r.free[i].1 += r.free[i + 1].1
                r.free.remove(at: i + 1)
            }
            if i > 0, r.free[i - 1].0 + r.free[i - 1].1 == r.free[i].0 {
                r.free[i - 1].1 += r.free[i].1
                r.free.remove(at: i)
            }
        }
    }
}
