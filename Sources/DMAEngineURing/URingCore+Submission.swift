// dmabench — DMAEngineURing
//
// The submission side: descriptors to SQEs, in cookie order, as far as the SQ, pause and a
// paced barrier allow; prepped on the client's thread in every setup, submitted from it
// (plain, sqpoll) or, with DEFER_TASKRUN, by the engine, the ring's only issuer.

import CURing
import DMAEngine
import Glibc
import Platform
import Synchronization

extension URingCore {
    // MARK: Submission side (under `sqLock`: an `SQHeld`)

    /// io_uring_submit, retried on EINTR and briefly on EAGAIN/EBUSY. A failure leaves the
    /// SQEs in the SQ; the next submit (the engine pumps every round) pushes them again.
    @discardableResult
    func submitSQ(_ ring: OpaquePointer, _: borrowing SQHeld) -> Int32 {
        var tries = 0
        while true {
            let r = curing_submit(ring)
            if r >= 0 { return r }
            if r == -EINTR { continue }
            if (r == -EAGAIN || r == -EBUSY) && tries < 16 && !onEngineThread {
                tries += 1
                sched_yield()
                continue
            }
            lastSubmitError.store(r, ordering: .relaxed)
            return r
        }
    }

    /// Preps the SQEs of one non-paced descriptor (the caller checked the SQ has room).
    @inline(__always)
    func prepDescriptor(_ ring: OpaquePointer, _ idx: UInt32, _ sq: borrowing SQHeld, _ held: borrowing Held) -> Int {
        let s = slots + Int(idx)
        let gen = s.pointee.generation
        var n = 0
        if s.pointee.fault != nil {
            _ = curing_prep_nop(ring, URingUserData.make(.fault, slot: idx, generation: gen))
            n = 1
        } else {
            for c in 0..<s.pointee.chunkCount {
                n += prepChunk(ring, idx, c, sq, held)
            }
        }
        s.pointee.state = .active
        s.pointee.chunksIssued = s.pointee.chunkCount
        s.pointee.outstanding += n
        st.pointee.bytesInKernel += s.pointee.length
        return n
    }

    /// Preps one chunk's IORING_OP_READ (READ_FIXED into the registered pool) and reports the
    /// source read to the access probe as handed to the kernel (the destination write is
    /// reported when the CQE arrives, so each chunk counts as one write).
    @inline(__always)
    func prepChunk(_ ring: OpaquePointer, _ idx: UInt32, _ c: Int, _: borrowing SQHeld, _: borrowing Held) -> Int {
        let s = slots + Int(idx)
        let (dst, sourceOffset, n) = span(idx, c)
        let run = s.pointee.pieceCount > 0 ? runs[Int(idx) * Self.pieceCapacity + c] : nil
        if let run, run.count > 1 {
            // Several pieces from one contiguous source range: one READV.
            _ = curing_prep_readv(
                ring, fixedFile ? 0 : pool.fd, fixedFile ? 1 : 0, iovecs + Int(idx) * Self.pieceCapacity + Int(run.first),
                UInt32(run.count), UInt64(sourceOffset),
                URingUserData.make(.data, slot: idx, chunk: c, generation: s.pointee.generation))
        } else {
        var bufIndex: Int32 = -1
        if fixedBuffer, pool.offset(of: dst, length: n) != nil { bufIndex = 0 }
        _ = curing_prep_read(
            ring, fixedFile ? 0 : pool.fd, fixedFile ? 1 : 0, dst, UInt32(n), UInt64(sourceOffset),
            bufIndex, URingUserData.make(.data, slot: idx, chunk: c, generation: s.pointee.generation))
        }
        if st.pointee.hasProbe, let probe = st.pointee.probe {
            let cookie = s.pointee.cookie
            probe(DMAAccess(cookie: cookie, kind: .read, address: UInt(bitPattern: pool.base + sourceOffset), count: n))
        }
        return 1
    }

    /// Hands issued descriptors to the kernel in cookie order, as far as the SQ, pause and a
    /// paced barrier allow. Returns the SQEs prepped and not yet submitted. A thread that may
    /// not enter the ring (a client with DEFER_TASKRUN) only preps: when the SQ is full it
    /// stops and leaves the rest to the engine.
    func flush(_ ring: OpaquePointer, pending: Int, _ sq: borrowing SQHeld) -> Int {
        var pending = pending
        let leftBehind = lock.withLock { held in flushLocked(ring, pending: &pending, sq, held) }
        // The SQ stayed full: let the engine hand over the rest once it has reaped. On the
        // engine thread (an issuePending from a callback) that is its next round: without
        // `pumpNeeded` nothing brought it back, and the rest never started (found by the
        // random-client checker on uring-sqpoll, whose SQ thread frees entries late).
        if leftBehind {
            if onEngineThread { pumpNeeded = true } else { request(URingControl.flush, urgent: true) }
        }
        return pending
    }

