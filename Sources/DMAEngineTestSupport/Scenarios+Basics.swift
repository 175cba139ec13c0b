// dmabench — DMAEngineTestSupport
//
// Scenarios 1–13 of docs/contract.md part B: copies, cookies, the watermark, submit/issue
// stages, status and residue, callback rules, polled mode, callback chains, idle terminate.

#if os(Linux)
import DMAEngine
import Platform
import Synchronization

/// The table of the 38 scenarios: number, name, needs, body.
let scenarioTable: [(info: ConformanceScenario, body: @Sendable (ScenarioContext) throws -> Void)] = [
    (.init(number: 1, name: "basic copy", needsEngineThread: false, isRace: false), Scenarios.basicCopy),
    (.init(number: 2, name: "first cookie and monotonicity", needsEngineThread: false, isRace: false), Scenarios.firstCookie),
    (.init(number: 3, name: "concurrent submitters", needsEngineThread: false, isRace: false), Scenarios.concurrentSubmitters),
    (.init(number: 4, name: "cookie wrap", needsEngineThread: false, isRace: false), Scenarios.cookieWrap),
    (.init(number: 5, name: "watermark oracle", needsEngineThread: false, isRace: false), Scenarios.watermarkOracle),
    (.init(number: 6, name: "submit does not start", needsEngineThread: false, isRace: false), Scenarios.submitDoesNotStart),
    (.init(number: 7, name: "issuePending batching", needsEngineThread: false, isRace: false), Scenarios.issueBatching),
    (.init(number: 8, name: "in-flight status and residue", needsEngineThread: true, isRace: false), Scenarios.inFlightResidue),
    (.init(number: 9, name: "callback invariants", needsEngineThread: false, isRace: false), Scenarios.callbackInvariants),
    (.init(number: 10, name: "callbackResult precedence", needsEngineThread: false, isRace: false), Scenarios.callbackPrecedence),
    (.init(number: 11, name: "polled mode", needsEngineThread: false, isRace: false), Scenarios.polledMode),
    (.init(number: 12, name: "callback chains new work", needsEngineThread: false, isRace: false), Scenarios.callbackChain),
    (.init(number: 13, name: "terminate with nothing in flight", needsEngineThread: false, isRace: false), Scenarios.idleTerminate),
    (.init(number: 14, name: "terminateSync with queued work", needsEngineThread: true, isRace: false), Scenarios.terminateQueued),
    (.init(number: 15, name: "seed race: terminateAsync from callback, synchronize, free", needsEngineThread: true, isRace: true), Scenarios.seedRace),
    (.init(number: 16, name: "terminateAsync does not wait", needsEngineThread: true, isRace: false), Scenarios.terminateAsyncDoesNotWait),
    (.init(number: 17, name: "terminateSync waits for a running callback", needsEngineThread: true, isRace: false), Scenarios.terminateSyncWaits),
    (.init(number: 18, name: "illegal blocking calls", needsEngineThread: false, isRace: false), Scenarios.illegalBlockingCalls),
    (.init(number: 19, name: "stop-flag discipline", needsEngineThread: true, isRace: true), Scenarios.stopFlag),
    (.init(number: 20, name: "terminate racing submit", needsEngineThread: true, isRace: true), Scenarios.terminateRacingSubmit),
    (.init(number: 21, name: "terminate racing completion", needsEngineThread: true, isRace: true), Scenarios.terminateRacingCompletion),
    (.init(number: 22, name: "pause/resume", needsEngineThread: true, isRace: false), Scenarios.pauseResume),
    (.init(number: 23, name: "pause edge cases", needsEngineThread: false, isRace: false), Scenarios.pauseEdgeCases),
    (.init(number: 24, name: "terminate while paused", needsEngineThread: false, isRace: false), Scenarios.terminateWhilePaused),
    (.init(number: 25, name: "descriptor reuse", needsEngineThread: false, isRace: false), Scenarios.descriptorReuse),
    (.init(number: 26, name: "reuse + terminate/release", needsEngineThread: false, isRace: false), Scenarios.reuseTerminateRelease),
    (.init(number: 27, name: "submit/prep failure", needsEngineThread: false, isRace: false), Scenarios.submitFailure),
    (.init(number: 28, name: "cyclic", needsEngineThread: true, isRace: false), Scenarios.cyclic),
    (.init(number: 29, name: "release implies sync", needsEngineThread: true, isRace: false), Scenarios.releaseImpliesSync),
    (.init(number: 30, name: "timeout path", needsEngineThread: false, isRace: false), Scenarios.timeoutPath),
    (.init(number: 31, name: "faults", needsEngineThread: false, isRace: false), Scenarios.faults),
    (.init(number: 32, name: "config scope", needsEngineThread: false, isRace: false), Scenarios.configScope),
    (.init(number: 33, name: "misuse T6: issue between terminateAsync and synchronize", needsEngineThread: false, isRace: false), Scenarios.misuseT6),
    (.init(number: 34, name: "dmatest soak", needsEngineThread: false, isRace: false), Scenarios.dmatestSoak),
    (.init(number: 35, name: "scatter-gather: uneven segment lists", needsEngineThread: false, isRace: false), Scenarios.sgUnevenLists),
    (.init(number: 36, name: "scatter-gather: residue across segments", needsEngineThread: true, isRace: false), Scenarios.sgResidue),
    (.init(number: 37, name: "scatter-gather: terminate mid-list", needsEngineThread: true, isRace: false), Scenarios.sgTerminateMidList),
    (.init(number: 38, name: "scatter-gather: seed race, every segment guarded", needsEngineThread: false, isRace: true), Scenarios.sgSeedRace),
]

