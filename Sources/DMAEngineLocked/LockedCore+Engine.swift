// dmabench — DMAEngineLocked
//
// The engine thread (the "hardware"): it takes issued descriptors under the lock, copies
// them chunk by chunk without it, through a chunk gate that sees pause and terminate, and
// completes them under the lock. It spins for `options.spinNanoseconds` before it parks,
// because a futex wake costs far more than a hand-off through a cache line
// (docs/measurement-notes.md, "LockedCore engine and executor: spin before parking").
// Under `DMACallbackContext.engineThread` there is no executor thread: the engine runs
// `dispatchCompletions` (the tasklet body, LockedCore+Executor.swift) itself after a run of
// completions and before it waits, between two periods of a cyclic transfer, and while it
// waits for a resume.

import DMAEngine
import Glibc
import Platform
import Synchronization

/// What the engine copies for one descriptor, read from the slot under the lock when the
/// descriptor becomes active. The engine never reads the slot again while it runs, so a
/// retired slot can be reused at once.
struct Transfer {
    var index: Int32
    var kind: TransferKind
    var cookie: DMACookie
    var destination: UnsafeMutableRawPointer
    var source: UnsafeRawPointer?
    var length: Int
    var periodLength: Int
    var value: UInt8
    var chunk: Int
    var injection: DMAInjection
    var stallSeen: UInt64
    var needsCallback: Bool
    /// `.memcpySG`: the number of pieces in the slot's piece table.
    var pieceCount: Int
    /// Cyclic: `DMAConfig.paceBytesPerSecond` at prep (0 = memory speed).
    var pace: Int
}

enum Outcome {
    case done(DMAResult)
    case aborted
}

enum Gate {
    case go, abort, paused
}

/// Tuning constants of the locked backend.
enum LockedTuning {
    /// Transfers up to this size count as quick for completion coalescing.
    static let quickBytes = 4096
    /// The engine wakes the executor once this many completions wait, even if the next
    /// transfer is quick.
    static let coalesceCompletions = 32
    /// The longest stretch an idle engine or executor spins before it yields the CPU.
    static let spinSliceNanoseconds: Int64 = 5_000
    /// At most this many quick descriptors follow the active one in the engine's chain
    /// (`LockedCore.takeChain`), and at most this many bytes in all.
    static let chainDescriptors = 7
    static let chainBytes = 32 * 1024
}

/// Wake-ups decided under the lock and carried out after it is dropped.
struct PendingWakes {
    var executor = false
    var synchronizers = false
}

extension LockedCore {
    // MARK: Engine

