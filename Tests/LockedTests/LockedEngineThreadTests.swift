// dmabench — LockedTests
//
// The locked backend with `DMAChannelOptions.callbackContext = .engineThread`: no executor
// thread, the engine runs the callbacks itself with the lock dropped. The conformance suite
// runs every scenario in this mode too (ConformanceTests.LockedEngineThread); these tests
// check what is particular to it.

import DMAEngine
import DMAEngineLocked
import Glibc
import Platform
import Synchronization
import Testing
import TestHelpers

private func engineThreadOptions(poolSize: Int = 4096, spinNanoseconds: Int64 = 50_000) -> DMAChannelOptions {
    var o = DMAChannelOptions(poolSize: poolSize, spinNanoseconds: spinNanoseconds)
    o.callbackContext = .engineThread
    return o
}

@Suite("LockedChannel callbacks on the engine thread", .serialized)
struct LockedEngineThreadTests {
    @Test func onlyAnEngineThreadIsStartedAndReleaseJoinsIt() throws {
        for _ in 0..<20 {
            let ch = try LockedChannel(options: engineThreadOptions(poolSize: 16, spinNanoseconds: 1000))
            let ids = ch.threadIDs
            #expect(Array(ids.keys) == [.engine])
            let tids = Array(ids.values)
            #expect(tids.count == 1 && tids.allSatisfy { threadExists($0) })
            try ch.release()
            #expect(waitUntil(seconds: 5) { tids.allSatisfy { !threadExists($0) } })
        }
    }

    @Test func callbacksRunOnTheEngineThreadInCookieOrderOneAtATime() throws {
        let ch = try LockedChannel(options: engineThreadOptions(poolSize: 256))
        let engineTID = try #require(ch.threadIDs[.engine])
        let src = try patterned(ch, 64 * 200, seed: 3)
        let dst = try ch.allocateCoherent(byteCount: 64 * 200)
        let rec = Recorder()
        let foreign = Atomic<Int>(0)
        let inner = rec.callback(ch)
        let cb = DMACallback.result { c in
            if CPU.currentThreadID != engineTID { foreign.add(1, ordering: .relaxed) }
            inner.invoke(cookie: c.cookie, result: c.result)
        }
        var cookies: [Int32] = []
        for k in 0..<200 {
            let d = try #require(ch.prepareMemcpy(to: dst.base + 64 * k, from: src.base + 64 * k, length: 64, callback: cb))
            cookies.append(ch.submit(d).rawValue)
            if k % 16 == 15 { ch.issuePending() }
        }
        ch.issuePending()
        #expect(waitUntil { rec.count == 200 })
        #expect(rec.cookies == cookies)
        #expect(foreign.load(ordering: .relaxed) == 0)
        rec.state.withLock { s in
            #expect(s.maxConcurrent == 1)
            #expect(s.statusCompleteInside)
            #expect(!s.lockHeldInside)
        }
        #expect(equalBytes(src, dst, count: 64 * 200))
        try ch.release()
        ch.freeCoherent(src)
        ch.freeCoherent(dst)
    }

    @Test func terminateSyncAndReleaseWaitWhileTheEngineIsInsideACallback() throws {
        for useRelease in [false, true] {
            let ch = try LockedChannel(options: engineThreadOptions())
            let buf = try ch.allocateCoherent(byteCount: 64)
            let gate = Gate()
            let later = Atomic<Int>(0)
            _ = ch.submitAndIssue(try #require(ch.prepareMemcpy(
                to: buf.base, from: buf.base, length: 8, callback: .plain { _ in gate.block() })))
            #expect(waitUntil { gate.entered.load(ordering: .sequentiallyConsistent) == 1 })
            // The engine is blocked in the callback: this one is queued, never dispatched.
            let c = ch.submitAndIssue(try #require(ch.prepareMemcpy(
                to: buf.base + 32, from: buf.base, length: 8, callback: .plain { _ in later.add(1, ordering: .relaxed) })))
            let t = try OSThread(name: "opener") {
                MonotonicClock.sleep(nanoseconds: 30_000_000)
                gate.open.store(true, ordering: .sequentiallyConsistent)
            }
            if useRelease { try ch.release() } else { try ch.terminateSync() }
            #expect(gate.exited.load(ordering: .sequentiallyConsistent) == 1)
            t.join()
            if !useRelease {
                #expect(ch.status(of: c).0 == .complete)
                MonotonicClock.sleep(nanoseconds: 2_000_000)
                try ch.release()
            }
            #expect(later.load(ordering: .relaxed) == 0)
            ch.freeCoherent(buf)
        }
    }

    @Test func terminateFromACyclicCallbackOnTheEngineThread() throws {
        for iteration in 0..<10 {
            let ch = try LockedChannel(options: engineThreadOptions())
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
            #expect(frozen == k)
            #expect(illegal.load(ordering: .relaxed) == 1)
            #expect(ch.status(of: c).0 == .complete)
            MonotonicClock.sleep(nanoseconds: 2_000_000)
            #expect(calls.load(ordering: .sequentiallyConsistent) == frozen)
            // The channel still works after the terminate from the engine's own callback.
            let rec = Recorder()
            _ = ch.submitAndIssue(try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, callback: rec.callback(ch))))
            #expect(waitUntil { rec.count == 1 })
            try ch.release()
            ch.freeCoherent(src)
            ch.freeCoherent(dst)
        }
    }
}
