// dmabench — RingTests
//
// The ring backend's own tests: ring wrap-around, full and empty rings, concurrent
// producers, the watermark, terminate/synchronize, pause/resume, reuse, hooks, and the
// negative controls (each must be caught).

import DMAEngine
import DMAEngineTestSupport
@_spi(NegativeControls) @testable import DMAEngineRing
import Glibc
import Platform
import Synchronization
import Testing
import TestHelpers

@Suite("RingChannel")
struct RingChannelTests {
    @Test func basicCopyCompletesOnceWithData() throws {
        let ch = try RingChannel()
        defer { try? ch.release() }
        let b = try Buffers(count: 8192)
        let log = CallbackLog()
        let d = try #require(ch.prepareMemcpy(to: b.destination + 100, from: b.source + 100, length: 5000, callback: log.callback))
        let c = ch.submit(d)
        #expect(c.rawValue == 2)
        ch.issuePending()
        #expect(waitUntil { log.count == 1 })
        #expect(log.cookies == [2])
        #expect(log.results == [.noError])
        #expect(b.copied(100..<5100))
        #expect(b.destinationIsZero(0..<100) && b.destinationIsZero(5100..<8192))
        let (s, st) = ch.status(of: c)
        #expect(s == .complete && st.residue == 0)
        #expect(ch.backendName == "ring")
    }

    /// S6 and C6: a terminate moves `last` to its cutoff, which may be past the engine's
    /// issued tail; the engine's completion of an older ticket must not move it back (it
    /// did, found by the random-client checker: cookies of the terminated batch read
    /// IN_PROGRESS again after terminateSync).
    @Test func aStaleCompletionNeverMovesLastBehindATerminatesCutoff() throws {
        let ch = try RingChannel()
        defer { try? ch.release() }
        let core = ch.core
        let base = core.last.pointee.load(ordering: .relaxed)
        core.advanceLast(to: base &+ 39)  // terminate: cutoff = used, past what was issued
        core.advanceLast(to: base &+ 26)  // the engine: a completion from before the terminate
        #expect(core.last.pointee.load(ordering: .relaxed) == base &+ 39)
        core.advanceLast(to: base &+ 40)
        #expect(core.last.pointee.load(ordering: .relaxed) == base &+ 40)
    }

