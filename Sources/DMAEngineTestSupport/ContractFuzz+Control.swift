// dmabench — DMAEngineTestSupport
//
// The random-client checker's control operations (pause windows, terminates, synchronize,
// reaping completed transfers) and the end of a trial. Each runs under the client's control
// mutex, as a driver serializes its stream's trigger operations; callbacks never take it.

#if os(Linux)
import DMAEngine
import Glibc
import Platform
import Synchronization

extension FuzzTrial {
    /// P1: pause, then everything the client can see must stay as it was when pause returned
    /// (status, residue, watermark, destination bytes), while the client rewrites the sources
    /// and other threads go on submitting (P2: none of it may start).
    func pauseWindow(thread t: Int, hold: Int, end: Int) {
        control.withLock { _ in
            if state.withLock({ $0.paused }) { return }
            let epoch0 = state.withLock { $0.quietEpoch }
            let live = liveTransfers()
            let cookies = state.withLock { _ in live.map(\.cookie) }
            var reads: [(Int, Int, DMACookie, DMAStatus, DMATxState)] = []
            reads.reserveCapacity(cookies.count)
            let i = history.tick()
            do throws(DMAError) { try channel.pause() } catch {
                if error != .notSupported || caps.cmdPause {
                    history.violation(t, "P4: pause failed with \(error) (cmdPause is \(caps.cmdPause))")
                }
                return
            }
            let r = history.tick()
            // The first reads come straight after pause returned, as a client's would: a
            // residue that still moves shows here.
            for c in cookies where c.isValid {
                let j = history.tick()
                let (s, st) = channel.status(of: c)
                reads.append((j, history.tick(), c, s, st))
            }
            history.record(t, i, r, .pause)
            for (j, k, c, s, st) in reads { history.record(t, j, k, .status(cookie: c, status: s, state: st)) }
            state.withLock { $0.paused = true }
            pauses.wrappingAdd(1, ordering: .relaxed)
            var snaps: [(FuzzTransfer, DMACookie, [UInt8])] = []
            for (x, c) in zip(live, cookies) { snaps.append((x, c, x.destinationSnapshot())) }
            let known = Set(live.map(\.id))
            for x in live where x.spec.kind != .memset {
                let g = state.withLock { _ in
                    x.generation += 1
                    return x.generation
                }
                x.fillSource(generation: g)
            }
            if hold > 0 { MonotonicClock.sleep(nanoseconds: Int64(hold) * 1000) }
            for (x, c, sum) in snaps {
                if c.isValid {
                    let j = history.tick()
                    let (s, st) = channel.status(of: c)
                    history.record(t, j, .status(cookie: c, status: s, state: st))
                }
                if !x.destinationEquals(sum) && state.withLock({ $0.epoch }) == epoch0 {
                    history.violation(t, "P1: the destination of #\(x.id) (cookie \(c), \(x.spec.kind) \(x.spec.length) B) changed while the channel was paused")
                }
            }
            // P2: transfers first submitted after pause returned must not have started. Not
            // any submit: a callback that runs while paused (P1 allows it) may resubmit a
            // transfer that completed before the pause, whose destination is already written
            // (that false positive failed CI on uring once).
            let now = liveTransfers()
            let since = state.withLock { _ in now.filter { $0.cookie.isValid && $0.firstSubmitInvocation > r } }
            for x in since where !known.contains(x.id) {
                if let k = FuzzPattern.firstMismatch(
                    x.destination.base, count: x.destination.count, table: FuzzPattern.destinationTable, phase: 0),
                    state.withLock({ $0.epoch }) == epoch0
                {
                    let c = state.withLock { _ in x.cookie }
                    history.violation(t, "P2: #\(x.id) (cookie \(c)), submitted while paused, wrote its destination (byte \(k)) before resume")
                }
            }
            switch end {
            case 1: terminateSync(thread: t)
            case 2: terminateAsyncSynchronize(thread: t)
            default:
                let j = history.tick()
                do throws(DMAError) {
                    try channel.resume()
                    history.record(t, j, .resume)
                } catch {
                    // A callback's terminate ended the pause (a terminate un-pauses, T5).
                    if !(error == .notPaused && state.withLock({ $0.epoch }) != epoch0) {
                        history.violation(t, "P3: resume after pause failed with \(error)")
                    }
                }
                state.withLock { $0.paused = false }
            }
        }
    }

