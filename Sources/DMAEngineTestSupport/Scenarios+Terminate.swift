// dmabench — DMAEngineTestSupport
//
// Scenarios 14–19 of docs/contract.md part B: terminate and synchronize, the seed race
// (kernel commit b36f09c3), blocking and illegal blocking calls, and stop flags. Scenarios
// 20, 21, 29, 30 and 33 are in Scenarios+TerminateRaces.swift.

#if os(Linux)
import DMAEngine
import Glibc
import Platform
import Synchronization

extension Scenarios {
    /// Waits until the engine has started on the issued work (first write access seen, or a
    /// residue below the length), for scenarios that terminate or pause mid-transfer.
    static func waitUntilActive(_ ctx: ScenarioContext, _ rig: Rig, _ c: DMACookie, length: Int) {
        ctx.waitUntil("the engine started cookie \(c)", rig: rig) {
            rig.monitor.writes.load(ordering: .relaxed) > 0 || rig.channel.status(of: c).1.residue < length
                || rig.channel.status(of: c).0 == .complete
        }
    }

    // MARK: 14

    static func terminateQueued(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let len = 16384
        let log = CallbackLog()
        var transfers: [Transfer] = []
        var cookies: [DMACookie] = []
        for _ in 0..<8 {
            let t = try ctx.transfer(rig, bufferSize: len)
            transfers.append(t)
            let d = try ctx.prep(rig, t, callback: log.callback(ctx, rig.channel), injection: ctx.slow(len))
            cookies.append(try ctx.submit(rig, d, length: len))
        }
        rig.channel.issuePending()
        waitUntilActive(ctx, rig, cookies[0], length: len)
        let completeBefore = Set(cookies.filter { rig.channel.status(of: $0).0 == .complete })
        ctx.phase("terminateSync with 8 slow transfers queued")
        ctx.expectOK("terminateSync with queued work") { try rig.channel.terminateSync() }
        log.markFreed()
        let used = rig.channel.debugWatermark().used
        rig.monitor.forbid(upTo: used, "after terminateSync returned")
        let called = log.count
        let calledCookies = Set(log.cookies)
        for c in calledCookies where !completeBefore.contains(c) {
            ctx.fail("callback for cookie \(c), which had not completed when terminateSync was called (rule T1)")
        }
        for t in transfers {
            rig.allocator.free(t.dst)
            rig.allocator.free(t.src)
        }
        ctx.phase("watching for late callbacks for 1 s")
        ctx.idle(1.0, rig: rig)
        ctx.expectEqual(log.count, called, "callbacks after terminateSync returned (rule T3)")
        for c in cookies where !calledCookies.contains(c) {
            ctx.expectComplete(rig, c, "terminated cookie (rule S6 [T])")
        }
        // The channel is reusable (rule T8): the next cookie continues from used.
        let t = try ctx.transfer(rig, bufferSize: 4096)
        let after = CallbackLog()
        let c = try ctx.submit(rig, try ctx.prep(rig, t, callback: after.callback(ctx, rig.channel)), length: 4096)
        ctx.expectEqual(c, used.next, "first cookie after terminateSync (rule T8)")
        rig.channel.issuePending()
        ctx.waitUntil("a transfer after terminateSync completed", rig: rig) { after.count >= 1 }
        ctx.expectVerified(t.verify(), "copy after terminateSync")
    }

    // MARK: 15

    /// One iteration's state for the seed race.
    final class SeedRaceIteration: @unchecked Sendable {
        let ctx: ScenarioContext
        let rig: Rig
        let log = CallbackLog(checkStatus: false)
        let t: Transfer
        let k: Int
        let cyclic: Bool
        let terminated = Atomic<Bool>(false)
        let signal = ParkingEvent()
        let spinInCallback: Int

        init(ctx: ScenarioContext, rig: Rig, t: Transfer, k: Int, cyclic: Bool, spin: Int) {
            self.ctx = ctx
            self.rig = rig
            self.t = t
            self.k = k
            self.cyclic = cyclic
            self.spinInCallback = spin
        }

        func callback() -> DMACallback {
            log.callback(ctx, rig.channel) { [self] _ in
                // Ordering: relaxed; only this serialized callback context reads and writes it.
                if self.terminated.load(ordering: .relaxed) { return }
                if self.log.count >= self.k {
                    self.terminated.store(true, ordering: .relaxed)
                    do throws(DMAError) { try self.rig.channel.terminateAsync() } catch {
                        self.ctx.fail("terminateAsync from a callback returned .\(error), expected success (NB-safe, rule T1)")
                    }
                    self.signal.signal()
                    // Keep running a little after terminateAsync: synchronize must wait for it.
                    for _ in 0..<self.spinInCallback { cpuRelax() }
                    return
                }
                if !self.cyclic { _ = self.submit() }
            }
        }