enum Scenarios {
    // MARK: 1

    static func basicCopy(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let t = try ctx.transfer(rig, bufferSize: 16384, srcOffset: 123, dstOffset: 456, length: 12_000)
        let log = CallbackLog()
        let d = try ctx.prep(rig, t, callback: log.callback(ctx, rig.channel))
        let c = try ctx.submit(rig, d, length: t.length)
        rig.channel.issuePending()
        ctx.phase("waiting for the callback")
        ctx.waitUntil("the callback of cookie \(c) ran", rig: rig) { log.count >= 1 }
        ctx.idle(0.02, rig: rig)
        ctx.expectEqual(log.count, 1, "callbacks for one transfer")
        if let r = log.completions.first {
            ctx.expectEqual(r.cookie, c, "cookie given to the callback")
            ctx.expectEqual(r.result, .noError, "callback result (rule K5: NOERROR, residue 0)")
        }
        ctx.expectVerified(t.verify(), "copy of 12000 bytes at source offset 123 to destination offset 456")
        let (st, tx) = rig.channel.status(of: c)
        ctx.expectEqual(st, .complete, "status after the callback")
        ctx.expectEqual(tx.residue, 0, "residue after completion (rule S4)")
        ctx.expect(tx.last.rawValue >= c.rawValue, "last \(tx.last) should be >= cookie \(c) after completion")
        // The optional memset capability: a fill when advertised, nil otherwise.
        let f = try ctx.transfer(rig, bufferSize: 4096, dstOffset: 100, length: 3000)
        let fill = rig.channel.prepareMemset(to: f.destination, value: 0x5A, length: 3000, flags: .default)
        if rig.caps.memset {
            guard let fill else { throw ScenarioFailure("prepareMemset returned nil on a channel that advertises memset") }
            let fillLog = CallbackLog()
            try rig.channel.setCallback(fillLog.callback(ctx, rig.channel), for: fill)
            try ctx.submit(rig, fill, length: 3000)
            rig.channel.issuePending()
            ctx.waitUntil("the memset callback ran", rig: rig) { fillLog.count >= 1 }
            ctx.expectEqual(fillLog.completions.first?.result, .noError, "memset result")
            ctx.expectVerified(DMATestPattern.verifyFill(f.dst.readOnlyBytes, region: 100..<3100, value: 0x5A), "memset of 3000 bytes")
        } else {
            ctx.expect(fill == nil, "prepareMemset should return nil when memset is not advertised")
        }
    }

