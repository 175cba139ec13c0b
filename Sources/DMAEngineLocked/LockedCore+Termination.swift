// dmabench — DMAEngineLocked
//
// Pause and resume, terminate, synchronize and release, and the test hooks: the control
// side of the locked backend (a driver's `device_pause`, `device_terminate_all`,
// `vchan_synchronize` and `vchan_free_chan_resources`).

import DMAEngine
import Glibc
import Platform
import Synchronization

extension LockedCore {
    // MARK: Pause

    /// Kernel: `dmaengine_pause`. Returns once the engine has stopped moving data (P1).
    func pause() throws(DMAError) {
        try withLiveLock { _ throws(DMAError) in
            st.pointee.paused = true
            // Ordering: seq_cst; with the seq_cst store of `engineInChunk` and load of
            // `pauseFlag` in the engine's chunk gate (Dekker): either the engine sees the pause
            // before its next chunk, or we see it inside the chunk below and wait.
            pauseFlag.store(true, ordering: .sequentiallyConsistent)
        }
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
        try withLiveLock { _ throws(DMAError) in
            guard st.pointee.paused else { throw .notPaused }
            st.pointee.paused = false
            // Ordering: relaxed is enough; the engine re-checks under the lock or after the event.
            pauseFlag.store(false, ordering: .sequentiallyConsistent)
            if st.pointee.engineIdle && !st.pointee.issued.isEmpty && !st.pointee.terminating {
                st.pointee.engineIdle = false
            }
        }
        // Ordering: release; pairs with the acquire load in `waitUntil`: a paced stream asleep
        // until its next burst restarts its schedule.
        resumeGeneration.add(1, ordering: .releasing)
        // Wake the engine in any case: it may be waiting mid-transfer for the resume.
        engineEvent.signal()
    }

    // MARK: Termination

    /// Kernel: the driver's `terminate_all`: `vchan_terminate_vdesc(active)` +
    /// `vchan_get_all_descriptors`, with the watermark set to `used` (rule S6) and the
    /// pause cleared. Never waits.
    func terminateAsync() throws(DMAError) {
        let wakeEngine = try withLiveLock { held throws(DMAError) in terminateLocked(held) }
        if wakeEngine { engineEvent.signal() }
    }

    /// The body of terminate. Returns whether the engine must be woken (it was
    /// running or paused, and must notice the abort or the cleared pause).
    @discardableResult
    func terminateLocked(_ held: borrowing Held) -> Bool {
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
        setQueuedBytes(0, held)
        s.pointee.watermark.last = s.pointee.watermark.used
        publishLast(held)
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
    func synchronizeLocked(_ held: borrowing Held) {
        let s = st
        if defect != .synchronizeDoesNotWait {
            let executorTarget = s.pointee.executorStarted
            let abortTarget = s.pointee.abortRequests
            while s.pointee.executorFinished < executorTarget || s.pointee.abortsHandled < abortTarget {
                // Ordering: acquire; pairs with the release add in `wakeSynchronizers()`.
                let seq = syncWord.pointee.load(ordering: .acquiring)
                s.pointee.syncWaiters += 1
                held.whileUnlocked { waitForSync(seq) }
                s.pointee.syncWaiters -= 1
            }
        }
        if s.pointee.terminating {
            s.pointee.terminating = false
            slots.splice(&s.pointee.submitted, to: &s.pointee.terminated)
            slots.splice(&s.pointee.issued, to: &s.pointee.terminated)
            setQueuedBytes(0, held)
            s.pointee.watermark.last = s.pointee.watermark.used
            publishLast(held)
        }
        retireTerminated(held)
    }

    fileprivate func waitForSync(_ seq: UInt32) {
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

    /// Retires `desc_terminated`, except the descriptor the engine still holds.
    func retireTerminated(_ held: borrowing Held) {
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
                retire(i, held)
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
        try withLiveLock { held throws(DMAError) in synchronizeLocked(held) }
    }

    func terminateSync() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        try withLiveLock { held throws(DMAError) in
            if terminateLocked(held) { engineEvent.signal() }
            synchronizeLocked(held)
        }
    }

    /// Kernel: `dma_release_channel` → `device_free_chan_resources` → `vchan_free_chan_resources`,
    /// preceded by terminate_sync semantics (docs/contract.md A.2 [T]).
    func release() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        try withLiveLock { held throws(DMAError) in
            markReleased(held)
            if terminateLocked(held) { engineEvent.signal() }
            synchronizeLocked(held)
        }
        shutdownThreads(join: true)
        // Magazine, then channel lock (the order `prepare` takes them in): a prep that got
        // the magazine first has finished, and a later one sees `releasedFlag`.
        magazine.withLock { lock.withLock { held in freeAll(held) } }
    }

