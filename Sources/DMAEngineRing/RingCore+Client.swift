// dmabench — DMAEngineRing
//
// The client's calls, as `RingChannel` forwards them: prep, submit, issue, status, pause and
// resume, the terminate epoch and synchronize, and the test hooks. Lock-free: each is a few
// atomics on the core's lines (docs/architecture.md, "The ring backend").

import DMAEngine
import Glibc
import Platform
import Synchronization

extension RingCore {
    @inline(__always)
    var isReleased: Bool { released.pointee.load(ordering: .relaxed) }

    func configure(_ config: DMAConfig) throws(DMAError) {
        if isReleased { throw .released }
        guard config.burstBytes >= 0 else {
            throw .invalidArgument("burstBytes \(config.burstBytes); valid: 0 (whole transfer) or a positive byte count")
        }
        guard config.paceBytesPerSecond >= 0, config.paceBytesPerSecond <= Int(UInt32.max) else {
            throw .invalidArgument(
                "paceBytesPerSecond \(config.paceBytesPerSecond); valid: 0 (memory speed) to \(UInt32.max) (a descriptor field)")
        }
        burstBytes.pointee.store(config.burstBytes, ordering: .relaxed)
        // Ordering: relaxed; configure applies to later preps, ordered by the caller.
        paceBytes.pointee.store(config.paceBytesPerSecond, ordering: .relaxed)
    }

    // MARK: Coherent memory

    func allocateCoherent(byteCount: Int) throws(DMAError) -> DMABuffer {
        if isReleased { throw .released }
        guard byteCount > 0 else { throw .invalidArgument("byteCount \(byteCount); valid: > 0") }
        do {
            return DMABuffer(base: try PageMemory.map(byteCount: byteCount), count: byteCount)
        } catch {
            throw .unavailable("\(error)")
        }
    }

    func freeCoherent(_ buffer: DMABuffer) {
        PageMemory.unmap(buffer.base, byteCount: buffer.count)
    }

    // MARK: Prep

