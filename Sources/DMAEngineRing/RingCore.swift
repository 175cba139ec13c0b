// dmabench — DMAEngineRing
//
// The shared state of one ring channel. Hot indices live in raw storage, one 128-byte line
// each; everything a thread keeps for itself (the engine's consumer position, the executor's
// position, cached copies of remote indices) lives in that thread's own object.
//
// Threads and what they write:
// - submitters (any client thread, callbacks included): `used` (fetch-add), the
//   submission-ring slot of their ticket, `issuedTail` and the issue mark in the slot of the
//   first ticket issued (issuePending), the free queue (prep);
// - the engine: `last`, `compTail`, `ack`, `active`, submission-slot `seq` and issue mark on
//   consume;
// - the executor: `compHead`, the free queue (retire);
// - terminate/pause/resume/release: `control`.

import DMAEngine
import Platform
import Synchronization

/// Which deliberately broken variant to run (the detector must detect it; docs/architecture.md, "Negative controls").
@_spi(NegativeControls)
public enum RingNegativeControl: Sendable, Hashable {
    /// The correct backend.
    case none
    /// The executor skips its epoch check: completed-but-undispatched descriptors of a
    /// terminated epoch still get their callback (violates T1/T3, scenarios 14, 15, 21).
    case executorSkipsEpochCheck
    /// `synchronize` returns at once without waiting for the engine and the executor (T3).
    case synchronizeDoesNotWait
    /// The engine acknowledges a terminate, then copies one more chunk of the aborted active
    /// transfer (violates T3(a): the engine touches memory after synchronize; scenarios 14,
    /// 30, 33).
    case engineKeepsCopyingTerminated
}

/// A box that keeps an access probe alive for as long as the channel lives (the engine may
/// still hold a replaced probe's pointer).
final class ProbeBox: @unchecked Sendable {
    let probe: DMAAccessProbe
    init(_ probe: @escaping DMAAccessProbe) { self.probe = probe }
}

final class RingCore: @unchecked Sendable {
    let options: DMAChannelOptions
    let negative: RingNegativeControl
    let poolSize: Int
    /// Submission ring capacity (a power of two ≥ poolSize: never full, see `submit`).
    let capacity: UInt32
    let mask: UInt32
    /// Completion ring capacity (2 × capacity: a REUSE descriptor can be resubmitted and
    /// completed again before the executor consumed its previous entry).
    let compCapacity: UInt32
    let compMask: UInt32

    let hot: UnsafeMutableRawPointer
    /// The descriptor pool: one descriptor per 128-byte stride, 128-byte aligned, so two
    /// descriptors never share a cache line (the client preps one while the executor retires
    /// its neighbour).
    let poolBase: UnsafeMutableRawPointer
    static let descriptorStride = 128
    let sub: UnsafeMutablePointer<SubmissionSlot>
    let comp: UnsafeMutablePointer<CompletionEntry>

    // MARK: Hot lines (one 128-byte line each)

    /// The last ticket handed out (`used`): submitters fetch-add it. In a line of its own,
    /// apart from `last`: with both in one word, every submit's fetch-add took the line from
    /// the engine's last CAS and every engine CAS took it back from the client, two
    /// cross-CPU misses per round trip at depth 1 (one before the engine sees the work, one
    /// before the callback). `ticketSnapshot()` still reads the pair atomically (rule S1).
    let used: UnsafeMutablePointer<Atomic<UInt32>>
    /// The last completed ticket (`last`): the engine and terminate move it forward with CAS.
    let last: UnsafeMutablePointer<Atomic<UInt32>>
    /// The last issued ticket (issuePending → engine).
    let issuedTail: UnsafeMutablePointer<Atomic<UInt32>>
    /// Engine futex word: 1 while the engine is parked (or about to park).
    let enginePark: UnsafeMutablePointer<Atomic<UInt32>>
    /// Completion-ring producer index (engine → executor).
    let compTail: UnsafeMutablePointer<Atomic<UInt32>>
    /// Completion-ring consumer index (executor → engine, synchronize).
    let compHead: UnsafeMutablePointer<Atomic<UInt32>>
    /// Executor futex word: 1 while the executor is parked (or about to park).
    let executorPark: UnsafeMutablePointer<Atomic<UInt32>>
    /// Client-poll mode: 1 while a thread (the engine, or a client in `poll()`) runs the
    /// executor's batches; the executor's private state belongs to whoever holds it.
    let claim: UnsafeMutablePointer<Atomic<UInt32>>
    /// The free descriptor indices (RingFreeQueue.swift).
    let freeQueue: RingFreeQueue
    /// Engine-written: the control value it has acted on (upper half) and the completion
    /// ring position after which no entry belongs to an epoch before it (low half).
    let ack: UnsafeMutablePointer<Atomic<UInt64>>
    /// Engine-written: (active ticket << 32 | bytes remaining), for residue.
    let active: UnsafeMutablePointer<Atomic<UInt64>>
    /// Engine-written before it parks idle: (1 << 32 | consumer position), 0 otherwise. The
    /// engine flushes before an idle park, so every ticket before that position is done.
    let idleMark: UnsafeMutablePointer<Atomic<UInt64>>
    /// Engine-written: the running cyclic transfer, (ticket << 32 | descriptor index), or
    /// `RingLayout.none` in the low half when there is none.
    let cyclic: UnsafeMutablePointer<Atomic<UInt64>>
    /// Engine-written: periods elapsed on cyclic transfers (the executor coalesces them).
    let cyclicPeriods: UnsafeMutablePointer<Atomic<UInt64>>