        func submit() -> Bool {
            let ch = rig.channel
            let d: DMADescriptor?
            if cyclic {
                d = ch.prepareCyclic(to: t.destination, from: t.source, bufferLength: t.length, periodLength: t.length / 4, flags: .default)
            } else {
                d = ch.prepareMemcpy(to: t.destination, from: t.source, length: t.length, flags: .default)
            }
            guard let d else {
                ctx.fail("seed race: prepare returned nil")
                return false
            }
            do throws(DMAError) { try ch.setCallback(callback(), for: d) } catch {
                ctx.fail("seed race: setCallback failed with .\(error)")
                return false
            }
            let c = ch.submit(d)
            guard c.isValid else {
                ctx.fail("seed race: submit returned \(c)")
                return false
            }
            ctx.addBytes(t.length)
            ch.issuePending()
            return true
        }
    }

    static func seedRace(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let n = ctx.config.iterations
        let useCyclic = rig.caps.cyclic
        ctx.phase("seed race")
        for i in 0..<n {
            ctx.setIteration(i)
            let t = try ctx.transfer(rig, bufferSize: 4096, length: 256)
            let cyclic = useCyclic && Bool.random(using: &ctx.rng)
            let it = SeedRaceIteration(
                ctx: ctx, rig: rig, t: t, k: Int.random(in: 1...4, using: &ctx.rng), cyclic: cyclic,
                spin: Int.random(in: 0...300, using: &ctx.rng))
            guard it.submit() else { break }
            if !it.signal.wait(spinNanoseconds: 20_000, timeoutNanoseconds: Int64(ctx.config.watchdogSeconds * 1e9)) {
                ctx.fail("the callback that calls terminateAsync did not run within \(ctx.config.watchdogSeconds) s")
                break
            }
            ctx.rng.jitter()
            ctx.expectOK("synchronize after terminateAsync from a callback") { try rig.channel.synchronize() }
            // Ordering: sequentially consistent load; pairs with the callback's decrement.
            if it.log.inCallback.load(ordering: .sequentiallyConsistent) != 0 {
                ctx.fail("synchronize returned while a callback was still running (rule T3b)")
            }
            let entries = it.log.count
            it.log.markFreed()
            rig.allocator.free(t.src)
            rig.allocator.free(t.dst)
            ctx.rng.jitter()
            if it.log.count != entries {
                ctx.fail("callback entry counter moved from \(entries) to \(it.log.count) after synchronize returned")
            }
            if ctx.failureCount > 20 { break }
        }
        ctx.iterationsRun(n)
        ctx.note("cyclic transfers used: \(useCyclic)")
    }

    // MARK: 16, 17

    /// A transfer whose callback blocks on a gate, with a second transfer queued behind it.
    final class BlockedCallback: @unchecked Sendable {
        let gate = ParkingEvent()
        let entered = Atomic<Bool>(false)
        let exitedAt = Atomic<Int>(0)
        let sequence = EventSequence()
        let secondCalled = Atomic<Int>(0)
        let log = CallbackLog()

        func install(_ ctx: ScenarioContext, _ rig: Rig) throws -> (Transfer, Transfer) {
            let t0 = try ctx.transfer(rig, bufferSize: 4096)
            let t1 = try ctx.transfer(rig, bufferSize: 16384)
            let timeout = Int64(ctx.config.watchdogSeconds * 1e9)
            let cb0 = log.callback(ctx, rig.channel) { [self] _ in
                // Ordering: release; pairs with the acquire load in the scenario's wait.
                self.entered.store(true, ordering: .releasing)
                if !self.gate.wait(spinNanoseconds: 0, timeoutNanoseconds: timeout) {
                    ctx.fail("blocked callback: its gate was never opened")
                }
                // Ordering: release; pairs with the acquire loads after synchronize returns.
                self.exitedAt.store(self.sequence.next(), ordering: .releasing)
            }
            let cb1 = DMACallback.result { [self] _ in self.secondCalled.add(1, ordering: .relaxed) }
            try ctx.submit(rig, try ctx.prep(rig, t0, callback: cb0), length: 4096)
            try ctx.submit(rig, try ctx.prep(rig, t1, callback: cb1, injection: ctx.slow(16384)), length: 16384)
            rig.channel.issuePending()
            // Not polling: in client-poll mode a poll here could take the blocking callback onto
            // this thread, which must go on to open its gate (the ring once failed scenario 17
            // so, after a 10 s watchdog). Unpolled, the engine dispatches it.
            ctx.waitUntil("the first callback is running", rig: rig, poll: false) { entered.load(ordering: .acquiring) }
            return (t0, t1)
        }
    }

