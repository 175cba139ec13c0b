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
    /// Incremented by every `resume()` (a paced stream's schedule restarts).
    let resumeGeneration = Atomic<UInt64>(0)
    /// Incremented by `debugReleaseStalls()`.
    let stallGeneration = Atomic<UInt64>(0)
    /// Incremented when the access probe changes, so the engine re-reads it.
    let probeGeneration = Atomic<UInt64>(0)

    /// The most segments per list of `prepareMemcpySG`.
    static let maxSegments = 16
    static let pieceCapacity = DMASGPlan.pieceCapacity(maxSegments: maxSegments)
    /// Each slot's scatter-gather pieces (`pieceCapacity` per slot), preallocated so that
    /// prep allocates nothing; written by prep, read by the engine while the slot is active.
    let pieces: UnsafeMutablePointer<DMASGPiece>
    /// Stamped by the engine at each period end of a cyclic transfer.
    let periodClock = DMAPeriodClock()

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
        self.engineRunsCallbacks = options.callbackContext != .executorThread  // `.clientPoll` too: locked has no client poll
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
        pieces = .allocate(capacity: poolSize * Self.pieceCapacity)
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
        pieces.deallocate()
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

    // MARK: Helpers (under the channel lock: a `Held`)

    /// Runs `body` under the channel lock, or throws `.released` once the channel is released.
    @inline(__always)
    func withLiveLock<R>(_ body: (borrowing Held) throws(DMAError) -> R) throws(DMAError) -> R {
        try lock.withLock { (held: borrowing Held) throws(DMAError) -> R in
            if st.pointee.released { throw .released }
            return try body(held)
        }
    }

    /// Publishes `st.watermark.used` for the lock-free status path (submit).
    @inline(__always)
    func publishUsed(_: borrowing Held) {
        // Ordering: release; pairs with the acquire loads in `watermarkSnapshot()`.
        usedMirror.pointee.store(UInt32(bitPattern: st.pointee.watermark.used.rawValue), ordering: .releasing)
    }

    /// Publishes `st.watermark.last` (completion, terminate).
    @inline(__always)
    func publishLast(_: borrowing Held) {
        // Ordering: release; pairs with the acquire load in `watermarkSnapshot()`, so a reader
        // that sees a cookie COMPLETE also sees the list changes made before it under the lock.
        lastMirror.pointee.store(UInt32(bitPattern: st.pointee.watermark.last.rawValue), ordering: .releasing)
    }

    /// One consistent (used, last) pair without the lock (rule S1; see
    /// `DMACookieWatermark.loadSplit`, whose acquire load of `last` pairs with the release
    /// store in `publishLast(_:)`).
    @inline(__always)
    func watermarkSnapshot() -> DMACookieWatermark {
        let (u, l) = DMACookieWatermark.loadSplit(used: usedMirror, last: lastMirror)
        return DMACookieWatermark(used: DMACookie(Int32(bitPattern: u)), last: DMACookie(Int32(bitPattern: l)))
    }

    /// `mirror`: also store the lock-free copy (the engine's take and terminate;
    /// submit leaves it, so that submitters never write the engine's line).
    @inline(__always)
    func setQueuedBytes(_ v: Int, mirror: Bool = true, _: borrowing Held) {
        st.pointee.queuedBytes = v
        if mirror { queuedBytesMirror.pointee.store(v, ordering: .relaxed) }
    }

    /// Validates a handle.
    @inline(__always)
    func check(_ d: DMADescriptor, _: borrowing Held) throws(DMAError) -> Int32 {
        if st.pointee.released { throw .released }
        let i = Int(d.index)
        guard i < poolSize, slots[i].generation == d.generation, slots[i].state != .free else {
            throw .invalidHandle
        }
        return Int32(i)
    }

    /// Returns a slot to the free stack and makes every handle to it stale.
    /// The callback (and anything it captures) is released here, as `desc_free` would.
    @inline(__always)
    func freeSlot(_ i: Int32, _: borrowing Held) {
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

    /// Every slot on the free stack again.
    func resetFreeStack(_: borrowing Held) {
        st.pointee.freeCount = Self.fillFreeStack(freeStack, poolSize: poolSize)
    }

    /// Puts every slot index on `stack`, 0 on top, so that the first preps use the lowest
    /// slots. Returns the count.
    static func fillFreeStack(_ stack: UnsafeMutablePointer<Int32>, poolSize: Int) -> Int {
        for k in 0..<poolSize { stack[k] = Int32(poolSize - 1 - k) }
        return poolSize
    }

    /// Retirement (kernel: `vchan_vdesc_fini`): REUSE → back to prepared, else free.
    @inline(__always)
    func retire(_ i: Int32, _ held: borrowing Held) {
        if slots[Int(i)].reuse {
            slots[Int(i)].state = .prepared
            slots[Int(i)].result = DMAResult(.noError)
            slots[Int(i)].prev = -1
            slots[Int(i)].next = -1
        } else {
            freeSlot(i, held)
        }
    }

    /// Wakes threads blocked in synchronize. Lock not held.
    func wakeSynchronizers() {
        // Ordering: release; pairs with the acquire load of the sync word in `waitForSync`,
        // which re-checks its condition under the lock afterwards anyway.
        syncWord.pointee.add(1, ordering: .releasing)
        Futex.wake(UnsafeMutableRawPointer(syncWordStorage).assumingMemoryBound(to: UInt32.self))
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
