// dmabench — DMAEngineURing
//
// The engine thread: it owns the ring with DEFER_TASKRUN, pumps, reaps and delivers, and
// sleeps in io_uring_enter when nothing is due (spinning a while first, except with SQPOLL).

import CURing
import DMAEngine
import Glibc
import Platform
import Synchronization

extension URingCore {
    // MARK: The engine thread

    func engineMain() {
        enginePThread = pthread_self()
        var r: OpaquePointer?
        let mode: Int32
        switch setup {
        case .plain: mode = Int32(CURING_MODE_PLAIN.rawValue)
        case .deferTaskrun: mode = Int32(CURING_MODE_DEFER.rawValue)
        case .sqpoll: mode = Int32(CURING_MODE_SQPOLL.rawValue)
        }
        // SQPOLL: the SQ thread is left unpinned. Pinned next to the engine thread it takes
        // that CPU for its whole idle period and the engine only runs between time slices
        // (3-4 ms p50 at depth 256 on two vCPUs).
        var rc = curing_create(UInt32(sqEntries), UInt32(4 * sqEntries), mode, -1, Self.sqIdleMilliseconds, &r)
        if rc == 0, let ring = r, fixedFile {
            if curing_register_file(ring, pool.fd) < 0 {
                curing_destroy(ring)
                r = nil
                rc = Self.registerFailedMarker
            } else {
                fixedBuffer = curing_register_buffer(ring, pool.base, pool.byteCount) == 0
            }
        }
        guard rc == 0, let ring = r else {
            initError = rc
            initDone.signal()
            return
        }
        // The engine placement covers the kernel's io-wq workers too (memfd reads run there):
        // IORING_REGISTER_IOWQ_AFF pins them to the engine CPU.
        if let cpu = options.engineCPU {
            var cpus: [Int32] = [Int32(cpu)]
            iowqAffinityResult = curing_register_iowq_affinity(ring, &cpus, 1)
        }
        self.ring = ring
        initDone.signal()
        engineLoop(ring)
        retireDoorbell(ring)
        sqLock.withLock { _ in
            self.ring = nil
            curing_destroy(ring)
        }
    }

    /// Cancels the doorbell read and reaps its CQE (bounded: 100 ms), so that nothing is
    /// pending when the ring is closed: the kernel's teardown, and with SQPOLL the SQ thread's
    /// exit, then need not cancel it themselves (an armed read kept the SQ thread alive for
    /// 50-100 ms after io_uring_queue_exit in a C check).
    func retireDoorbell(_ ring: OpaquePointer) {
        let armed = sqLock.withLock { sq -> Bool in
            let armed = lock.withLock { _ in st.pointee.doorbellArmed }
            if armed && curing_prep_cancel_any(ring, URingUserData.make(.exitCancel)) == 0 { submitSQ(ring, sq) }
            return armed
        }
        guard armed else { return }
        let deadline = MonotonicClock.now() &+ 100_000_000
        while MonotonicClock.now() < deadline {
            _ = reap(ring)
            if !lock.withLock({ _ in st.pointee.doorbellArmed }) { return }
            _ = curing_wait(ring, 1_000_000)
        }
    }

    func engineLoop(_ ring: OpaquePointer) {
        var stopping = false
        var due: UInt64 = 0
        let spinNs = UInt64(max(0, options.spinNanoseconds))
        while true {
            // Ordering: acquire; pairs with the seq_cst bitwiseOr in `request`.
            let ctl = control.exchange(0, ordering: .acquiringAndReleasing)
            if ctl & URingControl.stop != 0 { stopping = true }
            // `enter` alone needs no pump: the client prepped the SQEs itself.
            let pumped = ctl & ~URingControl.enter != 0 || pumpNeeded || (due != 0 && MonotonicClock.now() >= due)
            if pumped { due = pumpFromEngine(ring) }
            if setup == .deferTaskrun { enterPrepped(ring) }
            var progressMade = reap(ring)
            if progressMade > 0 || pumped {
                // A short batch means the FIFO head is not done: nothing becomes done while
                // the callbacks run (only `reap`, on this thread, marks slots done), so there
                // is no need to take the lock again to find that out.
                while true {
                    let d = deliver()
                    progressMade += d
                    if d < Self.deliveryBatch { break }
                }
            }
            if progressMade > 0 || pumpNeeded { continue }
            // Ordering: seq_cst; pairs with the seq_cst decrement in `absorb`.
            if stopping && outstanding.load(ordering: .sequentiallyConsistent) == 0 { break }

            // Spin a while before sleeping, yielding rather than pausing because io-wq workers
            // need the CPU; with DEFER_TASKRUN, CQEs appear only when this thread enters the
            // kernel, so spin only for requests while nothing is in flight
            // (docs/measurement-notes.md, "URingCore.engineLoop: spinning before sleeping").
            // SQPOLL: the SQ thread already spins; a spinning engine would take the CPU it needs.
            if spinNs > 0 && due == 0 && setup != .sqpoll {
                let start = MonotonicClock.now()
                let watchCQ = setup != .deferTaskrun
                var i = 0
                spin: while true {
                    if control.load(ordering: .relaxed) != 0 { break spin }
                    if watchCQ {
                        if curing_cq_ready(ring) > 0 { break spin }
                    } else if outstanding.load(ordering: .relaxed) > 0 {
                        break spin
                    }
                    i += 1
                    if i & 7 == 0 {
                        sched_yield()
                        if MonotonicClock.now() &- start > spinNs { break spin }
                    } else {
                        cpuRelax()
                    }
                }
            }

            // Ordering: seq_cst; the Dekker pair with `wakeEngine`: publish "parked", then
            // re-check `control`.
            parked.store(true, ordering: .sequentiallyConsistent)
            if control.load(ordering: .sequentiallyConsistent) != 0 || curing_cq_ready(ring) > 0 {
                parked.store(false, ordering: .relaxed)
                continue
            }
            var timeout: Int64 = -1
            if due != 0 {
                let now = MonotonicClock.now()
                timeout = due > now ? Int64(due - now) : 0
            }
            if timeout != 0 {
                _ = curing_wait(ring, timeout)
            }
            parked.store(false, ordering: .relaxed)
        }
    }

    /// Reaps on the engine thread until no data SQE is in the kernel (pause from a callback).
    func drainInline() {
        guard let ring else { return }
        // Ordering: seq_cst; pairs with the seq_cst decrement in `absorb` (on this thread here,
        // so the order is program order; seq_cst as everywhere `outstanding` is read).
        while outstanding.load(ordering: .sequentiallyConsistent) > 0 {
            if setup == .deferTaskrun {
                // SQEs a client prepped are counted but not in the kernel until this thread enters.
                enterPrepped(ring)
            }
            if reap(ring) == 0 { _ = curing_wait(ring, 1_000_000) }
        }
    }
}
