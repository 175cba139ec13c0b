// dmabench — DMAEngineLocked
//
// The callback executor (virt-dma's tasklet, `vchan_complete`): it takes the completed list
// and the pending cyclic period under the lock and runs the callbacks without it, in
// completion order. Under `DMACallbackContext.engineThread` the engine runs the same body.

import DMAEngine
import Glibc
import Platform
import Synchronization

extension LockedCore {
    // MARK: Callback executor

    /// Kernel: the tasklet `vchan_complete`: take the completed list and the pending cyclic
    /// period under the lock, run the callbacks without it, in completion order, then
    /// retire the descriptors (`vchan_vdesc_fini`).
    func executorMain() {
        var wakes = PendingWakes()
        let s = st
        lock.withLock { held in
            while true {
                if dispatchCompletions(&wakes, held) { continue }
                if s.pointee.shutdown { break }
                s.pointee.executorIdle = true
                held.whileUnlocked {
                    flush(&wakes)
                    idleWait(executorEvent)
                }
                s.pointee.executorIdle = false
            }
        }
        flush(&wakes)
    }

    /// One run of the tasklet body (`vchan_complete`): splice the completed list and the
    /// pending cyclic period under the lock, drop the lock, invoke the callbacks in
    /// completion order, retake the lock and retire. Run by the executor thread, or by the
    /// engine thread itself under `DMACallbackContext.engineThread`. The lock is dropped
    /// while the callbacks run. False when nothing was pending; true when a
    /// batch ran or (`.callbackAfterTerminate` only) the late callbacks are not due yet, so
    /// the caller re-checks.
    func dispatchCompletions(_ wakes: inout PendingWakes, _ held: borrowing Held) -> Bool {
        let s = st
        if s.pointee.completed.isEmpty && s.pointee.cyclicPending < 0 { return false }
        if defect == .callbackAfterTerminate {
            let now = MonotonicClock.now()
            let notBefore = s.pointee.lateCallbacksNotBefore
            if now < notBefore {
                held.whileUnlocked { MonotonicClock.sleep(nanoseconds: Int64(notBefore &- now)) }
                return true
            }
        }
        s.pointee.executorStarted &+= 1
        let cyclic = s.pointee.cyclicPending
        s.pointee.cyclicPending = -1
        let cyclicCookie = cyclic >= 0 ? slots[Int(cyclic)].cookie : DMACookie(0)
        var n = 0
        var i = s.pointee.completed.head
        while i >= 0 {
            let slot = slots + Int(i)
            slot.pointee.state = .dispatched
            batch[n] = BatchEntry(index: i, cookie: slot.pointee.cookie, result: slot.pointee.result, owned: !slot.pointee.reuse)
            n += 1
            i = slot.pointee.next
        }
        s.pointee.completed = SlotList()
        held.whileUnlocked {
            flush(&wakes)
            if cyclic >= 0 {
                slots[Int(cyclic)].callback.invoke(cookie: cyclicCookie, result: .noError)
            }
            for k in 0..<n {
                let e = batch[k]
                // Kernel order (24461d9792c2): invoke with `tx_result`, then fini.
                if e.owned {
                    // Moved out, not copied (no retain/release of the closures); `freeSlot`
                    // then finds it empty. A REUSE descriptor keeps its callback: a callback
                    // may resubmit it, and the engine reads the callback when it takes it.
                    var callback = DMACallback()
                    swap(&callback, &slots[Int(e.index)].callback)
                    callback.invoke(cookie: e.cookie, result: e.result)
                } else {
                    slots[Int(e.index)].callback.invoke(cookie: e.cookie, result: e.result)
                }
            }
        }
        for k in 0..<n {
            let e = batch[k]
            // Skip a REUSE descriptor that a callback already resubmitted.
            if slots[Int(e.index)].state == .dispatched && slots[Int(e.index)].cookie == e.cookie {
                retire(e.index, held)
            }
        }
        s.pointee.executorFinished &+= 1
        if s.pointee.syncWaiters > 0 { wakes.synchronizers = true }
        return true
    }
}