    func engineMain() {
        // Test-only: chained descriptors skip the chunk gate (`LockedDefect.chainIgnoresPause`).
        let chainSkipsGate = defect == .chainIgnoresPause
        var probe: DMAAccessProbe? = nil
        var probeGen: UInt64 = .max
        var wakes = PendingWakes()
        let s = st
        lock.withLock { held in
            while true {
                if engineRunsCallbacks && (!s.pointee.completed.isEmpty || s.pointee.cyclicPending >= 0) {
                    // `.engineThread`: the engine is its own tasklet. It runs the callbacks after
                    // a run of quick completions (the same coalescing as below), and always
                    // before it waits, so a lone completion is dispatched at once.
                    let next = s.pointee.issued.head
                    let defer_ = !s.pointee.shutdown && next >= 0 && !s.pointee.paused && !s.pointee.terminating
                        && (slots + Int(next)).isQuick && s.pointee.completed.count < LockedTuning.coalesceCompletions
                    if !defer_ && dispatchCompletions(&wakes, held) { continue }
                }
                if s.pointee.shutdown { break }
                // Completion coalescing (interrupt moderation): wake an idle executor unless the
                // next transfer is quick and few completions wait. Waking it for every 64-byte
                // completion costs a futex wake and a context switch per descriptor when the
                // executor has parked; the engine instead wakes it once per run of quick
                // transfers, and at once when it goes idle, so depth-1 latency is unchanged.
                if s.pointee.executorIdle && !s.pointee.completed.isEmpty {
                    let next = s.pointee.issued.head
                    let defer_ = next >= 0 && !s.pointee.paused && !s.pointee.terminating && (slots + Int(next)).isQuick
                        && s.pointee.completed.count < LockedTuning.coalesceCompletions
                    if !defer_ {
                        s.pointee.executorIdle = false
                        wakes.executor = true
                    }
                }
                if s.pointee.paused || s.pointee.terminating || s.pointee.issued.isEmpty {
                    s.pointee.engineIdle = true
                    held.whileUnlocked {
                        flush(&wakes)
                        idleWait(engineEvent)
                    }
                    s.pointee.engineIdle = false
                    continue
                }
                // Kernel: `vchan_next_desc` + `list_del`: the active descriptor is on no list.
                let i = slots.popFirst(&s.pointee.issued)
                let slot = slots + Int(i)
                slot.pointee.state = .active
                s.pointee.active = i
                setQueuedBytes(s.pointee.queuedBytes - slot.pointee.length, held)
                let t = transfer(i)
                activeResidue.pointee.store(t.length, ordering: .relaxed)
                // A plain transfer (not cyclic, nothing injected, so nothing can make it wait
                // before its bytes move) enters its first chunk here, under the lock. Ordering:
                // relaxed; `pause()` sets `pauseFlag` under this lock and reads `engineInChunk`
                // after it, so either it sees true and waits for the chunk, or the engine, which
                // checked `paused` above under the lock, never started. This replaces the gate's
                // store-load fence (seq_cst store, then load) for the first chunk.
                let entered = t.kind.rawValue < 3 && !slot.pointee.injected
                if entered { engineInChunk.pointee.store(true, ordering: .relaxed) }
                let chained = entered && slot.isQuick ? takeChain(held) : 0
                // The next issued slot was written by the client (prep, submit): fetch it while
                // this transfer copies, so that taking it under the lock does not stall there.
                let next = s.pointee.issued.head
                if next >= 0 { prefetchForWrite(slots + Int(next), count: MemoryLayout<Slot>.size) }
                // Ordering: relaxed; the probe itself is read under the lock.
                let g = probeGeneration.load(ordering: .relaxed)
                if g != probeGen {
                    probeGen = g
                    probe = s.pointee.probe
                }
                let (outcome, ran) = held.whileUnlocked { () -> (Outcome, Int) in
                    flush(&wakes)
                    let outcome = t.kind == .cyclic
                        ? runCyclic(t, &probe, &probeGen, &wakes) : run(t, &probe, &probeGen, entered: entered)
                    // The chain, in order, each descriptor through the chunk gate; an abort (terminate
                    // or shutdown) stops it, and a pause holds it between two descriptors (P1).
                    var ran = 0
                    if case .done = outcome {
                        while ran < chained,
                            case .done = run(chain[ran], &probe, &probeGen, entered: chainSkipsGate)
                        {
                            ran += 1
                        }
                    }
                    prefetchSlots(after: chained > 0 ? chain[chained - 1].cookie : t.cookie)
                    return (outcome, ran)
                }
                finish(t, outcome, chained: chained, ran: ran, &wakes, held)
            }
        }
        flush(&wakes)
    }

    /// Starts fetching the slots of the cookies after `cookie` (the next chain, when the
    /// client submitted them), before the engine takes the lock to walk the issued list.
    @inline(__always)
    func prefetchSlots(after cookie: DMACookie) {
        let c = Int(cookie.rawValue)
        for k in 1...LockedTuning.chainDescriptors + 1 {
            // Ordering: relaxed; a hint (see `cookieSlots`).
            let i = Int(cookieSlots[(c &+ k) & cookieSlotsMask].load(ordering: .relaxed))
            if i >= 0 && i < poolSize { prefetchForWrite(slots + i, count: Slot.stride) }
        }
    }

    /// What the engine needs of slot `i` to run it (read under the lock when it takes it).
    @inline(__always)
    func transfer(_ i: Int32) -> Transfer {
        let slot = slots + Int(i)
        let inj = slot.pointee.injection
        var chunk = inj.chunkBytes > 0 ? inj.chunkBytes : slot.pointee.burstBytes
        let span = slot.pointee.kind == .cyclic ? slot.pointee.periodLength : slot.pointee.length
        if chunk <= 0 || chunk > span { chunk = span }
        return Transfer(
            index: i, kind: slot.pointee.kind, cookie: slot.pointee.cookie,
            destination: slot.pointee.destination!, source: slot.pointee.source,
            length: slot.pointee.length, periodLength: slot.pointee.periodLength, value: slot.pointee.value,
            chunk: max(1, chunk), injection: inj, stallSeen: slot.pointee.stallSeen, needsCallback: slot.needsCallback,
            pieceCount: slot.pointee.pieceCount, pace: slot.pointee.pace)
    }