    static func terminateAsyncDoesNotWait(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let b = BlockedCallback()
        let (_, t1) = try b.install(ctx, rig)
        let taReturned = Atomic<Int>(0)
        let taThread = try ctx.spawn("terminate-async") {
            withNonBlockingContext {
                ctx.expectOK("terminateAsync in a non-blocking context") { try rig.channel.terminateAsync() }
            }
            // Ordering: release; pairs with the acquire load below.
            taReturned.store(b.sequence.next(), ordering: .releasing)
        }
        let returned = ctx.waitUntil("terminateAsync returned while a callback is blocked", timeout: ctx.config.watchdogSeconds, failOnTimeout: true) {
            taReturned.load(ordering: .acquiring) != 0
        }
        if returned {
            ctx.expectEqual(b.exitedAt.load(ordering: .acquiring), 0, "callback exit before terminateAsync returned (it must not wait, rule T2)")
        }
        try expectBlockingCallWaits(ctx, rig, b, call: "synchronize", rule: "T3b") { try rig.channel.synchronize() }
        taThread.join()
        rig.allocator.free(t1.dst)
    }

    static func terminateSyncWaits(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let b = BlockedCallback()
        let (_, t1) = try b.install(ctx, rig)
        try expectBlockingCallWaits(ctx, rig, b, call: "terminateSync", rule: "T4") { try rig.channel.terminateSync() }
        rig.allocator.free(t1.dst)
    }

    /// Scenarios 16 and 17: `call` (synchronize or terminateSync), made from a blocking
    /// context while a callback is blocked, must not return until the callback has returned;
    /// the terminated queued transfer never gets a callback, and the engine touches nothing
    /// afterwards.
    static func expectBlockingCallWaits(
        _ ctx: ScenarioContext, _ rig: Rig, _ b: BlockedCallback, call: String, rule: String,
        _ body: @escaping @Sendable () throws -> Void
    ) throws {
        let returnedAt = Atomic<Int>(0)
        let thread = try ctx.spawn(call) {
            ctx.expectOK("\(call) in a blocking context") { try body() }
            // Ordering: release; pairs with the acquire loads below.
            returnedAt.store(b.sequence.next(), ordering: .releasing)
        }
        ctx.idle(0.1)
        ctx.expectEqual(returnedAt.load(ordering: .acquiring), 0, "\(call) returned while a callback was blocked (rule \(rule))")
        b.gate.signal()
        ctx.waitUntil("\(call) returned after the callback was released") { returnedAt.load(ordering: .acquiring) != 0 }
        thread.join()
        let exit = b.exitedAt.load(ordering: .acquiring), returned = returnedAt.load(ordering: .acquiring)
        ctx.expect(exit != 0 && exit < returned, "callback exit (event \(exit)) should precede \(call)'s return (event \(returned))")
        ctx.idle(0.05, rig: rig)
        ctx.expectEqual(b.secondCalled.load(ordering: .relaxed), 0, "callbacks of the terminated queued transfer (rule T1)")
        rig.monitor.forbid(upTo: rig.channel.debugWatermark().used, "after \(call) returned")
    }

    // MARK: 18

    static func illegalBlockingCalls(_ ctx: ScenarioContext) throws {
        let a = try ctx.makeRig()
        let b = try ctx.makeRig()
        let prompt = ctx.config.promptSeconds
        @Sendable func tryAll(_ where_: String) {
            for (name, rig) in [("same", a), ("second", b)] {
                let calls: [(String, () throws -> Void)] = [
                    ("synchronize", { try rig.channel.synchronize() }),
                    ("terminateSync", { try rig.channel.terminateSync() }),
                    ("release", { try rig.channel.release() }),
                ]
                for (call, body) in calls {
                    let start = MonotonicClock.now()
                    ctx.expectError(.illegalContext, "\(call) on the \(name) channel \(where_)", body)
                    let took = Double(MonotonicClock.now() &- start) / 1e9
                    if took > prompt { ctx.fail("\(call) on the \(name) channel \(where_) took \(format3(took)) s (bound \(prompt) s)") }
                }
            }
        }
        // Channel B has a transfer in flight that must still complete.
        let logB = CallbackLog()
        let tb = try ctx.transfer(b, bufferSize: 16384)
        try ctx.submit(b, try ctx.prep(b, tb, callback: logB.callback(ctx, b.channel), injection: ctx.slow(16384, seconds: 0.05)), length: 16384)
        b.channel.issuePending()
        let logA = CallbackLog()
        var ta: [Transfer] = []
        for i in 0..<3 {
            let t = try ctx.transfer(a, bufferSize: 4096)
            ta.append(t)
            let cb = logA.callback(ctx, a.channel) { _ in if i == 0 { tryAll("from a callback") } }
            try ctx.submit(a, try ctx.prep(a, t, callback: cb), length: 4096)
        }
        a.channel.issuePending()
        ctx.waitUntil("all 3 transfers on the first channel completed", rig: a) { logA.count >= 3 }
        ctx.waitUntil("the in-flight transfer on the second channel completed", rig: b) { logB.count >= 1 }
        for (i, t) in ta.enumerated() { ctx.expectVerified(t.verify(), "channel A transfer \(i)") }
        ctx.expectVerified(tb.verify(), "channel B transfer")
        withNonBlockingContext { tryAll("in a withNonBlockingContext region") }
        // The channels are unchanged: new work completes on both.
        for (name, rig) in [("first", a), ("second", b)] {
            let log = CallbackLog()
            let t = try ctx.transfer(rig, bufferSize: 4096)
            try ctx.submit(rig, try ctx.prep(rig, t, callback: log.callback(ctx, rig.channel)), length: 4096)
            rig.channel.issuePending()
            ctx.waitUntil("new work on the \(name) channel completed after refused calls", rig: rig) { log.count >= 1 }
            ctx.expectVerified(t.verify(), "new work on the \(name) channel")
        }
    }

