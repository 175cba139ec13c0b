// dmabench — DMAEngineTestSupport
//
// Rule S1 without a lock: a backend that publishes `used` (written by submitters) and
// `last` (written by its engine) as two words must still let `status` and
// `debugWatermark` read one consistent pair. A reader on the calling thread races a
// submitter thread and the engine; a reader that loads the two words one after the other
// sees `last` ahead of `used` when submits and completions land between its loads. That
// takes a submit and its completion inside a few nanoseconds, so this end-to-end check
// catches such a reader only now and then; `LoadSplitTests` (DMAEngineTests) races the
// shared read itself against a tight writer and catches it in every run.

#if os(Linux)
import DMAEngine
import Platform
import Synchronization

public enum WatermarkRace {
    public struct Outcome: Sendable {
        /// Snapshots read while the submitter ran.
        public var reads: Int
        /// Snapshots with `last` ahead of `used`, or either moving backwards.
        public var inconsistent: Int
    }

    /// Submits `total` 64-byte copies (issued every 8) from a thread of its own while the
    /// calling thread reads `debugWatermark()`. The channel must be fresh (no cookie wraps in
    /// `total` submits, so raw cookie values compare in order) and have no callbacks pending.
    public static func run(_ channel: any DMAChannel, total: Int) throws -> Outcome {
        let src = try channel.allocateCoherent(byteCount: 256 * 64)
        let dst = try channel.allocateCoherent(byteCount: 256 * 64)
        defer {
            channel.freeCoherent(src)
            channel.freeCoherent(dst)
        }
        final class Flag: Sendable { let done = Atomic<Bool>(false) }
        let flag = Flag()
        let submitter = try OSThread(name: "submitter") {
            var n = 0
            while n < total {
                let off = (n % 256) * 64
                guard let d = channel.prepareMemcpy(to: dst.base + off, from: src.base + off, length: 64, callback: DMACallback()) else {
                    channel.issuePending()
                    cpuRelax()
                    continue
                }
                _ = channel.submit(d)
                n += 1
                if n % 8 == 0 { channel.issuePending() }
            }
            channel.issuePending()
            // Ordering: release; pairs with the reader's acquire load.
            flag.done.store(true, ordering: .releasing)
        }
        var outcome = Outcome(reads: 0, inconsistent: 0)
        var previous = channel.debugWatermark()
        // Ordering: acquire; pairs with the submitter's release store.
        while !flag.done.load(ordering: .acquiring) {
            let w = channel.debugWatermark()
            if w.last.rawValue > w.used.rawValue || w.used.rawValue < previous.used.rawValue
                || w.last.rawValue < previous.last.rawValue
            {
                outcome.inconsistent += 1
            }
            previous = w
            outcome.reads += 1
        }
        submitter.join()
        // The buffers are freed on return: wait until the engine is done with them.
        let deadline = MonotonicClock.now() &+ 10_000_000_000
        while channel.debugWatermark().last != channel.debugWatermark().used && MonotonicClock.now() < deadline {
            cpuRelax()
        }
        return outcome
    }
}
#endif