    /// Takes the quick single-chunk descriptors that follow the active one on the issued
    /// list onto `LockedState.chain`, up to `LockedTuning.chainDescriptors` and
    /// `LockedTuning.chainBytes`, and copies what the engine needs of them into `chain`.
    /// Lock held; the caller checked that the channel is neither paused nor terminating.
    ///
    /// Hardware analogue: a driver that writes a run of issued descriptors into the
    /// controller's linked-list (LLI) chain and takes one interrupt at its end. The engine
    /// then takes the lock once per chain instead of once per descriptor, because that lock
    /// was where it spent its time (docs/measurement-notes.md, "LockedCore.takeChain: one
    /// lock hold per chain").
    /// The chain completes as a whole, under one lock hold, in cookie order. Until then its
    /// cookies read IN_PROGRESS with their full length as residue; a terminate aborts all of
    /// it, as it aborts the active descriptor.
    @inline(__always)
    func takeChain(_: borrowing Held) -> Int {
        let s = st
        var n = 0
        var bytes = slots[Int(s.pointee.active)].length
        while n < LockedTuning.chainDescriptors {
            let j = s.pointee.issued.head
            if j < 0 { break }
            let sj = slots + Int(j)
            let len = sj.pointee.length
            let burst = sj.pointee.burstBytes
            // One chunk each: `activeResidue` describes the active descriptor only.
            guard sj.isQuick, burst <= 0 || burst >= len, bytes + len <= LockedTuning.chainBytes else { break }
            bytes += len
            _ = slots.popFirst(&s.pointee.issued)
            sj.pointee.state = .active
            slots.append(j, to: &s.pointee.chain)
            chain[n] = transfer(j)
            n += 1
        }
        return n
    }

    /// Waits for `event` when idle: spin for `options.spinNanoseconds` in slices of at most
    /// `LockedTuning.spinSliceNanoseconds`, yielding the CPU between slices, then park.
    /// A hand-off that arrives within the first slice costs no syscall; the yields keep a spinning engine or executor from starving the
    /// thread it waits for when the machine has more runnable threads than CPUs.
    func idleWait(_ event: ParkingEvent) {
        let spin = options.spinNanoseconds
        if spin > 0 {
            let start = MonotonicClock.now()
            while true {
                if event.wait(spinNanoseconds: min(spin, LockedTuning.spinSliceNanoseconds), timeoutNanoseconds: 0) {
                    return
                }
                if Int64(MonotonicClock.now() &- start) >= spin { break }
                sched_yield()
            }
        }
        event.wait(spinNanoseconds: 0)
    }

    @inline(__always)
    func flush(_ wakes: inout PendingWakes) {
        if wakes.executor { executorEvent.signal() }
        if wakes.synchronizers { wakeSynchronizers() }
        wakes = PendingWakes()
    }

    /// Ends the active descriptor and its chain (`chained` descriptors, of which the first
    /// `ran` were copied). Kernel: `vchan_cookie_complete` (or, for a terminated
    /// one, the driver noticing the abort and dropping it).
    @inline(__always)
    func finish(
        _ t: Transfer, _ outcome: Outcome, chained: Int = 0, ran: Int = 0, _ wakes: inout PendingWakes, _ held: borrowing Held
    ) {
        let s = st
        // P1: no completion while paused.
        while s.pointee.paused && !s.pointee.activeTerminated && !s.pointee.shutdown {
            held.whileUnlocked {
                flush(&wakes)
                _ = waitWhilePaused()
            }
        }
        s.pointee.active = -1
        if s.pointee.activeTerminated {
            // The terminate moved the active descriptor and the chain to the terminated
            // list; the next synchronize retires them.
            s.pointee.activeTerminated = false
            slots[Int(t.index)].state = .terminated
            for k in 0..<chained { slots[Int(chain[k].index)].state = .terminated }
            if s.pointee.activeAbortRequested {
                s.pointee.activeAbortRequested = false
                s.pointee.abortsHandled &+= 1
                if s.pointee.syncWaiters > 0 { wakes.synchronizers = true }
            }
            // Ordering: relaxed; set and cleared under the lock, and no descriptor is active.
            abortFlag.store(false, ordering: .relaxed)
            activeResidue.pointee.store(0, ordering: .relaxed)
            return
        }
        activeResidue.pointee.store(0, ordering: .relaxed)
        let result: DMAResult
        switch outcome {
        case .done(let r): result = r
        case .aborted: result = DMAResult(.aborted, residue: t.length)  // shutdown only
        }
        complete(t, result, held)
        for k in 0..<chained {
            let c = chain[k]
            _ = slots.popFirst(&s.pointee.chain)
            setQueuedBytes(s.pointee.queuedBytes - c.length, held)
            // Not run: only a shutdown stops a chain that no terminate dropped.
            complete(c, k < ran ? DMAResult(.noError) : DMAResult(.aborted, residue: c.length), held)
        }
        publishLast(held)
    }

