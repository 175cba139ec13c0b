// dmabench — DMAEngineTestSupport
//
// Scenarios 22–28, 31 and 32 of docs/contract.md part B: pause and resume, descriptor reuse,
// prep and submit failures, cyclic transfers, faults, and configuration scope. Each
// optional capability is tested when advertised, and its refusal is checked otherwise.

#if os(Linux)
import DMAEngine
import Glibc
import Platform
import Synchronization

extension Scenarios {
    // MARK: 22

    static func pauseResume(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        guard rig.caps.cmdPause else {
            throw ScenarioSkip("cmdPause is false; scenario 23 checks that pause reports .notSupported")
        }
        let len = 16384
        let log = CallbackLog()
        let t0 = try ctx.transfer(rig, bufferSize: len), t1 = try ctx.transfer(rig, bufferSize: len)
        let c0 = try ctx.submit(rig, try ctx.prep(rig, t0, callback: log.callback(ctx, rig.channel), injection: ctx.slow(len, seconds: 0.4, chunks: 32)), length: len)
        let c1 = try ctx.submit(rig, try ctx.prep(rig, t1, callback: log.callback(ctx, rig.channel), injection: ctx.slow(len)), length: len)
        rig.channel.issuePending()
        waitUntilActive(ctx, rig, c0, length: len)
        ctx.phase("pause")
        ctx.expectOK("pause with a slow transfer active") { try rig.channel.pause() }
        let writes = rig.monitor.writes.load(ordering: .relaxed)
        let callbacks = log.count
        let snapshots = [t0.snapshot(), t1.snapshot()]
        // On a loaded machine the first transfer may have finished before pause; the
        // cookies that had not completed must all read PAUSED.
        let live = [c0, c1].filter { rig.channel.status(of: $0).0 != .complete }
        ctx.expect(!live.isEmpty, "both slow transfers completed before pause returned")
        var residues: [Int]? = nil
        for poll in 0..<3 {
            let states = live.map { rig.channel.status(of: $0) }
            for (c, st) in zip(live, states) {
                ctx.expectEqual(st.0, .paused, "poll \(poll): status of cookie \(c), not complete, while paused (rule S3)")
            }
            let r = states.map(\.1.residue)
            if let residues, residues != r { ctx.fail("poll \(poll): residue moved while paused: \(residues) → \(r) (rule P1)") }
            residues = r
            ctx.idle(0.05)
        }
        ctx.expectEqual(rig.monitor.writes.load(ordering: .relaxed), writes, "engine writes while paused (rule P1)")
        ctx.expectEqual(log.count, callbacks, "completions while paused (rule P1)")
        ctx.expect(t0.snapshot() == snapshots[0] && t1.snapshot() == snapshots[1], "destination bytes changed while paused (rule P1)")
        ctx.expectOK("resume") { try rig.channel.resume() }
        ctx.waitUntil("both transfers completed after resume", rig: rig) { log.count >= 2 }
        ctx.expectVerified(t0.verify(), "paused transfer (no data loss)")
        ctx.expectVerified(t1.verify(), "queued transfer")
    }

    // MARK: 23

    static func pauseEdgeCases(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        guard rig.caps.cmdPause else {
            ctx.expectError(.notSupported, "pause on a backend without cmdPause (rule P4)") { try rig.channel.pause() }
            ctx.expectError(.notSupported, "resume on a backend without cmdPause (rule P4)") { try rig.channel.resume() }
            return
        }
        ctx.expectError(.notPaused, "resume on an idle channel that is not paused (rule P3)") { try rig.channel.resume() }
        let log = CallbackLog()
        let t = try ctx.transfer(rig, bufferSize: 16384)
        try ctx.submit(rig, try ctx.prep(rig, t, callback: log.callback(ctx, rig.channel), injection: ctx.slow(16384, seconds: 0.05)), length: 16384)
        rig.channel.issuePending()
        ctx.expectError(.notPaused, "resume on a running channel (rule P3)") { try rig.channel.resume() }
        ctx.waitUntil("the transfer completed", rig: rig) { log.count >= 1 }
        ctx.expectOK("pause on an idle channel (rule P2)") { try rig.channel.pause() }
        let t2 = try ctx.transfer(rig, bufferSize: 4096)
        let c2 = try ctx.submit(rig, try ctx.prep(rig, t2, callback: log.callback(ctx, rig.channel)), length: 4096)
        rig.channel.issuePending()
        ctx.idle(0.1, rig: rig)
        ctx.expectEqual(log.count, 1, "callbacks of work issued on a paused channel before resume (rule P2 [T])")
        ctx.expectVerified(t2.verifyUntouched(), "work issued on a paused channel")
        ctx.expectEqual(rig.channel.status(of: c2).0, .paused, "status of work issued on a paused channel (rule S3)")
        ctx.expectOK("resume") { try rig.channel.resume() }
        ctx.waitUntil("work issued while paused completed after resume", rig: rig) { log.count >= 2 }
        ctx.expectVerified(t2.verify(), "work issued while paused")
    }

