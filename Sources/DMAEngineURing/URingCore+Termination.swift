// dmabench — DMAEngineURing
//
// Termination: drop the submitted descriptors, turn those in the kernel into zombies and
// cancel them; synchronize waits until every zombie's CQEs arrived (rules S6, T3).

import CURing
import DMAEngine
import Glibc
import Platform
import Synchronization

extension URingCore {
    // MARK: Termination

    /// terminateAsync's effect (caller checked the context rules): every submitted descriptor
    /// is dropped without callback; those with SQEs in the kernel become zombies until their
    /// CQEs arrive, and an IORING_OP_ASYNC_CANCEL is queued for them. `last := used` (S6).
    func terminateLocked(_ held: borrowing Held) -> Bool {
        st.pointee.terminateEpoch &+= 1
        var pos = st.pointee.head
        while pos < st.pointee.tail {
            let idx = fifo[pos & fifoMask]
            let s = slots + Int(idx)
            if s.pointee.state == .active && s.pointee.outstanding > 0 {
                s.pointee.state = .zombie
                slotCold[Int(idx)].zombieEpoch = st.pointee.terminateEpoch
                s.pointee.callback.clear()
                st.pointee.zombies += 1
            } else {
                retire(idx, held)
            }
            pos += 1
        }
        st.pointee.head = st.pointee.tail
        st.pointee.kcursor = st.pointee.tail
        st.pointee.issuedEnd = st.pointee.tail
        st.pointee.barrier = -1
        st.pointee.pacedCount = 0
        st.pointee.bytesInKernel = 0
        inFlightBytes.store(0, ordering: .relaxed)
        st.pointee.watermark.last = st.pointee.watermark.used
        publish(held)
        st.pointee.paused = false
        if st.pointee.zombies > 0 && !st.pointee.cancelToPrep {
            st.pointee.cancelToPrep = true
            st.pointee.cancelsOutstanding += 1
            return true
        }
        return false
    }

    /// synchronize's wait: no zombie left, no cancel outstanding, and no callback batch that
    /// began before this call still running.
    func waitQuiescent() {
        let epoch = lock.withLock { _ in st.pointee.terminateEpoch }
        // Ordering: seq_cst; pairs with the increments in `deliver`.
        let seq = batchSeq.load(ordering: .sequentiallyConsistent)
        waitFor {
            let idle = lock.withLock { _ in st.pointee.zombies == 0 && st.pointee.cancelsOutstanding == 0 }
            // Ordering: seq_cst; pairs with the increments in `deliver` (see above).
            return idle && (seq & 1 == 0 || batchSeq.load(ordering: .sequentiallyConsistent) != seq)
        }
        lock.withLock { _ in if st.pointee.syncedEpoch < epoch { st.pointee.syncedEpoch = epoch } }
    }

    /// Stops the engine thread and joins it (unless called on it: then it exits by itself
    /// after the current callback batch and drops its reference to this object). Once
    /// joined, the ring is gone and the doorbell and pool files are closed.
    func stopEngine() {
        request(URingControl.stop, urgent: true)
        if !onEngineThread {
            engineThread?.join()
            closeFiles()
        }
    }

    /// Closes the doorbell eventfd and the pool file (the pool mapping stays until the
    /// channel is freed, so buffers the client still holds remain valid memory). Only after
    /// the engine exited: it is the only thread that waits on the doorbell, and the ring that
    /// reads the pool file is destroyed by then.
    func closeFiles() {
        let fd = doorbell.exchange(-1, ordering: .relaxed)
        if fd >= 0 { close(fd) }
        pool.closeFile()
    }
}