    /// Completes one descriptor the engine held (the caller publishes `last`).
    @inline(__always)
    func complete(_ t: Transfer, _ result: DMAResult, _ held: borrowing Held) {
        // Kernel: `dma_cookie_complete`. In-order engine: `last` only moves forward (C6).
        st.pointee.watermark.last = t.cookie
        let slot = slots + Int(t.index)
        slot.pointee.result = result
        if t.needsCallback {
            slot.pointee.state = .completed
            // The executor is woken at the top of the engine loop (completion coalescing).
            slots.append(t.index, to: &st.pointee.completed)
        } else {
            // Polled use (K6): no callback, so retire at once.
            retire(t.index, held)
        }
    }

    /// The chunk gate (Dekker with `pause()`): announce the chunk, then look for an abort or
    /// a pause. Lock not held.
    @inline(__always)
    func gate() -> Gate {
        // Ordering: seq_cst; pairs with the seq_cst store of `pauseFlag` and load of
        // `engineInChunk` in `pause()`.
        engineInChunk.pointee.store(true, ordering: .sequentiallyConsistent)
        // Ordering: seq_cst; pairs with the seq_cst store in `terminateLocked()`.
        if abortFlag.load(ordering: .sequentiallyConsistent) || shutdownFlag.load(ordering: .relaxed) {
            endChunk()
            return .abort
        }
        // Ordering: seq_cst; see above.
        if pauseFlag.load(ordering: .sequentiallyConsistent) {
            endChunk()
            return .paused
        }
        return .go
    }

    /// The chunk gate of `LockedDefect.periodAfterPause`: it sees an abort but not a pause.
    func gateIgnoringPause() -> Bool {
        // Ordering: seq_cst; as in `gate()`.
        engineInChunk.pointee.store(true, ordering: .sequentiallyConsistent)
        // Ordering: seq_cst; pairs with the seq_cst store in `terminateLocked()`.
        if abortFlag.load(ordering: .sequentiallyConsistent) || shutdownFlag.load(ordering: .relaxed) {
            endChunk()
            return false
        }
        return true
    }

    @inline(__always)
    func endChunk() {
        // Ordering: release; pairs with the seq_cst (acquire) load in `pause()`, which
        // returns only after it reads false: the chunk's bytes are written before it. No
        // store-load fence is needed here (it was an `xchg` per chunk, which also waited
        // for the whole copy to leave the store buffer): the Dekker pair is the gate's store
        // of true and its load of `pauseFlag`.
        engineInChunk.pointee.store(false, ordering: .releasing)
    }

    /// Waits while paused; false when an abort (or shutdown) came instead. Lock not held.
    func waitWhilePaused() -> Bool {
        // Completions deferred by coalescing must not wait for the resume.
        var wakes = PendingWakes()
        lock.withLock { held in
            if engineRunsCallbacks {
                // The engine is the tasklet: run what completed before the pause (callbacks
                // may run while paused; only new completions wait, P1).
                while dispatchCompletions(&wakes, held) {}
            } else if st.pointee.executorIdle && !st.pointee.completed.isEmpty {
                st.pointee.executorIdle = false
                wakes.executor = true
            }
        }
        flush(&wakes)
        // Ordering: acquire; pairs with the seq_cst stores in `resume()`/`terminateLocked()`.
        while pauseFlag.load(ordering: .acquiring) {
            if abortFlag.load(ordering: .acquiring) || shutdownFlag.load(ordering: .acquiring) { return false }
            engineEvent.wait(spinNanoseconds: options.spinNanoseconds, timeoutNanoseconds: 10_000_000)
        }
        return !(abortFlag.load(ordering: .acquiring) || shutdownFlag.load(ordering: .acquiring))
    }