    // MARK: 24

    static func terminateWhilePaused(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        guard rig.caps.cmdPause else { throw ScenarioSkip("cmdPause is false: nothing can be paused") }
        let log = CallbackLog()
        let t = try ctx.transfer(rig, bufferSize: 16384)
        let c = try ctx.submit(rig, try ctx.prep(rig, t, callback: log.callback(ctx, rig.channel), injection: ctx.slow(16384)), length: 16384)
        rig.channel.issuePending()
        if !ctx.subject.isHandDriven { waitUntilActive(ctx, rig, c, length: 16384) }
        ctx.expectOK("pause with work in flight") { try rig.channel.pause() }
        ctx.expectOK("terminateSync while paused") { try rig.channel.terminateSync() }
        for round in 0..<2 {
            let before = log.count
            let t2 = try ctx.transfer(rig, bufferSize: 4096)
            try ctx.submit(rig, try ctx.prep(rig, t2, callback: log.callback(ctx, rig.channel)), length: 4096)
            rig.channel.issuePending()
            ctx.waitUntil("round \(round): a new transfer completed without resume after terminate (paused is cleared)", rig: rig) {
                log.count > before
            }
            ctx.expectVerified(t2.verify(), "round \(round): transfer after terminate while paused")
            ctx.expectError(.notPaused, "round \(round): resume after terminate cleared paused") { try rig.channel.resume() }
            // Round 1: an idle channel paused and terminated (rule T5: terminate also un-pauses).
            ctx.expectOK("pause on an idle channel") { try rig.channel.pause() }
            ctx.expectOK("terminateSync on an idle paused channel") { try rig.channel.terminateSync() }
        }
    }

    // MARK: 25

