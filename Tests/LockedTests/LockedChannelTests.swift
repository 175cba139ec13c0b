// dmabench — LockedTests
//
// Focused tests of the locked backend: copy, ordering, pool, pause, terminate, release.
// The full contract is checked by the conformance suite (DMAEngineTestSupport).

import DMAEngine
import DMAEngineTestSupport
@_spi(NegativeControls) import DMAEngineLocked
import Glibc
import Platform
import Synchronization
import Testing
import TestHelpers

@Suite("LockedChannel basics")
struct LockedBasicsTests {
    @Test func basicCopyCompletesWithOneCallback() throws {
        let ch = try LockedChannel()
        defer { try? ch.release() }
        #expect(ch.backendName == "locked")
        let src = try patterned(ch, 4096, seed: 1)
        let dst = try patterned(ch, 4096, seed: 200)
        defer {
            ch.freeCoherent(src)
            ch.freeCoherent(dst)
        }
        let rec = Recorder()
        let d = try #require(ch.prepareMemcpy(to: dst.base + 100, from: src.base, length: 1000, callback: rec.callback(ch)))
        let before = UInt8(dst.bytes[99])
        let after = UInt8(dst.bytes[1100])
        let cookie = ch.submit(d)
        #expect(cookie == DMACookie(2))  // C3: fresh channel, first cookie is 2
        #expect(ch.status(of: cookie).0 == .inProgress)
        #expect(ch.status(of: cookie).1.residue == 1000)  // S5: queued → len
        ch.issuePending()
        #expect(waitUntil { rec.count == 1 })
        MonotonicClock.sleep(nanoseconds: 10_000_000)
        #expect(rec.count == 1)
        #expect(rec.results == [.noError])
        #expect(memcmp(dst.base + 100, src.base, 1000) == 0)
        #expect(dst.bytes[99] == before && dst.bytes[1100] == after)
        let (status, state) = ch.status(of: cookie)
        #expect(status == .complete && state.residue == 0 && state.last == cookie)
        #expect(rec.state.withLock { $0.statusCompleteInside && !$0.lockHeldInside })
        #expect(ch.threadIDs.count == 2)
    }