    // MARK: 19

    /// One iteration of scenario 19. The stop flag is checked, and the next transfer
    /// submitted, under a client lock that the stopper also takes to set the flag: a
    /// callback that read "not stopping" has therefore submitted before the flag was set,
    /// hence before `terminateAsync`, and its work is covered by `synchronize` (rule T7: a
    /// bare flag read followed by a submit would leave a window in which the callback
    /// submits after `terminateAsync`, which no backend can cover).
    final class StopFlagIteration: @unchecked Sendable {
        let ctx: ScenarioContext
        let rig: Rig
        let t: Transfer
        let log = CallbackLog(checkStatus: false)
        /// (stopping, hardStop) behind the client lock.
        let flags = LockedValue<(stopping: Bool, hardStop: Bool)>((false, false))
        let checksFlag: Bool

        init(ctx: ScenarioContext, rig: Rig, t: Transfer, checksFlag: Bool) {
            self.ctx = ctx
            self.rig = rig
            self.t = t
            self.checksFlag = checksFlag
        }

        func submit() -> Bool {
            let ch = rig.channel
            guard let d = ch.prepareMemcpy(to: t.destination, from: t.source, length: t.length, flags: .default) else {
                return false
            }
            let cb = log.callback(ctx, ch) { [self] _ in
                self.flags.withLock { f in
                    if f.hardStop { return }
                    if self.checksFlag && f.stopping { return }
                    _ = self.submit()
                }
            }
            guard (try? ch.setCallback(cb, for: d)) != nil else { return false }
            guard ch.submit(d).isValid else { return false }
            ctx.addBytes(t.length)
            ch.issuePending()
            return true
        }
    }

    static func stopFlag(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let n = ctx.config.iterations
        var negativeControls = 0
        ctx.phase("stop-flag iterations")
        for i in 0..<n {
            ctx.setIteration(i)
            let t = try ctx.transfer(rig, bufferSize: 4096, length: 128)
            let checks = i % 10 != 9
            let it = StopFlagIteration(ctx: ctx, rig: rig, t: t, checksFlag: checks)
            guard it.submit() else {
                ctx.fail("stop flag: the first submit failed")
                break
            }
            let target = Int.random(in: 0...3, using: &ctx.rng)
            ctx.waitUntil("\(target) callbacks of the resubmitting chain", timeout: 2) { it.log.count >= target }
            ctx.rng.jitter()
            it.flags.withLock { $0.stopping = true }
            ctx.expectOK("terminateAsync after setting the stop flag") { try rig.channel.terminateAsync() }
            ctx.expectOK("synchronize after terminateAsync") { try rig.channel.synchronize() }
            if !checks {
                // Negative control (the callback ignores the flag): the backend must not crash
                // or hang, and synchronize returned; now stop the chain for real.
                negativeControls += 1
                it.flags.withLock { $0.hardStop = true }
                ctx.expectOK("terminateSync to stop an unchecked chain") { try rig.channel.terminateSync() }
            }
            // Ordering: sequentially consistent; pairs with the callback's decrement.
            if it.log.inCallback.load(ordering: .sequentiallyConsistent) != 0 {
                ctx.fail("synchronize returned while a callback was running")
            }
            let entries = it.log.count
            it.log.markFreed()
            rig.allocator.free(t.src)
            rig.allocator.free(t.dst)
            ctx.rng.jitter()
            if it.log.count != entries {
                ctx.fail("a callback ran after synchronize returned (entries \(entries) → \(it.log.count))")
            }
            if ctx.failureCount > 20 { break }
        }
        ctx.iterationsRun(n)
        ctx.note("negative-control iterations (stop flag not checked): \(negativeControls)")
    }
}
#endif