    // MARK: Read-mostly line

    let control: UnsafeMutablePointer<Atomic<UInt64>>
    /// (base ticket << 32 | base cookie) of the ticket → cookie mapping.
    let cookieBase: UnsafeMutablePointer<Atomic<UInt64>>
    let failNext: UnsafeMutablePointer<Atomic<Int>>
    let burstBytes: UnsafeMutablePointer<Atomic<Int>>
    /// `DMAConfig.paceBytesPerSecond`, read by cyclic preps.
    let paceBytes: UnsafeMutablePointer<Atomic<Int>>
    /// The most segments per list of `prepareMemcpySG`.
    static let maxSegments = 16
    static let pieceCapacity = DMASGPlan.pieceCapacity(maxSegments: maxSegments)
    /// Each descriptor's scatter-gather pieces (`pieceCapacity` per descriptor), preallocated
    /// so that prep allocates nothing; written by the client while prepared, read by the engine.
    let pieces: UnsafeMutablePointer<DMASGPiece>
    /// Stamped by the engine at each period end of a cyclic transfer.
    let periodClock = DMAPeriodClock()
    /// An `Unmanaged<ProbeBox>` pointer, or 0.
    let probe: UnsafeMutablePointer<Atomic<UInt>>
    let stallGeneration: UnsafeMutablePointer<Atomic<UInt32>>
    let released: UnsafeMutablePointer<Atomic<Bool>>
    /// Set by terminate, cleared when a synchronize completes (channel state `terminating`).
    let terminatePending: UnsafeMutablePointer<Atomic<Bool>>
    let syncWaiters: UnsafeMutablePointer<Atomic<Int>>

    let syncEvent = ParkingEvent()
    /// Every probe box ever installed (cold path; touched by `debugSetAccessProbe` and deinit).
    private let probeBoxes = LockedValue<[ProbeBox]>([])

    func keepAlive(_ box: ProbeBox) {
        probeBoxes.withLock { $0.append(box) }
    }

    /// The engine thread and, unless the engine runs the callbacks, the executor thread
    /// (`start()`; stopped by `stopThreads`). Set before any client call, then only read.
    var engineThread: OSThread?
    var executorThread: OSThread?
    /// No executor thread: the engine thread runs the callbacks
    /// (`DMACallbackContext.engineThread`, or `.clientPoll`).
    let callbacksOnEngine: Bool
    /// `DMACallbackContext.clientPoll`: a client's `poll()` may run them too, under `claim`.
    let clientPolls: Bool
    /// The fewest waiting completions a `poll()` takes (`options.clientPollBatch`, at most
    /// the pool).
    let pollBatch: UInt32
    let threadsJoined = Atomic<Bool>(false)
    /// Set once the pool and the rings are freed (after the threads are joined).
    private(set) var storageFreed = false

