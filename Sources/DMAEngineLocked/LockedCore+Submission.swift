// dmabench — DMAEngineLocked
//
// Prep, submit, issuePending and status: the client side of the locked backend
// (virt-dma's `vchan_tx_prep`, `vchan_tx_submit`, `vchan_issue_pending`, and
// `dma_cookie_status` with `vchan_find_desc` for the residue).

import DMAEngine
import Glibc
import Platform
import Synchronization

extension LockedCore {
    // MARK: Prep

    func prepare(
        kind: TransferKind, destination: UnsafeMutableRawPointer, source: UnsafeRawPointer?, length: Int,
        periodLength: Int, value: UInt8, flags: DMAPrepFlags, callback: consuming DMACallback? = nil,
        segments: (UnsafeBufferPointer<DMASegment>, UnsafeBufferPointer<DMASegment>)? = nil
    ) -> DMADescriptor? {
        let m = magazine
        // The pace applies to cyclic transfers only, so only their (rare) preps read it.
        let pace = kind == .cyclic ? lock.withLock { _ in st.pointee.config.paceBytesPerSecond } : 0
        return m.withLock { () -> DMADescriptor? in
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
            var destination = destination, source = source, length = length
            if let (dsts, srcs) = segments {
                let p = pieces + Int(i) * Self.pieceCapacity
                guard let plan = DMASGPlan.plan(destinations: dsts, sources: srcs, maxSegments: Self.maxSegments, into: p)
                else {
                    m.count.pointee += 1  // the slot index is still there: back on the magazine
                    return nil
                }
                s.pointee.pieceCount = plan.count
                destination = p[0].destination
                source = p[0].source
                length = plan.total
            }
            s.pointee.pace = pace
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
    }

    /// Moves up to `PrepMagazine.capacity` slots from the free stack into the magazine.
    /// Magazine lock held; takes the channel lock. False when the pool is exhausted.
    @inline(never)
    func refillMagazine() -> Bool {
        let m = magazine
        return lock.withLock { _ -> Bool in
            // The top `n` indices, in stack order: the magazine pops from its end, so the slot
            // freed last is prepped first, as a pop from the free stack would take it.
            let n = min(PrepMagazine.capacity, st.pointee.freeCount)
            let from = st.pointee.freeCount - n
            for k in 0..<n { m.slots[k] = freeStack[from + k] }
            st.pointee.freeCount = from
            m.count.pointee = Int32(n)
            return n > 0
        }
    }

    func setCallback(_ callback: DMACallback, for d: DMADescriptor) throws(DMAError) {
        try lock.withLock { held throws(DMAError) in
            let i = try check(d, held)
            guard slots[Int(i)].state == .prepared else { throw slots[Int(i)].reuse ? .busy : .invalidHandle }
            slots[Int(i)].callback = callback
        }
    }

    func setReuse(_ reuse: Bool, for d: DMADescriptor) throws(DMAError) {
        try lock.withLock { held throws(DMAError) in
            let i = try check(d, held)
            // A non-REUSE descriptor is the backend's once submitted; a REUSE one may have its
            // flag cleared at any time (it is then freed at its next retirement).
            guard slots[Int(i)].state == .prepared || slots[Int(i)].reuse else { throw .invalidHandle }
            slots[Int(i)].reuse = reuse
        }
    }

    func free(_ d: DMADescriptor) throws(DMAError) {
        try lock.withLock { held throws(DMAError) in
            let i = try check(d, held)
            guard slots[Int(i)].reuse else { throw .notPermitted }
            guard slots[Int(i)].state == .prepared else { throw .busy }
            freeSlot(i, held)
        }
    }

    func inject(_ injection: DMAInjection, into d: DMADescriptor) throws(DMAError) {
        if injection.chunkBytes < 0 || injection.delayPerChunkNanoseconds < 0 {
            throw .invalidArgument("injection chunkBytes and delayPerChunkNanoseconds must be ≥ 0")
        }
        try lock.withLock { held throws(DMAError) in
            let i = try check(d, held)
            guard slots[Int(i)].state == .prepared else { throw slots[Int(i)].reuse ? .busy : .invalidHandle }
            slots[Int(i)].injection = injection
            slots[Int(i)].injected = injection != DMAInjection()
            // A stall holds until the first `debugReleaseStalls()` after this call, even one that
            // comes before the engine reaches the transfer (sampling the generation when the
            // engine started it missed such a release and hung; as the ring does).
            // Ordering: relaxed; the release that matters comes later on this thread.
            if injection.stall { slots[Int(i)].stallSeen = stallGeneration.load(ordering: .relaxed) }
        }
    }

    // MARK: Submit, issue, status

    /// Kernel: `vchan_tx_submit` (`dma_cookie_assign`, move to `desc_submitted`).
    func submit(_ d: DMADescriptor) -> DMACookie {
        lock.withLock { held -> DMACookie in
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
            publishUsed(held)
            slots[i].cookie = cookie
            slots[i].state = .queued
            // Ordering: relaxed; a prefetch hint for the engine (see `cookieSlots`).
            cookieSlots[Int(cookie.rawValue) & cookieSlotsMask].store(Int32(i), ordering: .relaxed)
            slots.append(Int32(i), to: &st.pointee.submitted)
            setQueuedBytes(st.pointee.queuedBytes + slots[i].length, mirror: false, held)
            return cookie
        }
    }

    /// Kernel: `vchan_issue_pending` and the driver's "start the hardware if idle".
    func issuePending() {
        let wake = lock.withLock { _ -> Bool in
            slots.splice(&st.pointee.submitted, to: &st.pointee.issued)
            guard st.pointee.engineIdle && !st.pointee.issued.isEmpty && !st.pointee.paused && !st.pointee.terminating
                && !st.pointee.shutdown
            else { return false }
            st.pointee.engineIdle = false
            return true
        }
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
        return lock.withLock { held -> (DMAStatus, DMATxState) in
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
            } else if let r = queuedLength(of: cookie, held) {
                residue = r
            }
            return (status, DMATxState(last: wl.last, used: wl.used, residue: residue, inFlightBytes: inFlight))
        }
    }

    /// The length of a queued (submitted, issued or chained) cookie: its residue by rule S5.
    fileprivate func queuedLength(of cookie: DMACookie, _: borrowing Held) -> Int? {
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
}
