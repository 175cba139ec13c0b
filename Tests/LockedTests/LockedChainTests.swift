// dmabench — LockedTests
//
// The engine's chain (`LockedCore.takeChain`): quick descriptors that follow the active one
// on the issued list are taken with it, run one after another without the lock, and
// complete together. These tests hold the engine inside one descriptor of a chain (the
// access probe blocks it) and check what the contract asks of that moment: the chain's
// cookies read IN_PROGRESS, a terminate drops the whole chain and synchronize waits until
// the engine has let go of it, and a pause stops the chain between two descriptors.

import DMAEngine
import DMAEngineTestSupport
import DMAEngineLocked
import Glibc
import Platform
import Synchronization
import Testing
import TestHelpers

@Suite("LockedChannel engine chain")
struct LockedChainTests {
    /// Eight 1 KiB copies, issued at once: the engine takes the first and chains the other
    /// seven (8 KiB in all, within `LockedTuning.chainBytes`).
    static let count = 8
    static let length = 1024

    /// A probe that blocks the engine when it reads the source of `cookie`, and counts
    /// every access made once `after` is set.
    final class Holder: Sendable {
        let gate = Gate()
        let target = Atomic<Int32>(0)
        let after = Atomic<Bool>(false)
        let accessesAfter = Atomic<Int>(0)

        func probe(_ a: DMAAccess) {
            if after.load(ordering: .sequentiallyConsistent) { accessesAfter.add(1, ordering: .relaxed) }
            if a.kind == .read && a.cookie.rawValue == target.load(ordering: .sequentiallyConsistent) { gate.block() }
        }
    }

    final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    struct Setup {
        let ch: LockedChannel
        let src: DMABuffer
        let dst: DMABuffer
        let rec = Recorder()
        var cookies: [DMACookie] = []
    }

