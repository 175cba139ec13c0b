// dmabench — RingTests
//
// `DMACallbackContext.clientPoll`: no executor thread; a client thread in `poll()` runs the
// callbacks of the completions waiting (at least `clientPollBatch`), and the engine runs
// whatever no poll took before it idles. Callbacks stay serialized, in cookie order, each
// exactly once, with the cookie already COMPLETE. (The conformance suite and the random-client
// checker also run in this mode, with polls in their waits: RingConformanceTests.)

import DMAEngine
@testable import DMAEngineRing
import Platform
import Synchronization
import Testing
import TestHelpers

@Suite("RingChannel client-poll callbacks")
struct RingClientPollTests {
    static func options(batch: Int) -> DMAChannelOptions {
        var o = DMAChannelOptions(poolSize: 1024, spinNanoseconds: 1_000)
        o.callbackContext = .clientPoll
        o.clientPollBatch = batch
        return o
    }

    /// Takes the claim as a polling client in a long callback holds it: the engine then
    /// publishes completions and leaves their callbacks to the holder.
    static func holdClaim(_ ch: RingChannel) {
        // Ordering: acquire; pairs with the release stores that let go of the claim.
        _ = ch.core.claim.pointee.compareExchange(expected: 0, desired: 1, ordering: .acquiring)
    }

    static func letGoOfClaim(_ ch: RingChannel) {
        // Ordering: seq_cst, as a polling client lets go (RingExecutor.unclaim).
        ch.core.claim.pointee.store(0, ordering: .sequentiallyConsistent)
    }

    /// Completions the engine has published (the channel is fresh: its ring starts at 0).
    static func published(_ ch: RingChannel) -> UInt32 {
        // Ordering: acquire; pairs with the engine's release store of `compTail`.
        ch.core.compTail.pointee.load(ordering: .acquiring)
    }