    init(options: DMAChannelOptions, negative: RingNegativeControl) throws(DMAError) {
        callbacksOnEngine = options.callbackContext != .executorThread
        clientPolls = options.callbackContext == .clientPoll
        guard options.poolSize >= 1, options.poolSize <= 1 << 20 else {
            throw .invalidArgument("poolSize \(options.poolSize); valid: 1...\(1 << 20)")
        }
        guard options.clientPollBatch >= 1 else {
            throw .invalidArgument("clientPollBatch \(options.clientPollBatch); valid: >= 1")
        }
        // A pool smaller than the batch could never fill one.
        pollBatch = UInt32(min(options.clientPollBatch, options.poolSize))
        guard options.spinNanoseconds >= 0 else {
            throw .invalidArgument("spinNanoseconds \(options.spinNanoseconds); valid: >= 0")
        }
        self.options = options
        self.negative = negative
        poolSize = options.poolSize
        // At least two slots (`powerOfTwo` starts at 2): a slot's stale issue mark, a ticket
        // of the next slot, must never match a ticket of its own.
        let cap = RingLayout.powerOfTwo(atLeast: options.poolSize)
        capacity = UInt32(cap)
        mask = UInt32(cap - 1)
        compCapacity = UInt32(cap * 2)
        compMask = UInt32(cap * 2 - 1)

        let line = RingLayout.line
        let lines = 16
        let region = UnsafeMutableRawPointer.allocate(byteCount: lines * line, alignment: line)
        region.initializeMemory(as: UInt8.self, repeating: 0, count: lines * line)
        hot = region
        func at<T>(_ i: Int, _ offset: Int = 0, _ value: T) -> UnsafeMutablePointer<Atomic<T>> {
            let p = (region + i * line + offset).bindMemory(to: Atomic<T>.self, capacity: 1)
            p.initialize(to: Atomic(value))
            return p
        }
        used = at(0, 0, UInt32(0))
        last = at(11, 0, UInt32(0))
        issuedTail = at(1, 0, UInt32(0))
        enginePark = at(2, 0, UInt32(0))
        compTail = at(3, 0, UInt32(0))
        compHead = at(4, 0, UInt32(0))
        executorPark = at(5, 0, UInt32(0))
        claim = at(12, 0, UInt32(0))
        ack = at(7, 0, UInt64(0))
        active = at(7, 8, UInt64(UInt32.max) << 32)
        idleMark = at(7, 16, UInt64(0))
        cyclic = at(10, 0, UInt64(RingLayout.none))
        cyclicPeriods = at(10, 8, UInt64(0))
        control = at(8, 0, UInt64(0))
        cookieBase = at(8, 8, Tickets.pack(high: 0, low: 1))
        failNext = at(8, 16, 0)
        burstBytes = at(8, 24, 0)
        paceBytes = at(8, 64, 0)
        probe = at(8, 32, UInt(0))
        stallGeneration = at(8, 40, UInt32(0))
        released = at(8, 48, false)
        terminatePending = at(8, 56, false)
        syncWaiters = at(9, 0, 0)

        precondition(MemoryLayout<RingDescriptor>.stride <= Self.descriptorStride, "RingDescriptor outgrew its stride")
        pieces = .allocate(capacity: options.poolSize * Self.pieceCapacity)
        poolBase = UnsafeMutableRawPointer.allocate(byteCount: options.poolSize * Self.descriptorStride, alignment: line)
        for i in 0..<options.poolSize {
            let d = (poolBase + i * Self.descriptorStride).bindMemory(to: RingDescriptor.self, capacity: 1)
            d.initialize(to: RingDescriptor())
        }
        freeQueue = RingFreeQueue(holdingAll: options.poolSize)

        // Both rings start on a 128-byte boundary, so that an entry never straddles two
        // lines: a 64-byte completion entry from the default (16-byte) allocation spanned
        // two lines, the one the engine fills and the one the executor drains.
        sub = UnsafeMutableRawPointer.allocate(byteCount: cap * MemoryLayout<SubmissionSlot>.stride, alignment: line)
            .bindMemory(to: SubmissionSlot.self, capacity: cap)
        for i in 0..<cap {
            (sub + i).initialize(to: SubmissionSlot(index: i, capacity: cap))
        }
        comp = UnsafeMutableRawPointer.allocate(byteCount: cap * 2 * MemoryLayout<CompletionEntry>.stride, alignment: line)
            .bindMemory(to: CompletionEntry.self, capacity: cap * 2)
        comp.initialize(repeating: CompletionEntry(), count: cap * 2)
    }