    // MARK: 2

    static func firstCookie(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        for probe: Int32 in [1, 2, 3, 1000, 123_456, .max] {
            ctx.expectComplete(rig, DMACookie(probe), "rule C3/A.4a [K]: fresh channel, never-issued cookie \(probe)")
        }
        let w0 = rig.channel.debugWatermark()
        if ctx.config.kernelCookieProfile {
            ctx.expectEqual(w0, DMACookieWatermark(used: .initial, last: .initial), "fresh watermark (rule C3)")
        }
        let n = 1000, slot = 64
        let t = try ctx.transfer(rig, bufferSize: n * slot)
        let log = CallbackLog()
        var cookies: [DMACookie] = []
        for i in 0..<n {
            guard
                let d = rig.channel.prepareMemcpy(
                    to: t.destination + i * slot, from: t.source + i * slot, length: slot, flags: .default)
            else { throw ScenarioFailure("prepareMemcpy \(i) returned nil") }
            try rig.channel.setCallback(log.callback(ctx, rig.channel), for: d)
            cookies.append(try ctx.submit(rig, d, length: slot))
        }
        if ctx.config.kernelCookieProfile {
            ctx.expectEqual(cookies.first, DMACookie(2), "first cookie of a fresh channel (rule C3 [K])")
        }
        for (a, b) in zip(cookies, cookies.dropFirst()) where b != a.next {
            ctx.fail("rule C2: cookie after \(a) was \(b), expected \(a.next)")
            break
        }
        ctx.expect(cookies.allSatisfy(\.isValid), "rule C1: every cookie >= 1")
        let w = rig.channel.debugWatermark()
        ctx.expectEqual(w.used, cookies.last, "watermark used after \(n) submits")
        ctx.expectEqual(rig.channel.status(of: cookies[0]).1.used, cookies.last, "txState.used after \(n) submits")
        rig.channel.issuePending()
        ctx.phase("draining \(n) transfers")
        ctx.waitUntil("all \(n) callbacks ran (\(log.count) so far)", rig: rig) { log.count >= n }
        ctx.expectVerified(t.verify(), "\(n) copies of \(slot) bytes")
    }

    // MARK: 3

