// dmabench — RingTests
//
// `DMACallbackContext.engineThread`: no executor thread; the engine thread runs the callbacks,
// in cookie order, one at a time, with the cookie already COMPLETE; pause and terminate
// called from such a callback (on the engine thread itself) return and take effect.
// (The whole conformance suite also runs in this mode: RingConformanceTests.)

import DMAEngine
@testable import DMAEngineRing
import Platform
import Synchronization
import Testing
import TestHelpers

@Suite("RingChannel engine-thread callbacks")
struct RingEngineThreadCallbackTests {
    static var options: DMAChannelOptions {
        var o = DMAChannelOptions(spinNanoseconds: 1_000)
        o.callbackContext = .engineThread
        return o
    }

    @Test func callbacksRunOnTheEngineThreadInOrder() throws {
        let ch = try RingChannel(options: Self.options)
        defer { try? ch.release() }
        #expect(Array(ch.threadIDs.keys) == [.engine])
        let engineTID = try #require(ch.threadIDs[.engine])
        let b = try Buffers(count: 4096)
        let log = CallbackLog()
        let seen = LockedValue<[(Int32, DMAStatus)]>([])
        let n = 300
        for _ in 0..<n {
            let d = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, flags: .interrupt))
            try ch.setCallback(.result { r in
                let s = ch.status(of: r.cookie).0
                seen.withLock { $0.append((CPU.currentThreadID, s)) }
                log.record(r.cookie, r.result)
            }, for: d)
            _ = ch.submit(d)
            ch.issuePending()
        }
        #expect(waitUntil { log.count == n })
        let cookies = log.cookies
        #expect(cookies == Array(cookies.sorted()) && Set(cookies).count == n)
        #expect(seen.withLock { $0.allSatisfy { $0.0 == engineTID && $0.1 == .complete } })
        #expect(log.maxConcurrent.load(ordering: .relaxed) == 1)
    }

    @Test func pauseFromACallbackOnTheEngineThreadReturnsAndHoldsLaterWork() throws {
        let ch = try RingChannel(options: Self.options)
        defer { try? ch.release() }
        let b = try Buffers(count: 4096)
        let paused = LockedValue<DMAError?>(nil)
        let done = Atomic<Bool>(false)
        let a = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, callback: .plain { _ in
            do throws(DMAError) { try ch.pause() } catch { paused.withLock { $0 = error } }
            done.store(true, ordering: .releasing)
        }))
        _ = ch.submitAndIssue(a)
        #expect(waitUntil { done.load(ordering: .acquiring) })
        #expect(paused.withLock { $0 } == nil)
        let log = CallbackLog()
        let c = try #require(ch.prepareMemcpy(to: b.destination + 64, from: b.source + 64, length: 64, callback: log.callback))
        let cookie = ch.submitAndIssue(c)
        // Rule P2: issued work does not start while paused.
        #expect(ch.status(of: cookie).0 == .paused)
        #expect(b.destinationIsZero(64..<128))
        try ch.resume()
        #expect(waitUntil { log.count == 1 })
        #expect(log.cookies == [cookie.rawValue] && b.copied(64..<128))
    }

    @Test func terminateAsyncFromACallbackOnTheEngineThreadDropsLaterWork() throws {
        let ch = try RingChannel(options: Self.options)
        defer { try? ch.release() }
        let b = try Buffers(count: 4096)
        let terminated = Atomic<Int>(0)
        let first = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, callback: .plain { _ in
            do throws(DMAError) {
                try ch.terminateAsync()
                terminated.add(1, ordering: .releasing)
            } catch {
                terminated.store(-1, ordering: .releasing)
            }
        }))
        let log = CallbackLog()
        let stalled = try #require(ch.prepareMemcpy(to: b.destination + 64, from: b.source + 64, length: 64, callback: log.callback))
        try ch.debugInject(DMAInjection(stall: true), into: stalled)
        _ = ch.submit(first)
        let stalledCookie = ch.submit(stalled)
        ch.issuePending()
        // The stalled transfer waits; the first one's callback runs before it (the engine
        // dispatches what it published before a transfer that may wait) and terminates it.
        #expect(waitUntil { terminated.load(ordering: .acquiring) != 0 })
        #expect(terminated.load(ordering: .acquiring) == 1)
        try ch.synchronize()
        #expect(ch.status(of: stalledCookie).0 == .complete)
        #expect(log.count == 0)
        #expect(b.destinationIsZero(64..<128))
    }
}
