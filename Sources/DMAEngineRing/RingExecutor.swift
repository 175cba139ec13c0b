// dmabench — DMAEngineRing
//
// The callback executor (the tasklet analogue): drains the completion ring in order, one
// batch at a time, in two passes.
// 1. Retire: read `control` once; drop every entry the engine flagged
//    `terminated`, and every entry completed in an epoch before the current one whose ticket
//    is at or before the current cutoff (completed but not dispatched when terminate ran:
//    rule T1, no callback). Move each dispatched callback into its entry, then retire the
//    descriptor (REUSE → prepared, otherwise scrubbed for the free queue).
// 2. Dispatch: re-read `control` before each callback (the dispatch point: a terminate
//    since pass 1 drops the entry's callback), then invoke it through `DMACallback.invoke`
//    (non-blocking context), in cookie order. Then enqueue the batch's scrubbed descriptors
//    on the free queue (the kernel frees a descriptor after its callback) and store
//    `compHead`: `synchronize` waits until it passes the engine's acknowledged position.
//
// With `DMACallbackContext.engineThread` no executor thread runs: the engine thread calls
// `runOnEngine(upTo:)` at its safe points (after publishing a batch, before it waits or
// parks, never mid-chunk), which runs the same two passes, and `cyclicOnEngine()` after each
// cyclic period.

import DMAEngine
import Platform
import Synchronization

final class RingExecutor: @unchecked Sendable {
    let core: RingCore
    /// Next completion-ring entry to retire and dispatch (only the thread that runs the
    /// callbacks touches it: the executor thread, or the engine thread in engine-thread mode).
    private(set) var head: UInt32 = 0
    private var tailCache: UInt32 = 0
    private var periodsSeen: UInt64 = 0
    private let batchLimit: UInt32 = 32
    /// The indices a batch retires (executor-private scratch, allocated once).
    private let retired: UnsafeMutablePointer<UInt32>
    private var retiredCount = 0

    init(core: RingCore) {
        self.core = core
        retired = .allocate(capacity: Int(batchLimit))
    }

    deinit { retired.deallocate() }

    func run() {
        while true {
            // Ordering: acquire; pairs with the engine's seq_cst increment after a period.
            if core.cyclicPeriods.pointee.load(ordering: .acquiring) != periodsSeen { cyclicCallback() }
            if head == tailCache {
                // Ordering: acquire; pairs with the seq_cst store of `compTail` in the
                // engine's `flush()`, which publishes the entries before it.
                tailCache = core.compTail.pointee.load(ordering: .acquiring)
                if head == tailCache {
                    // Ordering: acquire; pairs with the seq_cst CAS of `control` in release.
                    if Control(raw: core.control.pointee.load(ordering: .acquiring)).stop { return }
                    idle()
                    continue
                }
            }
            let n = min(tailCache &- head, batchLimit)
            let decided = decide(count: n)
            dispatch(count: n, decidedUnder: decided)
        }
    }

    /// Engine-thread mode: retires and dispatches every entry up to `tail` (the engine's own
    /// published position, so no atomic load is needed: the engine is this thread), in
    /// batches, then any cyclic period not yet called back. Called on the engine thread only,
    /// with no lock held, after `flush()` advanced `last` (rule K2).
    @inline(never)
    func runOnEngine(upTo tail: UInt32) {
        while head != tail {
            let n = min(tail &- head, batchLimit)
            let decided = decide(count: n)
            dispatch(count: n, decidedUnder: decided)
        }
        cyclicOnEngine()
    }

    /// Engine-thread mode: runs the cyclic callback when a period elapsed since the last one.
    @inline(__always)
    func cyclicOnEngine() {
        // Ordering: acquire; pairs with the engine's seq_cst increment after a period (the
        // same thread in this mode; kept for symmetry with `run()`).
        if core.cyclicPeriods.pointee.load(ordering: .acquiring) != periodsSeen { cyclicCallback() }
    }

    @inline(__always)
    private func decide(count n: UInt32) -> Control {
        // Ordering: acquire; pairs with the seq_cst CAS of `control` in `terminateAsync`.
        let c = Control(raw: core.control.pointee.load(ordering: .acquiring))
        let checkEpoch = core.negative != .executorSkipsEpochCheck
        var nRetired = 0
        for i in 0..<n {
            let e = core.comp + Int((head &+ i) & core.compMask)
            let d = core.descriptor(e.pointee.descriptor)
            var drop = e.pointee.terminated
            if checkEpoch && !drop && e.pointee.epoch != c.epoch
                && Tickets.distance(e.pointee.ticket, c.cutoff) <= 0
            {
                drop = true
            }
            e.pointee.dispatch = !drop && d.pointee.interrupt && d.pointee.hasCallback
            if d.pointee.reuse {
                if e.pointee.dispatch { e.pointee.callback = d.pointee.packed }
                // Ordering: release; pairs with the acquire load of `state` in `submit` and
                // the other descriptor calls: the client may now resubmit or change it.
                d.pointee.state.store(SlotState.prepared, ordering: .releasing)
            } else {
                // Move the callback out (the entry's is empty): no retain, and scrub finds
                // nothing to release.
                if e.pointee.dispatch { e.pointee.callback = d.pointee.packed.take() }
                core.scrub(e.pointee.descriptor)
                retired[nRetired] = e.pointee.descriptor
                nRetired += 1
            }
        }
        retiredCount = nRetired
        return c
    }

