// dmabench — DMAEngineRing
//
// The pool of free descriptor indices: a bounded MPMC FIFO (Vyukov's bounded queue) of
// UInt32 indices, with batch enqueue.
//
// Why a FIFO and not a Treiber stack: a prep reads one cell, eight of which share a line,
// where a stack pop took two dependent cross-CPU misses; the executor reserves a batch of
// cells with one fetch-add (docs/measurement-notes.md, "RingFreeQueue: a FIFO, not a
// Treiber stack").
//
// Cell protocol, positions being UInt32 counters that wrap (capacity a power of two ≥ the
// pool size, so the queue is never full):
//   seq == p          the cell is free for the item at position p
//   seq == p + 1      it holds the item at position p
//   seq == p + cap    the item at p was taken; free for position p + cap

import Platform
import Synchronization

struct RingFreeQueue: ~Copyable {
    struct Cell: ~Copyable {
        let seq: Atomic<UInt32>
        let index: Atomic<UInt32>
    }

    let capacity: UInt32
    let mask: UInt32
    private let cells: UnsafeMutablePointer<Cell>
    /// Two 128-byte lines: enqueue position (line 0), dequeue position (line 1).
    private let positions: UnsafeMutableRawPointer

    private var enqueuePosition: UnsafeMutablePointer<Atomic<UInt32>> {
        positions.assumingMemoryBound(to: Atomic<UInt32>.self)
    }
    private var dequeuePosition: UnsafeMutablePointer<Atomic<UInt32>> {
        (positions + RingLayout.line).assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    /// A queue that holds every index in `0..<count` (in order), with room for `count`.
    init(holdingAll count: Int) {
        let cap = RingLayout.powerOfTwo(atLeast: count)
        capacity = UInt32(cap)
        mask = UInt32(cap - 1)
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: cap * MemoryLayout<Cell>.stride, alignment: RingLayout.line)
        cells = raw.bindMemory(to: Cell.self, capacity: cap)
        for i in 0..<cap {
            let full = i < count
            (cells + i).initialize(to: Cell(seq: Atomic(UInt32(i) &+ (full ? 1 : 0)), index: Atomic(UInt32(full ? i : 0))))
        }
        positions = UnsafeMutableRawPointer.allocate(byteCount: 2 * RingLayout.line, alignment: RingLayout.line)
        positions.initializeMemory(as: UInt8.self, repeating: 0, count: 2 * RingLayout.line)
        (positions).bindMemory(to: Atomic<UInt32>.self, capacity: 1).initialize(to: Atomic(UInt32(count)))
        (positions + RingLayout.line).bindMemory(to: Atomic<UInt32>.self, capacity: 1).initialize(to: Atomic(0))
    }

    deinit {
        cells.deinitialize(count: Int(capacity))
        UnsafeMutableRawPointer(cells).deallocate()
        positions.deallocate()
    }

    /// Takes the oldest free index, or nil when none is free. Any thread.
    @inline(__always)
    func dequeue() -> UInt32? {
        var pos = dequeuePosition.pointee.load(ordering: .relaxed)
        while true {
            let cell = cells + Int(pos & mask)
            // Ordering: acquire; pairs with the release store of `seq` in `enqueue`: the
            // descriptor's last owner (the executor that scrubbed it, or `free`) is done with
            // it, and its writes are visible before we write it.
            let seq = cell.pointee.seq.load(ordering: .acquiring)
            let dif = Int32(bitPattern: seq &- (pos &+ 1))
            if dif == 0 {
                // Relaxed: the CAS only decides which dequeuer owns the cell; the data
                // hand-over is the seq acquire above and the seq release below.
                let (won, now) = dequeuePosition.pointee.compareExchange(
                    expected: pos, desired: pos &+ 1, ordering: .relaxed)
                if won {
                    let index = cell.pointee.index.load(ordering: .relaxed)
                    // Ordering: release; pairs with the acquire wait on `seq` in `enqueue`
                    // for position pos + capacity (we have read the index out of the cell).
                    cell.pointee.seq.store(pos &+ capacity, ordering: .releasing)
                    return index
                }
                pos = now
            } else if dif < 0 {
                return nil  // the cell at the dequeue position holds nothing yet: empty
            } else {
                pos = dequeuePosition.pointee.load(ordering: .relaxed)
            }
        }
    }

    /// Appends `count` indices (read from `indices`). Any thread. The caller owns them, and
    /// the queue never holds more than the pool, so the cells are free or about to be (a
    /// dequeuer between its CAS and its seq store).
    @inline(__always)
    func enqueue(_ indices: UnsafePointer<UInt32>, count: Int) {
        guard count > 0 else { return }
        // Relaxed: reserving positions publishes nothing; each cell's seq store does.
        let first = enqueuePosition.pointee.wrappingAdd(UInt32(count), ordering: .relaxed).oldValue
        for i in 0..<count {
            let pos = first &+ UInt32(i)
            let cell = cells + Int(pos & mask)
            // Ordering: acquire; pairs with the release store of `seq` in `dequeue` (the
            // previous occupant's index has been read out).
            while cell.pointee.seq.load(ordering: .acquiring) != pos { cpuRelax() }
            cell.pointee.index.store(indices[i], ordering: .relaxed)
            // Ordering: release; pairs with the acquire load of `seq` in `dequeue`: the index,
            // and the descriptor writes made before this call (scrub), are visible to the
            // thread that takes it.
            cell.pointee.seq.store(pos &+ 1, ordering: .releasing)
        }
    }

    /// Appends one index.
    @inline(__always)
    func enqueue(_ index: UInt32) {
        withUnsafePointer(to: index) { enqueue($0, count: 1) }
    }
}