    @Test func callbacksRunInCookieOrderOneAtATime() throws {
        let ch = try LockedChannel(options: .init(poolSize: 256))
        defer { try? ch.release() }
        let src = try patterned(ch, 64, seed: 3)
        let dst = try ch.allocateCoherent(byteCount: 64)
        let rec = Recorder()
        var cookies: [Int32] = []
        for k in 0..<1000 {
            var d = ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, callback: rec.callback(ch))
            while d == nil {  // pool of 256: wait for retirements
                MonotonicClock.sleep(nanoseconds: 10_000)
                d = ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, callback: rec.callback(ch))
            }
            cookies.append(ch.submit(d!).rawValue)
            if k % 7 == 6 { ch.issuePending() }
        }
        ch.issuePending()
        #expect(waitUntil { rec.count == 1000 })
        #expect(rec.cookies == cookies)
        #expect(cookies == Array(2...1001))
        #expect(rec.state.withLock { $0.maxConcurrent == 1 && $0.statusCompleteInside && !$0.lockHeldInside })
        #expect(ch.debugWatermark() == DMACookieWatermark(used: DMACookie(1001), last: DMACookie(1001)))
        try ch.release()
        ch.freeCoherent(src)
        ch.freeCoherent(dst)
    }

    @Test func submitDoesNotStartWork() throws {
        let ch = try LockedChannel()
        defer { try? ch.release() }
        let src = try patterned(ch, 256, seed: 5)
        let dst = try ch.allocateCoherent(byteCount: 256)
        let rec = Recorder()
        let c = ch.submit(try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 256, callback: rec.callback(nil))))
        MonotonicClock.sleep(nanoseconds: 20_000_000)
        #expect(rec.count == 0)
        #expect(dst.bytes.allSatisfy { $0 == 0 })
        #expect(ch.status(of: c).0 == .inProgress)
        ch.issuePending()
        #expect(waitUntil { rec.count == 1 })
    }

    @Test func poolExhaustionReturnsNilAndSlotsAreRecycled() throws {
        let ch = try LockedChannel(options: .init(poolSize: 8))
        defer { try? ch.release() }
        let src = try patterned(ch, 64, seed: 9)
        let dst = try ch.allocateCoherent(byteCount: 64)
        for round in 0..<50 {
            var ds: [DMADescriptor] = []
            for _ in 0..<8 { ds.append(try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, flags: []))) }
            #expect(ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, flags: []) == nil)
            // No growth: every handle names one of the 8 preallocated slots.
            #expect(Set(ds.map(\.index)) == Set(0..<8))
            var last = DMACookie(0)
            for d in ds { last = ch.submit(d) }
            // A non-REUSE handle is the backend's after submit.
            #expect(throws: DMAError.invalidHandle) { try ch.setCallback(.plain { _ in }, for: ds[0]) }
            ch.issuePending()
            #expect(waitUntil { ch.status(of: last).0 == .complete })
            // Polled descriptors are retired by the engine right after completion.
            #expect(waitUntil {
                guard let d = ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, flags: []) else { return false }
                try? ch.setReuse(true, for: d)
                try? ch.free(d)
                return true
            })
            // Stale handles from the previous round are refused.
            if round > 0 { #expect(ch.submit(ds[0]).rawValue < 0) }
        }
    }

    @Test func memsetAndFaultsAndProbe() throws {
        let ch = try LockedChannel()
        defer { try? ch.release() }
        let src = try patterned(ch, 512, seed: 11)
        let dst = try ch.allocateCoherent(byteCount: 512)
        let rec = Recorder()
        let accesses = LockedValue<[DMAAccess.Kind]>([])
        ch.debugSetAccessProbe { a in accesses.withLock { $0.append(a.kind) } }
        try ch.configure(DMAConfig(burstBytes: 128))
        let m = try #require(ch.prepareMemset(to: dst.base, value: 0xA5, length: 512, flags: .default))
        try ch.setCallback(rec.callback(ch), for: m)
        let r = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, callback: rec.callback(ch)))
        try ch.debugInject(.fault(.read), into: r)
        let w = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, callback: rec.callback(ch)))
        try ch.debugInject(.fault(.write), into: w)
        _ = ch.submit(m)
        _ = ch.submit(r)
        _ = ch.submit(w)
        ch.issuePending()
        #expect(waitUntil { rec.count == 3 })
        #expect(rec.results.map(\.code) == [.noError, .readFailed, .writeFailed])
        #expect(dst.bytes.allSatisfy { $0 == 0xA5 })
        // memset at 128-byte bursts: 4 writes; then one read (read fault), then read+write.
        #expect(accesses.withLock { $0 } == [.write, .write, .write, .write, .read, .read, .write])
    }

    @Test func failedSubmitLeavesUsedUnchanged() throws {
        let ch = try LockedChannel()
        defer { try? ch.release() }
        let buf = try ch.allocateCoherent(byteCount: 64)
        let d = try #require(ch.prepareMemcpy(to: buf.base, from: buf.base, length: 64, flags: []))
        ch.debugFailNextSubmits(1)
        #expect(ch.submit(d).rawValue < 0)
        #expect(ch.debugWatermark().used == DMACookie(1))
        #expect(ch.submit(d) == DMACookie(2))
        ch.issuePending()
        #expect(waitUntil { ch.status(of: DMACookie(2)).0 == .complete })
    }

    @Test func cookieWrapSkipsZero() throws {
        let ch = try LockedChannel()
        defer { try? ch.release() }
        let buf = try ch.allocateCoherent(byteCount: 64)
        try ch.debugSeedCookie(used: DMACookie(.max - 2), last: DMACookie(.max - 2))
        var got: [Int32] = []
        for _ in 0..<5 { got.append(ch.submit(try #require(ch.prepareMemcpy(to: buf.base, from: buf.base, length: 8, flags: []))).rawValue) }
        #expect(got == [.max - 1, .max, 1, 2, 3])
        #expect(ch.status(of: DMACookie(1)).0 == .inProgress)
        #expect(ch.status(of: DMACookie(100)).0 == .complete)
        #expect(throws: DMAError.busy) { try ch.debugSeedCookie(used: DMACookie(5), last: DMACookie(5)) }
        ch.issuePending()
        #expect(waitUntil { ch.status(of: DMACookie(3)).0 == .complete })
        #expect(ch.debugWatermark() == DMACookieWatermark(used: DMACookie(3), last: DMACookie(3)))
    }
}

@Suite("LockedChannel watermark")
struct LockedWatermarkTests {
    @Test func lockFreeSnapshotsStayConsistentWhileBothCountersMove() throws {
        // Submit publishes `used` and the engine `last`, on separate lines; the lock-free
        // snapshot re-reads `used` (rule S1).
        let ch = try LockedChannel(options: DMAChannelOptions(poolSize: 256))
        defer { try? ch.release() }
        let total = 200_000
        let outcome = try WatermarkRace.run(ch, total: total)
        #expect(outcome.inconsistent == 0)
        #expect(outcome.reads > 100)
        #expect(ch.debugWatermark() == DMACookieWatermark(used: DMACookie(Int32(1 + total)), last: DMACookie(Int32(1 + total))))
    }
}

@Suite("LockedChannel pause, terminate, reuse")
struct LockedControlTests {
    @Test func pauseFreezesTransferAndResumeFinishesIt() throws {
        let ch = try LockedChannel()
        defer { try? ch.release() }
        let len = 64 * 1024
        let src = try patterned(ch, len, seed: 13)
        let dst = try ch.allocateCoherent(byteCount: len)
        let rec = Recorder()
        let d = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: len, callback: rec.callback(ch)))
        try ch.debugInject(.slow(length: len, nanoseconds: 200_000_000, chunks: 64), into: d)
        let q = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 16, callback: rec.callback(ch)))
        let c = ch.submit(d)
        let cq = ch.submit(q)
        ch.issuePending()
        #expect(waitUntil { ch.status(of: c).1.residue < len })
        try ch.pause()
        let (s1, t1) = ch.status(of: c)
        #expect(s1 == .paused && t1.residue > 0 && t1.residue <= len)
        #expect(ch.status(of: cq) == (.paused, DMATxState(last: DMACookie(1), used: cq, residue: 16, inFlightBytes: 16 + t1.residue)))
        let snapshot = Array(dst.bytes)
        MonotonicClock.sleep(nanoseconds: 50_000_000)
        #expect(ch.status(of: c).1.residue == t1.residue)
        #expect(Array(dst.bytes) == snapshot)
        #expect(rec.count == 0)
        try ch.resume()
        #expect(throws: DMAError.notPaused) { try ch.resume() }
        #expect(waitUntil { rec.count == 2 })
        #expect(memcmp(dst.base + 16, src.base + 16, len - 16) == 0)
        #expect(ch.capabilities.cmdPause)
    }

    @Test func aStallReleasedBeforeTheEngineReachesItDoesNotHold() throws {
        // `debugReleaseStalls` ends every stall injected before it, even one whose transfer
        // has not started yet. The engine used to sample the stall generation when it
        // started the transfer, so a release that came first was missed and the transfer
        // hung (conformance scenario 4 under ThreadSanitizer timed out this way).
        let ch = try LockedChannel()
        defer { try? ch.release() }
        let src = try patterned(ch, 4096, seed: 21)
        let dst = try ch.allocateCoherent(byteCount: 4096)
        defer {
            ch.freeCoherent(src)
            ch.freeCoherent(dst)
        }
        let rec = Recorder()
        let d = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 4096, callback: rec.callback(ch)))
        try ch.debugInject(.stalled, into: d)
        let c = ch.submit(d)
        ch.debugReleaseStalls()
        ch.issuePending()
        #expect(waitUntil(seconds: 5) { rec.count == 1 })
        #expect(ch.status(of: c).0 == .complete)
        #expect(memcmp(dst.base, src.base, 4096) == 0)
    }

    @Test func pauseStopsAStreamOfPlainTransfersAtOnce() throws {
        // Plain transfers (nothing injected) enter their first chunk under the channel lock
        // rather than through the chunk gate's store-load fence. Pause must still return only
        // once no byte moves: the bytes, the watermark and every status stay still while
        // paused, and everything completes after resume.
        let ch = try LockedChannel()
        defer { try? ch.release() }
        let n = 2048
        let len = 4096
        let src = try patterned(ch, n * len, seed: 17)
        let dst = try ch.allocateCoherent(byteCount: n * len)
        defer {
            ch.freeCoherent(src)
            ch.freeCoherent(dst)
        }
        let snapshot = UnsafeMutableRawPointer.allocate(byteCount: n * len, alignment: 64)
        defer { snapshot.deallocate() }
        let rec = Recorder()
        var cookies: [DMACookie] = []
        for round in 0..<5 {
            memset(dst.base, 0, n * len)
            cookies.removeAll()
            let before = rec.count
            for i in 0..<n {
                let d = try #require(ch.prepareMemcpy(to: dst.base + i * len, from: src.base + i * len, length: len, callback: rec.callback(ch)))
                cookies.append(ch.submit(d))
                if i % 32 == 31 { ch.issuePending() }
            }
            ch.issuePending()
            // Pause at a different point of the stream in each round.
            #expect(waitUntil { rec.count - before >= 64 * (round + 1) || ch.status(of: cookies[n - 1]).0 == .complete })
            try ch.pause()
            let watermark = ch.debugWatermark()
            memcpy(snapshot, dst.base, n * len)
            let states = cookies.map { ch.status(of: $0).0 }
            MonotonicClock.sleep(nanoseconds: 20_000_000)
            #expect(ch.debugWatermark() == watermark)
            #expect(memcmp(snapshot, dst.base, n * len) == 0, "round \(round): destination bytes changed while paused (rule P1)")
            #expect(cookies.map { ch.status(of: $0).0 } == states)
            try ch.resume()
            #expect(waitUntil { rec.count - before == n })
            #expect(memcmp(dst.base, src.base, n * len) == 0)
        }
    }

    @Test func pauseOnIdleChannelHoldsLaterWork() throws {
        let ch = try LockedChannel()
        defer { try? ch.release() }
        let buf = try ch.allocateCoherent(byteCount: 128)
        try ch.pause()
        let c = ch.submitAndIssue(try #require(ch.prepareMemcpy(to: buf.base + 64, from: buf.base, length: 64, flags: [])))
        MonotonicClock.sleep(nanoseconds: 20_000_000)
        #expect(ch.status(of: c).0 == .paused)
        try ch.resume()
        #expect(waitUntil { ch.status(of: c).0 == .complete })
        // Terminate clears the pause (P/T5).
        try ch.pause()
        try ch.terminateSync()
        let c2 = ch.submitAndIssue(try #require(ch.prepareMemcpy(to: buf.base + 64, from: buf.base, length: 64, flags: [])))
        #expect(waitUntil { ch.status(of: c2).0 == .complete })
    }

    @Test func terminateSyncDropsQueuedWork() throws {
        let ch = try LockedChannel()
        let len = 4096
        let src = try patterned(ch, len, seed: 17)
        var dsts: [DMABuffer] = []
        let rec = Recorder()
        var cookies: [DMACookie] = []
        let writesAfter = Atomic<Int>(0)
        let synced = Atomic<Bool>(false)
        ch.debugSetAccessProbe { _ in if synced.load(ordering: .sequentiallyConsistent) { writesAfter.add(1, ordering: .relaxed) } }
        for _ in 0..<8 {
            let dst = try ch.allocateCoherent(byteCount: len)
            dsts.append(dst)
            let d = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: len, callback: rec.callback(ch)))
            try ch.debugInject(.slow(length: len, nanoseconds: 100_000_000), into: d)
            cookies.append(ch.submit(d))
        }
        ch.issuePending()
        #expect(waitUntil { ch.status(of: cookies[0]).1.residue < len })
        try ch.terminateSync()
        synced.store(true, ordering: .sequentiallyConsistent)
        for b in dsts { try PageMemory.protect(b.base, byteCount: b.count, .none) }
        for c in cookies { #expect(ch.status(of: c).0 == .complete) }  // S6 [T]
        MonotonicClock.sleep(nanoseconds: 100_000_000)
        #expect(rec.count == 0)
        #expect(writesAfter.load(ordering: .relaxed) == 0)
        // Reusable, cookies continue (T8).
        let buf = try ch.allocateCoherent(byteCount: 64)
        let c = ch.submitAndIssue(try #require(ch.prepareMemcpy(to: buf.base, from: src.base, length: 64, callback: rec.callback(ch))))
        #expect(c == DMACookie(cookies.last!.rawValue + 1))
        #expect(waitUntil { rec.count == 1 })
        try ch.release()
        for b in dsts { ch.freeCoherent(b) }
    }

    @Test func terminateFromCallbackThenSynchronize() throws {
        for iteration in 0..<20 {
            let ch = try LockedChannel()
            let src = try patterned(ch, 256, seed: 19)
            let dst = try ch.allocateCoherent(byteCount: 256)
            let calls = Atomic<Int>(0)
            let inCallback = Atomic<Bool>(false)
            let terminated = Atomic<Bool>(false)
            let illegal = Atomic<Int>(0)
            let k = 1 + iteration % 5
            let d = try #require(ch.prepareCyclic(to: dst.base, from: src.base, bufferLength: 256, periodLength: 64, flags: .default))
            try ch.debugInject(DMAInjection(chunkBytes: 32, delayPerChunkNanoseconds: 20_000), into: d)
            try ch.setCallback(.plain { [ch] _ in
                inCallback.store(true, ordering: .sequentiallyConsistent)
                let n = calls.add(1, ordering: .sequentiallyConsistent).newValue
                if n == k {
                    if (try? ch.terminateAsync()) != nil { terminated.store(true, ordering: .sequentiallyConsistent) }
                    if case .failure(.illegalContext) = Result(catching: { () throws(DMAError) in try ch.synchronize() }) {
                        illegal.add(1, ordering: .relaxed)
                    }
                    if case .failure(.illegalContext) = Result(catching: { () throws(DMAError) in try ch.release() }) {
                        illegal.add(1, ordering: .relaxed)
                    }
                }
                MonotonicClock.sleep(nanoseconds: 200_000)
                inCallback.store(false, ordering: .sequentiallyConsistent)
            }, for: d)
            let c = ch.submitAndIssue(d)
            #expect(waitUntil { terminated.load(ordering: .sequentiallyConsistent) })
            try ch.synchronize()
            let stillIn = inCallback.load(ordering: .sequentiallyConsistent)
            #expect(!stillIn)
            let frozen = calls.load(ordering: .sequentiallyConsistent)
            #expect(frozen >= k)
            #expect(illegal.load(ordering: .relaxed) == 2)
            #expect(ch.status(of: c).0 == .complete)
            MonotonicClock.sleep(nanoseconds: 2_000_000)
            #expect(calls.load(ordering: .sequentiallyConsistent) == frozen)
            try ch.release()
            ch.freeCoherent(src)
            ch.freeCoherent(dst)
        }
    }

    @Test func workSubmittedByACallbackAfterTerminateIsDroppedBySynchronize() throws {
        let ch = try LockedChannel()
        defer { try? ch.release() }
        let src = try patterned(ch, 64, seed: 31)
        let dst = try ch.allocateCoherent(byteCount: 64)
        let gate = Gate()
        let late = Recorder()
        let lateCookie = Atomic<Int32>(0)
        let first = DMACallback.plain { _ in
            gate.block()
            // Submitted by a callback dispatched before the terminate (T7): held, then dropped.
            if let d = ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, callback: late.callback(nil)) {
                lateCookie.store(ch.submitAndIssue(d).rawValue, ordering: .sequentiallyConsistent)
            }
        }
        _ = ch.submitAndIssue(try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, callback: first)))
        #expect(waitUntil { gate.entered.load(ordering: .sequentiallyConsistent) == 1 })
        try ch.terminateAsync()
        gate.open.store(true, ordering: .sequentiallyConsistent)
        try ch.synchronize()
        let c = DMACookie(lateCookie.load(ordering: .sequentiallyConsistent))
        #expect(c.isValid)
        #expect(ch.status(of: c).0 == .complete)
        MonotonicClock.sleep(nanoseconds: 20_000_000)
        #expect(late.count == 0)
        // terminateAsync on an idle channel is a no-op: later work runs without synchronize.
        try ch.terminateAsync()
        let rec = Recorder()
        _ = ch.submitAndIssue(try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, callback: rec.callback(ch))))
        #expect(waitUntil { rec.count == 1 })
    }

    @Test func cyclicStaysInProgressWithBoundedResidue() throws {
        let ch = try LockedChannel()
        defer { try? ch.release() }
        let src = try patterned(ch, 1024, seed: 23)
        let dst = try ch.allocateCoherent(byteCount: 1024)
        let calls = Atomic<Int>(0)
        let d = try #require(ch.prepareCyclic(to: dst.base, from: src.base, bufferLength: 1024, periodLength: 256, flags: .default))
        try ch.debugInject(DMAInjection(chunkBytes: 64, delayPerChunkNanoseconds: 100_000), into: d)
        try ch.setCallback(.plain { _ in calls.add(1, ordering: .relaxed) }, for: d)
        let start = MonotonicClock.now()
        let c = ch.submitAndIssue(d)
        for _ in 0..<50 {
            let (s, t) = ch.status(of: c)
            #expect(s == .inProgress)
            #expect(t.residue > 0 && t.residue <= 1024)
            MonotonicClock.sleep(nanoseconds: 1_000_000)
        }
        try ch.terminateSync()
        let elapsed = MonotonicClock.now() - start
        let n = calls.load(ordering: .relaxed)
        #expect(n >= 1)
        #expect(UInt64(n) <= elapsed / (4 * 100_000) + 1)  // ≤ elapsed periods (4 chunks of ≥ 100 µs each)
        #expect(memcmp(dst.base, src.base, 1024) == 0)
        MonotonicClock.sleep(nanoseconds: 5_000_000)
        #expect(calls.load(ordering: .relaxed) == n)
    }

    @Test func descriptorReuse() throws {
        let ch = try LockedChannel()
        defer { try? ch.release() }
        let src = try patterned(ch, 128, seed: 29)
        let dst = try ch.allocateCoherent(byteCount: 128)
        let rec = Recorder()
        let d = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 128, callback: rec.callback(ch)))
        try ch.setReuse(true, for: d)
        var cookies: [Int32] = []
        for r in 0..<100 {
            // Resubmitting right after the callback ran is allowed (K7), even before the
            // executor has retired the descriptor.
            let c = ch.submitAndIssue(d)
            #expect(c.isValid)
            cookies.append(c.rawValue)
            #expect(waitUntil { rec.count == r + 1 })
        }
        #expect(Set(cookies).count == cookies.count)
        #expect(waitUntil { (try? ch.debugInject(DMAInjection(), into: d)) != nil })
        try ch.debugInject(.stalled, into: d)
        let c = ch.submitAndIssue(d)
        #expect(c.isValid)
        #expect(ch.submit(d).rawValue < 0)  // in flight → busy
        #expect(throws: DMAError.busy) { try ch.free(d) }
        try ch.terminateSync()
        // Back in prepared: resubmittable.
        try ch.debugInject(DMAInjection(), into: d)
        let c2 = ch.submitAndIssue(d)
        #expect(waitUntil { ch.status(of: c2).0 == .complete })
        #expect(waitUntil { (try? ch.free(d)) != nil })
        #expect(throws: DMAError.invalidHandle) { try ch.free(d) }
        let n = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 8, flags: []))
        #expect(throws: DMAError.notPermitted) { try ch.free(n) }
    }
}