    /// Stops and (optionally) joins both threads.
    func shutdownThreads(join: Bool) {
        lock.withLock { held in
            st.pointee.shutdown = true
            markReleased(held)
            // Ordering: release; pairs with the acquire loads in the engine's waits (the
            // engine re-checks `shutdown` under the lock before it takes new work).
            shutdownFlag.store(true, ordering: .releasing)
        }
        engineEvent.signal()
        executorEvent.signal()
        if join {
            engineThread?.join()
            executorThread?.join()
        }
    }

    /// Sets `released` (and its mirror for `prepare`).
    @inline(__always)
    func markReleased(_: borrowing Held) {
        st.pointee.released = true
        // Ordering: relaxed; see `prepare`.
        releasedFlag.store(true, ordering: .relaxed)
    }

    /// Frees every descriptor, REUSE ones included. Magazine lock held too; threads joined.
    func freeAll(_ held: borrowing Held) {
        let s = st
        for i in 0..<poolSize where slots[i].state != .free {
            slots[i].reuse = false
            freeSlot(Int32(i), held)
        }
        // Rebuild the free stack in index order.
        resetFreeStack(held)
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
        let done = lock.withLock { held -> Bool in
            let done = st.pointee.shutdown
            if !done {
                markReleased(held)
                _ = terminateLocked(held)
            }
            return done
        }
        if done { return }
        // Joining from one of our own threads (the last reference dropped in a callback)
        // would wait for itself; those threads exit on their own once they see `shutdown`.
        let me = CPU.currentThreadID
        let own = me == engineThreadID.load(ordering: .relaxed) || me == executorThreadID.load(ordering: .relaxed)
        shutdownThreads(join: !own)
    }

    var isReleased: Bool {
        lock.withLock { _ in st.pointee.released }
    }

    // MARK: Test hooks

    func seedCookie(used: DMACookie, last: DMACookie) throws(DMAError) {
        guard used.isValid && last.isValid else {
            throw .invalidArgument("cookies must be ≥ 1; got used \(used), last \(last)")
        }
        try withLiveLock { held throws(DMAError) in
            guard st.pointee.active < 0, st.pointee.submitted.isEmpty, st.pointee.issued.isEmpty,
                st.pointee.completed.isEmpty
            else { throw .busy }
            st.pointee.watermark = DMACookieWatermark(used: used, last: last)
            publishUsed(held)
            publishLast(held)
        }
    }

    func failNextSubmits(_ count: Int) {
        lock.withLock { _ in st.pointee.failNextSubmits = max(0, count) }
    }

    func releaseStalls() {
        // Ordering: release; pairs with the acquire load in the engine's stall wait.
        stallGeneration.add(1, ordering: .releasing)
        engineEvent.signal()
    }

    func setAccessProbe(_ probe: DMAAccessProbe?) {
        lock.withLock { _ in
            st.pointee.probe = probe
            // Ordering: relaxed; the engine re-reads the probe under the lock when it sees a change.
            probeGeneration.add(1, ordering: .relaxed)
        }
    }

    func configure(_ config: DMAConfig) throws(DMAError) {
        guard config.burstBytes >= 0 else {
            throw .invalidArgument("burstBytes \(config.burstBytes) is negative; valid: 0 (whole transfer) or more")
        }
        guard config.paceBytesPerSecond >= 0 else {
            throw .invalidArgument("paceBytesPerSecond \(config.paceBytesPerSecond) is negative; valid: 0 (memory speed) or more")
        }
        try withLiveLock { _ throws(DMAError) in
            st.pointee.config = config
            // Ordering: relaxed; see `prepare`.
            magazine.burstBytes.pointee.store(config.burstBytes, ordering: .relaxed)
        }
    }
}
