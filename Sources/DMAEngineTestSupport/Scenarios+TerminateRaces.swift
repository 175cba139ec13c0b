// dmabench — DMAEngineTestSupport
//
// Scenarios 20, 21, 29, 30 and 33 of docs/contract.md part B: terminate racing submit and
// completion, release, the dmatest timeout path, and misuse T6. Scenarios 14–19 are in
// Scenarios+Terminate.swift.

#if os(Linux)
import DMAEngine
import Glibc
import Platform
import Synchronization

extension Scenarios {
    // MARK: 20

    static func terminateRacingSubmit(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let n = ctx.config.iterations
        let t = try ctx.transfer(rig, bufferSize: 4096)
        let callbacks = LockedValue<[Int32: Int]>([:])
        let finalBound = Atomic<Int32>(0)
        let stop = Atomic<Bool>(false)
        let submittedCount = Atomic<Int>(0)
        let submitted = LockedValue<[DMACookie]>([])
        let refused = Atomic<Int>(0)
        let seed = ctx.rng.next()
        let cb = DMACallback.result { c in
            let dup = callbacks.withLock { m -> Bool in
                m[c.cookie.rawValue, default: 0] += 1
                return m[c.cookie.rawValue]! > 1
            }
            if dup { ctx.fail("cookie \(c.cookie) got a second callback (rule K1)") }
            // Ordering: acquire; pairs with the release store after the final terminateSync.
            let bound = finalBound.load(ordering: .acquiring)
            if c.cookie.rawValue <= bound {
                ctx.fail("callback for cookie \(c.cookie), submitted before a terminateSync, started after it returned (rule T3b)")
            }
        }
        let src = UInt(bitPattern: t.source), dst = UInt(bitPattern: t.destination)
        let submitter = try ctx.spawn("racing-submitter") {
            var rng = ConformanceRandom(seed: seed)
            var mine: [DMACookie] = []
            var k = 0
            // Ordering: acquire; pairs with the release store that stops the submitter.
            while !stop.load(ordering: .acquiring) {
                let off = UInt((k % 256) * 16)
                k += 1
                guard
                    let d = rig.channel.prepareMemcpy(
                        to: UnsafeMutableRawPointer(bitPattern: dst + off)!, from: UnsafeRawPointer(bitPattern: src + off)!,
                        length: 16, flags: .default)
                else {
                    refused.add(1, ordering: .relaxed)
                    sched_yield()
                    continue
                }
                if (try? rig.channel.setCallback(cb, for: d)) == nil { ctx.fail("setCallback failed") }
                let c = rig.channel.submit(d)
                if c.isValid { mine.append(c) } else { ctx.fail("submit returned \(c)") }
                submittedCount.add(1, ordering: .relaxed)
                if Int.random(in: 0..<4, using: &rng) != 0 { rig.channel.issuePending() }
                rng.jitter(maxMicroseconds: 20)
            }
            submitted.withLock { $0 = mine }
        }
        var seen = 0
        ctx.phase("terminateSync racing a submitting thread")
        for i in 0..<n {
            ctx.setIteration(i)
            let want = Int.random(in: 0...6, using: &ctx.rng)
            var spins = 0
            while submittedCount.load(ordering: .relaxed) - seen < want && spins < 2000 {
                sched_yield()
                spins += 1
            }
            seen = submittedCount.load(ordering: .relaxed)
            ctx.rng.jitter(maxMicroseconds: 20)
            let usedBefore = rig.channel.debugWatermark().used
            ctx.expectOK("terminateSync racing submit") { try rig.channel.terminateSync() }
            // Ordering: release; pairs with the acquire load in the callback.
            finalBound.store(usedBefore.rawValue, ordering: .releasing)
            if ctx.failureCount > 20 { break }
        }
        ctx.phase("final terminateSync")
        let before = rig.channel.debugWatermark().used
        ctx.expectOK("final terminateSync") { try rig.channel.terminateSync() }
        // Ordering: release; pairs with the acquire load in the callback.
        finalBound.store(before.rawValue, ordering: .releasing)
        let after = rig.channel.debugWatermark().used
        stop.store(true, ordering: .releasing)
        submitter.join()
        rig.channel.issuePending()
        let cookies = submitted.withLock { $0 }
        let late = cookies.filter { $0.rawValue > after.rawValue }
        ctx.phase("draining \(late.count) transfers submitted after the final terminateSync")
        ctx.waitUntil("every transfer submitted after the final terminateSync completed", rig: rig) {
            callbacks.withLock { m in late.allSatisfy { m[$0.rawValue] != nil } }
        }
        ctx.idle(0.02, rig: rig)
        let m = callbacks.withLock { $0 }
        let all = Set(cookies.map(\.rawValue))
        var terminated = 0
        for c in cookies where m[c.rawValue] == nil {
            terminated += 1
            if c.rawValue > after.rawValue {
                ctx.fail("cookie \(c), submitted after every terminate, got no callback")
            }
        }
        for c in m.keys where !all.contains(c) { ctx.fail("callback for cookie \(c), which submit never returned") }
        ctx.expectEqual(m.count + terminated, cookies.count, "submitted = completed + terminated")
        ctx.iterationsRun(n)
        ctx.note("submitted \(cookies.count), completed \(m.count), terminated \(terminated), prep refused \(refused.load(ordering: .relaxed))")
    }