    /// An interruptible per-chunk delay (DMAInjection): terminate, pause and shutdown cut it
    /// short. Lock not held.
    func injectedDelay(_ ns: Int64) { _ = waitUntil(MonotonicClock.now() &+ UInt64(ns)) }

    /// Sleeps until `deadline` (monotonic ns) on the engine's futex, which terminate, pause,
    /// resume and shutdown signal, so they cut the wait short: a paced stream at audio rate
    /// sleeps between bursts instead of spinning. Lock not held.
    /// Returns false when a resume came while it slept (`resumes` is the generation seen).
    @discardableResult
    func waitUntil(_ deadline: UInt64, resumes: UInt64? = nil) -> Bool {
        while true {
            let now = MonotonicClock.now()
            if now >= deadline { return true }
            if abortFlag.load(ordering: .relaxed) || pauseFlag.load(ordering: .relaxed)
                || shutdownFlag.load(ordering: .relaxed)
            {
                return true
            }
            // Ordering: acquire; pairs with the release add in `resume()`.
            if let r = resumes, resumeGeneration.load(ordering: .acquiring) != r { return false }
            engineEvent.wait(spinNanoseconds: 0, timeoutNanoseconds: Int64(deadline - now))
        }
    }

    /// Waits until `debugReleaseStalls()`, a terminate or shutdown. False when aborted.
    func stall(seen: UInt64) -> Bool {
        // Ordering: acquire; pairs with the release add in `releaseStalls()`.
        while stallGeneration.load(ordering: .acquiring) == seen {
            if abortFlag.load(ordering: .relaxed) || shutdownFlag.load(ordering: .relaxed) { return false }
            engineEvent.wait(spinNanoseconds: 0, timeoutNanoseconds: 5_000_000)
        }
        return true
    }

    @inline(__always)
    func refreshProbe(_ probe: inout DMAAccessProbe?, _ probeGen: inout UInt64) {
        // Ordering: relaxed; the probe itself is read under the lock.
        let g = probeGeneration.load(ordering: .relaxed)
        if g != probeGen {
            lock.withLock { _ in
                probeGen = probeGeneration.load(ordering: .relaxed)
                probe = st.pointee.probe
            }
        }
    }

    /// Runs a memcpy or memset descriptor chunk by chunk. Lock not held.
    /// `entered`: the engine entered the first chunk under the lock (see `engineMain`).
    func run(_ t: Transfer, _ probe: inout DMAAccessProbe?, _ probeGen: inout UInt64, entered: Bool = false) -> Outcome {
        if t.kind == .memcpySG { return runSG(t, &probe, &probeGen, entered: entered) }
        if t.injection.stall && !stall(seen: t.stallSeen) { return .aborted }
        let len = t.length
        var off = 0
        var firstEntered = entered
        // Read once per transfer, not per chunk (a test-only defect; nil in every real channel).
        let lateResidue = defect == .residueAfterChunkEnd
        while off < len {
            let n = min(t.chunk, len - off)
            if t.injection.delayPerChunkNanoseconds > 0 { injectedDelay(t.injection.delayPerChunkNanoseconds) }
            if firstEntered {
                firstEntered = false
                // Ordering: relaxed; an abort that this load misses came after the transfer
                // started, like one that arrives mid-chunk (the engine finishes the chunk and
                // `synchronize` waits for it under the lock).
                if abortFlag.load(ordering: .relaxed) || shutdownFlag.load(ordering: .relaxed) {
                    endChunk()
                    return .aborted
                }
            } else {
                switch gate() {
                case .go: break
                case .abort: return .aborted
                case .paused:
                    if !waitWhilePaused() { return .aborted }
                    continue
                }
            }
            refreshProbe(&probe, &probeGen)
            if let probe {
                if t.kind == .memcpy {
                    probe(DMAAccess(cookie: t.cookie, kind: .read, address: UInt(bitPattern: t.source! + off), count: n))
                }
                if t.injection.fault != .read {
                    probe(DMAAccess(cookie: t.cookie, kind: .write, address: UInt(bitPattern: t.destination + off), count: n))
                }
            }
            if let fault = t.injection.fault {
                endChunk()
                return .done(DMAResult(fault == .read ? .readFailed : .writeFailed, residue: len - off))
            }
            if t.kind == .memcpy {
                memcpy(t.destination + off, t.source! + off, n)
            } else {
                memset(t.destination + off, Int32(t.value), n)
            }
            off += n
            // P1: the chunk's residue is published before the chunk ends, because `pause()`
            // returns as soon as it sees the end, and from then on the residue is frozen.
            // It stays > 0 while the cookie is IN_PROGRESS (S5); the completion under the
            // lock makes it COMPLETE.
            if lateResidue {
                endChunk()
                if off < len { activeResidue.pointee.store(len - off, ordering: .relaxed) }
                continue
            }
            if off < len { activeResidue.pointee.store(len - off, ordering: .relaxed) }
            endChunk()
        }
        return .done(DMAResult(.noError))
    }