@Suite("LockedChannel release", .serialized)
struct LockedReleaseTests {
    @Test func releaseJoinsThreadsAndLaterOpsFail() throws {
        // Other suites create channels in parallel, so the check is per thread id rather
        // than a process-wide count: each channel's own threads must be gone after release.
        for _ in 0..<100 {
            let ch = try LockedChannel(options: .init(poolSize: 16, spinNanoseconds: 1000))
            let tids = Array(ch.threadIDs.values)
            #expect(tids.count == 2 && tids.allSatisfy { threadExists($0) })
            try ch.release()
            // pthread_join returns once the thread cleared its tid; the kernel drops the
            // /proc entry a moment later.
            #expect(waitUntil(seconds: 5) { tids.allSatisfy { !threadExists($0) } })
        }
        let ch = try LockedChannel()
        let buf = try ch.allocateCoherent(byteCount: 64)
        let d = try #require(ch.prepareMemcpy(to: buf.base, from: buf.base, length: 8, flags: []))
        try ch.release()
        #expect(ch.prepareMemcpy(to: buf.base, from: buf.base, length: 8, flags: []) == nil)
        #expect(ch.submit(d).rawValue < 0)
        #expect(throws: DMAError.released) { try ch.release() }
        #expect(throws: DMAError.released) { try ch.terminateAsync() }
        #expect(throws: DMAError.released) { try ch.synchronize() }
        #expect(throws: DMAError.released) { try ch.pause() }
        #expect(throws: DMAError.released) { try ch.setCallback(.plain { _ in }, for: d) }
        ch.freeCoherent(buf)
    }

