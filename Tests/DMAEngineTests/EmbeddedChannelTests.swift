// dmabench — DMAEngineTests
//
// The deterministic double: submit and issue are separate stages, nothing moves until the
// test drives it, callbacks run inline in a non-blocking context.

import DMAEngine
import DMAEngineEmbedded
import Synchronization
import Testing

/// Source and destination buffers from the channel, with a recognisable source.
private struct Buffers {
    let src: DMABuffer
    let dst: DMABuffer
    init(_ ch: EmbeddedChannel, _ n: Int = 4096) throws {
        src = try ch.allocateCoherent(byteCount: n)
        dst = try ch.allocateCoherent(byteCount: n)
        for i in 0..<n { src.bytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 1) }
    }
    func copied(_ n: Int) -> Bool { (0..<n).allSatisfy { dst.bytes[$0] == src.bytes[$0] } }
    func untouched(_ n: Int) -> Bool { (0..<n).allSatisfy { dst.bytes[$0] == 0 } }
    func free(_ ch: EmbeddedChannel) {
        ch.freeCoherent(src)
        ch.freeCoherent(dst)
    }
}

/// Collects callbacks (cookies and results) in order.
private final class Calls: Sendable {
    let list = Mutex<[DMACompletion]>([])
    var count: Int { list.withLock { $0.count } }
    var cookies: [DMACookie] { list.withLock { $0.map(\.cookie) } }
    var callback: DMACallback { .result { c in self.list.withLock { $0.append(c) } } }
}