    @Test func freshChannelWatermarkAndSequentialCookies() throws {
        let ch = try RingChannel()
        defer { try? ch.release() }
        #expect(ch.debugWatermark() == DMACookieWatermark(used: .initial, last: .initial))
        #expect(ch.status(of: DMACookie(12345)).0 == .complete)
        let b = try Buffers(count: 4096)
        var cookies: [Int32] = []
        for _ in 0..<1000 {
            let d = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, flags: .default))
            cookies.append(ch.submit(d).rawValue)
        }
        #expect(cookies == Array(2...1001))
        #expect(ch.debugWatermark().used.rawValue == 1001)
        // Submitted, not issued: in progress and untouched.
        #expect(ch.status(of: DMACookie(500)).0 == .inProgress)
        #expect(ch.status(of: DMACookie(500)).1.residue == 64)
        #expect(b.destinationIsZero(0..<64))
        ch.issuePending()
        #expect(waitUntil { ch.debugWatermark().last.rawValue == 1001 })
        #expect(b.copied(0..<64))
    }

    /// The issue mark (`SubmissionSlot.issued`) only ever starts a ticket that an
    /// `issuePending` issued. Pools of 1 and 2 make rings of two slots, the smallest whose
    /// stale marks cannot match (with one slot, every mark would name the next ticket), and
    /// every lap leaves a mark behind in each slot. Each round submits one descriptor
    /// without issuing it, checks that it stays queued and untouched, then issues it.
    @Test(arguments: [1, 2])
    func anUnissuedDescriptorNeverStartsOnAStaleIssueMark(poolSize: Int) throws {
        let ch = try RingChannel(options: DMAChannelOptions(poolSize: poolSize, spinNanoseconds: 1_000_000))
        defer { try? ch.release() }
        #expect(ch.core.capacity == 2)
        let b = try Buffers(count: 4096)
        let log = CallbackLog()
        for round in 0..<300 {
            let offset = (round % 16) * 256
            memset(b.destination + offset, 0, 256)
            // The engine returns a descriptor to the pool after its callback, so with a pool of
            // one the next prep may have to wait for it.
            var prepared: DMADescriptor?
            #expect(waitUntil {
                prepared = ch.prepareMemcpy(to: b.destination + offset, from: b.source + offset, length: 256, callback: log.callback)
                return prepared != nil
            })
            let d = try #require(prepared)
            let c = ch.submit(d)
            // The engine spins (1 ms) on the marks of the slot it expects next: give it
            // time to take a stale one.
            let until = MonotonicClock.now() + 20_000
            while MonotonicClock.now() < until { cpuRelax() }
            #expect(log.count == round, "round \(round): a callback before issuePending")
            #expect(b.destinationIsZero(offset..<offset + 256), "round \(round): copied before issuePending")
            let (s, st) = ch.status(of: c)
            #expect(s == .inProgress && st.residue == 256, "round \(round): \(s), residue \(st.residue)")
            ch.issuePending()
            #expect(waitUntil { log.count == round + 1 })
            #expect(b.copied(offset..<offset + 256))
        }
    }

    /// A pool of 4 makes a submission ring of 4: 10 000 transfers wrap it 2 500 times, with
    /// the pool running empty (prep returns nil) and the ring running full.
    @Test func smallRingWrapsAndRunsFull() throws {
        let ch = try RingChannel(options: DMAChannelOptions(poolSize: 4, spinNanoseconds: 1_000))
        defer { try? ch.release() }
        let b = try Buffers(count: 4096)
        let log = CallbackLog()
        var submitted = 0
        var nilPreps = 0
        var expected: Int32 = 2
        while submitted < 10_000 {
            var ranDry = true
            while let d = ch.prepareMemcpy(to: b.destination + (submitted % 16) * 256, from: b.source + (submitted % 16) * 256, length: 256, callback: log.callback) {
                let c = ch.submit(d)
                #expect(c.rawValue == expected)
                expected += 1
                submitted += 1
                if submitted == 10_000 {
                    ranDry = false
                    break
                }
            }
            if ranDry { nilPreps += 1 }
            ch.issuePending()
            let target = submitted
            #expect(waitUntil { log.count == target })
        }
        #expect(nilPreps > 0)
        #expect(log.cookies == Array(2...10_001))
        #expect(b.copied(0..<4096))
    }

    @Test func concurrentSubmittersGetContiguousCookiesInOrder() throws {
        let ch = try RingChannel(options: DMAChannelOptions(poolSize: 8192))
        defer { try? ch.release() }
        let b = try Buffers(count: 1 << 16)
        let log = CallbackLog()
        let perThread = 500
        let threads = 8
        let results = LockedValue<[[Int32]]>(Array(repeating: [], count: threads))
        var workers: [OSThread] = []
        for i in 0..<threads {
            let cb = log.callback
            workers.append(try OSThread(name: "submitter-\(i)") {
                var mine: [Int32] = []
                for k in 0..<perThread {
                    let off = ((i * perThread + k) % 1024) * 64
                    guard let d = ch.prepareMemcpy(to: b.destination + off, from: b.source + off, length: 64, callback: cb) else { break }
                    mine.append(ch.submit(d).rawValue)
                }
                results.withLock { $0[i] = mine }
            })
        }
        for w in workers { w.join() }
        ch.issuePending()
        let all = results.withLock { $0 }
        #expect(all.allSatisfy { $0.count == perThread })
        for mine in all { #expect(mine == mine.sorted()) }
        #expect(all.flatMap { $0 }.sorted() == Array(2...Int32(1 + threads * perThread)))
        #expect(waitUntil { log.count == threads * perThread })
        #expect(log.cookies == Array(2...Int32(1 + threads * perThread)))
        #expect(log.maxConcurrent.load(ordering: .relaxed) == 1)
        #expect(b.copied(0..<(1024 * 64)))
    }

    @Test func watermarkSnapshotsStayConsistentWhileBothCountersMove() throws {
        // `used` and `last` are on separate lines; the snapshot re-reads `used` (rule S1).
        let ch = try RingChannel(options: DMAChannelOptions(poolSize: 256))
        defer { try? ch.release() }
        let total = 200_000
        let outcome = try WatermarkRace.run(ch, total: total)
        #expect(outcome.inconsistent == 0)
        #expect(outcome.reads > 100)
        #expect(ch.debugWatermark() == DMACookieWatermark(used: DMACookie(Int32(1 + total)), last: DMACookie(Int32(1 + total))))
    }

    @Test func cookieWrapFollowsTheWatermarkFormula() throws {
        let ch = try RingChannel()
        defer { try? ch.release() }
        try ch.debugSeedCookie(used: DMACookie(.max - 2), last: DMACookie(.max - 2))
        let b = try Buffers(count: 4096)
        let gate = Gate()
        let log = CallbackLog()
        var cookies: [Int32] = []
        // The first transfer stalls until released, so the others are mid-flight.
        let first = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, callback: log.callback))
        try ch.debugInject(.stalled, into: first)
        cookies.append(ch.submit(first).rawValue)
        for i in 1..<5 {
            let d = try #require(ch.prepareMemcpy(to: b.destination + i * 64, from: b.source + i * 64, length: 64, callback: log.callback))
            cookies.append(ch.submit(d).rawValue)
        }
        #expect(cookies == [.max - 1, .max, 1, 2, 3])
        ch.issuePending()
        let w = ch.debugWatermark()
        #expect(w.used.rawValue == 3 && w.last.rawValue == .max - 2)
        #expect(ch.status(of: DMACookie(1)).0 == .inProgress)
        #expect(ch.status(of: DMACookie(.max)).0 == .inProgress)
        #expect(ch.status(of: DMACookie(100)).0 == .complete)
        ch.debugReleaseStalls()
        gate.release()
        #expect(waitUntil { log.count == 5 })
        #expect(log.cookies == cookies)
        #expect(ch.status(of: DMACookie(3)).0 == .complete)
    }

    @Test func watermarkOracleOnSeededIdleChannel() throws {
        let ch = try RingChannel()
        defer { try? ch.release() }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let used = DMACookie(Int32.random(in: 1 ... .max, using: &rng))
            let last = DMACookie(Int32.random(in: 1 ... .max, using: &rng))
            try ch.debugSeedCookie(used: used, last: last)
            #expect(ch.debugWatermark() == DMACookieWatermark(used: used, last: last))
            for _ in 0..<4 {
                let c = DMACookie(Int32.random(in: 1 ... .max, using: &rng))
                let expected = DMACookieWatermark.isComplete(c, last: last, used: used)
                #expect((ch.status(of: c).0 == .complete) == expected)
            }
        }
    }

    @Test func terminateSyncDropsQueuedWorkAndChannelIsReusable() throws {
        let ch = try RingChannel()
        defer { try? ch.release() }
        let b = try Buffers(count: 1 << 16)
        let log = CallbackLog()
        var cookies: [DMACookie] = []
        for i in 0..<8 {
            let d = try #require(ch.prepareMemcpy(to: b.destination + i * 4096, from: b.source + i * 4096, length: 4096, callback: log.callback))
            try ch.debugInject(.slow(length: 4096, nanoseconds: 200_000_000), into: d)
            cookies.append(ch.submit(d))
        }
        ch.issuePending()
        #expect(waitUntil { ch.status(of: cookies[0]).1.residue < 4096 })
        try ch.terminateSync()
        for c in cookies { #expect(ch.status(of: c).0 == .complete) }
        let afterSync = log.count
        #expect(afterSync == 0)
        #expect(b.destinationIsZero(4096..<(8 * 4096)))
        MonotonicClock.sleep(nanoseconds: 20_000_000)
        #expect(log.count == afterSync)
        // Reusable: cookies continue from `used`.
        let d = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, callback: log.callback))
        let c = ch.submitAndIssue(d)
        #expect(c == cookies.last!.next)
        #expect(waitUntil { log.count == 1 })
        #expect(log.cookies == [c.rawValue])
    }

    /// Everything a plain copy touches stays in the descriptor's first 64-byte line, so that
    /// a prep, the engine's copy and the retire each move one line between the CPUs, not two
    /// (`RingDescriptor`).
    @Test func descriptorHotFieldsShareOneLine() {
        let p = UnsafeMutablePointer<RingDescriptor>.allocate(capacity: 1)
        p.initialize(to: RingDescriptor())
        defer {
            p.deinitialize(count: 1)
            p.deallocate()
        }
        let base = UnsafeRawPointer(p)
        func offset(_ q: UnsafeRawPointer) -> Int { q - base }
        let lastHot = offset(withUnsafeMutablePointer(to: &p.pointee.fault) { UnsafeRawPointer($0) })
        let callback = offset(withUnsafeMutablePointer(to: &p.pointee.packed) { UnsafeRawPointer($0) })
        let firstCold = offset(withUnsafeMutablePointer(to: &p.pointee.stallSeen) { UnsafeRawPointer($0) })
        #expect(MemoryLayout<DMAPackedCallback>.size == 25)
        #expect(callback + MemoryLayout<DMAPackedCallback>.size <= 64)
        #expect(lastHot < 64)
        #expect(firstCold >= 64)
        #expect(MemoryLayout<RingDescriptor>.stride <= RingCore.descriptorStride)
    }

    /// The packed callback keeps both kinds, their parameter, and `callback_result`'s
    /// precedence when both are set, through prep, `setCallback` and a REUSE resubmit.
    @Test func packedCallbacksKeepTheirKindAndParameter() throws {
        let ch = try RingChannel()
        defer { try? ch.release() }
        let b = try Buffers(count: 4096)
        let seen = LockedValue<[String]>([])
        let plain = DMACallback.plain(parameter: 7) { p in seen.withLock { $0.append("plain \(p)") } }
        let result = DMACallback.result(parameter: 9) { c in seen.withLock { $0.append("result \(c.parameter) \(c.result.code)") } }
        let both = DMACallback(
            plain: { _ in seen.withLock { $0.append("plain of both") } },
            withResult: { c in seen.withLock { $0.append("result of both \(c.parameter)") } }, parameter: 11)
        let d1 = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, callback: plain))
        _ = ch.submitAndIssue(d1)
        #expect(waitUntil { seen.withLock { $0.count } == 1 })
        let d2 = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, flags: .default))
        try ch.setCallback(result, for: d2)
        _ = ch.submitAndIssue(d2)
        #expect(waitUntil { seen.withLock { $0.count } == 2 })
        let d3 = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, callback: both))
        try ch.setReuse(true, for: d3)
        _ = ch.submitAndIssue(d3)
        #expect(waitUntil { seen.withLock { $0.count } == 3 })
        // Resubmitted, the REUSE descriptor still holds its callback (copied at retire).
        #expect(waitUntil { ch.submit(d3).isValid })
        ch.issuePending()
        #expect(waitUntil { seen.withLock { $0.count } == 4 })
        #expect(seen.withLock { $0 } == ["plain 7", "result 9 noError", "result of both 11", "result of both 11"])
    }

    @Test func terminateOnIdleChannelAndIllegalContexts() throws {
        let ch = try RingChannel()
        defer { try? ch.release() }
        try ch.terminateSync()
        try ch.terminateAsync()
        try ch.synchronize()
        try ch.synchronize()
        let errors = LockedValue<[DMAError]>([])
        let b = try Buffers(count: 4096)
        let d = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, callback: .plain { _ in
            do throws(DMAError) { try ch.synchronize() } catch { errors.withLock { $0.append(error) } }
            do throws(DMAError) { try ch.terminateSync() } catch { errors.withLock { $0.append(error) } }
            do throws(DMAError) { try ch.release() } catch { errors.withLock { $0.append(error) } }
        }))
        _ = ch.submitAndIssue(d)
        #expect(waitUntil { errors.withLock { $0.count } == 3 })
        #expect(errors.withLock { $0 } == [.illegalContext, .illegalContext, .illegalContext])
        #expect(throws: DMAError.illegalContext) { try withNonBlockingContext { () throws(DMAError) in try ch.synchronize() } }
    }

    @Test func pauseFreezesResidueAndResumeCompletes() throws {
        let ch = try RingChannel()
        defer { try? ch.release() }
        let b = try Buffers(count: 1 << 16)
        let log = CallbackLog()
        let d = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 1 << 16, callback: log.callback))
        try ch.debugInject(.slow(length: 1 << 16, nanoseconds: 300_000_000, chunks: 32), into: d)
        let c = ch.submitAndIssue(d)
        #expect(waitUntil { ch.status(of: c).1.residue < 1 << 16 })
        try ch.pause()
        let (s1, t1) = ch.status(of: c)
        #expect(s1 == .paused)
        MonotonicClock.sleep(nanoseconds: 30_000_000)
        let (s2, t2) = ch.status(of: c)
        #expect(s2 == .paused && t2.residue == t1.residue && t1.residue > 0)
        #expect(log.count == 0)
        #expect(throws: DMAError.notPaused) { try withNonBlockingContext { () throws(DMAError) in
            try ch.resume()
            try ch.resume()
        } }
        #expect(waitUntil { log.count == 1 })
        #expect(b.copied(0..<(1 << 16)))
        #expect(throws: DMAError.notPaused) { try ch.resume() }
    }

    @Test func pauseOnIdleChannelHoldsLaterWork() throws {
        let ch = try RingChannel()
        defer { try? ch.release() }
        let b = try Buffers(count: 4096)
        let log = CallbackLog()
        try ch.pause()
        let d = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, callback: log.callback))
        let c = ch.submitAndIssue(d)
        MonotonicClock.sleep(nanoseconds: 20_000_000)
        #expect(log.count == 0 && ch.status(of: c).0 == .paused)
        // Terminate clears pause (rule [T], scenario 24).
        try ch.terminateSync()
        let d2 = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, callback: log.callback))
        let c2 = ch.submitAndIssue(d2)
        #expect(waitUntil { log.count == 1 })
        #expect(log.cookies == [c2.rawValue])
    }

    @Test func reuseDescriptorGetsFreshCookies() throws {
        let ch = try RingChannel()
        defer { try? ch.release() }
        let b = try Buffers(count: 4096)
        let log = CallbackLog()
        let d = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 512, callback: log.callback))
        try ch.setReuse(true, for: d)
        var cookies: [Int32] = []
        for i in 0..<100 {
            let c = ch.submitAndIssue(d)
            #expect(c.isValid)
            cookies.append(c.rawValue)
            #expect(waitUntil { log.count == i + 1 && (try? ch.setReuse(true, for: d)) != nil })
        }
        #expect(log.cookies == cookies && cookies == Array(2...101))
        // In flight → busy.
        try ch.debugInject(.stalled, into: d)
        let c = ch.submitAndIssue(d)
        #expect(ch.submit(d).rawValue < 0)
        #expect(throws: DMAError.busy) { try ch.free(d) }
        try ch.terminateSync()
        #expect(ch.status(of: c).0 == .complete)
        try ch.free(d)
        #expect(throws: DMAError.invalidHandle) { try ch.free(d) }
        let plain = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, flags: .default))
        #expect(throws: DMAError.notPermitted) { try ch.free(plain) }
    }

    @Test func memsetFaultsAndInjectedSubmitFailures() throws {
        let ch = try RingChannel()
        defer { try? ch.release() }
        let b = try Buffers(count: 4096)
        let log = CallbackLog()
        let m = try #require(ch.prepareMemset(to: b.destination, value: 0xAB, length: 100, flags: .default))
        try ch.setCallback(log.callback, for: m)
        _ = ch.submitAndIssue(m)
        let f = try #require(ch.prepareMemcpy(to: b.destination + 200, from: b.source, length: 100, callback: log.callback))
        try ch.debugInject(.fault(.read), into: f)
        _ = ch.submit(f)
        let g = try #require(ch.prepareMemcpy(to: b.destination + 400, from: b.source, length: 100, callback: log.callback))
        try ch.debugInject(.fault(.write), into: g)
        _ = ch.submit(g)
        ch.issuePending()
        #expect(waitUntil { log.count == 3 })
        #expect(log.results.map(\.code) == [.noError, .readFailed, .writeFailed])
        #expect((0..<100).allSatisfy { b.destination.load(fromByteOffset: $0, as: UInt8.self) == 0xAB })
        let used = ch.debugWatermark().used
        ch.debugFailNextSubmits(2)
        let h = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, callback: log.callback))
        #expect(ch.submit(h).rawValue < 0)
        #expect(ch.submit(h).rawValue < 0)
        #expect(ch.debugWatermark().used == used)
        #expect(ch.submit(h) == used.next)
    }

    @Test func burstConfigChunksAndProbeSeesEveryChunk() throws {
        let ch = try RingChannel()
        defer { try? ch.release() }
        let b = try Buffers(count: 8192)
        let log = CallbackLog()
        let writes = LockedValue<[Int]>([])
        ch.debugSetAccessProbe { access in
            if access.kind == .write { writes.withLock { $0.append(access.count) } }
        }
        try ch.configure(DMAConfig(burstBytes: 1000))
        let d = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 4500, callback: log.callback))
        try ch.configure(DMAConfig(burstBytes: 0))
        let e = try #require(ch.prepareMemcpy(to: b.destination + 5000, from: b.source + 5000, length: 3000, callback: log.callback))
        _ = ch.submit(d)
        _ = ch.submitAndIssue(e)
        #expect(waitUntil { log.count == 2 })
        #expect(writes.withLock { $0 } == [1000, 1000, 1000, 1000, 500, 3000])
        #expect(b.copied(0..<4500) && b.copied(5000..<8000))
        #expect(throws: DMAError.self) { try ch.configure(DMAConfig(burstBytes: -1)) }
    }

    @Test func cyclicRunsPeriodsUntilTerminated() throws {
        let ch = try RingChannel()
        defer { try? ch.release() }
        #expect(ch.capabilities.cyclic)
        let b = try Buffers(count: 8192)
        let log = CallbackLog()
        let d = try #require(ch.prepareCyclic(to: b.destination, from: b.source, bufferLength: 8192, periodLength: 2048, flags: .default))
        try ch.setCallback(log.callback, for: d)
        try ch.debugInject(DMAInjection(chunkBytes: 1024, delayPerChunkNanoseconds: 1_000_000), into: d)
        let c = ch.submitAndIssue(d)
        #expect(waitUntil { log.count >= 4 })
        let (s, t) = ch.status(of: c)
        #expect(s == .inProgress && t.residue > 0 && t.residue <= 8192)
        try ch.terminateSync()
        let frozen = log.count
        MonotonicClock.sleep(nanoseconds: 20_000_000)
        #expect(log.count == frozen)
        #expect(log.cookies.allSatisfy { $0 == c.rawValue })
        #expect(b.copied(0..<8192))
        #expect(ch.prepareCyclic(to: b.destination, from: b.source, bufferLength: 100, periodLength: 200, flags: .default) == nil)
    }

    @Test func releaseWaitsForCallbacksThenEveryOpFails() throws {
        let ch = try RingChannel()
        let b = try Buffers(count: 4096)
        let gate = Gate()
        let inCallback = Atomic<Bool>(false)
        let d = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, callback: .plain { _ in
            inCallback.store(true, ordering: .sequentiallyConsistent)
            gate.wait()
            inCallback.store(false, ordering: .sequentiallyConsistent)
        }))
        _ = ch.submitAndIssue(d)
        #expect(waitUntil { inCallback.load(ordering: .sequentiallyConsistent) })
        let releaser = try OSThread(name: "releaser") { gate.release() }
        try ch.release()
        let stillRunning = inCallback.load(ordering: .sequentiallyConsistent)
        #expect(!stillRunning)
        releaser.join()
        #expect(throws: DMAError.released) { try ch.release() }
        #expect(throws: DMAError.released) { try ch.terminateAsync() }
        #expect(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, flags: .default) == nil)
        #expect(ch.submit(d).rawValue < 0)
    }
}

