// dmabench — DMAEngineLocked
//
// The channel state behind `LockedChannel`: one lock guarding virt-dma's lists, the
// active descriptor, the cyclic pending period and the cookie counters (docs/contract.md
// appendix V). The engine thread and the callback executor hold a strong reference to this
// object, never to the channel, so that a channel dropped without `release()` still shuts
// its threads down from `deinit`.

import DMAEngine
import Glibc
import Platform
import Synchronization

/// Everything guarded by `ChannelLock`. It lives in raw memory (`LockedCore.st`), so that
/// accesses carry no dynamic exclusivity checks; only code holding the lock touches it.
struct LockedState {
    /// Kernel: `chan->cookie` (used) and `chan->completed_cookie` (last). Mirrored in
    /// `LockedCore.watermark` after every change.
    var watermark = DMACookieWatermark()
    var submitted = SlotList()
    var issued = SlotList()
    var completed = SlotList()
    var terminated = SlotList()
    /// Number of slot indices on the free stack (`LockedCore.freeStack`; 0 = pool exhausted).
    var freeCount = 0
    /// The descriptor the engine runs (-1 = none). On no list until terminated.
    var active: Int32 = -1
    /// The descriptors the engine took after `active`, to run and complete with it (see
    /// `LockedCore.takeChain`); state `.active`. Terminated with the active one.
    var chain = SlotList()
    /// The active descriptor was terminated: the engine must not complete it.
    var activeTerminated = false
    /// The terminate asked the engine to abort it (false under `.terminateKeepsCopyingActive`).
    var activeAbortRequested = false
    /// Kernel: `vc->cyclic`, the cyclic descriptor with a period callback pending (-1 = none).
    var cyclicPending: Int32 = -1
    var paused = false
    /// Between a terminate that found work (or a running callback) and the next
    /// synchronize (docs/contract.md A.3 `terminating`): the engine starts nothing new, and
    /// synchronize drops what was submitted meanwhile (T6, T7).
    var terminating = false
    /// Sum of the lengths on the submitted, issued and chain lists.
    var queuedBytes = 0
    var config = DMAConfig()
    var failNextSubmits = 0
    var probe: DMAAccessProbe? = nil

    /// The engine has nothing to do and waits on `engineEvent`: issuePending must signal it.
    var engineIdle = false
    /// The executor has nothing to do and waits on `executorEvent`.
    var executorIdle = false
    /// Batches the executor has taken and finished (synchronize waits on these).
    var executorStarted: UInt64 = 0
    var executorFinished: UInt64 = 0
    /// Aborts of an active descriptor asked by terminate, and those the engine carried out.
    var abortRequests: UInt64 = 0
    var abortsHandled: UInt64 = 0
    /// Threads blocked in synchronize; engine and executor wake them when non-zero.
    var syncWaiters = 0
    /// `.callbackAfterTerminate` only: the executor holds the late callbacks until this
    /// time, so that they run well after synchronize returned.
    var lateCallbacksNotBefore: UInt64 = 0

    /// `release()` has begun: every later operation fails with `.released`.
    var released = false
    /// The threads must exit.
    var shutdown = false
}

/// One entry of the executor's private batch (kernel: the private list in `vchan_complete`).
struct BatchEntry {
    var index: Int32
    var cookie: DMACookie
    var result: DMAResult
    /// Not REUSE (read under the lock): nobody but the executor touches the slot until it
    /// retires it, so its callback can be moved out rather than copied.
    var owned: Bool
}

final class LockedCore: @unchecked Sendable {
    let options: DMAChannelOptions
    let defect: LockedDefect?
    let poolSize: Int

    let lock = ChannelLock()
    /// Free slots for `prepare`, refilled from the free stack (see `PrepMagazine`).
    let magazine = PrepMagazine()
    /// `LockedState.released`, for `prepare`, which reads it under the magazine lock only.
    let releasedFlag = Atomic<Bool>(false)
    let st: UnsafeMutablePointer<LockedState>
    let slots: UnsafeMutablePointer<Slot>
    /// The executor's private batch, preallocated with one entry per slot.
    let batch: UnsafeMutablePointer<BatchEntry>
    /// The engine's private copy of what it runs of `LockedState.chain`.
    let chain: UnsafeMutablePointer<Transfer>
    /// Which slot each recent cookie went to (`cookieSlots[cookie & cookieSlotsMask]`),
    /// written by submit, read by the engine only as a prefetch hint: it fetches the slots of
    /// the next cookies before it takes the lock for them. The issued list links slot to
    /// slot, so walking it under the lock took one cross-CPU miss after another (in series,
    /// each slot written by the client); the hint lets those misses overlap. Relaxed atomics
    /// (read outside the lock); a stale entry only prefetches the wrong slot.
    let cookieSlots: UnsafeMutablePointer<Atomic<Int32>>
    let cookieSlotsMask: Int
    /// The free stack: `freeStack[0..<st.freeCount]`, top last. Lock held. An array of
    /// indices rather than a list through the slots, so a refill reads one or two lines
    /// instead of one cross-CPU miss per slot (docs/measurement-notes.md, "LockedCore.freeStack:
    /// an array, not a list").
    let freeStack: UnsafeMutablePointer<Int32>

