// dmabench — DMAEngineTests
//
// `DMACookieWatermark.loadSplit`: the one place that reads a (used, last) pair published as
// two words (the ring and locked backends both use it). A writer thread moves both words
// as fast as it can, `used` first, so at every instant last ≤ used; the reader must never
// see last ahead of used, nor either word move backwards.

import DMAEngine
import Platform
import Synchronization
import Testing

@Suite("DMACookieWatermark.loadSplit")
struct LoadSplitTests {
    @Test func aRacingWriterNeverShowsLastAheadOfUsed() throws {
        let lines = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 128)
        defer { lines.deallocate() }
        let used = lines.bindMemory(to: Atomic<UInt32>.self, capacity: 1)
        used.initialize(to: Atomic(0))
        let last = (lines + 128).bindMemory(to: Atomic<UInt32>.self, capacity: 1)
        last.initialize(to: Atomic(0))
        final class Flag: Sendable { let done = Atomic<Bool>(false) }
        let flag = Flag()
        // The two words are atomics; only their addresses cross to the writer thread.
        struct Words: @unchecked Sendable {
            let used: UnsafeMutablePointer<Atomic<UInt32>>
            let last: UnsafeMutablePointer<Atomic<UInt32>>
        }
        let words = Words(used: used, last: last)
        let total: UInt32 = 2_000_000
        let writer = try OSThread(name: "writer") {
            let used = words.used, last = words.last
            for i in 1...total {
                // Ordering: release; `used` moves first, then `last` catches up.
                used.pointee.store(i, ordering: .releasing)
                last.pointee.store(i, ordering: .releasing)
            }
            // Ordering: release; pairs with the reader's acquire load.
            flag.done.store(true, ordering: .releasing)
        }
        var reads = 0
        var inconsistent = 0
        var previous = (used: UInt32(0), last: UInt32(0))
        // Ordering: acquire; pairs with the writer's release store.
        while !flag.done.load(ordering: .acquiring) {
            let p = DMACookieWatermark.loadSplit(used: used, last: last)
            if p.last > p.used || p.used < previous.used || p.last < previous.last { inconsistent += 1 }
            previous = p
            reads += 1
        }
        writer.join()
        #expect(inconsistent == 0)
        #expect(reads > 1000)
        let end = DMACookieWatermark.loadSplit(used: used, last: last)
        #expect(end.used == total && end.last == total)
    }
}