    /// Control mutex held.
    func terminateSync(thread t: Int) {
        gate.set(stopping: true)
        state.withLock { $0.epoch += 1 }
        let i = history.tick()
        do { try channel.terminateSync() } catch { history.violation(t, "T4: terminateSync failed with \(error)") }
        history.record(t, i, .terminateSync)
        state.withLock { $0.terminatesEnded += 1 }
        state.withLock { $0.paused = false }
        needsSync.store(false, ordering: .relaxed)  // Ordering: relaxed; this synchronize covers a callback's terminate.
        afterSynchronize(terminateInvocation: i, thread: t)
        gate.set(stopping: false)
    }

    /// Control mutex held.
    func terminateAsyncSynchronize(thread t: Int) {
        gate.set(stopping: true)
        state.withLock { $0.epoch += 1 }
        let i = history.tick()
        do { try channel.terminateAsync() } catch { history.violation(t, "T1: terminateAsync failed with \(error)") }
        history.record(t, i, .terminateAsync(fromCallback: false))
        state.withLock { $0.terminatesEnded += 1 }
        sched_yield()
        let j = history.tick()
        do { try channel.synchronize() } catch { history.violation(t, "T3: synchronize failed with \(error)") }
        history.record(t, j, .synchronize)
        state.withLock { $0.paused = false }
        needsSync.store(false, ordering: .relaxed)  // Ordering: relaxed; this synchronize covers a callback's terminate.
        afterSynchronize(terminateInvocation: i, thread: t)
        gate.set(stopping: false)
    }

    /// A callback called terminateAsync: synchronize, free, reopen the gate.
    func synchronizeAfterCallbackTerminate(_ t: Int) {
        control.withLock { _ in
            // Ordering: acquire; pairs with the release store in `stopFromCallback`.
            guard needsSync.exchange(false, ordering: .acquiring) else { return }
            // Ordering: relaxed; published by the release store of `needsSync`.
            let ti = callbackTerminate.load(ordering: .relaxed)
            let j = history.tick()
            do { try channel.synchronize() } catch { history.violation(t, "T3: synchronize failed with \(error)") }
            history.record(t, j, .synchronize)
            state.withLock { $0.paused = false }
            afterSynchronize(terminateInvocation: ti, thread: t)
            gate.set(stopping: false)
        }
    }

    /// T3: after synchronize, every transfer submitted before the terminate either got its
    /// callback or never will, and the engine no longer touches it: free its buffers (they
    /// become PROT_NONE) and, for REUSE, the descriptor (it must be back in `prepared`).
    func afterSynchronize(terminateInvocation ti: Int, thread t: Int) {
        let victims = state.withLock { s in
            s.transfers.values.filter { $0.phase == .inFlight && $0.cookie.isValid && $0.submitResponse < ti }
        }
        for x in victims.sorted(by: { $0.id < $1.id }) { release(x, thread: t, descriptor: x.spec.reuse > 0) }
    }

    /// Frees a transfer's buffers (and REUSE descriptor). Control mutex held.
    func release(_ x: FuzzTransfer, thread t: Int, descriptor: Bool) {
        let (c, d) = state.withLock { _ -> (DMACookie, DMADescriptor?) in
            x.phase = .freed
            return (x.cookie, x.descriptor)
        }
        if descriptor, let d {
            do { try channel.free(d) } catch {
                history.violation(t, "T3 (c): the REUSE descriptor of #\(x.id) (cookie \(c)) is not back in prepared: free() failed with \(error)")
            }
        }
        let i = history.tick()
        allocator.free(x.destination)
        if let s = x.source { allocator.free(s) }
        history.record(t, i, .freed(transfer: x.id, cookie: c))
    }

    /// Verifies what completed, resubmits REUSE descriptors, frees buffers.
    func reap(thread t: Int) {
        control.withLock { _ in
            let (done, polled) = state.withLock { s in
                (s.transfers.values.filter { $0.phase == .called }.sorted { $0.id < $1.id },
                 s.transfers.values.filter { $0.phase == .inFlight && $0.spec.polled && $0.cookie.isValid && $0.submitEpoch == s.epoch })
            }
            for x in done {
                if x.spec.kind != .cyclic, let bad = x.verify() {
                    history.violation(t, "data: #\(x.id) (cookie \(x.cookie), \(x.spec.kind) \(x.spec.length) B) completed, but \(bad)")
                }
                let again = state.withLock { _ -> Bool in
                    guard x.spec.reuse > 0 && x.reuseLeft > 0 else { return false }
                    x.reuseLeft -= 1
                    return true
                }
                if again, let d = x.descriptor {
                    var ok = false
                    gate.ifOpen { ok = submit(x, thread: t, reusing: d) }
                    if ok {
                        if x.spec.issue { issue(thread: t) }
                        continue
                    }
                }
                release(x, thread: t, descriptor: x.spec.reuse > 0)
            }
            for x in polled {
                let i = history.tick()
                let (s, st) = channel.status(of: x.cookie)
                history.record(t, i, .status(cookie: x.cookie, status: s, state: st))
                // A terminate makes a cookie read COMPLETE too (S6); the epoch moves before
                // any terminate is called, so reading it after the status tells them apart.
                guard s == .complete, state.withLock({ $0.epoch }) == x.submitEpoch else { continue }
                if let bad = x.verify() {
                    history.violation(t, "data: polled #\(x.id) (cookie \(x.cookie)) reads COMPLETE, but \(bad)")
                }
                release(x, thread: t, descriptor: false)
            }
        }
    }

