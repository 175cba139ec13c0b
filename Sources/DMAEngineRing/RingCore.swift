// dmabench — DMAEngineRing
//
// The shared state of one ring channel. Hot indices live in raw storage, one 128-byte line
// each; everything a thread keeps for itself (the engine's consumer position, the executor's
// position, cached copies of remote indices) lives in that thread's own object.
//
// Threads and what they write:
// - submitters (any client thread, callbacks included): `W` high half (fetch-add), the
//   submission-ring slot of their ticket, `issuedTail` (issuePending), the free list (prep);
// - the engine: `W` low half (last), `compTail`, `ack`, `active`, submission-slot `seq` on consume;
// - the executor: `compHead`, the free list (retire);
// - terminate/pause/resume/release: `control`.

import DMAEngine
import Platform
import Synchronization

/// Which deliberately broken variant to run (the detector must detect it; DESIGN.md §10).
@_spi(NegativeControls)
public enum RingNegativeControl: Sendable, Hashable {
    /// The correct backend.
    case none
    /// The executor skips its epoch check: completed-but-undispatched descriptors of a
    /// terminated epoch still get their callback (violates T1/T3, scenarios 14, 15, 21).
    case executorSkipsEpochCheck
    /// `synchronize` returns at once without waiting for the engine and the executor (T3).
    case synchronizeDoesNotWait
    /// The engine acknowledges a terminate but keeps copying the active transfer to its end
    /// (violates T3(a): the engine touches memory after synchronize; scenarios 14, 30, 33).
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
    let pool: UnsafeMutablePointer<RingDescriptor>
    let sub: UnsafeMutablePointer<SubmissionSlot>
    let comp: UnsafeMutablePointer<CompletionEntry>

    // MARK: Hot lines (one 128-byte line each)

    /// (used ticket << 32 | last ticket). Submitters fetch-add the high half; the engine and
    /// terminate move the low half forward with CAS.
    let W: UnsafeMutablePointer<Atomic<UInt64>>
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
    /// The free list of descriptor slots: (tag << 32 | index), index `RingLayout.none` = empty.
    let freeHead: UnsafeMutablePointer<Atomic<UInt64>>
    /// Engine-written: the control value it has acted on (upper half) and the completion
    /// ring position after which no entry belongs to an epoch before it (low half).
    let ack: UnsafeMutablePointer<Atomic<UInt64>>
    /// Engine-written: (active ticket << 32 | bytes remaining), for residue.
    let active: UnsafeMutablePointer<Atomic<UInt64>>

    // MARK: Read-mostly line

    let control: UnsafeMutablePointer<Atomic<UInt64>>
    /// (base ticket << 32 | base cookie) of the ticket → cookie mapping.
    let cookieBase: UnsafeMutablePointer<Atomic<UInt64>>
    let failNext: UnsafeMutablePointer<Atomic<Int>>
    let burstBytes: UnsafeMutablePointer<Atomic<Int>>
    /// An `Unmanaged<ProbeBox>` pointer, or 0.
    let probe: UnsafeMutablePointer<Atomic<UInt>>
    let stallGeneration: UnsafeMutablePointer<Atomic<UInt32>>
    let released: UnsafeMutablePointer<Atomic<Bool>>
    /// Set by terminate, cleared when a synchronize completes (channel state `terminating`).
    let terminatePending: UnsafeMutablePointer<Atomic<Bool>>
    let syncWaiters: UnsafeMutablePointer<Atomic<Int>>

    let syncEvent = ParkingEvent()
    let probes = Mutex<[ProbeBox]>([])
    /// Set once the pool and the rings are freed (after the threads are joined).
    private(set) var storageFreed = false

    init(options: DMAChannelOptions, negative: RingNegativeControl) throws(DMAError) {
        guard options.poolSize >= 1, options.poolSize <= 1 << 20 else {
            throw .invalidArgument("poolSize \(options.poolSize); valid: 1...\(1 << 20)")
        }
        guard options.spinNanoseconds >= 0 else {
            throw .invalidArgument("spinNanoseconds \(options.spinNanoseconds); valid: >= 0")
        }
        self.options = options
        self.negative = negative
        poolSize = options.poolSize
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
        W = at(0, 0, Tickets.pack(high: 0, low: 0))
        issuedTail = at(1, 0, UInt32(0))
        enginePark = at(2, 0, UInt32(0))
        compTail = at(3, 0, UInt32(0))
        compHead = at(4, 0, UInt32(0))
        executorPark = at(5, 0, UInt32(0))
        freeHead = at(6, 0, UInt64(0))
        ack = at(7, 0, UInt64(0))
        active = at(7, 8, UInt64(UInt32.max) << 32)
        control = at(8, 0, UInt64(0))
        cookieBase = at(8, 8, Tickets.pack(high: 0, low: 1))
        failNext = at(8, 16, 0)
        burstBytes = at(8, 24, 0)
        probe = at(8, 32, UInt(0))
        stallGeneration = at(8, 40, UInt32(0))
        released = at(8, 48, false)
        terminatePending = at(8, 56, false)
        syncWaiters = at(9, 0, 0)

        pool = UnsafeMutablePointer<RingDescriptor>.allocate(capacity: options.poolSize)
        for i in 0..<options.poolSize {
            (pool + i).initialize(to: RingDescriptor(index: UInt32(i)))
            (pool + i).pointee.next.store(i + 1 < options.poolSize ? UInt32(i + 1) : RingLayout.none, ordering: .relaxed)
        }
        freeHead.pointee.store(Tickets.pack(high: 0, low: 0), ordering: .relaxed)

        sub = UnsafeMutablePointer<SubmissionSlot>.allocate(capacity: cap)
        for i in 0..<cap {
            // Ticket 0 is never handed out (the first ticket is 1), so slot 0 starts as if
            // ticket 0 had been consumed: free for ticket `cap`.
            (sub + i).initialize(to: SubmissionSlot(seq: i == 0 ? UInt32(cap) : UInt32(i)))
        }
        comp = UnsafeMutablePointer<CompletionEntry>.allocate(capacity: cap * 2)
        comp.initialize(repeating: CompletionEntry(), count: cap * 2)
    }

