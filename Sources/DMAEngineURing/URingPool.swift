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
    let fd: Int32
    let base: UnsafeMutableRawPointer
    let byteCount: Int
    let backing: URingPoolBacking

    /// Free ranges (offset, length), sorted by offset, and live allocations (offset → length),
    /// guarded by `rangesLock` (allocation is not on the hot path).
    private var freeRanges: [(Int, Int)]
    private var live: [Int: Int] = [:]
    private let rangesLock = URingLock()

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
        freeRanges = [(0, size)]
    }

    deinit {
        PageMemory.unmap(base, byteCount: byteCount)
        close(fd)
        rangesLock.destroy()
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
        rangesLock.lock()
        var off: Int? = nil
        if let i = freeRanges.firstIndex(where: { $0.1 >= len }) {
            let (o, l) = freeRanges[i]
            if l == len { freeRanges.remove(at: i) } else { freeRanges[i] = (o + len, l - len) }
            live[o] = len
            off = o
        }
        rangesLock.unlock()
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
        rangesLock.lock()
        defer { rangesLock.unlock() }
        guard let len = live.removeValue(forKey: o) else { return }
        let i = freeRanges.firstIndex(where: { $0.0 > o }) ?? freeRanges.count
        freeRanges.insert((o, len), at: i)
        if i + 1 < freeRanges.count, freeRanges[i].0 + freeRanges[i].1 == freeRanges[i + 1].0 {
            freeRanges[i].1 += freeRanges[i + 1].1
            freeRanges.remove(at: i + 1)
        }
        if i > 0, freeRanges[i - 1].0 + freeRanges[i - 1].1 == freeRanges[i].0 {
            freeRanges[i - 1].1 += freeRanges[i].1
            freeRanges.remove(at: i)
        }
    }
}