    // MARK: End of a trial

    /// Liveness (every issued transfer completes), T8 (the channel works after a terminate),
    /// then release; late writes found by the allocator's poison check are violations.
    func finish() {
        let t = 0
        if needsSync.load(ordering: .acquiring) { synchronizeAfterCallbackTerminate(t) }  // Ordering: acquire; pairs with `stopFromCallback`.
        control.withLock { _ in
            if state.withLock({ $0.paused }) {
                let j = history.tick()
                do throws(DMAError) {
                    try channel.resume()
                    history.record(t, j, .resume)
                } catch { if error != .notPaused { history.violation(t, "P3: resume failed with \(error)") } }
                state.withLock { $0.paused = false }
            }
        }
        let j = history.tick()
        channel.issuePending()
        history.record(t, j, .issue)
        waitForCompletions(thread: t, what: "issued transfers")
        reap(thread: t)
        control.withLock { _ in terminateSync(thread: t) }
        // T8: reusable after synchronize.
        let spec = FuzzTransferSpec(
            kind: .memcpy, length: 4096, sourceOffset: 0, destinationOffset: 0, tail: 0, value: 0, period: 0, polled: false,
            reuse: 0, action: .none, issue: true)
        startTransfer(spec, thread: t)
        waitForCompletions(thread: t, what: "T8: a transfer submitted after synchronize")
        reap(thread: t)
        control.withLock { _ in
            terminateSync(thread: t)
            let rest = state.withLock { s in s.transfers.values.filter { $0.phase != .freed } }
            for x in rest.sorted(by: { $0.id < $1.id }) { release(x, thread: t, descriptor: false) }
        }
        channel.debugSetAccessProbe(nil)
        for p in allocator.finish() { history.violation(t, "T3 (a): \(p)") }
        do { try channel.release() } catch { history.violation(t, "release failed with \(error)") }
    }

    /// Waits until every transfer that must complete has: issued, not polled, not behind a
    /// running cyclic transfer (an in-order engine never passes it), and submitted after
    /// the last terminate. A violation if that takes longer than the watchdog.
    func waitForCompletions(thread t: Int, what: String) {
        let start = MonotonicClock.now()
        let limit = watchdogSeconds
        while true {
            if needsSync.load(ordering: .acquiring) { synchronizeAfterCallbackTerminate(t) }  // Ordering: acquire; pairs with `stopFromCallback`.
            let pending = state.withLock { s -> [FuzzTransfer] in
                let live = s.transfers.values.filter { $0.phase == .inFlight && $0.cookie.isValid && $0.submitEpoch == s.epoch }
                let cyclic = live.filter { $0.spec.kind == .cyclic }.map(\.cookie.rawValue).min() ?? .max
                return live.filter { !$0.spec.polled && $0.spec.kind != .cyclic && $0.cookie.rawValue < cyclic }
            }
            if pending.isEmpty { return }
            if Double(MonotonicClock.now() &- start) / 1e9 > limit {
                let list = pending.prefix(8).map { x -> String in
                    let (s, st) = channel.status(of: x.cookie)
                    return "#\(x.id) cookie \(x.cookie) (\(x.spec.length) B, \(s.rawValue), residue \(st.residue), last \(st.last), used \(st.used))"
                }.joined(separator: ", ")
                history.violation(t, "K1 (liveness): \(what): \(pending.count) still not complete after \(format3(limit)) s: \(list)")
                return
            }
            // A client that polls (`DMACallbackContext.clientPoll`): callbacks may run here.
            _ = channel.poll()
            MonotonicClock.sleep(nanoseconds: 200_000)
        }
    }
}
#endif