    /// Runs a scatter-gather copy: the slot's pieces in order, each chunk by chunk through the
    /// gate, so pause, terminate, the access probe and the residue (across all segments, S5)
    /// work per segment as for a flat copy. Lock not held.
    /// `entered`: the engine entered the first chunk under the lock (see `engineMain`).
    @inline(never)
    func runSG(_ t: Transfer, _ probe: inout DMAAccessProbe?, _ probeGen: inout UInt64, entered: Bool) -> Outcome {
        if t.injection.stall && !stall(seen: t.stallSeen) { return .aborted }
        let p = pieces + Int(t.index) * Self.pieceCapacity
        // Test-only: the walk stops before the last piece (`LockedDefect.sgSkipsLastSegment`).
        let count = defect == .sgSkipsLastSegment ? t.pieceCount - 1 : t.pieceCount
        if entered && t.chunk >= t.length && t.injection == DMAInjection() {
            refreshProbe(&probe, &probeGen)
            if probe == nil {
                // One burst, as a flat copy of the same length is one chunk: the engine
                // entered it under the lock, so the pieces go back to back. (Through the gate
                // per piece, locked ran 1:1 scatter-gather at 0.58x of a flat copy.)
                // Ordering: relaxed; as in `run`.
                if abortFlag.load(ordering: .relaxed) || shutdownFlag.load(ordering: .relaxed) {
                    endChunk()
                    return .aborted
                }
                for k in 0..<count { memcpy(p[k].destination, p[k].source, p[k].length) }
                endChunk()
                return .done(DMAResult(.noError))
            }
        }
        if entered { endChunk() }  // the per-chunk walk below passes the gate for every chunk
        var done = 0
        var k = 0
        while k < count {
            let piece = p[k]
            var off = 0
            while off < piece.length {
                let n = min(t.chunk, piece.length - off)
                if t.injection.delayPerChunkNanoseconds > 0 { injectedDelay(t.injection.delayPerChunkNanoseconds) }
                switch gate() {
                case .go: break
                case .abort: return .aborted
                case .paused:
                    if !waitWhilePaused() { return .aborted }
                    continue
                }
                refreshProbe(&probe, &probeGen)
                if let probe {
                    probe(DMAAccess(cookie: t.cookie, kind: .read, address: UInt(bitPattern: piece.source + off), count: n))
                    if t.injection.fault != .read {
                        probe(DMAAccess(cookie: t.cookie, kind: .write, address: UInt(bitPattern: piece.destination + off), count: n))
                    }
                }
                if let fault = t.injection.fault {
                    endChunk()
                    return .done(DMAResult(fault == .read ? .readFailed : .writeFailed, residue: t.length - done))
                }
                memcpy(piece.destination + off, piece.source + off, n)
                off += n
                done += n
                // Residue before the end of the chunk, as in `run` (P1, S5).
                if done < t.length { activeResidue.pointee.store(t.length - done, ordering: .relaxed) }
                endChunk()
            }
            k += 1
        }
        return .done(DMAResult(.noError))
    }