    static func descriptorReuse(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let ch = rig.channel
        let log = CallbackLog()
        let t = try ctx.transfer(rig, bufferSize: 4096, srcOffset: 40, dstOffset: 80, length: 2000)
        guard rig.caps.descriptorReuse else {
            let d = try ctx.prep(rig, t, callback: log.callback(ctx, ch))
            ctx.expectError(.notPermitted, "setReuse(true) without descriptorReuse (rule A.9)") { try ch.setReuse(true, for: d) }
            try ctx.submit(rig, d, length: t.length)
            ch.issuePending()
            ctx.waitUntil("the transfer completed", rig: rig) { log.count >= 1 }
            return
        }
        let d = try ctx.prep(rig, t, callback: log.callback(ctx, ch))
        try ch.setReuse(true, for: d)
        let rounds = 100
        var previous: DMACookie?
        /// Resubmits once the previous round is retired (the callback has returned).
        func resubmit() throws -> DMACookie {
            var c = ch.submit(d)
            let start = MonotonicClock.now()
            while !c.isValid && Double(MonotonicClock.now() &- start) / 1e9 < ctx.config.promptSeconds {
                ctx.drive(rig)
                sched_yield()
                c = ch.submit(d)
            }
            guard c.isValid else { throw ScenarioFailure("resubmitting an idle REUSE descriptor returned \(c)") }
            ctx.addBytes(t.length)
            return c
        }
        for r in 0..<rounds {
            ctx.setIteration(r)
            t.refill()
            let c = try resubmit()
            if let p = previous { ctx.expectEqual(c, p.next, "cookie of resubmission \(r) (rule C5)") }
            previous = c
            ch.issuePending()
            ctx.waitUntil("resubmission \(r) completed", rig: rig) { log.count >= r + 1 && log.inCallback.load(ordering: .sequentiallyConsistent) == 0 }
            ctx.expectVerified(t.verify(), "resubmission \(r)")
        }
        ctx.setIteration(-1)
        ctx.expectEqual(log.count, rounds, "one callback per resubmission")
        // In flight: a second submit is refused, so are setCallback and free.
        let c = try resubmit()
        let again = ch.submit(d)
        ctx.expect(!again.isValid, "resubmitting a REUSE descriptor in flight returned \(again); expected an error (.busy)")
        ctx.expectError(.busy, "free() on a REUSE descriptor in flight") { try ch.free(d) }
        ch.issuePending()
        ctx.waitUntil("the last resubmission completed", rig: rig) {
            log.count >= rounds + 1 && log.inCallback.load(ordering: .sequentiallyConsistent) == 0 && ch.status(of: c).0 == .complete
        }
        ctx.idle(0.01, rig: rig)
        ctx.expectOK("free() on an idle REUSE descriptor") { try ch.free(d) }
        ctx.expectError(.invalidHandle, "setCallback on a freed REUSE descriptor") { try ch.setCallback(DMACallback(), for: d) }
        // free() on a non-REUSE descriptor.
        let plain = try ctx.prep(rig, t, callback: log.callback(ctx, ch))
        ctx.expectError(.notPermitted, "free() on a non-REUSE descriptor (rule A.10)") { try ch.free(plain) }
        try ctx.submit(rig, plain, length: t.length)
        // Clear reuse and submit once more: the handle is invalid afterwards.
        let last = try ctx.prep(rig, t, callback: log.callback(ctx, ch))
        try ch.setReuse(true, for: last)
        try ch.setReuse(false, for: last)
        try ctx.submit(rig, last, length: t.length)
        ch.issuePending()
        ctx.waitUntil("the final transfers completed", rig: rig) { log.count >= rounds + 3 && log.inCallback.load(ordering: .sequentiallyConsistent) == 0 }
        ctx.idle(0.01, rig: rig)
        ctx.expectError(.invalidHandle, "setCallback after the final submit of a cleared-REUSE descriptor") { try ch.setCallback(DMACallback(), for: last) }
        ctx.expect(!ch.submit(last).isValid, "submitting a retired non-REUSE descriptor should fail")
        ctx.iterationsRun(rounds)
    }

    // MARK: 26

    static func reuseTerminateRelease(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        guard rig.caps.descriptorReuse else {
            throw ScenarioSkip("descriptorReuse is false; scenario 25 checks that setReuse reports .notPermitted")
        }
        let ch = rig.channel
        let log = CallbackLog()
        let t = try ctx.transfer(rig, bufferSize: 16384)
        let d = try ctx.prep(rig, t, callback: log.callback(ctx, ch), injection: ctx.slow(16384, seconds: 0.5, chunks: 32))
        try ch.setReuse(true, for: d)
        let c = try ctx.submit(rig, d, length: 16384)
        ch.issuePending()
        if !ctx.subject.isHandDriven { waitUntilActive(ctx, rig, c, length: 16384) }
        ctx.expectOK("terminateSync with a REUSE descriptor in flight") { try ch.terminateSync() }
        ctx.expectEqual(log.count, 0, "callbacks of the terminated REUSE descriptor")
        t.refill()
        let c2 = ch.submit(d)
        ctx.expect(c2.isValid, "resubmitting a terminated REUSE descriptor (back in prepared, rule T3c) returned \(c2)")
        guard c2.isValid else { return }
        ctx.addBytes(16384)
        ch.issuePending()
        ctx.waitUntil("the resubmitted REUSE descriptor completed", rig: rig) { log.count >= 1 }
        ctx.expectVerified(t.verify(), "resubmitted REUSE transfer")
        ctx.waitUntil("the REUSE descriptor is retired", rig: rig) { log.inCallback.load(ordering: .sequentiallyConsistent) == 0 }
        ctx.expectOK("release with an idle REUSE descriptor") { try ch.release() }
        ctx.markReleased(rig)
        do throws(DMAError) {
            try ch.setCallback(DMACallback(), for: d)
            ctx.fail("setCallback on a REUSE descriptor after release succeeded; expected .released or .invalidHandle")
        } catch {
            ctx.expect(error == .released || error == .invalidHandle, "setCallback after release: expected .released or .invalidHandle, got .\(error)")
        }
    }

    // MARK: 27