    static func concurrentSubmitters(_ ctx: ScenarioContext) throws {
        let threads = 8, perThread = 1000, slot = 16
        var options = ctx.config.channelOptions
        options.poolSize = max(options.poolSize, threads * perThread + 64)
        let rig = try ctx.makeRig(options: options)
        let t = try ctx.transfer(rig, bufferSize: threads * perThread * slot)
        let log = CallbackLog()
        let perThreadCookies = LockedValue<[[DMACookie]]>(Array(repeating: [], count: threads))
        let src = UInt(bitPattern: t.source), dst = UInt(bitPattern: t.destination)
        ctx.phase("\(threads) threads submitting")
        ctx.onThreads(threads, name: "submitter") { k in
            var mine: [DMACookie] = []
            mine.reserveCapacity(perThread)
            for j in 0..<perThread {
                let off = (k * perThread + j) * slot
                guard
                    let d = rig.channel.prepareMemcpy(
                        to: UnsafeMutableRawPointer(bitPattern: dst + UInt(off))!,
                        from: UnsafeRawPointer(bitPattern: src + UInt(off))!, length: slot, flags: .default),
                    (try? rig.channel.setCallback(log.callback(ctx, rig.channel), for: d)) != nil
                else {
                    ctx.fail("thread \(k): prepare \(j) failed")
                    break
                }
                let c = rig.channel.submit(d)
                if !c.isValid { ctx.fail("thread \(k): submit \(j) returned \(c)") } else { mine.append(c) }
            }
            perThreadCookies.withLock { $0[k] = mine }
        }
        ctx.addBytes(threads * perThread * slot)
        let lists = perThreadCookies.withLock { $0 }
        for (k, list) in lists.enumerated() {
            for (a, b) in zip(list, list.dropFirst()) where b.rawValue <= a.rawValue {
                ctx.fail("thread \(k): cookies not increasing: \(a) then \(b)")
                break
            }
        }
        let all = lists.flatMap { $0 }.map(\.rawValue).sorted()
        ctx.expectEqual(Set(all).count, all.count, "distinct cookies among \(all.count) (rule C4)")
        if let lo = all.first, let hi = all.last {
            ctx.expectEqual(Int(hi - lo) + 1, all.count, "cookies form one contiguous range \(lo)...\(hi)")
        }
        rig.channel.issuePending()
        ctx.phase("draining")
        let total = all.count
        ctx.waitUntil("all \(total) callbacks ran (\(log.count) so far)", rig: rig) { log.count >= total }
        if !rig.caps.completionNoOrder {
            let order = log.cookies.map(\.rawValue)
            if order != all {
                let i = Array(zip(order, all)).firstIndex { $0.0 != $0.1 } ?? min(order.count, all.count)
                ctx.fail("rule K3/C4: callback order differs from cookie order at position \(i)")
            }
        }
        ctx.expectVerified(t.verify(), "\(total) copies of \(slot) bytes from \(threads) threads")
    }

    // MARK: 4

    static func cookieWrap(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let max = Int32.max
        try rig.channel.debugSeedCookie(used: DMACookie(max - 2), last: DMACookie(max - 2))
        let log = CallbackLog()
        var transfers: [Transfer] = []
        var cookies: [DMACookie] = []
        for i in 0..<5 {
            let t = try ctx.transfer(rig, bufferSize: 4096, srcOffset: 64 * i, dstOffset: 64 * i, length: 64)
            transfers.append(t)
            let d = try ctx.prep(rig, t, callback: log.callback(ctx, rig.channel), injection: i == 2 ? .stalled : nil)
            cookies.append(try ctx.submit(rig, d, length: 64))
        }
        ctx.expectEqual(cookies.map(\.rawValue), [max - 1, max, 1, 2, 3], "cookies across the wrap (rule C2)")
        ctx.expect(cookies.allSatisfy(\.isValid), "rule C2: no cookie 0 or negative across the wrap")
        try rig.issueBeside()
        defer { rig.joinIssuer() }
        if rig.caps.completionNoOrder {
            // Rule S8: no watermark answers mid-flight; only the cookies and the callbacks count.
            ctx.waitUntil("4 callbacks beside the stalled transfer", rig: rig) { log.count >= 4 }
            rig.channel.debugReleaseStalls()
            ctx.waitUntil("all 5 callbacks ran", rig: rig) { log.count >= 5 }
            ctx.expectEqual(Set(log.cookies), Set(cookies), "cookies of the callbacks across the wrap")
            for (i, t) in transfers.enumerated() { ctx.expectVerified(t.verify(), "transfer \(i)") }
            return
        }
        ctx.phase("waiting for the two transfers before the stalled one")
        ctx.waitUntil("2 callbacks before the stalled transfer", rig: rig) { log.count >= 2 }
        let w = rig.channel.debugWatermark()
        ctx.expectEqual(w, DMACookieWatermark(used: DMACookie(3), last: DMACookie(max)), "mid-flight watermark")
        let expectations: [(Int32, DMAStatus)] = [
            (1, .inProgress), (2, .inProgress), (3, .inProgress), (max, .complete), (max - 1, .complete),
            (100, .complete), (4, .complete),
        ]
        for (c, want) in expectations {
            let (st, tx) = rig.channel.status(of: DMACookie(c))
            let formula = DMACookieWatermark.isComplete(DMACookie(c), last: tx.last, used: tx.used)
            ctx.expectEqual(st, want, "status of cookie \(c) with last \(tx.last), used \(tx.used)")
            ctx.expectEqual(st == .complete, formula, "status of cookie \(c) against the wrapped-window formula")
        }
        rig.channel.debugReleaseStalls()
        ctx.waitUntil("all 5 callbacks ran", rig: rig) { log.count >= 5 }
        ctx.expectEqual(log.cookies, cookies, "callback order across the wrap")
        for c in cookies { ctx.expectEqual(rig.channel.status(of: c).0, .complete, "status of \(c) at the end") }
        for (i, t) in transfers.enumerated() { ctx.expectVerified(t.verify(), "transfer \(i)") }
    }