    // MARK: 21

    static func terminateRacingCompletion(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let n = ctx.config.iterations
        let t = try ctx.transfer(rig, bufferSize: 4096)
        let bound = Atomic<Int32>(0)
        let seen = LockedValue<Set<Int32>>([])
        let log = CallbackLog()
        var submittedTotal = 0
        ctx.phase("terminateSync racing completions")
        for i in 0..<n {
            ctx.setIteration(i)
            let batch = Int.random(in: 1...16, using: &ctx.rng)
            for j in 0..<batch {
                let off = ((i * 16 + j) % 4096)
                guard let d = rig.channel.prepareMemcpy(to: t.destination + off, from: t.source + off, length: 1, flags: .default)
                else { throw ScenarioFailure("prepareMemcpy of one byte returned nil") }
                let cb = log.callback(ctx, rig.channel) { c in
                    let fresh = seen.withLock { $0.insert(c.cookie.rawValue).inserted }
                    if !fresh { ctx.fail("cookie \(c.cookie) got a second callback (rule K1)") }
                    // Ordering: acquire; pairs with the release store after terminateSync.
                    if c.cookie.rawValue <= bound.load(ordering: .acquiring) {
                        ctx.fail("callback for cookie \(c.cookie) started after terminateSync returned")
                    }
                }
                try rig.channel.setCallback(cb, for: d)
                try ctx.submit(rig, d, length: 1)
                submittedTotal += 1
            }
            rig.channel.issuePending()
            ctx.rng.jitter(maxMicroseconds: 30)
            ctx.expectOK("terminateSync racing completion") { try rig.channel.terminateSync() }
            // Ordering: release; pairs with the acquire load in the callback.
            bound.store(rig.channel.debugWatermark().used.rawValue, ordering: .releasing)
            if ctx.failureCount > 20 { break }
        }
        ctx.idle(0.02, rig: rig)
        ctx.expect(log.count <= submittedTotal, "callbacks \(log.count) exceed transfers \(submittedTotal)")
        ctx.iterationsRun(n)
        ctx.note("transfers \(submittedTotal), callbacks \(log.count), dropped by terminate \(submittedTotal - log.count)")
    }

    // MARK: 29

    static func releaseImpliesSync(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let inCallback = Atomic<Bool>(false)
        let entered = Atomic<Bool>(false)
        let t0 = try ctx.transfer(rig, bufferSize: 4096)
        let cb0 = DMACallback.result { _ in
            // Ordering: release; pairs with the acquire loads in the scenario.
            entered.store(true, ordering: .releasing)
            inCallback.store(true, ordering: .releasing)
            MonotonicClock.sleep(nanoseconds: 100_000_000)
            inCallback.store(false, ordering: .releasing)
        }
        try ctx.submit(rig, try ctx.prep(rig, t0, callback: cb0), length: 4096)
        let slowLog = CallbackLog()
        var slow: [Transfer] = []
        for _ in 0..<2 {
            let t = try ctx.transfer(rig, bufferSize: 16384)
            slow.append(t)
            try ctx.submit(rig, try ctx.prep(rig, t, callback: slowLog.callback(ctx, rig.channel), injection: ctx.slow(16384, seconds: 0.3)), length: 16384)
        }
        rig.channel.issuePending()
        ctx.waitUntil("the first callback started") { entered.load(ordering: .acquiring) }
        ctx.expectOK("terminateAsync before release") { try rig.channel.terminateAsync() }
        ctx.phase("release without synchronize")
        ctx.expectOK("release after terminateAsync") { try rig.channel.release() }
        ctx.markReleased(rig)
        // Ordering: acquire; pairs with the callback's release store.
        ctx.expect(!inCallback.load(ordering: .acquiring), "release returned while a callback was still running (rule T3 via release)")
        rig.monitor.forbidEverything("after release returned")
        let snapshots = slow.map { $0.snapshot() }
        ctx.idle(0.1)
        for (i, t) in slow.enumerated() where t.snapshot() != snapshots[i] {
            ctx.fail("the engine kept writing slow transfer \(i)'s destination after release returned")
        }
        ctx.expectEqual(slowLog.count, 0, "callbacks of terminated transfers after release")
        ctx.expectError(.released, "terminateAsync after release") { try rig.channel.terminateAsync() }
        ctx.expectError(.released, "synchronize after release") { try rig.channel.synchronize() }
        ctx.expectError(.released, "terminateSync after release") { try rig.channel.terminateSync() }
        ctx.expectError(.released, "release after release") { try rig.channel.release() }
        if rig.caps.cmdPause { ctx.expectError(.released, "pause after release") { try rig.channel.pause() } }
        let d = rig.channel.prepareMemcpy(to: t0.destination, from: t0.source, length: 16, flags: .default)
        ctx.expect(d == nil, "prepareMemcpy after release should return nil")
        if let d { ctx.expect(!rig.channel.submit(d).isValid, "submit after release should fail") }
    }