    deinit {
        freeStorage()
        probeBoxes.withLock { boxes in
            for box in boxes { Unmanaged.passUnretained(box).release() }
            boxes = []
        }
        hot.deallocate()
    }

    /// Frees the pool and the rings. Only after both threads are joined.
    func freeStorage() {
        guard !storageFreed else { return }
        storageFreed = true
        for i in 0..<poolSize { descriptor(UInt32(i)).deinitialize(count: 1) }
        poolBase.deallocate()
        sub.deinitialize(count: Int(capacity))
        UnsafeMutableRawPointer(sub).deallocate()
        comp.deinitialize(count: Int(compCapacity))
        UnsafeMutableRawPointer(comp).deallocate()
    }

    /// The descriptor in pool slot `index`.
    @inline(__always)
    func descriptor(_ index: UInt32) -> UnsafeMutablePointer<RingDescriptor> {
        Self.descriptor(index, in: poolBase)
    }

    /// The same, from a pool base the caller holds (the engine's burst keeps it in a local).
    @inline(__always)
    static func descriptor(_ index: UInt32, in poolBase: UnsafeMutableRawPointer) -> UnsafeMutablePointer<RingDescriptor> {
        (poolBase + Int(index) &* descriptorStride).assumingMemoryBound(to: RingDescriptor.self)
    }

    // MARK: Cookies

    @inline(__always)
    func cookie(ofTicket t: UInt32) -> DMACookie {
        Tickets.cookie(ofTicket: t, base: cookieBase.pointee.load(ordering: .relaxed))
    }

    @inline(__always)
    func watermark(used u: UInt32, last l: UInt32) -> DMACookieWatermark {
        let base = cookieBase.pointee.load(ordering: .relaxed)
        return DMACookieWatermark(
            used: Tickets.cookie(ofTicket: u, base: base),
            last: Tickets.cookie(ofTicket: l, base: base))
    }

    /// One consistent (used, last) ticket pair (rule S1; `DMACookieWatermark.loadSplit`, whose
    /// acquire load of `last` pairs with the release CAS in `advanceLast`).
    @inline(__always)
    func ticketSnapshot() -> (used: UInt32, last: UInt32) {
        DMACookieWatermark.loadSplit(used: used, last: last)
    }

    /// Moves `last` forward to ticket `t` unless it already is at or past it (rule C6: a
    /// late completion of a terminated descriptor never moves it, nor does the engine's
    /// completion of a descriptor that a terminate's cutoff already passed; the random-client
    /// checker found `last` moved back in that case, an S6 violation).
    @inline(__always)
    func advanceLast(to t: UInt32) {
        var l = last.pointee.load(ordering: .relaxed)
        while Tickets.isAfter(t, l) {
            // Ordering: release; pairs with the acquire load of `last` in `ticketSnapshot()`,
            // so a client that reads COMPLETE (polled mode) sees the bytes the engine copied.
            let (done, now) = last.pointee.compareExchange(expected: l, desired: t, ordering: .releasing)
            if done { return }
            l = now
        }
    }

    // MARK: Free descriptors

    /// Takes a free descriptor index (nil when the pool is exhausted).
    @inline(__always)
    func popFree() -> UInt32? { freeQueue.dequeue() }

    /// Returns a non-REUSE (or freed REUSE) descriptor to the pool state: callback dropped,
    /// generation bumped (stale handles now fail), state free. The caller pushes it.
    @inline(__always)
    func scrub(_ index: UInt32) {
        let d = descriptor(index)
        if d.pointee.hasCallback { d.pointee.packed.clear() }
        d.pointee.reuse = false
        // Only the descriptor's owner (the retiring executor, or the client freeing a prepared
        // REUSE descriptor) writes the generation: a load and a store, no locked add.
        d.pointee.generation.store(d.pointee.generation.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
        d.pointee.state.store(SlotState.free, ordering: .relaxed)
    }

    // MARK: Parking

    /// Wakes the engine if it is parked. Callers have just made a sequentially consistent
    /// change the engine re-checks after announcing that it parks.
    @inline(__always)
    func wakeEngineIfParked() {
        // Ordering: seq_cst; pairs with the seq_cst store of 1 in `RingEngine.park`
        // (Dekker: either we see 1 here, or the engine sees our change before it sleeps).
        if enginePark.pointee.load(ordering: .sequentiallyConsistent) == 1 {
            wake(enginePark)
        }
    }

    @inline(__always)
    func wakeExecutorIfParked() {
        // Ordering: seq_cst; pairs with the seq_cst store of 1 in `RingExecutor.park`.
        if executorPark.pointee.load(ordering: .sequentiallyConsistent) == 1 {
            wake(executorPark)
        }
    }

    func wake(_ word: UnsafeMutablePointer<Atomic<UInt32>>) {
        // Ordering: seq_cst; pairs with the parker's seq_cst store of 1.
        if word.pointee.exchange(0, ordering: .sequentiallyConsistent) == 1 {
            Futex.wake(UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self), count: 1)
        }
    }