    /// Runs a cyclic descriptor until it is aborted. Kernel: the driver's period interrupt
    /// calling `vchan_cyclic_callback` (periods coalesce until the executor runs).
    func runCyclic(
        _ t: Transfer, _ probe: inout DMAAccessProbe?, _ probeGen: inout UInt64, _ wakes: inout PendingWakes
    ) -> Outcome {
        if t.injection.stall && !stall(seen: t.stallSeen) { return .aborted }
        let buf = t.length, period = t.periodLength
        var pos = 0
        // Read once per transfer, not per chunk (test-only defects; nil in every real channel).
        let lateResidue = defect == .residueAfterChunkEnd
        let periodAfterPause = defect == .periodAfterPause
        periodClock.restart(cookie: t.cookie)
        // The pace (DMAConfig.paceBytesPerSecond): a burst of n bytes moves once the request
        // line has asked for them, n / pace seconds after the previous one was due. A resume
        // restarts the schedule with the next burst due at once (the device's FIFO asked for
        // it while paused; it does not catch up on the rest).
        var scheduleStart = MonotonicClock.now()
        var scheduled = 0  // bytes asked for since scheduleStart, the next burst included
        // Ordering: acquire; pairs with the release add in `resume()`.
        var resumesSeen = resumeGeneration.load(ordering: .acquiring)
        let nsPerByte = t.pace > 0 ? 1e9 / Double(t.pace) : 0
        while true {
            let n = min(t.chunk, period - pos % period)
            if t.injection.delayPerChunkNanoseconds > 0 { injectedDelay(t.injection.delayPerChunkNanoseconds) }
            if t.pace > 0 {
                // Ordering: acquire; pairs with the release add in `resume()`.
                let resumes = resumeGeneration.load(ordering: .acquiring)
                if resumes != resumesSeen {
                    // Paused and resumed since the last burst (a pause that this thread never
                    // saw at a gate): this burst is due now, the rest at the pace from here.
                    resumesSeen = resumes
                    scheduleStart = MonotonicClock.now()
                    scheduled = 0
                } else {
                    scheduled += n
                    if !waitUntil(scheduleStart &+ UInt64(Double(scheduled) * nsPerByte), resumes: resumes) {
                        // Paused and resumed while asleep: the same.
                        resumesSeen = resumeGeneration.load(ordering: .acquiring)
                        scheduleStart = MonotonicClock.now()
                        scheduled = 0
                    }
                }
            }
            if periodAfterPause && pos % period != 0 {
                if !gateIgnoringPause() { return .aborted }
            } else {
                switch gate() {
                case .go: break
                case .abort: return .aborted
                case .paused:
                    if !waitWhilePaused() { return .aborted }
                    // Ordering: acquire; pairs with the release add in `resume()`.
                    resumesSeen = resumeGeneration.load(ordering: .acquiring)
                    scheduleStart = MonotonicClock.now()
                    scheduled = -n
                    continue
                }
            }
            refreshProbe(&probe, &probeGen)
            if let probe {
                probe(DMAAccess(cookie: t.cookie, kind: .read, address: UInt(bitPattern: t.source! + pos), count: n))
                probe(DMAAccess(cookie: t.cookie, kind: .write, address: UInt(bitPattern: t.destination + pos), count: n))
            }
            memcpy(t.destination + pos, t.source! + pos, n)
            pos += n
            // P1: residue first, then the end of the chunk (see `run`); at the end of the
            // buffer it wraps to the whole buffer. The defect keeps the old order, with the
            // residue stored after the period's accounting below.
            if !lateResidue { activeResidue.pointee.store(buf - pos % buf, ordering: .relaxed) }
            endChunk()
            if pos % period == 0 {
                // The period's end, stamped before its callback can run (the callback reads it).
                periodClock.periodEnded(at: MonotonicClock.now())
                let aborted = lock.withLock { held -> Bool in
                    let s = st
                    while s.pointee.paused && !s.pointee.activeTerminated && !s.pointee.shutdown {
                        held.whileUnlocked {
                            flush(&wakes)
                            _ = waitWhilePaused()
                            // Ordering: acquire; pairs with the release add in `resume()`.
                            resumesSeen = resumeGeneration.load(ordering: .acquiring)
                            scheduleStart = MonotonicClock.now()
                            scheduled = -min(t.chunk, period)
                        }
                    }
                    if s.pointee.shutdown || (s.pointee.activeTerminated && s.pointee.activeAbortRequested) {
                        return true
                    }
                    if t.needsCallback && !s.pointee.activeTerminated {
                        s.pointee.cyclicPending = t.index
                        if engineRunsCallbacks {
                            // The period callback runs here, between two chunks, lock dropped;
                            // a terminate or pause it asks for is seen by the next chunk gate.
                            _ = dispatchCompletions(&wakes, held)
                        } else if s.pointee.executorIdle {
                            s.pointee.executorIdle = false
                            wakes.executor = true
                        }
                    }
                    return false
                }
                if aborted { return .aborted }
                flush(&wakes)
            }
            if pos == buf { pos = 0 }
            if lateResidue { activeResidue.pointee.store(buf - pos, ordering: .relaxed) }
        }
    }
}