    // MARK: 5

    static func watermarkOracle(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let rounds = ctx.config.longMode ? 20_000 : 2_000
        let noOrder = rig.caps.completionNoOrder
        func pick(_ r: inout ConformanceRandom) -> Int32 {
            switch Int.random(in: 0..<4, using: &r) {
            case 0: return Int32.random(in: 1...Int32.max, using: &r)
            case 1: return Int32.max - Int32.random(in: 0...16, using: &r)
            case 2: return Int32.random(in: 1...16, using: &r)
            default: return Int32.random(in: 1...4096, using: &r)
            }
        }
        for round in 0..<rounds {
            ctx.setIteration(round)
            let last = DMACookie(pick(&ctx.rng)), used = DMACookie(pick(&ctx.rng))
            try rig.channel.debugSeedCookie(used: used, last: last)
            var probes = [last, used, last.next, used.next, DMACookie(1), DMACookie(.max), DMACookie(pick(&ctx.rng))]
            probes.append(DMACookie(Int32.random(in: 1...Int32.max, using: &ctx.rng)))
            for c in probes {
                let (st, tx) = rig.channel.status(of: c)
                let want: DMAStatus = DMACookieWatermark.isComplete(c, last: last, used: used) ? .complete : .inProgress
                if st != want && !(noOrder && st == .outOfOrder) {
                    ctx.fail("status of cookie \(c) with last \(last), used \(used): expected \(want) (A.4a), saw \(st)")
                }
                if tx.last != last || tx.used != used {
                    ctx.fail("txState after seeding (used \(used), last \(last)) reads used \(tx.used), last \(tx.last)")
                }
            }
            if ctx.failureCount > 20 { break }
        }
        ctx.iterationsRun(rounds)
    }

    // MARK: 6

    static func submitDoesNotStart(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let log = CallbackLog()
        var transfers: [Transfer] = []
        var cookies: [DMACookie] = []
        for _ in 0..<4 {
            let t = try ctx.transfer(rig, bufferSize: 4096)
            transfers.append(t)
            let d = try ctx.prep(rig, t, callback: log.callback(ctx, rig.channel), injection: ctx.slow(4096))
            cookies.append(try ctx.submit(rig, d, length: 4096))
        }
        ctx.phase("sleeping 200 ms without issuePending")
        ctx.idle(0.2, rig: rig)
        ctx.expectEqual(log.count, 0, "callbacks without issuePending")
        ctx.expectEqual(rig.monitor.writes.load(ordering: .relaxed), 0, "engine writes without issuePending")
        for (i, t) in transfers.enumerated() { ctx.expectVerified(t.verifyUntouched(), "destination \(i) before issuePending") }
        let w = rig.channel.debugWatermark()
        for c in cookies {
            ctx.expectInProgress(rig, c, "submitted, not issued (rule S2)")
            ctx.expect(w.last.rawValue < c.rawValue && c.rawValue <= w.used.rawValue,
                "cookie \(c) should lie in (last, used] = (\(w.last), \(w.used)]")
        }
        try rig.channel.terminateSync()
        ctx.idle(0.02, rig: rig)
        ctx.expectEqual(log.count, 0, "callbacks of terminated, never issued transfers")
    }