    /// Submits the eight copies, blocks the engine inside the third (a chained one), and
    /// returns once the engine is there.
    func start(_ holder: Holder) throws -> Setup {
        // A pool of exactly the eight descriptors: a slot the chain fails to give back shows.
        let ch = try LockedChannel(options: DMAChannelOptions(poolSize: Self.count))
        var s = Setup(ch: ch, src: try patterned(ch, Self.count * Self.length, seed: 41),
                      dst: try ch.allocateCoherent(byteCount: Self.count * Self.length))
        ch.debugSetAccessProbe { holder.probe($0) }
        for i in 0..<Self.count {
            let d = try #require(ch.prepareMemcpy(
                to: s.dst.base + i * Self.length, from: s.src.base + i * Self.length, length: Self.length,
                callback: s.rec.callback(ch)))
            s.cookies.append(ch.submit(d))
        }
        holder.target.store(s.cookies[2].rawValue, ordering: .sequentiallyConsistent)
        ch.issuePending()
        #expect(waitUntil { holder.gate.entered.load(ordering: .sequentiallyConsistent) == 1 })
        return s
    }

    @Test func aChainCompletesAsAWholeAndReadsInProgressUntilThen() throws {
        let holder = Holder()
        let s = try start(holder)
        defer {
            try? s.ch.release()
            s.ch.freeCoherent(s.src)
            s.ch.freeCoherent(s.dst)
        }
        // The first two are copied, the third is being copied: none is complete yet, and
        // the ones not started report their whole length as residue (S5).
        #expect(memcmp(s.dst.base, s.src.base, 2 * Self.length) == 0)
        for (i, c) in s.cookies.enumerated() {
            let (status, state) = s.ch.status(of: c)
            #expect(status == .inProgress, "cookie \(i)")
            #expect(state.residue > 0 && state.residue <= Self.length, "cookie \(i): residue \(state.residue)")
            if i >= 2 { #expect(state.residue == Self.length, "cookie \(i)") }
        }
        MonotonicClock.sleep(nanoseconds: 5_000_000)
        #expect(s.rec.count == 0)
        holder.gate.open.store(true, ordering: .sequentiallyConsistent)
        #expect(waitUntil { s.rec.count == Self.count })
        #expect(s.rec.cookies == s.cookies.map(\.rawValue))
        #expect(s.rec.results.allSatisfy { $0 == DMAResult(.noError) })
        #expect(memcmp(s.dst.base, s.src.base, Self.count * Self.length) == 0)
        for c in s.cookies { #expect(s.ch.status(of: c).0 == .complete) }
    }

    @Test func terminateDropsTheWholeChainAndSynchronizeWaitsForTheEngine() throws {
        let holder = Holder()
        let s = try start(holder)
        defer {
            try? s.ch.release()
            s.ch.freeCoherent(s.src)
            s.ch.freeCoherent(s.dst)
        }
        try s.ch.terminateAsync()
        // S6: every cookie reads COMPLETE at once, though the engine still holds the chain.
        for c in s.cookies { #expect(s.ch.status(of: c).0 == .complete) }
        let opener = try OSThread(name: "opener") {
            MonotonicClock.sleep(nanoseconds: 30_000_000)
            holder.gate.open.store(true, ordering: .sequentiallyConsistent)
        }
        try s.ch.synchronize()
        // T3: synchronize returned only after the engine left the chained descriptor it was
        // in, and nothing of the chain is touched afterwards.
        let exited = holder.gate.exited.load(ordering: .sequentiallyConsistent)
        #expect(exited == 1)
        holder.after.store(true, ordering: .sequentiallyConsistent)
        opener.join()
        MonotonicClock.sleep(nanoseconds: 20_000_000)
        let accessesAfter = holder.accessesAfter.load(ordering: .relaxed)
        #expect(accessesAfter == 0)
        // The descriptors after the one the engine was in were never copied, and no
        // callback ran for any of them (T1).
        let tail = s.dst.base + 3 * Self.length
        #expect((0..<(Self.count - 3) * Self.length).allSatisfy { tail.load(fromByteOffset: $0, as: UInt8.self) == 0 })
        #expect(s.rec.count == 0)
        // Every slot came back (the pool holds exactly eight), and the channel still works,
        // its cookies continuing (T8).
        holder.target.store(0, ordering: .sequentiallyConsistent)
        var again: [DMACookie] = []
        for i in 0..<Self.count {
            let d = try #require(s.ch.prepareMemcpy(
                to: s.dst.base + i * Self.length, from: s.src.base + i * Self.length, length: Self.length,
                callback: s.rec.callback(s.ch)), "slot \(i) of \(Self.count) was not given back")
            again.append(s.ch.submit(d))
        }
        s.ch.issuePending()
        #expect(again.first == DMACookie(s.cookies.last!.rawValue + 1))
        #expect(waitUntil { s.rec.count == Self.count })
        #expect(memcmp(s.dst.base, s.src.base, Self.count * Self.length) == 0)
    }

    @Test func pauseStopsAChainBetweenTwoDescriptors() throws {
        let holder = Holder()
        let s = try start(holder)
        defer {
            try? s.ch.release()
            s.ch.freeCoherent(s.src)
            s.ch.freeCoherent(s.dst)
        }
        let paused = Flag()
        let pauser = try OSThread(name: "pauser") {
            try? s.ch.pause()
            paused.value.store(true, ordering: .sequentiallyConsistent)
        }
        // P1: pause returns only once no byte moves, so not while the engine is inside a
        // descriptor of the chain.
        MonotonicClock.sleep(nanoseconds: 20_000_000)
        let pausedEarly = paused.value.load(ordering: .sequentiallyConsistent)
        #expect(!pausedEarly)
        holder.gate.open.store(true, ordering: .sequentiallyConsistent)
        #expect(waitUntil { paused.value.load(ordering: .sequentiallyConsistent) })
        pauser.join()
        // The descriptor the engine was in is finished; the next one does not start and
        // nothing completes while paused.
        #expect(memcmp(s.dst.base, s.src.base, 3 * Self.length) == 0)
        let watermark = s.ch.debugWatermark()
        MonotonicClock.sleep(nanoseconds: 20_000_000)
        let tail = s.dst.base + 3 * Self.length
        #expect((0..<(Self.count - 3) * Self.length).allSatisfy { tail.load(fromByteOffset: $0, as: UInt8.self) == 0 })
        #expect(s.ch.debugWatermark() == watermark)
        #expect(s.rec.count == 0)
        for c in s.cookies { #expect(s.ch.status(of: c).0 == .paused) }
        try s.ch.resume()
        #expect(waitUntil { s.rec.count == Self.count })
        #expect(s.rec.cookies == s.cookies.map(\.rawValue))
        #expect(memcmp(s.dst.base, s.src.base, Self.count * Self.length) == 0)
    }
}

@Suite("LockedChannel prep magazine")
struct LockedMagazineTests {
    @Test func concurrentPrepsOnASmallPoolNeverShareASlot() throws {
        // Several threads prep and submit at once on a pool smaller than their combined
        // appetite: the magazine is refilled (and runs dry) under contention all the time.
        // A slot handed out twice shows as a failed submit, a lost callback or a wrong copy.
        let threads = 4, perThread = 3000, len = 64
        let ch = try LockedChannel(options: DMAChannelOptions(poolSize: 48))
        defer { try? ch.release() }
        let src = try patterned(ch, threads * perThread * len, seed: 5)
        let dst = try ch.allocateCoherent(byteCount: threads * perThread * len)
        defer {
            ch.freeCoherent(src)
            ch.freeCoherent(dst)
        }
        let rec = Recorder()
        let failures = LockedValue<[String]>([])
        let exhausted = LockedValue(0)
        var workers: [OSThread] = []
        for k in 0..<threads {
            workers.append(try OSThread(name: "prep-\(k)") {
                for n in 0..<perThread {
                    let off = (k * perThread + n) * len
                    var d: DMADescriptor? = nil
                    while d == nil {
                        d = ch.prepareMemcpy(to: dst.base + off, from: src.base + off, length: len, callback: rec.callback(nil))
                        if d == nil {
                            exhausted.withLock { $0 += 1 }
                            ch.issuePending()
                            sched_yield()
                        }
                    }
                    let c = ch.submit(d!)
                    if !c.isValid { failures.withLock { $0.append("thread \(k) copy \(n): submit returned \(c)") } }
                    if n % 8 == 7 { ch.issuePending() }
                }
                ch.issuePending()
            })
        }
        for w in workers { w.join() }
        let failed = failures.withLock { $0 }
        #expect(failed.isEmpty, "\(failed.prefix(3))")
        #expect(waitUntil { rec.count == threads * perThread }, "callbacks: \(rec.count) of \(threads * perThread)")
        #expect(memcmp(dst.base, src.base, threads * perThread * len) == 0)
        // The pool ran dry along the way (otherwise the refill under contention was not exercised).
        #expect(exhausted.withLock { $0 } > 0)
        // Every slot came back: the whole pool can be prepped again.
        var again: [DMADescriptor] = []
        for _ in 0..<48 { if let d = ch.prepareMemcpy(to: dst.base, from: src.base, length: len, flags: []) { again.append(d) } }
        #expect(again.count == 48)
        #expect(ch.prepareMemcpy(to: dst.base, from: src.base, length: len, flags: []) == nil)
    }
}