    /// `flush` under the channel lock, which it drops only to submit a full SQ. Returns true
    /// when the SQ left issued descriptors behind.
    func flushLocked(_ ring: OpaquePointer, pending: inout Int, _ sq: borrowing SQHeld, _ held: borrowing Held) -> Bool {
        let mayEnter = setup != .deferTaskrun || onEngineThread
        var fullRounds = 0
        var leftBehind = false
        while !st.pointee.paused && st.pointee.barrier < 0 && st.pointee.kcursor < st.pointee.issuedEnd {
            let idx = fifo[st.pointee.kcursor & fifoMask]
            let s = slots + Int(idx)
            if s.pointee.paced {
                // The engine feeds it; nothing after it starts until it is done.
                s.pointee.state = .active
                slotCold[Int(idx)].nextDue = 0
                s.pointee.onPacedList = true
                st.pointee.barrier = Int32(idx)
                paced[st.pointee.pacedCount] = idx
                st.pointee.pacedCount += 1
                st.pointee.kcursor += 1
                st.pointee.bytesInKernel += s.pointee.length
                if onEngineThread {
                    pacedAdded = true
                } else {
                    held.whileUnlocked { request(URingControl.service, urgent: true) }
                }
                break
            }
            let need = s.pointee.fault != nil ? 1 : s.pointee.chunkCount
            if Int(curing_sq_space_left(ring)) < need {
                guard mayEnter else {
                    leftBehind = true
                    break
                }
                // SQ full: submit what is prepped and try again (with SQPOLL the kernel
                // thread frees entries asynchronously).
                let submitNow = pending > 0
                held.whileUnlocked {
                    if submitNow { submitSQ(ring, sq) } else { _ = sched_yield() }
                }
                if submitNow { pending = 0 }
                fullRounds += 1
                if fullRounds > 64 {
                    leftBehind = true
                    break
                }
                continue
            }
            // Ordering: seq_cst; pairs with the seq_cst load in `wakeEngine` (the count must be
            // visible before the SQE can complete and before a doorbell decision reads it).
            outstanding.wrappingAdd(need, ordering: .sequentiallyConsistent)
            pending += prepDescriptor(ring, idx, sq, held)
            st.pointee.kcursor += 1
        }
        inFlightBytes.store(st.pointee.bytesInKernel, ordering: .relaxed)
        return leftBehind
    }

    /// Submits issued descriptors from the calling thread (plain and sqpoll setups).
    func pumpFromClient() {
        sqLock.withLock { sq in
            if let ring {
                let pending = flush(ring, pending: 0, sq)
                if pending > 0 { submitSQ(ring, sq) }
            }
        }
    }

    /// DEFER_TASKRUN: preps the issued descriptors' SQEs on the calling thread and asks the
    /// engine, the ring's only issuer, to enter. The engine then spends its time in the kernel
    /// and on completions, not on reading slots the client has just written.
    func prepFromClient() {
        let prepped = sqLock.withLock { sq -> Bool in
            guard let ring else { return false }
            _ = flush(ring, pending: 0, sq)
            // Ordering: release; pairs with the acquire load in `enterPrepped`: the SQEs'
            // contents are written before the engine publishes them to the kernel.
            preppedTail.store(curing_sq_tail(ring), ordering: .releasing)
            return true
        }
        // Urgent: the SQEs just counted in `outstanding` are not in the kernel yet, so no CQE
        // will wake a parked engine.
        if prepped { request(URingControl.enter, urgent: true) }
    }

    /// DEFER_TASKRUN, engine thread: publishes the SQEs prepped up to `preppedTail` and
    /// enters for them. It takes no lock, so a client prepping the next batch does not wait
    /// for it, nor it for the client.
    func enterPrepped(_ ring: OpaquePointer) {
        // Ordering: acquire; pairs with the release stores of `preppedTail`.
        let n = curing_sq_publish_to(ring, preppedTail.load(ordering: .acquiring))
        if n > 0 { enterSubmit(ring, n) }
    }

    /// The engine's submission with DEFER_TASKRUN: enters for `count` published SQEs, with no
    /// lock held, so that a client can prep the next batch meanwhile. A failure leaves them
    /// published; the next round enters for them again.
    func enterSubmit(_ ring: OpaquePointer, _ count: UInt32) {
        while true {
            let r = curing_enter_submit(ring, count)
            if r >= 0 { return }
            if r == -EINTR { continue }
            lastSubmitError.store(r, ordering: .relaxed)
            pumpNeeded = true
            return
        }
    }

