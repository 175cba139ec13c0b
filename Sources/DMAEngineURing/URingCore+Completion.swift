// dmabench — DMAEngineURing
//
// The completion side, on the engine thread: CQEs reaped in batches and applied to the
// slots, then callbacks delivered from the FIFO head in cookie order with no lock held.

import CURing
import DMAEngine
import Glibc
import Platform
import Synchronization

extension URingCore {
    // MARK: Completion side (engine thread)

    /// Reaps every ready CQE in batches (io_uring_peek_batch_cqe + io_uring_cq_advance) and
    /// applies them to the slots. Returns the number reaped.
    func reap(_ ring: OpaquePointer) -> Int {
        var total = 0
        while true {
            let n = Int(curing_reap(ring, cqeData, cqeRes, UInt32(Self.reapBatch)))
            if n == 0 { break }
            // The client wrote these slots last: start every line's transfer before the lock,
            // so that they overlap instead of stalling `absorb` one slot at a time.
            for i in 0..<n where URingUserData.kind(cqeData[i]) <= URingUserData.Kind.fault.rawValue {
                let idx = URingUserData.slot(cqeData[i])
                if idx < slotCount { prefetchForWrite(slots + idx, count: MemoryLayout<URingSlot>.stride) }
            }
            lock.withLock { held in
                var data = 0
                for i in 0..<n where absorb(cqeData[i], cqeRes[i], held) { data += 1 }
                // Ordering: seq_cst; pairs with the seq_cst load in `wakeEngine` and in pause's
                // wait. Once per batch, after every CQE's accounting (P1: `pause()` returns once
                // it reads zero, and the bytes done and the states are final by then). Per CQE,
                // this locked decrement took 89 % of `reap`'s samples (64 B b32 d256).
                if data > 0 { outstanding.wrappingSubtract(data, ordering: .sequentiallyConsistent) }
                inFlightBytes.store(st.pointee.bytesInKernel, ordering: .relaxed)
            }
            total += n
            if n < Self.reapBatch { break }
        }
        if total > 0 { notifyWaiters() }
        return total
    }

    /// Applies one CQE. Returns true for a data CQE that `outstanding` counted: the caller
    /// subtracts them from it once the batch is applied.
    @inline(__always)
    func absorb(_ ud: UInt64, _ res: Int32, _ held: borrowing Held) -> Bool {
        switch URingUserData.kind(ud) {
        case URingUserData.Kind.doorbell.rawValue:
            st.pointee.doorbellArmed = false
            pumpNeeded = true
            return false
        case URingUserData.Kind.cancel.rawValue:
            st.pointee.cancelsOutstanding -= 1
            return false
        case URingUserData.Kind.exitCancel.rawValue:
            return false
        default:
            break
        }
        let idx = URingUserData.slot(ud)
        guard idx < slotCount else {
            strayCompletions.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        let s = slots + idx
        guard UInt64(s.pointee.generation) & URingUserData.generationMask == URingUserData.generation(ud),
            s.pointee.state == .active || s.pointee.state == .zombie, s.pointee.outstanding > 0
        else {
            strayCompletions.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        s.pointee.outstanding -= 1
        if s.pointee.onPacedList { pumpNeeded = true }
        let isData = URingUserData.kind(ud) == URingUserData.Kind.data.rawValue
        let chunk = URingUserData.chunk(ud)
        if isData, st.pointee.hasProbe, let probe = st.pointee.probe, s.pointee.destination != nil {
            if s.pointee.pieceCount > 0 {
                // One write per piece of the run: each lies in one destination segment.
                let r = runs[Int(idx) * Self.pieceCapacity + chunk]
                for k in Int(r.first)..<Int(r.first + r.count) {
                    let p = pieces[Int(idx) * Self.pieceCapacity + k]
                    probe(DMAAccess(cookie: s.pointee.cookie, kind: .write, address: UInt(bitPattern: p.destination), count: p.length))
                }
            } else {
                let (dst, _, n) = span(UInt32(idx), chunk)
                probe(DMAAccess(cookie: s.pointee.cookie, kind: .write, address: UInt(bitPattern: dst), count: n))
            }
        }
        if s.pointee.state == .zombie {
            if slotCold[idx].zombieEpoch <= st.pointee.syncedEpoch {
                lateCompletions.wrappingAdd(1, ordering: .relaxed)
            }
            if s.pointee.outstanding == 0 {
                retire(UInt32(idx), held)
                st.pointee.zombies -= 1
            }
            return true
        }
        if !isData {
            s.pointee.result = s.pointee.fault == .write ? .writeFailed : .readFailed
        } else if res < 0 {
            if s.pointee.result == .noError {
                s.pointee.result = res == -ECANCELED ? .aborted : (res == -EFAULT ? .writeFailed : .readFailed)
            }
        } else {
            let want = span(UInt32(idx), chunk).count
            s.pointee.bytesDone += Int(res)
            if Int(res) < want && s.pointee.result == .noError { s.pointee.result = .readFailed }
        }
        if s.pointee.outstanding == 0 && !s.pointee.onPacedList && s.pointee.chunksIssued == s.pointee.chunkCount {
            s.pointee.state = .done
        }
        return true
    }

    /// Takes the done descriptors at the head of the FIFO (cookie order), advances `last`
    /// past them, and runs their callbacks with no lock held. Returns how many it retired.
    func deliver() -> Int {
        var n = 0
        let retired = lock.withLock { held -> Int in
            let h = st.pointee.head
            if st.pointee.paused || h == st.pointee.kcursor || slots[Int(fifo[h & fifoMask])].state != .done {
                return 0
            }
            // Ordering: seq_cst; pairs with the load in `waitQuiescent`: a synchronize that runs
            // after a terminate which followed this point sees an odd value (or a later one).
            batchSeq.wrappingAdd(1, ordering: .sequentiallyConsistent)
            var retired = 0
            var lastCookie = st.pointee.watermark.last
            while retired < Self.deliveryBatch && st.pointee.head < st.pointee.kcursor {
                let idx = fifo[st.pointee.head & fifoMask]
                let s = slots + Int(idx)
                guard s.pointee.state == .done else { break }
                if s.pointee.flags.contains(.interrupt) && s.pointee.callback.isSet {
                    let code = s.pointee.result
                    let residue = code == .noError ? 0 : max(0, s.pointee.length - s.pointee.bytesDone)
                    (batch + n).initialize(to: URingDelivery(callback: s.pointee.callback.take(), cookie: s.pointee.cookie,
                                                             result: DMAResult(code, residue: residue)))
                    n += 1
                }
                lastCookie = s.pointee.cookie
                st.pointee.bytesInKernel -= s.pointee.length
                retire(idx, held)
                st.pointee.head += 1
                retired += 1
            }
            st.pointee.watermark.last = lastCookie
            publish(held)
            inFlightBytes.store(st.pointee.bytesInKernel, ordering: .relaxed)
            return retired
        }
        if retired == 0 { return 0 }
        for i in 0..<n {
            // Moved out of the batch, and the callback out of that (calling through a `let`
            // copy retained it): one release per callback, and nothing left in the batch to
            // destroy (a `deinitialize` called the runtime's generic `swift_arrayDestroy` on
            // entries already emptied).
            var d = (batch + i).move()
            d.callback.take().invoke(cookie: d.cookie, result: d.result)
        }
        // Ordering: seq_cst; pairs with the load in `waitQuiescent`.
        batchSeq.wrappingAdd(1, ordering: .sequentiallyConsistent)
        notifyWaiters()
        return retired
    }
}