    static func submitFailure(_ ctx: ScenarioContext) throws {
        var options = ctx.config.channelOptions
        options.poolSize = 8
        let rig = try ctx.makeRig(options: options)
        let ch = rig.channel
        let t = try ctx.transfer(rig, bufferSize: 4096)
        var prepared: [DMADescriptor] = []
        var exhausted = false
        for i in 0..<64 {
            guard let d = ch.prepareMemcpy(to: t.destination + i * 16, from: t.source + i * 16, length: 16, flags: .default) else {
                exhausted = true
                break
            }
            prepared.append(d)
        }
        ctx.expect(exhausted, "prepareMemcpy never returned nil with a pool of 8 (\(prepared.count) prepared)")
        ctx.expect(prepared.count <= 64, "prepared \(prepared.count) descriptors")
        let drained = CallbackLog()
        for d in prepared {
            try ch.setCallback(drained.callback(ctx, ch), for: d)
            try ctx.submit(rig, d, length: 16)
        }
        ch.issuePending()
        ctx.waitUntil("the \(prepared.count) descriptors that exhausted the pool completed", rig: rig) {
            drained.count >= prepared.count && drained.inCallback.load(ordering: .sequentiallyConsistent) == 0
        }
        var extra: DMADescriptor?
        ctx.waitUntil("the pool has room again", rig: rig, timeout: 2) {
            extra = ch.prepareMemcpy(to: t.destination, from: t.source, length: 16, flags: .default)
            return extra != nil
        }
        if let extra {
            try ch.setCallback(drained.callback(ctx, ch), for: extra)
            try ctx.submit(rig, extra, length: 16)
            ch.issuePending()
            ctx.waitUntil("the descriptor prepared after the pool drained completed", rig: rig) {
                drained.count >= prepared.count + 1 && drained.inCallback.load(ordering: .sequentiallyConsistent) == 0
            }
        }
        // Injected submit failure.
        let log = CallbackLog()
        let before = ch.debugWatermark()
        ch.debugFailNextSubmits(1)
        let failing = try ctx.prep(rig, t, callback: log.callback(ctx, ch))
        let bad = ch.submit(failing)
        ctx.expect(bad.rawValue < 0, "an injected submit failure returned \(bad); expected a negative cookie")
        ctx.expectEqual(ch.debugWatermark().used, before.used, "used after a failed submit")
        let good = try ctx.submit(rig, try ctx.prep(rig, t, callback: log.callback(ctx, ch)), length: t.length)
        ctx.expectEqual(good, before.used.next, "cookie of the submit after a failed one")
        ch.issuePending()
        ctx.waitUntil("the submit after a failed one completed", rig: rig) { log.count >= 1 }
        ctx.idle(0.05, rig: rig)
        ctx.expectEqual(log.count, 1, "callbacks (none for the failed submit)")
        ctx.expectEqual(log.cookies.first, good, "the one callback's cookie")
    }

    // MARK: 28

    static func cyclic(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        guard rig.caps.cyclic else { throw ScenarioSkip("cyclic is false (DMA_CYCLIC not in the capability mask)") }
        let ch = rig.channel
        let bufLen = 16384, period = 4096
        let t = try ctx.transfer(rig, bufferSize: bufLen)
        let log = CallbackLog(checkStatus: false)
        guard let d = ch.prepareCyclic(to: t.destination, from: t.source, bufferLength: bufLen, periodLength: period, flags: .default) else {
            throw ScenarioFailure("prepareCyclic returned nil on a channel that advertises cyclic")
        }
        try ch.setCallback(log.callback(ctx, ch), for: d)
        try ch.debugInject(DMAInjection(chunkBytes: 1024, delayPerChunkNanoseconds: 2_500_000), into: d)
        let c = try ctx.submit(rig, d)
        ch.issuePending()
        let start = MonotonicClock.now()
        let descriptorGranularity = rig.caps.residueGranularity == .descriptor
        ctx.phase("running the cyclic transfer for 1 s")
        var polls = 0
        while Double(MonotonicClock.now() &- start) / 1e9 < 1.0 {
            let (st, tx) = ch.status(of: c)
            ctx.expectEqual(st, .inProgress, "poll \(polls): status of a running cyclic transfer")
            if descriptorGranularity {
                ctx.expectEqual(tx.residue, 0, "poll \(polls): residue with descriptor granularity")
            } else {
                ctx.expect(tx.residue > 0 && tx.residue <= bufLen, "poll \(polls): cyclic residue \(tx.residue) should be in (0, \(bufLen)]")
            }
            polls += 1
            ctx.idle(0.05)
        }
        let callbacks = log.count
        let periods = rig.monitor.bytesWritten.load(ordering: .relaxed) / period
        ctx.expect(callbacks >= 1, "no period callback in 1 s of a cyclic transfer")
        ctx.expect(callbacks <= periods + 1, "rule K1: \(callbacks) callbacks for \(periods) elapsed periods")
        ctx.expectOK("terminateSync of a cyclic transfer") { try ch.terminateSync() }
        rig.monitor.forbid(upTo: c, "after terminateSync of the cyclic transfer")
        let frozen = log.count, snap = t.snapshot()
        ctx.idle(0.1)
        ctx.expectEqual(log.count, frozen, "callbacks after terminateSync of a cyclic transfer")
        ctx.expect(t.snapshot() == snap, "the engine kept writing the cyclic buffer after terminateSync")
        ctx.note("cyclic: \(callbacks) callbacks for \(periods) periods in 1 s")
    }