    deinit {
        freeStorage()
        for box in probes.withLock({ $0 }) { Unmanaged.passUnretained(box).release() }
        hot.deallocate()
    }

    /// Frees the pool and the rings. Only after both threads are joined.
    func freeStorage() {
        guard !storageFreed else { return }
        storageFreed = true
        pool.deinitialize(count: poolSize)
        pool.deallocate()
        sub.deinitialize(count: Int(capacity))
        sub.deallocate()
        comp.deinitialize(count: Int(compCapacity))
        comp.deallocate()
    }

    // MARK: Cookies

    @inline(__always)
    func cookie(ofTicket t: UInt32) -> DMACookie {
        Tickets.cookie(ofTicket: t, base: cookieBase.pointee.load(ordering: .relaxed))
    }

    @inline(__always)
    func watermark(_ w: UInt64) -> DMACookieWatermark {
        let base = cookieBase.pointee.load(ordering: .relaxed)
        return DMACookieWatermark(
            used: Tickets.cookie(ofTicket: Tickets.high(w), base: base),
            last: Tickets.cookie(ofTicket: Tickets.low(w), base: base))
    }

    /// Moves `last` forward to ticket `t` unless it already is at or past it (rule C6: a
    /// late completion of a terminated descriptor never moves it).
    @inline(__always)
    func advanceLast(to t: UInt32) {
        var w = W.pointee.load(ordering: .relaxed)
        while Tickets.isForward(t, last: Tickets.low(w), used: Tickets.high(w)) {
            // Ordering: release; pairs with the acquire load of `W` in `status(of:)`, so a
            // client that reads COMPLETE (polled mode) sees the bytes the engine copied.
            let (done, now) = W.pointee.compareExchange(
                expected: w, desired: (w & 0xFFFF_FFFF_0000_0000) | UInt64(t), ordering: .releasing)
            if done { return }
            w = now
        }
    }

    // MARK: Free list (Treiber stack with a tag against ABA)

    @inline(__always)
    func popFree() -> UInt32? {
        // Ordering: acquire; pairs with the release CAS in `pushFree`, so the slot's last
        // owner (the executor retiring it) is done with it before we write it.
        var head = freeHead.pointee.load(ordering: .acquiring)
        while true {
            let index = Tickets.low(head)
            if index == RingLayout.none { return nil }
            let next = pool[Int(index)].next.load(ordering: .relaxed)
            // Ordering: acquire on success; pairs with the release CAS in `pushFree`.
            let (done, now) = freeHead.pointee.compareExchange(
                expected: head, desired: Tickets.pack(high: Tickets.high(head) &+ 1, low: next),
                successOrdering: .acquiring, failureOrdering: .acquiring)
            if done { return index }
            head = now
        }
    }

    /// Pushes the chain first → … → last (linked through `next`).
    @inline(__always)
    func pushFree(first: UInt32, last: UInt32) {
        var head = freeHead.pointee.load(ordering: .relaxed)
        while true {
            pool[Int(last)].next.store(Tickets.low(head), ordering: .relaxed)
            // Ordering: release; pairs with the acquire CAS in `popFree`.
            let (done, now) = freeHead.pointee.compareExchange(
                expected: head, desired: Tickets.pack(high: Tickets.high(head) &+ 1, low: first),
                successOrdering: .releasing, failureOrdering: .relaxed)
            if done { return }
            head = now
        }
    }

    /// Returns a non-REUSE (or freed REUSE) descriptor to the pool state: callback dropped,
    /// generation bumped (stale handles now fail), state free. The caller pushes it.
    @inline(__always)
    func scrub(_ index: UInt32) {
        let d = pool + Int(index)
        if d.pointee.callback.isSet { d.pointee.callback = DMACallback() }
        d.pointee.reuse = false
        d.pointee.generation.add(1, ordering: .relaxed)
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

    /// Signals a waiting `synchronize` (or `pause`) if there is one.
    @inline(__always)
    func signalSyncWaiters() {
        // Ordering: seq_cst; pairs with the seq_cst increment in `synchronize`.
        if syncWaiters.pointee.load(ordering: .sequentiallyConsistent) > 0 { syncEvent.signal() }
    }
}