    @inline(__always)
    private func dispatch(count n: UInt32, decidedUnder decided: Control) {
        let checkEpoch = core.negative != .executorSkipsEpochCheck
        for i in 0..<n {
            let e = core.comp + Int((head &+ i) & core.compMask)
            if e.pointee.dispatch && checkEpoch {
                // The dispatch point: a terminate since pass 1 drops this completed but not
                // yet dispatched entry (its descriptor is already retired; only the callback
                // copy is discarded).
                // Ordering: acquire; pairs with the seq_cst CAS of `control` in `terminateAsync`.
                let c = Control(raw: core.control.pointee.load(ordering: .acquiring))
                if c.epoch != decided.epoch && e.pointee.epoch != c.epoch
                    && Tickets.distance(e.pointee.ticket, c.cutoff) <= 0
                {
                    e.pointee.dispatch = false
                    e.pointee.callback.clear()
                }
            }
            // Moved out of the entry, not copied: calling the closure in place through the
            // pointer retained it, and the reset released it again.
            if e.pointee.dispatch {
                e.pointee.callback.take().invoke(
                    cookie: core.cookie(ofTicket: e.pointee.ticket), result: DMAResult(e.pointee.code, residue: e.pointee.residue))
            }
        }
        head &+= n
        // Back to the pool after the batch's callbacks, as the kernel finishes a descriptor
        // after its callback (`vchan_complete`: invoke, then `vchan_vdesc_fini`). Before
        // them, the enqueue (whose cells the client's dequeues last wrote) delayed the first
        // callback by a cross-CPU miss.
        core.freeQueue.enqueue(retired, count: retiredCount)
        retiredCount = 0
        // Ordering: release; pairs with the acquire load of `compHead` in `synchronize`
        // (every callback of the batch has returned and its descriptor is back in the pool)
        // and in the engine's ring-full check. Once per batch (at most `batchLimit` entries),
        // after the enqueue: `synchronize` returns with the batch's descriptors free.
        core.compHead.pointee.store(head, ordering: .releasing)
        core.signalSyncWaiters()
    }

    /// Runs the running cyclic transfer's callback once for every period elapsed since the
    /// last one (coalescing, rule K1), unless a terminate removed the transfer.
    @inline(never)
    private func cyclicCallback() {
        // Ordering: acquire; pairs with the engine's seq_cst increment after a period.
        periodsSeen = core.cyclicPeriods.pointee.load(ordering: .acquiring)
        // Ordering: acquire; pairs with the engine's release store of `cyclic`.
        let info = core.cyclic.pointee.load(ordering: .acquiring)
        let index = Tickets.low(info)
        guard index != RingLayout.none else { return }
        let t = Tickets.high(info)
        // The dispatch point. Ordering: acquire; pairs with the seq_cst CAS of `control`.
        let c = Control(raw: core.control.pointee.load(ordering: .acquiring))
        if core.negative != .executorSkipsEpochCheck && c.epoch != 0 && Tickets.distance(t, c.cutoff) <= 0 { return }
        let d = core.descriptor(index)
        guard d.pointee.interrupt && d.pointee.hasCallback else { return }
        let callback = d.pointee.callback
        callback.invoke(cookie: core.cookie(ofTicket: t), result: .noError)
    }

    private func idle() {
        let spin = core.options.spinNanoseconds
        let cached = tailCache
        let periods = periodsSeen
        if spin > 0 {
            let start = MonotonicClock.now()
            var spins = 0
            while true {
                if core.compTail.pointee.load(ordering: .relaxed) != cached { return }
                if core.cyclicPeriods.pointee.load(ordering: .relaxed) != periods { return }
                if Control(raw: core.control.pointee.load(ordering: .relaxed)).stop { return }
                cpuRelax()
                spins &+= 1
                if spins & 63 == 0 && Int64(MonotonicClock.now() &- start) > spin { break }
            }
        }
        core.park(core.executorPark) {
            // Ordering: seq_cst; pairs with the seq_cst store of `compTail` in the engine's
            // `flush()` and the seq_cst CAS of `control` in release.
            core.compTail.pointee.load(ordering: .sequentiallyConsistent) != cached
                || core.cyclicPeriods.pointee.load(ordering: .sequentiallyConsistent) != periods
                || Control(raw: core.control.pointee.load(ordering: .sequentiallyConsistent)).stop
        }
    }
}