    // MARK: 31

    static func faults(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        for (fault, code, count, index) in [(DMAFault.read, DMAResultCode.readFailed, 5, 2), (.write, .writeFailed, 3, 1)] {
            let log = CallbackLog()
            var transfers: [Transfer] = []
            var cookies: [DMACookie] = []
            for i in 0..<count {
                let t = try ctx.transfer(rig, bufferSize: 4096)
                transfers.append(t)
                let d = try ctx.prep(rig, t, callback: log.callback(ctx, rig.channel), injection: i == index ? .fault(fault) : nil)
                cookies.append(try ctx.submit(rig, d, length: 4096))
            }
            rig.channel.issuePending()
            ctx.waitUntil("\(count) callbacks with a \(fault) fault on transfer \(index + 1)", rig: rig) { log.count >= count }
            let byCookie = Dictionary(log.completions.map { ($0.cookie, $0.result) }, uniquingKeysWith: { a, _ in a })
            for (i, c) in cookies.enumerated() {
                guard let r = byCookie[c] else {
                    ctx.fail("no callback for transfer \(i + 1) (cookie \(c))")
                    continue
                }
                if i == index {
                    ctx.expectEqual(r.code, code, "result of the transfer with an injected \(fault) fault")
                } else {
                    ctx.expectEqual(r, .noError, "result of transfer \(i + 1) beside a \(fault) fault")
                    ctx.expectVerified(transfers[i].verify(), "transfer \(i + 1) beside a \(fault) fault")
                }
            }
        }
    }

    // MARK: 32

    static func configScope(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        let ch = rig.channel
        let len = 4096, burstA = 256, burstB = 1024
        do throws(DMAError) { try ch.configure(DMAConfig(burstBytes: burstA)) } catch {
            if error == .notSupported { throw ScenarioSkip("configure reports .notSupported") }
            throw error
        }
        rig.monitor.countWritesPerCookie()
        let log = CallbackLog()
        let ta = try ctx.transfer(rig, bufferSize: len), tb = try ctx.transfer(rig, bufferSize: len)
        let a = try ctx.submit(rig, try ctx.prep(rig, ta, callback: log.callback(ctx, ch)), length: len)
        try ch.configure(DMAConfig(burstBytes: burstB))
        let b = try ctx.submit(rig, try ctx.prep(rig, tb, callback: log.callback(ctx, ch)), length: len)
        ch.issuePending()
        ctx.waitUntil("both transfers completed", rig: rig) { log.count >= 2 }
        // The probe reports k accesses per burst (k = 1 for a user-space engine; io_uring
        // reports hand-off and completion, k = 2), the same k for both transfers.
        let wa = rig.monitor.writeCount(for: a), wb = rig.monitor.writeCount(for: b)
        let na = len / burstA, nb = len / burstB
        if wa == 0 || wa % na != 0 || wb % nb != 0 || wa / na != wb / nb {
            ctx.fail("config scope: transfer A (prepared under burstBytes \(burstA): \(na) bursts) reported \(wa) write accesses, transfer B (burstBytes \(burstB): \(nb) bursts) reported \(wb); expected the same multiple of \(na) and \(nb)")
        }
        ctx.expectVerified(ta.verify(), "transfer A")
        ctx.expectVerified(tb.verify(), "transfer B")
        try ch.configure(DMAConfig())
    }
}
#endif