    /// Parks the calling thread on `word` until woken or `timeout` passes, unless
    /// `changed()` reports new work after the park was announced.
    @inline(never)
    func park(
        _ word: UnsafeMutablePointer<Atomic<UInt32>>, timeoutNanoseconds: Int64 = -1, changed: () -> Bool
    ) {
        // Ordering: seq_cst; pairs with the seq_cst loads in `wakeEngineIfParked` /
        // `wakeExecutorIfParked` after the waker's seq_cst publication.
        word.pointee.store(1, ordering: .sequentiallyConsistent)
        if !changed() {
            Futex.wait(
                UnsafeMutableRawPointer(word).assumingMemoryBound(to: UInt32.self), expected: 1,
                timeoutNanoseconds: timeoutNanoseconds)
        }
        word.pointee.store(0, ordering: .relaxed)
    }

    /// When the engine is parked idle past `cutoff` (every ticket up to it consumed, done and
    /// published), returns the completion-ring position to wait for: the engine is done with
    /// the terminated epoch without having to wake up and acknowledge it. nil otherwise.
    @inline(__always)
    func idleEngineWitness(cutoff: UInt32) -> UInt32? {
        // Ordering: seq_cst; pairs with the seq_cst store of 1 in `park`, which the engine
        // makes after storing `idleMark` (so the mark read below is at least that recent).
        guard enginePark.pointee.load(ordering: .sequentiallyConsistent) == 1 else { return nil }
        let mark = idleMark.pointee.load(ordering: .relaxed)
        guard mark >> 32 == 1, Tickets.distance(Tickets.low(mark), cutoff) > 0 else { return nil }
        // Ordering: acquire; pairs with the engine's seq_cst store of `compTail` in `flush()`.
        return compTail.pointee.load(ordering: .acquiring)
    }

    /// Stores `ack` and signals a waiting `synchronize` or `pause`, if there is one.
    @inline(__always)
    func publishAck(_ value: UInt64) {
        // Ordering: seq_cst. The release part pairs with the acquire load of `ack` in
        // `waitForEpoch` and `pause`; the seq_cst part is the Dekker store of
        // `signalSyncWaiters`.
        ack.pointee.store(value, ordering: .sequentiallyConsistent)
        signalSyncWaiters()
    }

    /// Stores `compHead` and signals a waiting `synchronize`, if there is one.
    @inline(__always)
    func publishCompHead(_ value: UInt32) {
        // Ordering: seq_cst. The release part pairs with the acquire load of `compHead` in
        // `waitForEpoch` and in the engine's ring-full check; the seq_cst part is the Dekker
        // store of `signalSyncWaiters`.
        compHead.pointee.store(value, ordering: .sequentiallyConsistent)
        signalSyncWaiters()
    }

    /// The signalling half of a Dekker pair with `waitForEpoch`, which increments
    /// `syncWaiters` (seq_cst) and then checks `ack` and `compHead`. The caller has just
    /// stored one of them seq_cst, so either this load sees the waiter or the waiter sees the
    /// store. Private, so that no caller can pair it with a release store. With release
    /// stores, the load could pass the store and the waiter slept out its 200 µs timeout
    /// (Results/host-8062ce5d/c72c4bfeb51f/measurements.md).
    @inline(__always)
    private func signalSyncWaiters() {
        // Ordering: seq_cst; pairs with the seq_cst increment of `syncWaiters` in `waitForEpoch`.
        if syncWaiters.pointee.load(ordering: .sequentiallyConsistent) > 0 { syncEvent.signal() }
    }
}