/// The negative controls: each broken variant must be caught by a check that passes on the
/// correct backend.
@Suite("RingChannel negative controls")
struct RingNegativeControlTests {
    /// Executor epoch check: callback 1 blocks while transfer 2 completes; terminate; then
    /// unblock. Transfer 2 was completed but not dispatched when terminate ran: no callback.
    /// Returns the cookies whose callbacks ran.
    func completedButUndispatched(_ control: RingNegativeControl) throws -> [Int32] {
        let ch = try RingChannel(options: .init(), negativeControl: control)
        defer { try? ch.release() }
        let b = try Buffers(count: 4096)
        let gate = Gate()
        let log = CallbackLog()
        let first = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, callback: .result { c in
            log.record(c.cookie, c.result)
            gate.wait()
        }))
        _ = ch.submitAndIssue(first)
        #expect(waitUntil { log.count == 1 })
        // The executor is inside callback 1 (its batch is decided); transfer 2 completes now.
        let second = try #require(ch.prepareMemcpy(to: b.destination + 64, from: b.source + 64, length: 64, callback: log.callback))
        let c2 = ch.submitAndIssue(second)
        #expect(waitUntil { ch.status(of: c2).0 == .complete && ch.core.compTail.pointee.load(ordering: .acquiring) == 2 })
        try withNonBlockingContext { () throws(DMAError) in try ch.terminateAsync() }
        gate.release()
        try ch.synchronize()
        MonotonicClock.sleep(nanoseconds: 10_000_000)
        return log.cookies
    }

    @Test func executorEpochCheckIsNeeded() throws {
        #expect(try completedButUndispatched(.none) == [2])
        #expect(try completedButUndispatched(.executorSkipsEpochCheck) == [2, 3])
    }

    /// synchronize must not return while a callback of a terminated epoch's descriptor runs.
    func synchronizeReturnsDuringCallback(_ control: RingNegativeControl) throws -> Bool {
        let ch = try RingChannel(options: .init(), negativeControl: control)
        defer { try? ch.release() }
        let b = try Buffers(count: 4096)
        let gate = Gate()
        let inCallback = Atomic<Bool>(false)
        let d = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, callback: .plain { _ in
            inCallback.store(true, ordering: .sequentiallyConsistent)
            gate.wait()
            inCallback.store(false, ordering: .sequentiallyConsistent)
        }))
        _ = ch.submitAndIssue(d)
        #expect(waitUntil { inCallback.load(ordering: .sequentiallyConsistent) })
        let opener = try OSThread(name: "opener") {
            MonotonicClock.sleep(nanoseconds: 50_000_000)
            gate.release()
        }
        try ch.terminateAsync()
        try ch.synchronize()
        let caught = inCallback.load(ordering: .sequentiallyConsistent)
        opener.join()
        return caught
    }

    @Test func synchronizeMustWait() throws {
        #expect(try synchronizeReturnsDuringCallback(.none) == false)
        #expect(try synchronizeReturnsDuringCallback(.synchronizeDoesNotWait) == true)
    }
}