    // MARK: 7

    static func issueBatching(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let log = CallbackLog()
        var transfers: [Transfer] = []
        func submitOne() throws -> DMACookie {
            let t = try ctx.transfer(rig, bufferSize: 4096, srcOffset: 16, dstOffset: 32, length: 3000)
            transfers.append(t)
            return try ctx.submit(rig, try ctx.prep(rig, t, callback: log.callback(ctx, rig.channel)), length: 3000)
        }
        var cookies: [DMACookie] = []
        for _ in 0..<4 { cookies.append(try submitOne()) }
        ctx.idle(0.02, rig: rig)
        ctx.expectEqual(log.count, 0, "callbacks before issuePending")
        rig.channel.issuePending()
        ctx.waitUntil("4 callbacks after issuePending", rig: rig) { log.count >= 4 }
        if !rig.caps.completionNoOrder { ctx.expectEqual(log.cookies, cookies, "completion order (cookie order)") }
        let more = [try submitOne(), try submitOne()]
        ctx.idle(0.1, rig: rig)
        ctx.expectEqual(log.count, 4, "callbacks of 2 transfers submitted after the first issuePending")
        for t in transfers.suffix(2) { ctx.expectVerified(t.verifyUntouched(), "transfer submitted but not issued") }
        for c in more { ctx.expectInProgress(rig, c, "submitted after the first issuePending, not issued") }
        rig.channel.issuePending()
        ctx.waitUntil("6 callbacks after the second issuePending", rig: rig) { log.count >= 6 }
        for (i, t) in transfers.enumerated() { ctx.expectVerified(t.verify(), "transfer \(i)") }
    }

    // MARK: 8

    static func inFlightResidue(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let len = 16384
        let log = CallbackLog()
        let t0 = try ctx.transfer(rig, bufferSize: len), t1 = try ctx.transfer(rig, bufferSize: len)
        let slow = ctx.slow(len, seconds: ctx.config.slowTransferSeconds * 3, chunks: 32)
        let c0 = try ctx.submit(rig, try ctx.prep(rig, t0, callback: log.callback(ctx, rig.channel), injection: slow), length: len)
        let c1 = try ctx.submit(rig, try ctx.prep(rig, t1, callback: log.callback(ctx, rig.channel), injection: slow), length: len)
        rig.channel.issuePending()
        let descriptorGranularity = rig.caps.residueGranularity == .descriptor
        var previous = Int.max
        ctx.phase("polling status 20 times")
        for i in 0..<20 {
            let (s0, x0) = rig.channel.status(of: c0)
            let (s1, x1) = rig.channel.status(of: c1)
            if s0 == .complete { break }
            if rig.caps.completionNoOrder && (s0 == .outOfOrder || s1 == .outOfOrder) {
                ctx.idle(0.01)
                continue  // rule S8: no residue answer for a cookie not yet observed
            }
            ctx.expectEqual(s0, .inProgress, "poll \(i): status of the active cookie \(c0)")
            ctx.expectEqual(s1, .inProgress, "poll \(i): status of the queued cookie \(c1)")
            if descriptorGranularity {
                ctx.expectEqual(x0.residue, 0, "poll \(i): residue with descriptor granularity (rule S5)")
            } else {
                ctx.expect(x0.residue > 0 && x0.residue <= len, "poll \(i): active residue \(x0.residue) should be in (0, \(len)]")
                ctx.expect(x0.residue <= previous, "poll \(i): active residue grew from \(previous) to \(x0.residue)")
                previous = x0.residue
                if rig.channel.status(of: c0).0 != .complete {
                    ctx.expectEqual(x1.residue, len, "poll \(i): residue of the queued cookie \(c1) (rule S5 [T])")
                }
            }
            ctx.idle(0.01)
        }
        ctx.waitUntil("both slow transfers complete", rig: rig) { log.count >= 2 }
        for c in [c0, c1] {
            let (st, tx) = rig.channel.status(of: c)
            ctx.expectEqual(st, .complete, "status of \(c) after completion")
            ctx.expectEqual(tx.residue, 0, "residue of \(c) after completion (rule S4)")
        }
        ctx.expectVerified(t0.verify(), "slow transfer 0")
        ctx.expectVerified(t1.verify(), "slow transfer 1")
    }