    // MARK: 30

    static func timeoutPath(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let t = try ctx.transfer(rig, bufferSize: 4096)
        let log = CallbackLog()
        let c = try ctx.submit(rig, try ctx.prep(rig, t, callback: log.callback(ctx, rig.channel), injection: .stalled), length: 4096)
        try rig.issueBeside()
        defer { rig.joinIssuer() }
        ctx.phase("waiting 100 ms for a stalled transfer")
        let done = ctx.waitUntil("stalled transfer", rig: rig, timeout: 0.1, failOnTimeout: false) { log.count > 0 }
        ctx.expect(!done, "a stalled transfer completed before debugReleaseStalls")
        ctx.expectInProgress(rig, c, "the stalled cookie after the client's timeout (\"busy\")")
        ctx.expectOK("terminateSync after a timeout") { try rig.channel.terminateSync() }
        rig.monitor.forbid(upTo: c, "after terminateSync returned (the transfer had timed out)")
        rig.channel.debugReleaseStalls()
        ctx.idle(0.1, rig: rig)
        ctx.expectEqual(log.count, 0, "late callbacks after terminateSync (dmatest would warn: memory may be corrupted)")
        ctx.expectVerified(t.verifyUntouched(), "destination of the terminated stalled transfer")
        rig.allocator.free(t.dst)
        ctx.idle(0.02, rig: rig)
    }

    // MARK: 33

    static func misuseT6(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let before = CallbackLog()
        var pre: [Transfer] = []
        var first = DMACookie(0)
        for i in 0..<2 {
            let t = try ctx.transfer(rig, bufferSize: 16384)
            pre.append(t)
            let c = try ctx.submit(rig, try ctx.prep(rig, t, callback: before.callback(ctx, rig.channel), injection: ctx.slow(16384)), length: 16384)
            if i == 0 { first = c }
        }
        rig.channel.issuePending()
        if !ctx.subject.isHandDriven { waitUntilActive(ctx, rig, first, length: 16384) }
        ctx.expectOK("terminateAsync") { try rig.channel.terminateAsync() }
        let usedAtTerminate = rig.channel.debugWatermark().used
        let after = CallbackLog()
        let tn = try ctx.transfer(rig, bufferSize: 4096)
        try ctx.submit(rig, try ctx.prep(rig, tn, callback: after.callback(ctx, rig.channel)), length: 4096)
        rig.channel.issuePending()
        ctx.phase("synchronize after the misuse")
        ctx.expectOK("synchronize after issuePending between terminateAsync and synchronize (rule T6)") { try rig.channel.synchronize() }
        rig.monitor.forbid(upTo: usedAtTerminate, "after synchronize returned (descriptor submitted before terminateAsync)")
        let entries = before.count
        for t in pre {
            rig.allocator.free(t.src)
            rig.allocator.free(t.dst)
        }
        ctx.idle(0.05, rig: rig)
        ctx.expectEqual(before.count, entries, "callbacks of pre-terminate transfers after synchronize returned (rule T3)")
        ctx.expectOK("terminateSync to clean up") { try rig.channel.terminateSync() }
    }
}
#endif