    func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        prepare(destination: destination, source: source, fill: 0, isMemset: false, length: length, flags: flags)
    }

    /// Prep with the callback written at once (the descriptor is the caller's until submit;
    /// no second handle check).
    func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags,
        callback: consuming DMACallback
    ) -> DMADescriptor? {
        guard let h = prepare(destination: destination, source: source, fill: 0, isMemset: false, length: length, flags: flags)
        else { return nil }
        descriptor(h.index).pointee.packed = DMAPackedCallback(callback)
        return h
    }

    func prepareMemset(
        to destination: UnsafeMutableRawPointer, value: UInt8, length: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        prepare(destination: destination, source: nil, fill: value, isMemset: true, length: length, flags: flags)
    }

    /// A cyclic copy: the engine runs it period by period until it is terminated; the
    /// callback runs once per period, or fewer when periods elapse faster than the executor
    /// catches up (rule K1). Descriptors submitted after it wait behind it, as on hardware.
    /// The corresponding kernel call is `dmaengine_prep_dma_cyclic()`.
    func prepareCyclic(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, bufferLength: Int,
        periodLength: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        guard periodLength > 0, periodLength <= bufferLength else { return nil }
        guard let h = prepare(destination: destination, source: source, fill: 0, isMemset: false, length: bufferLength, flags: flags)
        else { return nil }
        let d = descriptor(h.index)
        d.pointee.isCyclic = true
        d.pointee.periodLength = periodLength
        d.pointee.slow = true
        // Ordering: relaxed; see `configure`.
        d.pointee.pace = UInt32(truncatingIfNeeded: paceBytes.pointee.load(ordering: .relaxed))
        return h
    }

    /// A scatter-gather copy: the lists are merged into the descriptor's preallocated piece
    /// table, which the engine's slow path walks chunk by chunk.
    /// The corresponding kernel call is `dmaengine_prep_dma_memcpy_sg()`.
    func prepareMemcpySG(
        destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        guard let first = destinations.first, let firstSource = sources.first else { return nil }
        guard let h = prepare(
            destination: UnsafeMutableRawPointer(mutating: first.address), source: firstSource.address, fill: 0,
            isMemset: false, length: 1, flags: flags)
        else { return nil }
        let p = pieces + Int(h.index) * Self.pieceCapacity
        guard let plan = DMASGPlan.plan(destinations: destinations, sources: sources, maxSegments: Self.maxSegments, into: p),
            plan.total <= Int(UInt32.max)
        else {
            scrub(h.index)
            freeQueue.enqueue(h.index)
            return nil
        }
        let d = descriptor(h.index)
        d.pointee.length = plan.total
        d.pointee.pieceCount = UInt8(plan.count)
        // The engine's fast path walks the pieces back to back (a burst or an injection makes
        // it the chunked slow path, as for a flat copy).
        d.pointee.slow = d.pointee.chunkBytes > 0 && d.pointee.chunkBytes < plan.total
        return h
    }

    @inline(__always)
    func prepare(
        destination: UnsafeMutableRawPointer, source: UnsafeRawPointer?, fill: UInt8, isMemset: Bool, length: Int,
        flags: DMAPrepFlags
    ) -> DMADescriptor? {
        guard !isReleased, length > 0, length <= Int(UInt32.max) else { return nil }
        guard let index = popFree() else { return nil }
        let d = descriptor(index)
        let burst = burstBytes.pointee.load(ordering: .relaxed)
        d.pointee.isMemset = isMemset
        d.pointee.isCyclic = false
        d.pointee.reuse = false
        d.pointee.interrupt = flags.contains(.interrupt)
        d.pointee.slow = burst > 0 && burst < length
        d.pointee.stall = false
        d.pointee.fault = 0
        d.pointee.fill = fill
        d.pointee.destination = destination
        d.pointee.source = source
        d.pointee.length = length
        // The second line's fields, written only when they change: a plain prep then
        // writes one line (see `RingDescriptor`).
        if d.pointee.chunkBytes != burst { d.pointee.chunkBytes = burst }
        if d.pointee.delayPerChunk != 0 { d.pointee.delayPerChunk = 0 }
        d.pointee.pieceCount = 0
        d.pointee.state.store(SlotState.prepared, ordering: .relaxed)
        return DMADescriptor(index: index, generation: d.pointee.generation.load(ordering: .relaxed))
    }

    // MARK: Descriptor

    /// The slot of a live handle, with its state, or the error for it.
    @inline(__always)
    func slot(_ h: DMADescriptor) -> (UnsafeMutablePointer<RingDescriptor>, UInt32)? {
        guard Int(h.index) < poolSize, !isReleased else { return nil }
        let d = descriptor(h.index)
        guard d.pointee.generation.load(ordering: .relaxed) == h.generation else { return nil }
        // Ordering: acquire; pairs with the release store of `prepared` in the executor's
        // retire of a REUSE descriptor (it is done reading the descriptor).
        let s = d.pointee.state.load(ordering: .acquiring)
        guard s != SlotState.free else { return nil }
        return (d, s)
    }

    func preparedSlot(_ h: DMADescriptor) throws(DMAError) -> UnsafeMutablePointer<RingDescriptor> {
        if isReleased { throw .released }
        guard let (d, s) = slot(h) else { throw .invalidHandle }
        if s == SlotState.inFlight { throw d.pointee.reuse ? .busy : .invalidHandle }
        return d
    }

    func setCallback(_ callback: DMACallback, for descriptor: DMADescriptor) throws(DMAError) {
        let d = try preparedSlot(descriptor)
        d.pointee.packed = DMAPackedCallback(callback)
    }

    func setReuse(_ reuse: Bool, for descriptor: DMADescriptor) throws(DMAError) {
        let d = try preparedSlot(descriptor)
        d.pointee.reuse = reuse
    }

    func free(_ descriptor: DMADescriptor) throws(DMAError) {
        let d = try preparedSlot(descriptor)
        guard d.pointee.reuse else { throw .notPermitted }
        scrub(descriptor.index)
        freeQueue.enqueue(descriptor.index)
    }

    // MARK: Submit, issue, status

    func submit(_ descriptor: DMADescriptor) -> DMACookie {
        if isReleased { return .failure(ENODEV) }
        guard let (d, s) = slot(descriptor) else { return .failure(EINVAL) }
        guard s == SlotState.prepared else { return .failure(d.pointee.reuse ? EBUSY : EINVAL) }
        if failNext.pointee.load(ordering: .relaxed) > 0 && failNext.pointee.takeInjectedFailure() { return .failure(EIO) }
        d.pointee.state.store(SlotState.inFlight, ordering: .relaxed)
        // The serialization point (rule C1): one fetch-add on `used` hands out the ticket,
        // and with it the cookie and the ring slot.
        let (old, _) = used.pointee.wrappingAdd(1, ordering: .relaxed)
        let t = old &+ 1
        let slot = sub + Int(t & mask)
        // The ring never holds more than poolSize ≤ capacity tickets, so this slot is free;
        // the wait only covers the engine's store not being visible yet.
        // Ordering: acquire; pairs with the engine's release store of `seq` when it consumed
        // ticket t - capacity.
        while slot.pointee.seq.load(ordering: .acquiring) != t { cpuRelax() }
        slot.pointee.descriptor.store(descriptor.index, ordering: .relaxed)
        slot.pointee.length.store(d.pointee.length32, ordering: .relaxed)
        // Ordering: release; pairs with the engine's acquire load of `seq` before it reads
        // the slot and the descriptor (fields written at prep and by setCallback/inject).
        slot.pointee.seq.store(t &+ 1, ordering: .releasing)
        if t & Tickets.rebaseMask == 0 { rebase(at: t) }
        return cookie(ofTicket: t)
    }

    @inline(never)
    func rebase(at t: UInt32) {
        let c = cookie(ofTicket: t)
        cookieBase.pointee.store(
            Tickets.pack(high: t, low: UInt32(bitPattern: c.rawValue)), ordering: .relaxed)
    }

    func issuePending() {
        if isReleased { return }
        let used = self.used.pointee.load(ordering: .relaxed)
        var current = issuedTail.pointee.load(ordering: .relaxed)
        guard Tickets.distance(used, current) > 0 else { return }
        // The issue mark, before the compare-and-swap: an idle engine polls the slot of the
        // first ticket this call issues, which `submit` has just written, and starts it
        // without waiting for `issuedTail`'s line, which the compare-and-swap must first take
        // from it (docs/measurement-notes.md, "RingEngine: the issue mark"). Every ticket up
        // to `used` was handed out, so marking `current + 1` issues nothing early; a stale
        // `current` marks a ticket already issued, whose slot's next ticket cannot match.
        // Ordering: relaxed; the engine reads the slot only after its acquire wait on `seq`.
        (sub + Int((current &+ 1) & mask)).pointee.issued.store(current &+ 1, ordering: .relaxed)
        while Tickets.distance(used, current) > 0 {
            // Ordering: seq_cst; the release part pairs with the engine's acquire load of
            // `issuedTail`, the seq_cst part with the engine's seq_cst park announcement
            // (Dekker with `wakeEngineIfParked` below).
            let (done, now) = issuedTail.pointee.compareExchange(
                expected: current, desired: used, ordering: .sequentiallyConsistent)
            if done {
                wakeEngineIfParked()
                return
            }
            current = now
        }
    }

    func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) {
        // COMPLETE implies the engine's writes are visible (polled mode, scenario 11): the
        // snapshot's acquire load of `last` pairs with the release CAS in `advanceLast`.
        let (u, l) = ticketSnapshot()
        let mark = watermark(used: u, last: l)
        if mark.isComplete(cookie) {
            return (.complete, DMATxState(last: mark.last, used: mark.used, residue: 0))
        }
        let residue = isReleased ? 0 : self.residue(of: cookie, usedTicket: u, used: mark.used)
        let paused = Control(raw: control.pointee.load(ordering: .relaxed)).paused
        return (paused ? .paused : .inProgress, DMATxState(last: mark.last, used: mark.used, residue: residue))
    }

    /// Rule S5: the active transfer's remaining bytes, or the full length of a queued one.
    func residue(of cookie: DMACookie, usedTicket: UInt32, used: DMACookie) -> Int {
        let t = usedTicket &- Tickets.cookiesBehind(cookie.rawValue, used.rawValue)
        let a = active.pointee.load(ordering: .relaxed)
        if Tickets.high(a) == t { return max(1, Int(Tickets.low(a))) }
        let slot = sub + Int(t & mask)
        // Ordering: acquire; pairs with the release store of `seq` in `submit`.
        let s1 = slot.pointee.seq.load(ordering: .acquiring)
        let length = Int(slot.pointee.length.load(ordering: .relaxed))
        if s1 == t &+ 1 && slot.pointee.seq.load(ordering: .acquiring) == s1 { return length }
        // Consumed since: the engine stored `active` before releasing the slot, so it is
        // active now, or already finished (reading COMPLETE from here on).
        let a2 = active.pointee.load(ordering: .relaxed)
        if Tickets.high(a2) == t { return max(1, Int(Tickets.low(a2))) }
        return 1
    }

    // MARK: Flow control

    func pause() throws(DMAError) {
        if isReleased { throw .released }
        var c = control.pointee.load(ordering: .relaxed)
        while true {
            let desired = Control(raw: c).paused ? c : Control(raw: c).pausing().raw
            // Ordering: seq_cst; pairs with the engine's acquire loads of `control` and, for
            // the parked check below, with the engine's seq_cst park announcement.
            let (done, now) = control.pointee.compareExchange(
                expected: c, desired: desired, ordering: .sequentiallyConsistent)
            if done {
                c = desired
                break
            }
            c = now
        }
        // Rule P1: return once the engine has stopped moving data: it acknowledged this pause,
        // or it is parked (it re-checks `control` before it moves data again).
        // Engine-thread mode, called from a callback: the engine is this thread, between
        // transfers or at a chunk boundary, and re-reads `control` before it moves data.
        if onEngineCallback { return }
        let generation = Control(raw: c).pauseGeneration
        var spins = 0
        while true {
            // Ordering: acquire; pairs with the seq_cst store of `ack` in `publishAck`.
            let a = Control(raw: ack.pointee.load(ordering: .acquiring))
            if a.paused && a.pauseGeneration == generation { return }
            // Ordering: seq_cst; pairs with the engine's seq_cst park announcement.
            if enginePark.pointee.load(ordering: .sequentiallyConsistent) == 1 { return }
            let now = Control(raw: control.pointee.load(ordering: .acquiring))
            if !now.paused || now.pauseGeneration != generation { return }
            // The engine acknowledges within one chunk; on a loaded machine let it run.
            spins &+= 1
            if spins < 4096 { cpuRelax() } else { sched_yield() }
        }
    }

    func resume() throws(DMAError) {
        if isReleased { throw .released }
        var c = control.pointee.load(ordering: .relaxed)
        while true {
            guard Control(raw: c).paused else { throw .notPaused }
            // Ordering: seq_cst; pairs with the engine's acquire load of `control` and its
            // seq_cst park announcement (Dekker with the wake below).
            let (done, now) = control.pointee.compareExchange(
                expected: c, desired: Control(raw: c).resumed().raw, ordering: .sequentiallyConsistent)
            if done { break }
            c = now
        }
        wakeEngineIfParked()
    }

    // MARK: Termination

    func terminateAsync() throws(DMAError) {
        if isReleased { throw .released }
        terminate()
    }

    /// The epoch bump (rules T1, S6). NB-safe: a few atomics and at most one futex wake.
    func terminate() {
        let cutoff = used.pointee.load(ordering: .relaxed)
        var c = control.pointee.load(ordering: .relaxed)
        while true {
            // Ordering: seq_cst; the release part pairs with the acquire loads of `control` in
            // the engine and the executor; this CAS is the linearization point of terminate.
            let (done, now) = control.pointee.compareExchange(
                expected: c, desired: Control(raw: c).terminated(cutoff: cutoff).raw, ordering: .sequentiallyConsistent)
            if done { break }
            c = now
        }
        // Rule S6: terminated cookies read COMPLETE at once.
        advanceLast(to: cutoff)
        terminatePending.pointee.store(true, ordering: .relaxed)
        // An engine parked idle past the cutoff has nothing to drain: it acknowledges when it
        // next wakes; otherwise wake it now to drain or abort.
        if idleEngineWitness(cutoff: cutoff) == nil { wakeEngineIfParked() }
    }

    func synchronize() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        if isReleased { throw .released }
        waitForQuiescence()
    }

    /// Rule T3: waits until the engine acknowledged the current epoch (it no longer touches
    /// pre-terminate memory) and the executor has passed every entry before the engine's
    /// acknowledged position (no pre-terminate callback runs or will start; all retired).
    ///
    /// While a terminate is pending (channel state `terminating`), work submitted after it,
    /// typically by a callback that was already running when the client set its stop flag
    /// (T7, scenario 19), or by misuse (T6: nothing is guaranteed for it), is terminated too,
    /// in up to `extraRounds` further rounds, so that no callback starts after synchronize
    /// returns. Bounded even when callbacks keep submitting.
    func waitForQuiescence() {
        if negative == .synchronizeDoesNotWait { return }
        let extraRounds = 4
        var round = 0
        while true {
            waitForEpoch()
            guard terminatePending.pointee.load(ordering: .relaxed), round < extraRounds else { break }
            // Ordering: acquire; pairs with the seq_cst CAS of `control` in terminate.
            let c = Control(raw: control.pointee.load(ordering: .acquiring))
            if used.pointee.load(ordering: .relaxed) == c.cutoff { break }
            round += 1
            terminate()
        }
        terminatePending.pointee.store(false, ordering: .relaxed)
    }

    func waitForEpoch() {
        // Ordering: acquire; pairs with the seq_cst CAS of `control` in terminate.
        let current = Control(raw: control.pointee.load(ordering: .acquiring))
        let target = current.epoch
        // Ordering: seq_cst; pairs with the seq_cst load in `signalSyncWaiters` (Dekker).
        syncWaiters.pointee.add(1, ordering: .sequentiallyConsistent)
        defer { syncWaiters.pointee.subtract(1, ordering: .sequentiallyConsistent) }
        while true {
            // Ordering: acquire; pairs with the seq_cst store of `ack` in `publishAck`.
            let a = ack.pointee.load(ordering: .acquiring)
            var position: UInt32? = nil
            if Control.epochDistance(Control(raw: a).epoch, target) >= 0 {
                position = Tickets.low(a)
            } else if let p = idleEngineWitness(cutoff: current.cutoff) {
                position = p
            } else {
                wakeEngineIfParked()
            }
            if let position {
                // Ordering: acquire; pairs with the seq_cst store in `publishCompHead`
                // after each batch (its callbacks have returned).
                let h = compHead.pointee.load(ordering: .acquiring)
                if Tickets.distance(h, position) >= 0 { return }
            }
            syncEvent.wait(spinNanoseconds: min(options.spinNanoseconds, 20_000), timeoutNanoseconds: 200_000)
        }
    }

    func terminateSync() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        if isReleased { throw .released }
        terminate()
        waitForQuiescence()
    }

    /// The first half of `release()`: mark released (once), terminate and synchronize.
    func beginRelease() throws(DMAError) {
        // Ordering: relaxed is enough: release is not called concurrently with other ops
        // (client misuse); the flag only makes later calls fail with `.released`.
        let (first, _) = released.pointee.compareExchange(expected: false, desired: true, ordering: .relaxed)
        guard first else { throw .released }
        terminate()
        waitForQuiescence()
    }

    // MARK: Test hooks

    func debugSeedCookie(used: DMACookie, last: DMACookie) throws(DMAError) {
        if isReleased { throw .released }
        guard used.isValid, last.isValid else {
            throw .invalidArgument("cookies used \(used), last \(last); valid: 1...\(Int32.max)")
        }
        // A test hook for an idle channel (no submit or completion races it).
        let tu = self.used.pointee.load(ordering: .relaxed)
        let tl = tu &- Tickets.cookiesBehind(last.rawValue, used.rawValue)
        cookieBase.pointee.store(Tickets.pack(high: tu, low: UInt32(bitPattern: used.rawValue)), ordering: .relaxed)
        // Ordering: release; pairs with the acquire load of `last` in `ticketSnapshot()` (the
        // base stored just before belongs to this watermark).
        self.last.pointee.store(tl, ordering: .releasing)
    }

    func debugWatermark() -> DMACookieWatermark {
        let (u, l) = ticketSnapshot()
        return watermark(used: u, last: l)
    }

    func debugInject(_ injection: DMAInjection, into descriptor: DMADescriptor) throws(DMAError) {
        let d = try preparedSlot(descriptor)
        guard injection.chunkBytes >= 0, injection.delayPerChunkNanoseconds >= 0 else {
            throw .invalidArgument("injection chunkBytes/delay must be >= 0")
        }
        d.pointee.slow = true
        if injection.chunkBytes > 0 { d.pointee.chunkBytes = injection.chunkBytes }
        d.pointee.delayPerChunk = injection.delayPerChunkNanoseconds
        d.pointee.stall = injection.stall
        d.pointee.stallSeen = stallGeneration.pointee.load(ordering: .relaxed)
        switch injection.fault {
        case .none: d.pointee.fault = 0
        case .read: d.pointee.fault = 1
        case .write: d.pointee.fault = 2
        }
    }

    func debugFailNextSubmits(_ count: Int) {
        failNext.pointee.store(max(0, count), ordering: .relaxed)
    }

    func debugReleaseStalls() {
        // Ordering: release; pairs with the acquire load of `stallGeneration` in the engine.
        stallGeneration.pointee.add(1, ordering: .releasing)
        wakeEngineIfParked()
    }

    func debugSetAccessProbe(_ probe: DMAAccessProbe?) {
        guard let probe else {
            // Ordering: release; pairs with the engine's acquire load of `probe`.
            self.probe.pointee.store(0, ordering: .releasing)
            return
        }
        let box = ProbeBox(probe)
        keepAlive(box)
        let raw = Unmanaged.passRetained(box).toOpaque()
        // Ordering: release; pairs with the engine's acquire load of `probe` (the box is
        // fully initialized before the engine can call it). Replaced boxes stay alive until
        // the channel is deinitialized, as the engine may still be calling one.
        self.probe.pointee.store(UInt(bitPattern: raw), ordering: .releasing)
    }
}