    // MARK: 9

    static func callbackInvariants(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let n = 1000, slot = 32
        let t = try ctx.transfer(rig, bufferSize: n * slot)
        let log = CallbackLog()
        var cookies: [DMACookie] = []
        for i in 0..<n {
            guard
                let d = rig.channel.prepareMemcpy(
                    to: t.destination + i * slot, from: t.source + i * slot, length: slot, flags: .default)
            else { throw ScenarioFailure("prepareMemcpy \(i) returned nil") }
            try rig.channel.setCallback(log.callback(ctx, rig.channel), for: d)
            cookies.append(try ctx.submit(rig, d, length: slot))
            if i % 7 == 6 { rig.channel.issuePending() }
        }
        rig.channel.issuePending()
        ctx.waitUntil("all \(n) callbacks ran (\(log.count) so far)", rig: rig) { log.count >= n }
        ctx.idle(0.02, rig: rig)
        ctx.expectEqual(log.count, n, "total callbacks (rule K1)")
        ctx.expect(log.maxConcurrent.load(ordering: .relaxed) <= 1, "rule K3: callbacks overlapped")
        if !rig.caps.completionNoOrder { ctx.expectEqual(log.cookies, cookies, "callback order = cookie order (rule K3)") }
        ctx.expectVerified(t.verify(), "\(n) copies")
    }

    // MARK: 10

    static func callbackPrecedence(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let t = try ctx.transfer(rig, bufferSize: 4096)
        let log = CallbackLog()
        let plainCalls = Atomic<Int>(0)
        var both = log.callback(ctx, rig.channel, parameter: 77)
        both.plain = { _ in plainCalls.add(1, ordering: .relaxed) }
        let d = try ctx.prep(rig, t, callback: both)
        let c = try ctx.submit(rig, d, length: 4096)
        rig.channel.issuePending()
        ctx.waitUntil("the callback ran", rig: rig) { log.count >= 1 || plainCalls.load(ordering: .relaxed) >= 1 }
        ctx.idle(0.02, rig: rig)
        ctx.expectEqual(plainCalls.load(ordering: .relaxed), 0, "plain callback calls when callbackResult is also set")
        ctx.expectEqual(log.count, 1, "callbackResult calls")
        if let r = log.completions.first {
            ctx.expectEqual(r.result, .noError, "callbackResult result")
            ctx.expectEqual(r.cookie, c, "callbackResult cookie")
            ctx.expectEqual(r.parameter, 77, "callback parameter")
        }
        ctx.expectVerified(t.verify(), "copy")
    }

    // MARK: 11

    static func polledMode(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        if rig.caps.completionNoOrder {
            throw ScenarioSkip("completionNoOrder backend: polled mode is disabled (rule S8); completion is observed through callbacks, and OUT_OF_ORDER is accepted in non-polled mode")
        }
        let t = try ctx.transfer(rig, bufferSize: 8192, srcOffset: 8, dstOffset: 24, length: 8000)
        let d = try ctx.prep(rig, t, flags: [.ack])
        let c = try ctx.submit(rig, d, length: t.length)
        rig.channel.issuePending()
        ctx.phase("polling txStatus")
        ctx.waitUntil("cookie \(c) reads COMPLETE by polling (5 s cap)", rig: rig, timeout: 5) {
            rig.channel.status(of: c).0 == .complete
        }
        ctx.expectVerified(t.verify(), "polled copy")
    }