    /// The engine's submission round: doorbell, cancel, paced chunks, then issued descriptors.
    /// Returns the earliest time a paced chunk is due (0 = none).
    func pumpFromEngine(_ ring: OpaquePointer) -> UInt64 {
        sqLock.withLock { sq -> UInt64 in
            var pending = 0
            var due: UInt64 = 0
            pacedAdded = false
            // One section under the channel lock: each acquisition here is one the client's
            // prep and submit may wait behind.
            lock.withLock { held in
                if !st.pointee.doorbellArmed && curing_sq_space_left(ring) > 0 {
                    _ = curing_prep_read(ring, doorbellFD, 0, doorbellBuffer, 8, 0, -1, URingUserData.make(.doorbell))
                    st.pointee.doorbellArmed = true
                    pending += 1
                }
                if st.pointee.cancelToPrep && curing_sq_space_left(ring) > 0 {
                    _ = curing_prep_cancel_any(ring, URingUserData.make(.cancel))
                    st.pointee.cancelToPrep = false
                    pending += 1
                }
                // Issued descriptors first (a paced one found there joins the paced list),
                // then the paced chunks; a paced descriptor that finished lifts its barrier:
                // flush again. What the SQ leaves behind shows in `pumpNeeded` below.
                _ = flushLocked(ring, pending: &pending, sq, held)
                if st.pointee.pacedCount > 0 {
                    var barrierLifted = false
                    pending += servicePaced(ring, due: &due, barrierLifted: &barrierLifted, sq, held)
                    if barrierLifted { _ = flushLocked(ring, pending: &pending, sq, held) }
                }
                // Pump again next round only if something was left behind for lack of SQ
                // space. Paced descriptors bring the engine back by themselves: a chunk's CQE
                // sets `pumpNeeded`, a delay ends at `due`, and resume/stall release come
                // through `control`.
                pumpNeeded = pacedAdded || !st.pointee.doorbellArmed || st.pointee.cancelToPrep
                    || (!st.pointee.paused && st.pointee.barrier < 0 && st.pointee.kcursor < st.pointee.issuedEnd)
            }
            if setup == .deferTaskrun {
                // The engine's own SQEs join the clients' (`prepFromClient`); the engine loop
                // enters for all of them (`enterPrepped`).
                // Ordering: release; as in `prepFromClient`.
                preppedTail.store(curing_sq_tail(ring), ordering: .releasing)
            } else if pending > 0 {
                submitSQ(ring, sq)
            }
            return due
        }
    }

    /// Feeds paced descriptors: one chunk at a time, each after its delay, none while paused
    /// or stalled.
    func servicePaced(
        _ ring: OpaquePointer, due: inout UInt64, barrierLifted: inout Bool, _ sq: borrowing SQHeld, _ held: borrowing Held
    ) -> Int {
        var prepped = 0
        let now = MonotonicClock.now()
        var i = 0
        while i < st.pointee.pacedCount {
            let idx = paced[i]
            let s = slots + Int(idx)
            if s.pointee.state != .active {
                // Terminated meanwhile (terminate empties the list, so this is a safety net).
                s.pointee.onPacedList = false
                removePaced(at: i, held)
                if st.pointee.barrier == Int32(idx) {
                    st.pointee.barrier = -1
                    barrierLifted = true
                }
                continue
            }
            if s.pointee.outstanding > 0 {
                i += 1
                continue
            }
            if s.pointee.chunksIssued >= s.pointee.chunkCount {
                s.pointee.state = .done
                s.pointee.onPacedList = false
                removePaced(at: i, held)
                if st.pointee.barrier == Int32(idx) {
                    st.pointee.barrier = -1
                    barrierLifted = true
                }
                continue
            }
            if st.pointee.paused || s.pointee.stall {
                i += 1
                continue
            }
            if slotCold[Int(idx)].nextDue == 0 { slotCold[Int(idx)].nextDue = now &+ UInt64(max(0, s.pointee.delay)) }
            if now >= slotCold[Int(idx)].nextDue {
                guard curing_sq_space_left(ring) > 0 else { break }
                if s.pointee.fault != nil {
                    _ = curing_prep_nop(ring, URingUserData.make(.fault, slot: idx, generation: s.pointee.generation))
                    s.pointee.chunksIssued = s.pointee.chunkCount
                } else {
                    _ = prepChunk(ring, idx, s.pointee.chunksIssued, sq, held)
                    s.pointee.chunksIssued += 1
                }
                s.pointee.outstanding = 1
                // Ordering: seq_cst; as in `flush`.
                outstanding.wrappingAdd(1, ordering: .sequentiallyConsistent)
                slotCold[Int(idx)].nextDue = 0
                prepped += 1
            } else if due == 0 || slotCold[Int(idx)].nextDue < due {
                due = slotCold[Int(idx)].nextDue
            }
            i += 1
        }
        return prepped
    }

    @inline(__always)
    func removePaced(at i: Int, _: borrowing Held) {
        st.pointee.pacedCount -= 1
        paced[i] = paced[st.pointee.pacedCount]
    }
}
