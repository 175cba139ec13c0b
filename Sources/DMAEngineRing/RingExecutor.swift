// dmabench — DMAEngineRing
//
// The callback executor (the tasklet analogue): drains the completion ring in order, one
// batch at a time, one entry after the other, as `vchan_complete` walks its list:
// - read `control` (the dispatch point) and drop the entry if the engine flagged it
//   `terminated`, or if it completed in an epoch before the current one with a ticket at or
//   before the current cutoff (completed but not dispatched when terminate ran: rule T1, no
//   callback);
// - retire the descriptor (REUSE → prepared; otherwise scrubbed for the free queue), with its
//   callback moved (REUSE: copied) out first;
// - invoke the callback (non-blocking context), in cookie order.
// After the batch, enqueue its scrubbed descriptors on the free queue (the kernel frees a
// descriptor after its callback) and store `compHead`: `synchronize` waits until it passes
// the engine's acknowledged position.
//
// With `DMACallbackContext.engineThread` no executor thread runs: the engine thread calls
// `runOnEngine(upTo:)` at its safe points (after publishing a batch, before it waits or
// parks, never mid-chunk), which runs the same batches, and `cyclicOnEngine()` after each
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
            retireAndDispatch(count: min(tailCache &- head, batchLimit))
        }
    }

    /// Engine-thread mode: retires and dispatches every entry up to `tail` (the engine's own
    /// published position, so no atomic load is needed: the engine is this thread), in
    /// batches, then any cyclic period not yet called back. Called on the engine thread only,
    /// with no lock held, after `flush()` advanced `last` (rule K2).
    @inline(never)
    func runOnEngine(upTo tail: UInt32) {
        while head != tail { retireAndDispatch(count: min(tail &- head, batchLimit)) }
        cyclicOnEngine()
    }

    /// One batch of `n` entries from `head`, entry by entry (the file comment). One pass:
    /// retiring the whole batch first and calling back in a second pass cost ring 64 B a
    /// tenth to a sixth of its throughput (each entry and descriptor read twice, each
    /// callback moved twice).
    @inline(__always)
    private func retireAndDispatch(count n: UInt32) {
        let checkEpoch = core.negative != .executorSkipsEpochCheck
        var nRetired = 0
        for i in 0..<n {
            let e = core.comp + Int((head &+ i) & core.compMask)
            let idx = e.pointee.descriptor
            let d = core.descriptor(idx)
            // Ordering: acquire; pairs with the seq_cst CAS of `control` in `terminateAsync`.
            let c = Control(raw: core.control.pointee.load(ordering: .acquiring))
            var drop = e.pointee.terminated
            if checkEpoch && !drop && e.pointee.epoch != c.epoch
                && Tickets.distance(e.pointee.ticket, c.cutoff) <= 0
            {
                drop = true
            }
            let dispatch = !drop && d.pointee.interrupt && d.pointee.hasCallback
            var callback = DMAPackedCallback()
            if d.pointee.reuse {
                // Copied: once prepared, the client may resubmit it (from this very callback).
                if dispatch { callback = d.pointee.packed }
                // Ordering: release; pairs with the acquire load of `state` in `submit` and
                // the other descriptor calls: the client may now resubmit or change it.
                d.pointee.state.store(SlotState.prepared, ordering: .releasing)
            } else {
                // Moved out: no retain, and scrub finds nothing to release.
                if dispatch { callback = d.pointee.packed.take() }
                core.scrub(idx)
                retired[nRetired] = idx
                nRetired += 1
            }
            if dispatch {
                callback.invoke(cookie: core.cookie(ofTicket: e.pointee.ticket), result: DMAResult(e.pointee.code, residue: e.pointee.residue))
            }
        }
        head &+= n
        // Back to the pool after the batch's callbacks, as the kernel finishes a descriptor
        // after its callback (`vchan_complete`: invoke, then `vchan_vdesc_fini`). Before
        // them, the enqueue (whose cells the client's dequeues last wrote) delayed the first
        // callback by a cross-CPU miss.
        core.freeQueue.enqueue(retired, count: nRetired)
        // Every callback of the batch has returned and its descriptor is back in the pool
        // (the orderings are in `publishCompHead`). Once per batch (at most `batchLimit`
        // entries), after the enqueue: `synchronize` returns with the batch's descriptors free.
        core.publishCompHead(head)
    }

    // MARK: Client-poll mode (`DMACallbackContext.clientPoll`)
    //
    // No executor thread. The engine and any client thread in `poll()` share this object:
    // whoever holds `claim` runs the batches, and its private state (`head`, `retired`,
    // `periodsSeen`) goes with the claim. Neither side ever waits for the claim, so a
    // callback on a polling client that waits for the engine (pause, rule P1) cannot hold it
    // up. A holder re-checks `compTail` after it lets go; the engine, when it finds the claim
    // taken, republishes `compTail` and re-checks the claim (Dekker): one of them runs what
    // the engine published last.

    /// A client's poll takes completions only once this many wait
    /// (`DMAChannelOptions.clientPollBatch`, a batch by default), so that at depth 1 the
    /// engine, which has the entry and the descriptor in its cache, calls back as in
    /// engine-thread mode; at 4 KiB the client retires while the engine copies.
    var clientBatch: UInt32 { core.pollBatch }
    /// Between transfers, the engine calls back itself once this many wait: a client that
    /// does not poll, or is busy submitting, still gets its callbacks before the engine idles.
    static let engineBacklog: UInt32 = 64

    @inline(__always)
    private func tryClaim() -> Bool {
        // Ordering: acquire; pairs with the release part of the store in `unclaim`: the
        // previous holder's `head`, `periodsSeen`, `retired` and retires are visible.
        core.claim.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged
    }

    /// A polling client lets go of the claim (the engine's own release is in
    /// `dispatchFromEngine`).
    @inline(__always)
    private func unclaim() {
        // Ordering: seq_cst; the release part pairs with the acquire CAS in `tryClaim`; the
        // seq_cst part is the Dekker store against the engine's seq_cst load of `claim` in
        // `dispatchFromEngine` (the client then re-reads `compTail`).
        core.claim.pointee.store(0, ordering: .sequentiallyConsistent)
    }

    /// A client thread's `poll()`: runs every waiting callback once a full batch waits,
    /// unless another thread holds the claim. Returns how many entries it retired.
    func poll() -> Int {
        if core.isReleased { return 0 }
        // Ordering: relaxed, both: only a hint for the threshold; the claim's acquire and the
        // acquire load of `compTail` below decide what is read.
        let waiting = core.compTail.pointee.load(ordering: .relaxed) &- core.compHead.pointee.load(ordering: .relaxed)
        guard waiting >= clientBatch, waiting <= core.compCapacity else { return 0 }
        var ran: UInt32 = 0
        while tryClaim() {
            // Ordering: acquire; pairs with the release store of `compTail` in the engine's
            // `flush()` (the entries before it are written).
            let tail = core.compTail.pointee.load(ordering: .acquiring)
            let start = head
            while head != tail { retireAndDispatch(count: min(tail &- head, batchLimit)) }
            ran &+= tail &- start
            unclaim()
            // Ordering: seq_cst; the Dekker load against the engine's seq_cst store of
            // `compTail` in `dispatchFromEngine`: what it published while we held the claim
            // is ours to run (it may be parked by now).
            if core.compTail.pointee.load(ordering: .sequentiallyConsistent) == tail { break }
        }
        return Int(ran)
    }

    /// Client-poll mode, on the engine thread: runs every entry up to `tail` (and a cyclic
    /// period's callback) unless a polling client holds the claim, in which case that client
    /// runs them after its batch. Returns true when the engine ran them itself.
    @discardableResult
    func dispatchFromEngine(upTo tail: UInt32) -> Bool {
        while true {
            if tryClaim() {
                runOnEngine(upTo: tail)
                // Ordering: release; pairs with the acquire CAS in `tryClaim`. No Dekker
                // re-check here: the engine dispatches whatever it publishes later itself.
                core.claim.pointee.store(0, ordering: .releasing)
                return true
            }
            // Ordering: seq_cst, both: Dekker with the holder's seq_cst `unclaim` and its
            // seq_cst re-read of `compTail`. Either it sees `tail`, or we see the claim free.
            core.compTail.pointee.store(tail, ordering: .sequentiallyConsistent)
            if core.claim.pointee.load(ordering: .sequentiallyConsistent) != 0 { return false }
        }
    }

    /// Client-poll mode, when the engine stops: takes the claim for good, once a polling
    /// client (if any) has let go of it, and runs what is left; no poll touches the rings
    /// after this (release frees them once the engine has returned).
    func claimForStop(upTo tail: UInt32) {
        while !tryClaim() { cpuRelax() }
        runOnEngine(upTo: tail)
    }

    /// Whether every entry up to `tail` has been retired and called back (any mode; in
    /// client-poll mode another thread may hold `head`, so `compHead` tells).
    @inline(__always)
    func dispatched(upTo tail: UInt32) -> Bool {
        // Ordering: acquire; pairs with the seq_cst store in `publishCompHead` after each batch.
        core.clientPolls ? core.compHead.pointee.load(ordering: .acquiring) == tail : head == tail
    }

    /// Engine-thread mode: runs the cyclic callback when a period elapsed since the last one.
    @inline(__always)
    func cyclicOnEngine() {
        // Ordering: acquire; pairs with the engine's seq_cst increment after a period (the
        // same thread in this mode; kept for symmetry with `run()`).
        if core.cyclicPeriods.pointee.load(ordering: .acquiring) != periodsSeen { cyclicCallback() }
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
        // Copied: the transfer keeps running, and its callback with it.
        let callback = d.pointee.packed
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