    @Test func droppingAChannelWithoutReleaseStopsItsThreads() throws {
        var tids: [Int32] = []
        do {
            let ch = try LockedChannel()
            tids = Array(ch.threadIDs.values)
            let buf = try ch.allocateCoherent(byteCount: 64)
            _ = ch.submitAndIssue(try #require(ch.prepareMemcpy(to: buf.base, from: buf.base, length: 8, flags: [])))
            _ = buf
        }
        #expect(tids.count == 2)
        #expect(waitUntil(seconds: 5) { tids.allSatisfy { !threadExists($0) } })
    }

    @Test func releaseWaitsForRunningCallback() throws {
        let ch = try LockedChannel()
        let buf = try ch.allocateCoherent(byteCount: 64)
        let gate = Gate()
        _ = ch.submitAndIssue(try #require(ch.prepareMemcpy(
            to: buf.base, from: buf.base, length: 8, callback: .plain { _ in gate.block() })))
        #expect(waitUntil { gate.entered.load(ordering: .sequentiallyConsistent) == 1 })
        #expect(throws: DMAError.illegalContext) { try withNonBlockingContext { () throws(DMAError) in try ch.terminateSync() } }
        let t = try OSThread(name: "opener") {
            MonotonicClock.sleep(nanoseconds: 30_000_000)
            gate.open.store(true, ordering: .sequentiallyConsistent)
        }
        try ch.release()
        #expect(gate.exited.load(ordering: .sequentiallyConsistent) == 1)
        t.join()
        ch.freeCoherent(buf)
    }
}