struct EmbeddedChannelTests {
    @Test func submitQueuesIssueActivatesCompleteNextCopies() throws {
        let ch = EmbeddedChannel()
        let b = try Buffers(ch)
        let calls = Calls()
        let d = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 1000, callback: calls.callback))
        let c = ch.submit(d)
        #expect(c == DMACookie(2))
        #expect(ch.pendingCount == 1 && ch.activeCount == 0)
        #expect(ch.completeNext() == nil, "nothing runs before issuePending")
        #expect(ch.status(of: c).0 == .inProgress)
        #expect(ch.status(of: c).1.residue == 1000)
        ch.issuePending()
        #expect(ch.pendingCount == 0 && ch.activeCount == 1)
        #expect(b.untouched(1000), "issuePending alone moves no byte")
        #expect(ch.completeNext() == c)
        #expect(b.copied(1000))
        #expect(b.dst.bytes[1000] == 0)
        #expect(calls.cookies == [c])
        #expect(calls.list.withLock { $0[0].result } == .noError)
        #expect(ch.status(of: c) == (.complete, DMATxState(last: c, used: c, residue: 0, inFlightBytes: 0)))
        #expect(ch.completeNext() == nil)
        #expect(ch.descriptorsInUse == 0, "a non-REUSE descriptor returns to the pool")
        #expect(try ch.finish().isClean)
        b.free(ch)
        try ch.release()
    }

    @Test func advanceMovesPartOfTheHeadAndResidueShrinks() throws {
        let ch = EmbeddedChannel()
        let b = try Buffers(ch)
        let d = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 1000, flags: .default))
        let c = ch.submitAndIssue(d)
        #expect(ch.advance(byteCount: 300) == nil)
        #expect(ch.status(of: c).1.residue == 700)
        #expect(ch.status(of: c).1.inFlightBytes == 700)
        #expect(b.copied(300) && b.dst.bytes[300] == 0)
        #expect(ch.advance(byteCount: 700) == c)
        #expect(b.copied(1000))
        b.free(ch)
        try ch.release()
    }

    @Test func completeAllRunsWorkThatCallbacksIssue() throws {
        let ch = EmbeddedChannel()
        let b = try Buffers(ch)
        let count = Atomic<Int>(0)
        @Sendable func chain() {
            guard count.load(ordering: .relaxed) < 10 else { return }
            let cb = DMACallback.plain { _ in
                count.add(1, ordering: .relaxed)
                #expect(NonBlockingContext.isActive, "callbacks run in a non-blocking context")
                chain()
            }
            guard let d = ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 64, callback: cb) else { return }
            _ = ch.submitAndIssue(d)
        }
        chain()
        let done = ch.completeAll()
        #expect(done.count == 10)
        #expect(done.map(\.rawValue) == Array(2...11))
        #expect(count.load(ordering: .relaxed) == 10)
        b.free(ch)
        try ch.release()
    }

    @Test func pauseStopsProgressAndReadsPaused() throws {
        let ch = EmbeddedChannel()
        let b = try Buffers(ch)
        let d = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 100, flags: .default))
        try ch.pause()
        let c = ch.submitAndIssue(d)
        #expect(ch.completeNext() == nil)
        #expect(ch.status(of: c).0 == .paused)
        try ch.resume()
        #expect(throws: DMAError.notPaused) { try ch.resume() }
        #expect(ch.completeNext() == c)
        b.free(ch)
        try ch.release()
    }

    @Test func terminateAsyncMarksCookiesCompleteAndSynchronizeRetires() throws {
        let ch = EmbeddedChannel()
        let b = try Buffers(ch)
        let calls = Calls()
        var cookies: [DMACookie] = []
        for _ in 0..<3 {
            let d = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 64, callback: calls.callback))
            cookies.append(ch.submit(d))
        }
        ch.issuePending()
        let d4 = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 64, callback: calls.callback))
        let c4 = ch.submit(d4)
        try ch.pause()
        try ch.terminateAsync()
        #expect(!ch.isPaused, "terminate clears paused")
        #expect(ch.pendingCount == 0 && ch.activeCount == 0)
        #expect(ch.terminatedCount == 4)
        for c in cookies + [c4] { #expect(ch.status(of: c).0 == .complete, "rule S6 [T]") }
        #expect(ch.debugWatermark() == DMACookieWatermark(used: c4, last: c4))
        try ch.synchronize()
        #expect(ch.terminatedCount == 0)
        #expect(ch.descriptorsInUse == 0)
        #expect(ch.completeAll().isEmpty)
        #expect(calls.count == 0, "terminated transfers get no callback")
        #expect(b.untouched(64))
        b.free(ch)
        try ch.release()
    }

    @Test func finishReportsLeftovers() throws {
        let ch = EmbeddedChannel()
        let b = try Buffers(ch)
        let d1 = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 64, flags: .default))
        let c1 = ch.submitAndIssue(d1)
        let d2 = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 64, flags: .default))
        let c2 = ch.submit(d2)
        _ = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 64, flags: .default))
        let left = try ch.finish()
        #expect(left.active == [c1])
        #expect(left.pending == [c2])
        #expect(left.prepared == 1)
        #expect(!left.isClean)
        #expect(ch.pendingCount == 0 && ch.activeCount == 0)
        b.free(ch)
        try ch.release()
    }

    @Test func blockingCallsAreIllegalInCallbacksAndRegions() throws {
        let ch = EmbeddedChannel()
        let b = try Buffers(ch)
        let seen = Mutex<[DMAError?]>([])
        let cb = DMACallback.plain { _ in
            for call in [ch.synchronize, ch.terminateSync, ch.release] {
                do throws(DMAError) { try call(); seen.withLock { $0.append(nil) } } catch { seen.withLock { $0.append(error) } }
            }
            do throws(DMAError) { try ch.terminateAsync() } catch { seen.withLock { $0.append(error) } }
        }
        let d = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 64, callback: cb))
        _ = ch.submitAndIssue(d)
        ch.completeAll()
        #expect(seen.withLock { $0 } == [.illegalContext, .illegalContext, .illegalContext])
        #expect(throws: DMAError.illegalContext) { try withNonBlockingContext { () throws(DMAError) in try ch.terminateSync() } }
        #expect(throws: DMAError.illegalContext) { try withNonBlockingContext { () throws(DMAError) in try ch.finish() } }
        b.free(ch)
        try ch.release()
    }

    @Test func reuseFreeAndHandleValidity() throws {
        let ch = EmbeddedChannel()
        let b = try Buffers(ch)
        let calls = Calls()
        let d = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 64, callback: calls.callback))
        try ch.setReuse(true, for: d)
        let c1 = ch.submit(d)
        #expect(!ch.submit(d).isValid, "resubmitting in flight fails")
        #expect(throws: DMAError.busy) { try ch.free(d) }
        ch.issuePending()
        ch.completeAll()
        let c2 = ch.submitAndIssue(d)
        #expect(c2 == c1.next)
        ch.completeAll()
        #expect(calls.cookies == [c1, c2])
        try ch.free(d)
        #expect(throws: DMAError.invalidHandle) { try ch.setCallback(DMACallback(), for: d) }
        let plain = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 64, flags: .default))
        #expect(throws: DMAError.notPermitted) { try ch.free(plain) }
        _ = ch.submitAndIssue(plain)
        ch.completeAll()
        #expect(throws: DMAError.invalidHandle) { try ch.setCallback(DMACallback(), for: plain) }
        b.free(ch)
        try ch.release()
        #expect(throws: DMAError.released) { try ch.pause() }
        #expect(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 64, flags: .default) == nil)
    }

    @Test func poolExhaustionAndInjectedSubmitFailure() throws {
        let ch = EmbeddedChannel(options: DMAChannelOptions(poolSize: 2))
        let b = try Buffers(ch)
        let d1 = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 8, flags: .default))
        let d2 = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 8, flags: .default))
        #expect(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 8, flags: .default) == nil)
        let used = ch.debugWatermark().used
        ch.debugFailNextSubmits(1)
        #expect(ch.submit(d1).rawValue < 0)
        #expect(ch.debugWatermark().used == used)
        #expect(ch.submit(d1) == used.next)
        #expect(ch.submit(d2) == used.next.next)
        ch.issuePending()
        #expect(ch.completeAll().count == 2)
        #expect(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 8, flags: .default) != nil)
        b.free(ch)
        try ch.release()
    }

    @Test func stallFaultMemsetCyclicAndProbe() throws {
        let ch = EmbeddedChannel()
        let b = try Buffers(ch)
        let calls = Calls()
        let writes = Atomic<Int>(0)
        ch.debugSetAccessProbe { a in if a.kind == .write { writes.add(1, ordering: .relaxed) } }
        // Stall: nothing runs until released.
        let s = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 64, callback: calls.callback))
        try ch.debugInject(.stalled, into: s)
        let cs = ch.submitAndIssue(s)
        #expect(ch.completeNext() == nil)
        ch.debugReleaseStalls()
        #expect(ch.completeNext() == cs)
        // Fault: the callback gets the error.
        let f = try #require(ch.prepareMemcpy(to: b.dst.base, from: b.src.base, length: 64, callback: calls.callback))
        try ch.debugInject(.fault(.read), into: f)
        _ = ch.submitAndIssue(f)
        ch.completeAll()
        #expect(calls.list.withLock { $0.last?.result.code } == .readFailed)
        // Memset with a 16-byte burst: one probe write per burst.
        try ch.configure(DMAConfig(burstBytes: 16))
        writes.store(0, ordering: .relaxed)
        let m = try #require(ch.prepareMemset(to: b.dst.base, value: 0xAB, length: 64, flags: .default))
        _ = ch.submitAndIssue(m)
        ch.completeAll()
        #expect((0..<64).allSatisfy { b.dst.bytes[$0] == 0xAB })
        #expect(writes.load(ordering: .relaxed) == 4)
        try ch.configure(DMAConfig())
        // Cyclic: completeNext moves one period; the cookie never completes.
        let periods = Calls()
        let cy = try #require(ch.prepareCyclic(to: b.dst.base, from: b.src.base, bufferLength: 256, periodLength: 64, flags: .default))
        try ch.setCallback(periods.callback, for: cy)
        let cc = ch.submitAndIssue(cy)
        #expect(ch.completeAll().isEmpty, "completeAll stops at a cyclic head")
        for _ in 0..<6 { #expect(ch.completeNext() == cc) }
        #expect(periods.count == 6)
        #expect(ch.status(of: cc).0 == .inProgress)
        #expect(ch.status(of: cc).1.residue == 128)
        try ch.terminateSync()
        #expect(ch.completeNext() == nil)
        b.free(ch)
        try ch.release()
    }
}