    @Test func pollRunsWaitingCallbacksOnTheCallingThreadInOrder() throws {
        let ch = try RingChannel(options: Self.options(batch: 1))
        defer { try? ch.release() }
        #expect(Array(ch.threadIDs.keys) == [.engine])
        #expect(ch.pollThreshold == 1)
        let me = CPU.currentThreadID
        let n = 100
        let b = try Buffers(count: 4096)
        let log = CallbackLog()
        let threads = LockedValue<[Int32]>([])
        let completeInside = Atomic<Int>(0)
        Self.holdClaim(ch)
        for _ in 0..<n {
            let d = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, flags: .interrupt))
            try ch.setCallback(.result { r in
                if ch.status(of: r.cookie).0 == .complete { completeInside.add(1, ordering: .relaxed) }
                threads.withLock { $0.append(CPU.currentThreadID) }
                log.record(r.cookie, r.result)
            }, for: d)
            _ = ch.submit(d)
        }
        ch.issuePending()
        #expect(waitUntil { Self.published(ch) == UInt32(n) })
        #expect(log.count == 0, "a callback ran while another thread held the claim")
        Self.letGoOfClaim(ch)
        let ran = ch.poll()
        #expect(ran == n)
        #expect(log.count == n)
        #expect(threads.withLock { $0.allSatisfy { $0 == me } }, "a callback ran off the polling thread")
        let cookies = log.cookies
        #expect(cookies == cookies.sorted() && Set(cookies).count == n)
        #expect(completeInside.load(ordering: .relaxed) == n)
        #expect(log.maxConcurrent.load(ordering: .relaxed) == 1)
        #expect(ch.poll() == 0, "a second poll found work")
    }

    @Test func aClientThatNeverPollsStillGetsEveryCallback() throws {
        let ch = try RingChannel(options: Self.options(batch: 32))
        defer { try? ch.release() }
        let engineTID = try #require(ch.threadIDs[.engine])
        let b = try Buffers(count: 4096)
        let log = CallbackLog()
        let threads = LockedValue<Set<Int32>>([])
        let n = 500
        for i in 0..<n {
            let d = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, flags: .interrupt))
            try ch.setCallback(.result { r in
                threads.withLock { _ = $0.insert(CPU.currentThreadID) }
                log.record(r.cookie, r.result)
            }, for: d)
            _ = ch.submit(d)
            if i % 7 == 6 { ch.issuePending() }
        }
        ch.issuePending()
        #expect(waitUntil { log.count == n })
        #expect(threads.withLock { $0 } == [engineTID])
        #expect(log.cookies == log.cookies.sorted())
    }

    /// Three threads poll while the engine completes 20 000 copies: every callback runs once,
    /// one at a time, in cookie order, whichever thread holds the claim.
    @Test func concurrentPollsRunEachCallbackOnceInOrder() throws {
        let ch = try RingChannel(options: Self.options(batch: 1))
        defer { try? ch.release() }
        let b = try Buffers(count: 4096)
        let log = CallbackLog()
        let n = 20_000
        let stop = Atomic<Bool>(false)
        let polled = Atomic<Int>(0)
        let pollers = try (0..<3).map { i in
            try OSThread(name: "poller-\(i)", cpu: nil) {
                // Ordering: acquire; pairs with the release store below (nothing else is
                // published by it; the joins order the rest).
                while !stop.load(ordering: .acquiring) { polled.add(ch.poll(), ordering: .relaxed) }
            }
        }
        var submitted = 0
        while submitted < n {
            guard let d = ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, flags: .interrupt) else {
                _ = ch.poll()
                continue
            }
            try ch.setCallback(log.callback, for: d)
            _ = ch.submit(d)
            submitted += 1
            if submitted % 16 == 0 { ch.issuePending() }
        }
        ch.issuePending()
        let done = waitUntil(seconds: 30) { log.count == n }
        stop.store(true, ordering: .releasing)
        for p in pollers { p.join() }
        #expect(done, "\(log.count) of \(n) callbacks")
        let cookies = log.cookies
        #expect(cookies == cookies.sorted() && Set(cookies).count == n)
        #expect(log.maxConcurrent.load(ordering: .relaxed) == 1)
        print("[client poll] \(polled.load(ordering: .relaxed)) of \(n) callbacks ran in the pollers' poll()")
    }

    /// A callback that runs inside `poll()` and pauses waits for the engine to stop moving
    /// data (rule P1) while the engine is inside a transfer: the engine must not wait for the
    /// poller's claim, and must acknowledge the pause from the transfer's chunk boundary.
    @Test func pauseFromACallbackInsidePollReturns() throws {
        let ch = try RingChannel(options: Self.options(batch: 1))
        defer { try? ch.release() }
        let me = CPU.currentThreadID
        let b = try Buffers(count: 8192)
        let outcome = LockedValue<(Int32, DMAError?)?>(nil)
        Self.holdClaim(ch)
        let a = try #require(ch.prepareMemcpy(to: b.destination, from: b.source, length: 64, callback: .plain { _ in
            var failure: DMAError?
            do throws(DMAError) { try ch.pause() } catch { failure = error }
            outcome.withLock { $0 = (CPU.currentThreadID, failure) }
        }))
        _ = ch.submit(a)
        // Then a stalled transfer: the engine publishes A before it, cannot run A's callback
        // (the claim is taken), and waits inside the stalled transfer.
        let s = try #require(ch.prepareMemcpy(to: b.destination + 4096, from: b.source + 4096, length: 4096, flags: .default))
        try ch.debugInject(.stalled, into: s)
        let sCookie = ch.submit(s)
        ch.issuePending()
        // The engine is on S (ticket 2: A had 1) once it has published A.
        #expect(waitUntil { Self.published(ch) == 1 && ch.core.active.pointee.load(ordering: .relaxed) >> 32 == 2 })
        Self.letGoOfClaim(ch)
        #expect(ch.poll() == 1)
        let result = outcome.withLock { $0 }
        #expect(result?.0 == me, "A's callback did not run inside poll()")
        #expect(result != nil && result?.1 == nil, "pause from the callback failed: \(String(describing: result))")
        try ch.resume()
        ch.debugReleaseStalls()
        #expect(waitUntil { ch.status(of: sCookie).0 == .complete })
        #expect(b.copied(0..<64) && b.copied(4096..<8192))
    }

    @Test func optionsAreChecked() {
        var o = Self.options(batch: 0)
        #expect(throws: DMAError.self) { _ = try RingChannel(options: o) }
        o.clientPollBatch = 1 << 20
        o.poolSize = 16
        let ch = try? RingChannel(options: o)
        #expect(ch?.pollThreshold == 16, "a batch larger than the pool is capped at the pool")
        try? ch?.release()
        o.callbackContext = .engineThread
        let e = try? RingChannel(options: o)
        #expect(e?.pollThreshold == .max && e?.poll() == 0)
        try? e?.release()
    }
}