    // Atomics written per descriptor live in raw 128-byte lines grouped by writer, not in
    // this object: as stored properties they shared a line or two with each other and with
    // the flags the engine reads per chunk, so every submit took those lines from the engine
    // and every completion took them back (a transfer inside each critical section).
    /// Line 0, written by submitters: `watermark.used` (the cookie's bit pattern), for the
    /// lock-free status path.
    let usedMirror: UnsafeMutablePointer<Atomic<UInt32>>
    /// Line 1, written by the engine (and terminate): `watermark.last` (the cookie's bit pattern).
    let lastMirror: UnsafeMutablePointer<Atomic<UInt32>>
    /// Line 1: residue of the active descriptor, written by the engine after each chunk.
    let activeResidue: UnsafeMutablePointer<Atomic<Int>>
    /// Line 1: `LockedState.queuedBytes` as of the engine's last take (or terminate), for
    /// the lock-free status path of a COMPLETE cookie, where `inFlightBytes` is approximate.
    let queuedBytesMirror: UnsafeMutablePointer<Atomic<Int>>
    /// Line 1: true while the engine moves a chunk; pause waits until it reads false.
    let engineInChunk: UnsafeMutablePointer<Atomic<Bool>>
    private let hotLines: UnsafeMutableRawPointer
    /// Set by terminate (under the lock) when it aborts the active descriptor.
    let abortFlag = Atomic<Bool>(false)
    /// `LockedState.paused`, mirrored so the engine sees it at each chunk boundary.
    let pauseFlag = Atomic<Bool>(false)
    /// Mirrors `LockedState.shutdown` for the engine's chunk gate and waits.
    let shutdownFlag = Atomic<Bool>(false)
    /// Incremented by `debugReleaseStalls()`.
    let stallGeneration = Atomic<UInt64>(0)
    /// Incremented when the access probe changes, so the engine re-reads it.
    let probeGeneration = Atomic<UInt64>(0)

    let engineEvent = ParkingEvent()
    let executorEvent = ParkingEvent()
    /// A futex word that synchronize sleeps on; bumped when executor or engine progress.
    let syncWordStorage: UnsafeMutableRawPointer

    var engineThread: OSThread?
    var executorThread: OSThread?
    let engineThreadID = Atomic<Int32>(0)
    let executorThreadID = Atomic<Int32>(0)
    /// `options.callbackContext == .engineThread`: no executor thread; the engine runs
    /// `dispatchCompletions` itself after completions and before it waits.
    let engineRunsCallbacks: Bool