    // MARK: 12

    final class Chain: @unchecked Sendable {
        let ctx: ScenarioContext
        let rig: Rig
        let log = CallbackLog()
        let t: Transfer
        let n: Int
        let slots: Int
        let slot = 8
        let issued = Atomic<Int>(0)

        init(ctx: ScenarioContext, rig: Rig, t: Transfer, n: Int) {
            self.ctx = ctx
            self.rig = rig
            self.t = t
            self.n = n
            self.slots = t.length / 8
        }

        func start() -> Bool {
            let k = issued.add(1, ordering: .relaxed).oldValue
            let off = (k % slots) * slot
            guard
                let d = rig.channel.prepareMemcpy(
                    to: t.destination + off, from: t.source + off, length: slot, flags: .default)
            else {
                ctx.fail("callback chain: prepareMemcpy \(k) returned nil")
                return false
            }
            do throws(DMAError) {
                try rig.channel.setCallback(log.callback(ctx, rig.channel) { [self] _ in
                    if self.log.count < self.n { _ = self.start() }
                }, for: d)
            } catch {
                ctx.fail("callback chain: setCallback failed with .\(error)")
                return false
            }
            let c = rig.channel.submit(d)
            if !c.isValid {
                ctx.fail("callback chain: submit \(k) returned \(c)")
                return false
            }
            ctx.addBytes(slot)
            rig.channel.issuePending()
            return true
        }
    }

    static func callbackChain(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let n = ctx.config.longMode ? 100_000 : 10_000
        let t = try ctx.transfer(rig, bufferSize: 4096)
        let chain = Chain(ctx: ctx, rig: rig, t: t, n: n)
        guard chain.start() else { return }
        ctx.phase("callback chain of \(n)")
        var lastSeen = -1
        ctx.waitUntil("the chain reached \(n) callbacks", rig: rig) {
            let c = chain.log.count
            if c != lastSeen {
                lastSeen = c
                ctx.tick()
            }
            return c >= n
        }
        ctx.idle(0.02, rig: rig)
        ctx.expectEqual(chain.log.count, n, "callbacks in the chain")
        let cookies = chain.log.cookies
        for (a, b) in zip(cookies, cookies.dropFirst()) where b != a.next {
            ctx.fail("chained cookies not consecutive: \(a) then \(b)")
            break
        }
        ctx.expectVerified(t.verify(), "chained copies")
        ctx.iterationsRun(n)
    }

    // MARK: 13

    static func idleTerminate(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let used0 = rig.channel.debugWatermark().used
        ctx.prompt("terminateSync on an idle channel") { ctx.expectOK("terminateSync on an idle channel") { try rig.channel.terminateSync() } }
        ctx.prompt("terminateAsync on an idle channel") { ctx.expectOK("terminateAsync on an idle channel") { try rig.channel.terminateAsync() } }
        ctx.prompt("synchronize after terminateAsync") { ctx.expectOK("synchronize after terminateAsync") { try rig.channel.synchronize() } }
        ctx.prompt("synchronize alone") { ctx.expectOK("synchronize alone") { try rig.channel.synchronize() } }
        ctx.expectEqual(rig.channel.debugWatermark().used, used0, "used after idle terminates (rule T5)")
        let log = CallbackLog()
        let t = try ctx.transfer(rig, bufferSize: 4096)
        let c = try ctx.submit(rig, try ctx.prep(rig, t, callback: log.callback(ctx, rig.channel)), length: 4096)
        ctx.expectEqual(c, used0.next, "next cookie after idle terminates (rule T8)")
        rig.channel.issuePending()
        ctx.waitUntil("the transfer after idle terminates completed", rig: rig) { log.count >= 1 }
        ctx.expectVerified(t.verify(), "copy after idle terminates")
    }
}
#endif
