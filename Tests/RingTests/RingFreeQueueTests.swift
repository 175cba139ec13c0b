// dmabench — RingTests
//
// The free-descriptor queue (RingFreeQueue.swift): FIFO order, empty and full queue,
// wrap-around of the cells and of the UInt32 positions, batch enqueue, and concurrent
// dequeuers and enqueuers that must neither lose nor duplicate an index.

@testable import DMAEngineRing
import Platform
import Synchronization
import Testing

@Suite("RingFreeQueue")
struct RingFreeQueueTests {
    @Test func startsFullInIndexOrderThenEmpty() {
        let q = RingFreeQueue(holdingAll: 5)
        #expect(q.capacity == 8)
        var got: [UInt32] = []
        while let i = q.dequeue() { got.append(i) }
        #expect(got == [0, 1, 2, 3, 4])
        #expect(q.dequeue() == nil)
    }

    @Test func fifoAcrossManyWrapsWithBatches() {
        // Capacity 4, pool 3: the cells wrap every 4 positions; batches of 1...3.
        let q = RingFreeQueue(holdingAll: 3)
        var model: [UInt32] = [0, 1, 2]
        var scratch = [UInt32](repeating: 0, count: 3)
        for round in 0..<10_000 {
            let take = 1 + round % 3
            var taken: [UInt32] = []
            for _ in 0..<take {
                guard let i = q.dequeue() else { break }
                taken.append(i)
            }
            #expect(taken == Array(model.prefix(take)))
            model.removeFirst(taken.count)
            if model.isEmpty { #expect(q.dequeue() == nil) }
            // Give them back in a shuffled order, as one batch.
            let back = round % 2 == 0 ? taken : taken.reversed()
            for (k, v) in back.enumerated() { scratch[k] = v }
            scratch.withUnsafeBufferPointer { q.enqueue($0.baseAddress!, count: back.count) }
            model += back
        }
        var rest: [UInt32] = []
        while let i = q.dequeue() { rest.append(i) }
        #expect(rest == model)
    }

    /// Shared state of the concurrent test (threads capture the box).
    final class Shared: @unchecked Sendable {
        let q: RingFreeQueue
        /// Each index is owned by at most one thread at a time: a thread that takes an index
        /// marks it, and a second owner would find the mark set.
        let owned: UnsafeMutablePointer<Atomic<Int>>
        let doubleOwned = Atomic<Int>(0)
        let taken = Atomic<Int>(0)
        init(pool: Int) {
            q = RingFreeQueue(holdingAll: pool)
            owned = .allocate(capacity: pool)
            for i in 0..<pool { (owned + i).initialize(to: Atomic(0)) }
        }
        deinit { owned.deallocate() }
    }

    @Test func concurrentDequeuersAndEnqueuersKeepEveryIndexExactlyOnce() throws {
        let pool = 64
        let threads = 4
        let rounds = 20_000
        let shared = Shared(pool: pool)
        var workers: [OSThread] = []
        for t in 0..<threads {
            workers.append(try OSThread(name: "fq-\(t)") {
                let owned = shared.owned
                var mine = [UInt32](repeating: 0, count: 8)
                for r in 0..<rounds {
                    var n = 0
                    while n < 1 + r % 8, let i = shared.q.dequeue() {
                        if owned[Int(i)].exchange(1, ordering: .relaxed) != 0 { shared.doubleOwned.add(1, ordering: .relaxed) }
                        mine[n] = i
                        n += 1
                    }
                    shared.taken.add(n, ordering: .relaxed)
                    for k in 0..<n { owned[Int(mine[k])].store(0, ordering: .relaxed) }
                    mine.withUnsafeBufferPointer { shared.q.enqueue($0.baseAddress!, count: n) }
                }
            })
        }
        for w in workers { w.join() }
        #expect(shared.doubleOwned.load(ordering: .relaxed) == 0)
        #expect(shared.taken.load(ordering: .relaxed) > threads * rounds / 2)
        var back = Set<UInt32>()
        while let i = shared.q.dequeue() { #expect(back.insert(i).inserted) }
        #expect(back == Set((0..<UInt32(pool))))
    }
}