    init(options: DMAChannelOptions, defect: LockedDefect?) throws(DMAError) {
        guard options.poolSize >= 1 && options.poolSize <= 1 << 24 else {
            throw .invalidArgument("poolSize \(options.poolSize) out of range; valid: 1...\(1 << 24)")
        }
        guard options.spinNanoseconds >= 0 else {
            throw .invalidArgument("spinNanoseconds \(options.spinNanoseconds) is negative; valid: 0 or more")
        }
        self.options = options
        self.defect = defect
        self.engineRunsCallbacks = options.callbackContext == .engineThread
        self.poolSize = options.poolSize
        // Lines of its own (the state is written under the lock; see `ChannelLock`).
        st = UnsafeMutableRawPointer.allocate(
            byteCount: (MemoryLayout<LockedState>.stride + 127) / 128 * 128, alignment: 128
        ).bindMemory(to: LockedState.self, capacity: 1)
        st.initialize(to: LockedState())
        precondition(MemoryLayout<Slot>.stride == Slot.stride, "Slot is \(MemoryLayout<Slot>.stride) bytes; pad it to \(Slot.stride)")
        slots = UnsafeMutableRawPointer.allocate(byteCount: poolSize * Slot.stride, alignment: 128)
            .bindMemory(to: Slot.self, capacity: poolSize)
        slots.initialize(repeating: Slot(), count: poolSize)
        batch = UnsafeMutablePointer<BatchEntry>.allocate(capacity: poolSize)
        batch.initialize(repeating: BatchEntry(index: -1, cookie: DMACookie(0), result: .noError, owned: false), count: poolSize)
        chain = UnsafeMutablePointer<Transfer>.allocate(capacity: LockedTuning.chainDescriptors)
        var hintCount = 64
        while hintCount < poolSize { hintCount <<= 1 }
        cookieSlotsMask = hintCount - 1
        cookieSlots = UnsafeMutableRawPointer.allocate(byteCount: hintCount * 4, alignment: 128)
            .bindMemory(to: Atomic<Int32>.self, capacity: hintCount)
        for k in 0..<hintCount { (cookieSlots + k).initialize(to: Atomic(-1)) }
        freeStack = .allocate(capacity: poolSize)
        st.pointee.freeCount = Self.fillFreeStack(freeStack, poolSize: poolSize)
        let hot = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 128)
        hot.initializeMemory(as: UInt8.self, repeating: 0, count: 256)
        hotLines = hot
        func at<T>(_ line: Int, _ offset: Int, _ value: T) -> UnsafeMutablePointer<Atomic<T>> {
            let p = (hot + line * 128 + offset).bindMemory(to: Atomic<T>.self, capacity: 1)
            p.initialize(to: Atomic(value))
            return p
        }
        let w = DMACookieWatermark()
        usedMirror = at(0, 0, UInt32(bitPattern: w.used.rawValue))
        lastMirror = at(1, 0, UInt32(bitPattern: w.last.rawValue))
        activeResidue = at(1, 8, 0)
        queuedBytesMirror = at(1, 16, 0)
        engineInChunk = at(1, 24, false)
        syncWordStorage = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
        syncWordStorage.bindMemory(to: Atomic<UInt32>.self, capacity: 1).initialize(to: Atomic(0))
    }

    /// Starts the engine and (under `.executorThread`) the executor. Separate from `init` so that the closures can
    /// capture a fully initialised `self`.
    func start() throws(DMAError) {
        do throws(SystemError) {
            engineThread = try OSThread(name: "dma-locked-eng", cpu: options.engineCPU) { [self] in
                engineThreadID.store(CPU.currentThreadID, ordering: .relaxed)
                engineMain()
            }
            if !engineRunsCallbacks {
                executorThread = try OSThread(name: "dma-locked-cb", cpu: options.executorCPU) { [self] in
                    executorThreadID.store(CPU.currentThreadID, ordering: .relaxed)
                    executorMain()
                }
            }
        } catch {
            shutdownThreads(join: true)
            throw .unavailable("cannot start the locked backend's threads: \(error)")
        }
    }

    deinit {
        st.deinitialize(count: 1)
        UnsafeMutableRawPointer(st).deallocate()
        slots.deinitialize(count: poolSize)
        UnsafeMutableRawPointer(slots).deallocate()
        batch.deinitialize(count: poolSize)
        batch.deallocate()
        chain.deallocate()
        cookieSlots.deinitialize(count: cookieSlotsMask + 1)
        freeStack.deallocate()
        UnsafeMutableRawPointer(cookieSlots).deallocate()
        syncWord.deinitialize(count: 1)
        syncWordStorage.deallocate()
        hotLines.deallocate()
        lock.destroy()
        magazine.destroy()
    }

    var syncWord: UnsafeMutablePointer<Atomic<UInt32>> { syncWordStorage.assumingMemoryBound(to: Atomic<UInt32>.self) }

    // MARK: Helpers (lock held)

    /// Publishes `st.watermark.used` for the lock-free status path (submit). Lock held.
    @inline(__always)
    func publishUsed() {
        // Ordering: release; pairs with the acquire loads in `watermarkSnapshot()`.
        usedMirror.pointee.store(UInt32(bitPattern: st.pointee.watermark.used.rawValue), ordering: .releasing)
    }

    /// Publishes `st.watermark.last` (completion, terminate). Lock held.
    @inline(__always)
    func publishLast() {
        // Ordering: release; pairs with the acquire load in `watermarkSnapshot()`, so a reader
        // that sees a cookie COMPLETE also sees the list changes made before it under the lock.
        lastMirror.pointee.store(UInt32(bitPattern: st.pointee.watermark.last.rawValue), ordering: .releasing)
    }

    /// One consistent (used, last) pair without the lock (rule S1; see
    /// `DMACookieWatermark.loadSplit`, whose acquire load of `last` pairs with the release
    /// store in `publishLast()`).
    @inline(__always)
    func watermarkSnapshot() -> DMACookieWatermark {
        let (u, l) = DMACookieWatermark.loadSplit(used: usedMirror, last: lastMirror)
        return DMACookieWatermark(used: DMACookie(Int32(bitPattern: u)), last: DMACookie(Int32(bitPattern: l)))
    }

    /// Lock held. `mirror`: also store the lock-free copy (the engine's take and terminate;
    /// submit leaves it, so that submitters never write the engine's line).
    @inline(__always)
    func setQueuedBytes(_ v: Int, mirror: Bool = true) {
        st.pointee.queuedBytes = v
        if mirror { queuedBytesMirror.pointee.store(v, ordering: .relaxed) }
    }

    /// Validates a handle. Lock held.
    @inline(__always)
    func check(_ d: DMADescriptor) throws(DMAError) -> Int32 {
        if st.pointee.released { throw .released }
        let i = Int(d.index)
        guard i < poolSize, slots[i].generation == d.generation, slots[i].state != .free else {
            throw .invalidHandle
        }
        return Int32(i)
    }

    /// Returns a slot to the free stack and makes every handle to it stale. Lock held.
    /// The callback (and anything it captures) is released here, as `desc_free` would.
    @inline(__always)
    func freeSlot(_ i: Int32) {
        let s = slots + Int(i)
        s.pointee.generation &+= 1
        s.pointee.state = .free
        if s.pointee.callback.isSet { s.pointee.callback = DMACallback() }
        s.pointee.probeless()
        s.pointee.next = -1
        s.pointee.prev = -1
        freeStack[st.pointee.freeCount] = i
        st.pointee.freeCount += 1
    }

    /// Every slot on the free stack again. Lock held.
    func resetFreeStack() {
        st.pointee.freeCount = Self.fillFreeStack(freeStack, poolSize: poolSize)
    }

    /// Puts every slot index on `stack`, 0 on top, so that the first preps use the lowest
    /// slots. Returns the count.
    static func fillFreeStack(_ stack: UnsafeMutablePointer<Int32>, poolSize: Int) -> Int {
        for k in 0..<poolSize { stack[k] = Int32(poolSize - 1 - k) }
        return poolSize
    }

    /// Retirement (kernel: `vchan_vdesc_fini`): REUSE → back to prepared, else free. Lock held.
    @inline(__always)
    func retire(_ i: Int32) {
        if slots[Int(i)].reuse {
            slots[Int(i)].state = .prepared
            slots[Int(i)].result = DMAResult(.noError)
            slots[Int(i)].prev = -1
            slots[Int(i)].next = -1
        } else {
            freeSlot(i)
        }
    }

    /// Wakes threads blocked in synchronize. Lock not held.
    func wakeSynchronizers() {
        // Ordering: release; pairs with the acquire load of the sync word in `waitForSync`,
        // which re-checks its condition under the lock afterwards anyway.
        syncWord.pointee.add(1, ordering: .releasing)
        Futex.wake(UnsafeMutableRawPointer(syncWordStorage).assumingMemoryBound(to: UInt32.self))
    }

    // MARK: Prep

    func prepare(
        kind: TransferKind, destination: UnsafeMutableRawPointer, source: UnsafeRawPointer?, length: Int,
        periodLength: Int, value: UInt8, flags: DMAPrepFlags, callback: consuming DMACallback? = nil
    ) -> DMADescriptor? {
        let m = magazine
        m.lock()
        defer { m.unlock() }
        // Ordering: relaxed; `release()` sets it under the channel lock and empties the
        // magazine under the magazine lock, which this thread holds.
        if releasedFlag.load(ordering: .relaxed) { return nil }
        if m.count.pointee == 0 && !refillMagazine() { return nil }
        m.count.pointee -= 1
        let i = m.slots[Int(m.count.pointee)]
        // The next prep's slot was last written by the engine or executor, so fetch its
        // lines now, overlapping this descriptor's submit instead of stalling the next prep
        // (docs/measurement-notes.md, "LockedCore.prepare: prefetching the next slot").
        if m.count.pointee > 0 {
            prefetchForWrite(slots + Int(m.slots[Int(m.count.pointee) - 1]), count: Slot.stride)
        }
        // The slot is this thread's: off the free stack, on no list, its generation already
        // past every old handle, so nothing else reads or writes it until the handle is out.
        let s = slots + Int(i)
        s.pointee.state = .prepared
        s.pointee.kind = kind
        s.pointee.reuse = false
        s.pointee.interrupt = flags.contains(.interrupt)
        s.pointee.value = value
        s.pointee.cookie = DMACookie(0)
        s.pointee.destination = destination
        s.pointee.source = source
        s.pointee.length = length
        s.pointee.periodLength = periodLength
        // Ordering: relaxed; configure() applies to later preps (scenario 32), ordered by the
        // caller as any two calls are.
        s.pointee.burstBytes = m.burstBytes.pointee.load(ordering: .relaxed)
        s.pointee.injection = DMAInjection()
        s.pointee.injected = false
        s.pointee.result = DMAResult(.noError)
        if let callback { s.pointee.callback = callback }
        return DMADescriptor(index: UInt32(i), generation: s.pointee.generation)
    }

    /// Moves up to `PrepMagazine.capacity` slots from the free stack into the magazine.
    /// Magazine lock held; takes the channel lock. False when the pool is exhausted.
    @inline(never)
    func refillMagazine() -> Bool {
        let m = magazine
        lock.lock()
        defer { lock.unlock() }
        // The top `n` indices, in stack order: the magazine pops from its end, so the slot
        // freed last is prepped first, as a pop from the free stack would take it.
        let n = min(PrepMagazine.capacity, st.pointee.freeCount)
        let from = st.pointee.freeCount - n
        for k in 0..<n { m.slots[k] = freeStack[from + k] }
        st.pointee.freeCount = from
        m.count.pointee = Int32(n)
        return n > 0
    }

    func setCallback(_ callback: DMACallback, for d: DMADescriptor) throws(DMAError) {
        lock.lock()
        defer { lock.unlock() }
        let i = try check(d)
        guard slots[Int(i)].state == .prepared else { throw slots[Int(i)].reuse ? .busy : .invalidHandle }
        slots[Int(i)].callback = callback
    }

    func setReuse(_ reuse: Bool, for d: DMADescriptor) throws(DMAError) {
        lock.lock()
        defer { lock.unlock() }
        let i = try check(d)
        // A non-REUSE descriptor is the backend's once submitted; a REUSE one may have its
        // flag cleared at any time (it is then freed at its next retirement).
        guard slots[Int(i)].state == .prepared || slots[Int(i)].reuse else { throw .invalidHandle }
        slots[Int(i)].reuse = reuse
    }

    func free(_ d: DMADescriptor) throws(DMAError) {
        lock.lock()
        defer { lock.unlock() }
        let i = try check(d)
        guard slots[Int(i)].reuse else { throw .notPermitted }
        guard slots[Int(i)].state == .prepared else { throw .busy }
        freeSlot(i)
    }

    func inject(_ injection: DMAInjection, into d: DMADescriptor) throws(DMAError) {
        if injection.chunkBytes < 0 || injection.delayPerChunkNanoseconds < 0 {
            throw .invalidArgument("injection chunkBytes and delayPerChunkNanoseconds must be ≥ 0")
        }
        lock.lock()
        defer { lock.unlock() }
        let i = try check(d)
        guard slots[Int(i)].state == .prepared else { throw slots[Int(i)].reuse ? .busy : .invalidHandle }
        slots[Int(i)].injection = injection
        slots[Int(i)].injected = injection != DMAInjection()
        // A stall holds until the first `debugReleaseStalls()` after this call, even one that
        // comes before the engine reaches the transfer (sampling the generation when the
        // engine started it missed such a release and hung; as the ring does).
        // Ordering: relaxed; the release that matters comes later on this thread.
        if injection.stall { slots[Int(i)].stallSeen = stallGeneration.load(ordering: .relaxed) }
    }

    // MARK: Submit, issue, status

    /// Kernel: `vchan_tx_submit` (`dma_cookie_assign`, move to `desc_submitted`).
    func submit(_ d: DMADescriptor) -> DMACookie {
        lock.lock()
        defer { lock.unlock() }
        if st.pointee.released { return .failure(ENODEV) }
        let i = Int(d.index)
        guard i < poolSize, slots[i].generation == d.generation else { return .failure(EINVAL) }
        let state = slots[i].state
        // A REUSE descriptor whose callback is running may be resubmitted (K7): the engine is
        // done with it, and the executor skips its retirement once it sees the new state.
        guard state == .prepared || (state == .dispatched && slots[i].reuse) else {
            return .failure(slots[i].reuse ? EBUSY : EINVAL)
        }
        if st.pointee.failNextSubmits > 0 {
            st.pointee.failNextSubmits -= 1
            return .failure(EIO)
        }
        let cookie = st.pointee.watermark.assign()
        publishUsed()
        slots[i].cookie = cookie
        slots[i].state = .queued
        // Ordering: relaxed; a prefetch hint for the engine (see `cookieSlots`).
        cookieSlots[Int(cookie.rawValue) & cookieSlotsMask].store(Int32(i), ordering: .relaxed)
        slots.append(Int32(i), to: &st.pointee.submitted)
        setQueuedBytes(st.pointee.queuedBytes + slots[i].length, mirror: false)
        return cookie
    }

    /// Kernel: `vchan_issue_pending` and the driver's "start the hardware if idle".
    func issuePending() {
        lock.lock()
        slots.splice(&st.pointee.submitted, to: &st.pointee.issued)
        var wake = false
        if st.pointee.engineIdle && !st.pointee.issued.isEmpty && !st.pointee.paused && !st.pointee.terminating
            && !st.pointee.shutdown
        {
            st.pointee.engineIdle = false
            wake = true
        }
        lock.unlock()
        if wake { engineEvent.signal() }
    }

    /// Kernel: `dmaengine_tx_status` → `dma_cookie_status` + `vchan_find_desc` for residue.
    func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) {
        let w = watermarkSnapshot()
        if w.isComplete(cookie) {
            // COMPLETE is never overridden (S3 applies to IN_PROGRESS only), and residue is 0 (S4).
            let inFlight = queuedBytesMirror.pointee.load(ordering: .relaxed) + activeResidue.pointee.load(ordering: .relaxed)
            return (.complete, DMATxState(last: w.last, used: w.used, residue: 0, inFlightBytes: inFlight))
        }
        lock.lock()
        defer { lock.unlock() }
        let wl = st.pointee.watermark
        let active = st.pointee.active
        let activeLive = active >= 0 && !st.pointee.activeTerminated
        let activeBytes = activeLive ? activeResidue.pointee.load(ordering: .relaxed) : 0
        let inFlight = st.pointee.queuedBytes + activeBytes
        if wl.isComplete(cookie) {
            return (.complete, DMATxState(last: wl.last, used: wl.used, residue: 0, inFlightBytes: inFlight))
        }
        let status: DMAStatus = st.pointee.paused ? .paused : .inProgress
        var residue = 0
        if activeLive && slots[Int(active)].cookie == cookie {
            residue = activeBytes
        } else if let r = queuedLength(of: cookie) {
            residue = r
        }
        return (status, DMATxState(last: wl.last, used: wl.used, residue: residue, inFlightBytes: inFlight))
    }

    /// The length of a queued (submitted, issued or chained) cookie: its residue by rule S5. Lock held.
    private func queuedLength(of cookie: DMACookie) -> Int? {
        var i = st.pointee.issued.head
        while i >= 0 {
            if slots[Int(i)].cookie == cookie { return slots[Int(i)].length }
            i = slots[Int(i)].next
        }
        i = st.pointee.submitted.head
        while i >= 0 {
            if slots[Int(i)].cookie == cookie { return slots[Int(i)].length }
            i = slots[Int(i)].next
        }
        // The engine's chain: not started, or copied but not yet completed (see `takeChain`).
        i = st.pointee.chain.head
        while i >= 0 {
            if slots[Int(i)].cookie == cookie { return slots[Int(i)].length }
            i = slots[Int(i)].next
        }
        return nil
    }

    // MARK: Pause

    /// Kernel: `dmaengine_pause`. Returns once the engine has stopped moving data (P1).
    func pause() throws(DMAError) {
        lock.lock()
        if st.pointee.released {
            lock.unlock()
            throw .released
        }
        st.pointee.paused = true
        // Ordering: seq_cst; with the seq_cst store of `engineInChunk` and load of
        // `pauseFlag` in the engine's chunk gate (Dekker): either the engine sees the pause
        // before its next chunk, or we see it inside the chunk below and wait.
        pauseFlag.store(true, ordering: .sequentiallyConsistent)
        lock.unlock()
        var spins = 0
        // Ordering: seq_cst; pairs with the engine's chunk gate (see above). The engine's
        // release store of false at the end of a chunk orders that chunk's bytes before it.
        while engineInChunk.pointee.load(ordering: .sequentiallyConsistent) {
            spins &+= 1
            if spins < 1000 { cpuRelax() } else { sched_yield() }
        }
    }

    /// Kernel: `dmaengine_resume`.
    func resume() throws(DMAError) {
        lock.lock()
        if st.pointee.released {
            lock.unlock()
            throw .released
        }
        guard st.pointee.paused else {
            lock.unlock()
            throw .notPaused
        }
        st.pointee.paused = false
        // Ordering: relaxed is enough; the engine re-checks under the lock or after the event.
        pauseFlag.store(false, ordering: .sequentiallyConsistent)
        if st.pointee.engineIdle && !st.pointee.issued.isEmpty && !st.pointee.terminating {
            st.pointee.engineIdle = false
        }
        lock.unlock()
        // Wake the engine in any case: it may be waiting mid-transfer for the resume.
        engineEvent.signal()
    }

    // MARK: Termination

    /// Kernel: the driver's `terminate_all`: `vchan_terminate_vdesc(active)` +
    /// `vchan_get_all_descriptors`, with the watermark set to `used` (rule S6) and the
    /// pause cleared. Never waits.
    func terminateAsync() throws(DMAError) {
        lock.lock()
        if st.pointee.released {
            lock.unlock()
            throw .released
        }
        let wakeEngine = terminateLocked()
        lock.unlock()
        if wakeEngine { engineEvent.signal() }
    }

    /// The body of terminate. Lock held. Returns whether the engine must be woken (it was
    /// running or paused, and must notice the abort or the cleared pause).
    @discardableResult
    func terminateLocked() -> Bool {
        let s = st
        let wakeEngine = s.pointee.active >= 0 || s.pointee.paused
        // Callbacks of a batch the executor is running were dispatched before this terminate
        // and may still submit (T7): hold such work until synchronize, which drops it.
        if s.pointee.active >= 0 || !s.pointee.submitted.isEmpty || !s.pointee.issued.isEmpty
            || !s.pointee.completed.isEmpty || s.pointee.executorStarted != s.pointee.executorFinished
        {
            s.pointee.terminating = true
        }
        if s.pointee.active >= 0 && !s.pointee.activeTerminated {
            s.pointee.activeTerminated = true
            slots.append(s.pointee.active, to: &s.pointee.terminated)
            slots.splice(&s.pointee.chain, to: &s.pointee.terminated)
            if defect != .terminateKeepsCopyingActive {
                s.pointee.activeAbortRequested = true
                s.pointee.abortRequests &+= 1
                // Ordering: seq_cst; read by the engine's chunk gate. The engine acts on it
                // under the lock (`engineFinish`), which orders everything else.
                abortFlag.store(true, ordering: .sequentiallyConsistent)
            }
        }
        slots.splice(&s.pointee.submitted, to: &s.pointee.terminated)
        slots.splice(&s.pointee.issued, to: &s.pointee.terminated)
        if defect != .callbackAfterTerminate {
            // Completed but not yet dispatched: dropped without callback (virt-dma).
            slots.splice(&s.pointee.completed, to: &s.pointee.terminated)
        }
        s.pointee.cyclicPending = -1
        setQueuedBytes(0)
        s.pointee.watermark.last = s.pointee.watermark.used
        publishLast()
        if s.pointee.paused {
            s.pointee.paused = false
            pauseFlag.store(false, ordering: .sequentiallyConsistent)
        }
        return wakeEngine
    }

    /// Kernel: `vchan_synchronize` (`tasklet_kill`, then free `desc_terminated`).
    ///
    /// Waits until the executor has finished the batch it was running when called (a batch
    /// taken before the terminate holds the only pre-terminate descriptors that can still get
    /// a callback), and until the engine has dropped every active descriptor that a
    /// terminate aborted. Bounded even when callbacks keep submitting (T7, scenario 19):
    /// while the channel is `terminating` the engine starts nothing new, so no new batch can
    /// begin, and what was submitted meanwhile (by a callback, or by the client against T6)
    /// is dropped here as a terminate would drop it: no callback, cookies read COMPLETE.
    func synchronizeLocked() {
        let s = st
        if defect != .synchronizeDoesNotWait {
            let executorTarget = s.pointee.executorStarted
            let abortTarget = s.pointee.abortRequests
            while s.pointee.executorFinished < executorTarget || s.pointee.abortsHandled < abortTarget {
                // Ordering: acquire; pairs with the release add in `wakeSynchronizers()`.
                let seq = syncWord.pointee.load(ordering: .acquiring)
                s.pointee.syncWaiters += 1
                lock.unlock()
                waitForSync(seq)
                lock.lock()
                s.pointee.syncWaiters -= 1
            }
        }
        if s.pointee.terminating {
            s.pointee.terminating = false
            slots.splice(&s.pointee.submitted, to: &s.pointee.terminated)
            slots.splice(&s.pointee.issued, to: &s.pointee.terminated)
            setQueuedBytes(0)
            s.pointee.watermark.last = s.pointee.watermark.used
            publishLast()
        }
        retireTerminated()
    }

    private func waitForSync(_ seq: UInt32) {
        let start = MonotonicClock.now()
        let spin = UInt64(max(0, min(options.spinNanoseconds, 20_000)))
        // Ordering: acquire; pairs with the release add in `wakeSynchronizers()`.
        while syncWord.pointee.load(ordering: .acquiring) == seq {
            if MonotonicClock.now() &- start > spin {
                // Bounded sleep: the condition is re-checked under the lock in any case.
                Futex.wait(
                    UnsafeMutableRawPointer(syncWordStorage).assumingMemoryBound(to: UInt32.self), expected: seq,
                    timeoutNanoseconds: 10_000_000)
                return
            }
            cpuRelax()
        }
    }

    /// Retires `desc_terminated`, except the descriptor the engine still holds. Lock held.
    func retireTerminated() {
        let s = st
        var list = s.pointee.terminated
        s.pointee.terminated = SlotList()
        let wakeExecutor = defect == .callbackAfterTerminate && s.pointee.executorIdle
        var queuedCallbacks = false
        while list.count > 0 {
            let i = slots.popFirst(&list)
            // Still held by the engine (the active descriptor or its chain): retired by
            // the next synchronize, once the engine has dropped it.
            if s.pointee.activeTerminated && slots[Int(i)].state == .active {
                slots.append(i, to: &s.pointee.terminated)
            } else if defect == .callbackAfterTerminate && (slots + Int(i)).needsCallback {
                slots[Int(i)].state = .completed
                slots[Int(i)].result = .noError
                slots.append(i, to: &s.pointee.completed)
                queuedCallbacks = true
                s.pointee.lateCallbacksNotBefore = MonotonicClock.now() &+ 20_000_000
            } else {
                retire(i)
            }
        }
        if queuedCallbacks && wakeExecutor {
            s.pointee.executorIdle = false
            executorEvent.signal()
        }
        if queuedCallbacks && engineRunsCallbacks && s.pointee.engineIdle {
            // `.engineThread`: the engine is the executor.
            s.pointee.engineIdle = false
            engineEvent.signal()
        }
    }

    func synchronize() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        lock.lock()
        defer { lock.unlock() }
        if st.pointee.released { throw .released }
        synchronizeLocked()
    }

    func terminateSync() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        lock.lock()
        defer { lock.unlock() }
        if st.pointee.released { throw .released }
        if terminateLocked() { engineEvent.signal() }
        synchronizeLocked()
    }

    /// Kernel: `dma_release_channel` → `device_free_chan_resources` → `vchan_free_chan_resources`,
    /// preceded by terminate_sync semantics (docs/contract.md A.2 [T]).
    func release() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        lock.lock()
        if st.pointee.released {
            lock.unlock()
            throw .released
        }
        markReleased()
        if terminateLocked() { engineEvent.signal() }
        synchronizeLocked()
        lock.unlock()
        shutdownThreads(join: true)
        // Magazine, then channel lock (the order `prepare` takes them in): a prep that got
        // the magazine first has finished, and a later one sees `releasedFlag`.
        magazine.lock()
        lock.lock()
        freeAll()
        lock.unlock()
        magazine.unlock()
    }

    /// Stops and (optionally) joins both threads.
    func shutdownThreads(join: Bool) {
        lock.lock()
        st.pointee.shutdown = true
        markReleased()
        // Ordering: release; pairs with the acquire loads in the engine's waits (the
        // engine re-checks `shutdown` under the lock before it takes new work).
        shutdownFlag.store(true, ordering: .releasing)
        lock.unlock()
        engineEvent.signal()
        executorEvent.signal()
        if join {
            engineThread?.join()
            executorThread?.join()
        }
    }

    /// Sets `released` (and its mirror for `prepare`). Lock held.
    @inline(__always)
    func markReleased() {
        st.pointee.released = true
        // Ordering: relaxed; see `prepare`.
        releasedFlag.store(true, ordering: .relaxed)
    }

    /// Frees every descriptor, REUSE ones included. Channel and magazine locks held; threads joined.
    func freeAll() {
        let s = st
        for i in 0..<poolSize where slots[i].state != .free {
            slots[i].reuse = false
            freeSlot(Int32(i))
        }
        // Rebuild the free stack in index order.
        resetFreeStack()
        // Every slot is on the free stack again (the magazine's too). Magazine lock held.
        magazine.count.pointee = 0
        s.pointee.submitted = SlotList()
        s.pointee.issued = SlotList()
        s.pointee.completed = SlotList()
        s.pointee.terminated = SlotList()
        s.pointee.chain = SlotList()
        s.pointee.active = -1
        s.pointee.activeTerminated = false
        s.pointee.cyclicPending = -1
        s.pointee.probe = nil
    }

    /// Called from the channel's `deinit` when the client never released it.
    func shutdownFromDeinit() {
        lock.lock()
        let done = st.pointee.shutdown
        if !done {
            markReleased()
            terminateLocked()
        }
        lock.unlock()
        if done { return }
        // Joining from one of our own threads (the last reference dropped in a callback)
        // would wait for itself; those threads exit on their own once they see `shutdown`.
        let me = CPU.currentThreadID
        let own = me == engineThreadID.load(ordering: .relaxed) || me == executorThreadID.load(ordering: .relaxed)
        shutdownThreads(join: !own)
    }

    var isReleased: Bool {
        lock.lock()
        defer { lock.unlock() }
        return st.pointee.released
    }

    // MARK: Test hooks

    func seedCookie(used: DMACookie, last: DMACookie) throws(DMAError) {
        guard used.isValid && last.isValid else {
            throw .invalidArgument("cookies must be ≥ 1; got used \(used), last \(last)")
        }
        lock.lock()
        defer { lock.unlock() }
        if st.pointee.released { throw .released }
        guard st.pointee.active < 0, st.pointee.submitted.isEmpty, st.pointee.issued.isEmpty,
            st.pointee.completed.isEmpty
        else { throw .busy }
        st.pointee.watermark = DMACookieWatermark(used: used, last: last)
        publishUsed()
        publishLast()
    }

    func failNextSubmits(_ count: Int) {
        lock.lock()
        st.pointee.failNextSubmits = max(0, count)
        lock.unlock()
    }

    func releaseStalls() {
        // Ordering: release; pairs with the acquire load in the engine's stall wait.
        stallGeneration.add(1, ordering: .releasing)
        engineEvent.signal()
    }

    func setAccessProbe(_ probe: DMAAccessProbe?) {
        lock.lock()
        st.pointee.probe = probe
        // Ordering: relaxed; the engine re-reads the probe under the lock when it sees a change.
        probeGeneration.add(1, ordering: .relaxed)
        lock.unlock()
    }

    func configure(_ config: DMAConfig) throws(DMAError) {
        guard config.burstBytes >= 0 else {
            throw .invalidArgument("burstBytes \(config.burstBytes) is negative; valid: 0 (whole transfer) or more")
        }
        lock.lock()
        defer { lock.unlock() }
        if st.pointee.released { throw .released }
        st.pointee.config = config
        // Ordering: relaxed; see `prepare`.
        magazine.burstBytes.pointee.store(config.burstBytes, ordering: .relaxed)
    }
}

extension Slot {
    /// Drops references a free slot must not keep.
    @inline(__always)
    mutating func probeless() {
        destination = nil
        source = nil
    }
}
