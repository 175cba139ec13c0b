// dmabench — URingTests
//
// Behaviour of the io_uring backend that the shared conformance suite does not reach:
// pool rules, each setup and pool backing, the seed race, pause, injection and faults.

import DMAEngine
@testable import DMAEngineURing
import Glibc
import Platform
import TestHelpers
import Synchronization
import Testing

/// Whether io_uring works here; tests that need it skip visibly otherwise.
let uringAvailable: Bool = {
    if case .success = URingChannel.availability() { return true }
    return false
}()
let uringUnavailableReason: Comment = {
    if case .failure(let e) = URingChannel.availability() { return Comment(rawValue: "io_uring unavailable: \(e)") }
    return "io_uring available"
}()

/// Every setup and pool backing worth checking.
let configurations: [(URingSetup, URingPoolBacking)] = [
    (.plain, .default), (.deferTaskrun, .default), (.sqpoll, .default),
    (.plain, .memfd), (.deferTaskrun, .memfd), (.plain, .registeredFile(directory: "/var/tmp")),
]


/// A thread-safe recorder for callbacks.
final class Recorder: @unchecked Sendable {
    private let m = LockedValue<[(DMACookie, DMAResult)]>([])
    func add(_ c: DMACookie, _ r: DMAResult) { m.withLock { $0.append((c, r)) } }
    var all: [(DMACookie, DMAResult)] { m.withLock { $0 } }
    var count: Int { m.withLock { $0.count } }
}


func makeChannel(_ setup: URingSetup = .plain, _ pool: URingPoolBacking = .default, poolSize: Int = 256) throws -> URingChannel {
    try URingChannel(options: DMAChannelOptions(poolSize: poolSize, coherentPoolBytes: 8 << 20), setup: setup, pool: pool)
}

func fill(_ b: DMABuffer, seed: UInt8) {
    for i in 0..<b.count { b.base.storeBytes(of: UInt8(truncatingIfNeeded: i &* 7 &+ Int(seed)), toByteOffset: i, as: UInt8.self) }
}

func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool { memcmp(a, b, n) == 0 }

/// Lets a test's self-resubmitting closure refer to itself.
final class ChainBox: @unchecked Sendable { var next: (@Sendable () -> Void)? }

@Suite(.enabled(if: uringAvailable, uringUnavailableReason))
struct URingChannelTests {
    /// The slot keeps to two cache lines: both threads touch it per descriptor, so each
    /// extra line is another transfer between the CPUs (URingSlots.swift).
    @Test func slotIsTwoCacheLines() {
        #expect(MemoryLayout<URingSlot>.stride == 128)
        #expect(MemoryLayout<URingSlot>.offset(of: \URingSlot.callback)! + MemoryLayout<DMAPackedCallback>.size <= 128)
        // A CQE's accounting (`absorb`) stays in the first line.
        #expect(MemoryLayout<URingSlot>.offset(of: \URingSlot.bytesDone)! + 8 <= 64)
    }

    @Test func availabilityIsReported() {
        switch URingChannel.availability() {
        case .success: #expect(Bool(true))
        case .failure(let e):
            guard case .unavailable(let why) = e else {
                Issue.record("availability must fail with .unavailable, got \(e)")
                return
            }
            #expect(!why.isEmpty)
        }
    }

    @Test(arguments: URingSetup.allCases)
    func backendNames(_ setup: URingSetup) throws {
        let ch = try makeChannel(setup)
        defer { try? ch.release() }
        #expect(ch.backendName == ["uring", "uring-defer", "uring-sqpoll"][URingSetup.allCases.firstIndex(of: setup)!])
        #expect(ch.capabilities.cmdPause && !ch.capabilities.completionNoOrder && !ch.capabilities.descriptorReuse)
    }

    @Test func tmpfsDirectoryIsRejected() {
        #expect(throws: DMAError.self) {
            _ = try URingChannel(setup: .plain, pool: .file(directory: "/dev/shm"))
        }
    }

    @Test func sourceOutsidePoolIsRefused() throws {
        let ch = try makeChannel()
        defer { try? ch.release() }
        let outside = try PageMemory.map(byteCount: 4096)
        defer { PageMemory.unmap(outside, byteCount: 4096) }
        #expect(ch.prepareMemcpy(to: outside, from: outside, length: 64, flags: .default) == nil)
        let src = try ch.allocateCoherent(byteCount: 4096)
        let other = try makeChannel()
        defer { try? other.release() }
        let foreign = try other.allocateCoherent(byteCount: 4096)
        #expect(ch.prepareMemcpy(to: outside, from: foreign.base, length: 64, flags: .default) == nil)
        #expect(ch.prepareMemcpy(to: outside, from: src.base, length: 0, flags: .default) == nil)
        #expect(ch.prepareMemcpy(to: outside, from: src.base, length: 4096, flags: .default) != nil)
    }

    @Test(arguments: configurations.indices)
    func copiesInCookieOrder(_ which: Int) throws {
        let (setup, backing) = configurations[which]
        let ch = try makeChannel(setup, backing)
        defer { try? ch.release() }
        let n = 200, size = 4096
        let src = try ch.allocateCoherent(byteCount: n * size)
        fill(src, seed: 3)
        let dst = try PageMemory.map(byteCount: n * size)
        defer { PageMemory.unmap(dst, byteCount: n * size) }
        let rec = Recorder()
        var cookies: [DMACookie] = []
        for i in 0..<n {
            let d = try #require(ch.prepareMemcpy(to: dst + i * size, from: src.base + i * size, length: size,
                                                  callback: .result { rec.add($0.cookie, $0.result) }))
            cookies.append(ch.submit(d))
            if i % 32 == 31 { ch.issuePending() }
        }
        ch.issuePending()
        #expect(cookies.first == DMACookie(2))
        #expect(waitUntil { rec.count == n })
        #expect(rec.all.map(\.0) == cookies)
        #expect(rec.all.allSatisfy { $0.1 == .noError })
        #expect(equal(dst, src.base, n * size))
        for c in cookies { #expect(ch.status(of: c).0 == .complete) }
        #expect(ch.debugWatermark().last == cookies.last!)
        #expect(ch.debugStrayCompletions == 0)
    }

    @Test(arguments: URingSetup.allCases)
    func callbacksChainWork(_ setup: URingSetup) throws {
        let ch = try makeChannel(setup)
        defer { try? ch.release() }
        let src = try ch.allocateCoherent(byteCount: 64)
        fill(src, seed: 9)
        let dst = try PageMemory.map(byteCount: 64)
        defer { PageMemory.unmap(dst, byteCount: 64) }
        let total = 2000
        let done = Atomic<Int>(0)
        let illegal = Atomic<Int>(0)
        let box = ChainBox()
        let dstAddr = UInt(bitPattern: dst)
        box.next = { [ch] in
            let d = ch.prepareMemcpy(to: UnsafeMutableRawPointer(bitPattern: dstAddr)!, from: src.base, length: 64,
                                     callback: .plain { _ in
                                         if NonBlockingContext.holdsBackendLock { illegal.add(1, ordering: .relaxed) }
                                         if (try? ch.synchronize()) != nil { illegal.add(1, ordering: .relaxed) }
                                         if done.add(1, ordering: .acquiringAndReleasing).newValue < total { box.next?() }
                                     })
            _ = ch.submitAndIssue(d!)
        }
        box.next?()
        #expect(waitUntil { done.load(ordering: .acquiring) == total })
        #expect(illegal.load(ordering: .relaxed) == 0)
        box.next = nil
    }

    @Test(arguments: URingSetup.allCases)
    func seedRaceTerminateFromCallback(_ setup: URingSetup) throws {
        let ch = try makeChannel(setup)
        defer { try? ch.release() }
        let src = try ch.allocateCoherent(byteCount: 4096)
        let iterations = 200
        for it in 0..<iterations {
            let dst = try PageMemory.map(byteCount: 4096)
            let stopAt = 1 + it % 7
            let entered = Atomic<Int>(0)
            let inCallback = Atomic<Bool>(false)
            let stopped = Atomic<Bool>(false)
            let dstAddr = UInt(bitPattern: dst)
            let box = ChainBox()
            box.next = { [ch] in
                guard let d = ch.prepareMemcpy(
                    to: UnsafeMutableRawPointer(bitPattern: dstAddr)!, from: src.base, length: 4096,
                    callback: .plain { _ in
                        inCallback.store(true, ordering: .sequentiallyConsistent)
                        let k = entered.add(1, ordering: .relaxed).newValue
                        if k == stopAt {
                            try? ch.terminateAsync()
                            stopped.store(true, ordering: .sequentiallyConsistent)
                        } else if !stopped.load(ordering: .sequentiallyConsistent) {
                            box.next?()
                            box.next?()
                        }
                        inCallback.store(false, ordering: .sequentiallyConsistent)
                    })
                else { return }
                _ = ch.submitAndIssue(d)
            }
            box.next?()
            #expect(waitUntil { stopped.load(ordering: .sequentiallyConsistent) })
            try ch.synchronize()
            let stillInside = inCallback.load(ordering: .sequentiallyConsistent)
            #expect(!stillInside)
            let frozen = entered.load(ordering: .relaxed)
            try PageMemory.protect(dst, byteCount: 4096, .none)
            MonotonicClock.sleep(nanoseconds: 200_000)
            let after = entered.load(ordering: .relaxed)
            #expect(after == frozen)
            PageMemory.unmap(dst, byteCount: 4096)
            box.next = nil
        }
        #expect(ch.debugLateCompletions == 0)
        #expect(ch.debugStrayCompletions == 0)
    }

    @Test func illegalBlockingCallsFromCallback() throws {
        let ch = try makeChannel()
        let other = try makeChannel(.deferTaskrun)
        defer {
            try? ch.release()
            try? other.release()
        }
        let src = try ch.allocateCoherent(byteCount: 64)
        let dst = try ch.allocateCoherent(byteCount: 64)
        let results = LockedValue<[Bool]>([])
        let d = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, callback: .plain { _ in
            var r: [Bool] = []
            do throws(DMAError) { try ch.synchronize(); r.append(false) } catch { r.append(error == .illegalContext) }
            do throws(DMAError) { try ch.terminateSync(); r.append(false) } catch { r.append(error == .illegalContext) }
            do throws(DMAError) { try ch.release(); r.append(false) } catch { r.append(error == .illegalContext) }
            do throws(DMAError) { try other.synchronize(); r.append(false) } catch { r.append(error == .illegalContext) }
            results.withLock { $0 = r }
        }))
        _ = ch.submitAndIssue(d)
        #expect(waitUntil { results.withLock { !$0.isEmpty } })
        #expect(results.withLock { $0 } == [true, true, true, true])
        #expect(throws: DMAError.illegalContext) {
            try withNonBlockingContext { () throws(DMAError) in try ch.synchronize() }
        }
    }

    @Test(arguments: URingSetup.allCases)
    func slowTransferPauseResumeAndResidue(_ setup: URingSetup) throws {
        let ch = try makeChannel(setup)
        defer { try? ch.release() }
        let len = 64 * 1024
        let src = try ch.allocateCoherent(byteCount: len)
        fill(src, seed: 5)
        let dst = try PageMemory.map(byteCount: 2 * len)
        defer { PageMemory.unmap(dst, byteCount: 2 * len) }
        let rec = Recorder()
        let slow = try #require(ch.prepareMemcpy(to: dst, from: src.base, length: len, callback: .result { rec.add($0.cookie, $0.result) }))
        try ch.debugInject(.slow(length: len, nanoseconds: 200_000_000, chunks: 16), into: slow)
        let queued = try #require(ch.prepareMemcpy(to: dst + len, from: src.base, length: len, callback: .result { rec.add($0.cookie, $0.result) }))
        let c1 = ch.submit(slow), c2 = ch.submit(queued)
        ch.issuePending()
        #expect(waitUntil { ch.status(of: c1).1.residue < len })
        var last = len
        for _ in 0..<5 {
            let (s, t) = ch.status(of: c1)
            #expect(s == .inProgress)
            #expect(t.residue > 0 && t.residue <= last)
            last = t.residue
            #expect(ch.status(of: c2).1.residue == len)
            MonotonicClock.sleep(nanoseconds: 10_000_000)
        }
        try ch.pause()
        let frozen = ch.status(of: c1)
        #expect(frozen.0 == .paused && ch.status(of: c2).0 == .paused)
        let snapshot = Array(UnsafeRawBufferPointer(start: dst, count: len))
        MonotonicClock.sleep(nanoseconds: 50_000_000)
        #expect(ch.status(of: c1).1.residue == frozen.1.residue)
        #expect(Array(UnsafeRawBufferPointer(start: dst, count: len)) == snapshot)
        #expect(rec.count == 0)
        try ch.resume()
        #expect(throws: DMAError.notPaused) { try ch.resume() }
        #expect(waitUntil { rec.count == 2 })
        #expect(rec.all.map(\.0) == [c1, c2])
        #expect(equal(dst, src.base, len) && equal(dst + len, src.base, len))
    }

    @Test(arguments: URingSetup.allCases)
    func stalledTransferTerminates(_ setup: URingSetup) throws {
        let ch = try makeChannel(setup)
        defer { try? ch.release() }
        let src = try ch.allocateCoherent(byteCount: 4096)
        fill(src, seed: 1)
        let dst = try PageMemory.map(byteCount: 4096)
        memset(dst, 0xEE, 4096)
        let rec = Recorder()
        let d = try #require(ch.prepareMemcpy(to: dst, from: src.base, length: 4096, callback: .result { rec.add($0.cookie, $0.result) }))
        try ch.debugInject(.stalled, into: d)
        let c = ch.submitAndIssue(d)
        MonotonicClock.sleep(nanoseconds: 100_000_000)
        #expect(ch.status(of: c).0 == .inProgress)
        try ch.terminateSync()
        #expect(ch.status(of: c).0 == .complete)
        try PageMemory.protect(dst, byteCount: 4096, .none)
        ch.debugReleaseStalls()
        MonotonicClock.sleep(nanoseconds: 50_000_000)
        #expect(rec.count == 0)
        PageMemory.unmap(dst, byteCount: 4096)
        // The channel is reusable and cookies continue (T8).
        let dst2 = try ch.allocateCoherent(byteCount: 4096)
        let d2 = try #require(ch.prepareMemcpy(to: dst2.base, from: src.base, length: 4096, callback: .result { rec.add($0.cookie, $0.result) }))
        let c2 = ch.submitAndIssue(d2)
        #expect(c2 == c.next)
        #expect(waitUntil { rec.count == 1 })
        #expect(equal(dst2.base, src.base, 4096))
    }

    @Test(arguments: URingSetup.allCases)
    func faultsAreReported(_ setup: URingSetup) throws {
        let ch = try makeChannel(setup)
        defer { try? ch.release() }
        let src = try ch.allocateCoherent(byteCount: 4096)
        fill(src, seed: 2)
        let dst = try ch.allocateCoherent(byteCount: 5 * 4096)
        memset(dst.base, 0xEE, 5 * 4096)
        let rec = Recorder()
        var cookies: [DMACookie] = []
        for i in 0..<5 {
            let d = try #require(ch.prepareMemcpy(to: dst.base + i * 4096, from: src.base, length: 4096,
                                                  callback: .result { rec.add($0.cookie, $0.result) }))
            if i == 2 { try ch.debugInject(.fault(.read), into: d) }
            if i == 4 { try ch.debugInject(.fault(.write), into: d) }
            cookies.append(ch.submit(d))
        }
        ch.issuePending()
        #expect(waitUntil { rec.count == 5 })
        #expect(rec.all.map(\.0) == cookies)
        #expect(rec.all.map(\.1.code) == [.noError, .noError, .readFailed, .noError, .writeFailed])
        #expect(UnsafeRawBufferPointer(start: dst.base + 2 * 4096, count: 4096).allSatisfy { $0 == 0xEE })
        #expect(equal(dst.base + 3 * 4096, src.base, 4096))
    }

    @Test func submitFailureAndPoolExhaustion() throws {
        let ch = try makeChannel(poolSize: 4)
        defer { try? ch.release() }
        let src = try ch.allocateCoherent(byteCount: 64)
        let dst = try ch.allocateCoherent(byteCount: 64)
        var ds: [DMADescriptor] = []
        for _ in 0..<4 { ds.append(try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, flags: .default))) }
        #expect(ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, flags: .default) == nil)
        ch.debugFailNextSubmits(1)
        let used = ch.debugWatermark().used
        #expect(!ch.submit(ds[0]).isValid)
        #expect(ch.debugWatermark().used == used)
        #expect(ch.submit(ds[0]) == used.next)
        #expect(throws: DMAError.notPermitted) { try ch.setReuse(true, for: ds[1]) }
        #expect(throws: DMAError.notPermitted) { try ch.free(ds[1]) }
        #expect(throws: DMAError.invalidHandle) { try ch.setCallback(DMACallback(), for: ds[0]) }
    }

    @Test func releaseWaitsAndThenRefuses() throws {
        let ch = try makeChannel(.deferTaskrun)
        let src = try ch.allocateCoherent(byteCount: 8192)
        let dst = try PageMemory.map(byteCount: 8192)
        defer { PageMemory.unmap(dst, byteCount: 8192) }
        let inCallback = Atomic<Int>(0)
        let d = try #require(ch.prepareMemcpy(to: dst, from: src.base, length: 8192, callback: .plain { _ in
            inCallback.add(1, ordering: .relaxed)
        }))
        try ch.debugInject(.slow(length: 8192, nanoseconds: 50_000_000, chunks: 8), into: d)
        _ = ch.submitAndIssue(d)
        MonotonicClock.sleep(nanoseconds: 10_000_000)
        try ch.terminateAsync()
        try ch.release()
        #expect(inCallback.load(ordering: .relaxed) == 0)
        #expect(throws: DMAError.released) { try ch.synchronize() }
        #expect(throws: DMAError.released) { try ch.release() }
        #expect(throws: DMAError.released) { try ch.terminateAsync() }
        #expect(!ch.submit(d).isValid)
        #expect(ch.prepareMemcpy(to: dst, from: src.base, length: 64, flags: .default) == nil)
        #expect(ch.debugLateCompletions == 0)
    }

    @Test func concurrentSubmittersGetContiguousCookies() throws {
        let ch = try makeChannel(.plain, poolSize: 4096)
        defer { try? ch.release() }
        let src = try ch.allocateCoherent(byteCount: 64)
        let dst = try ch.allocateCoherent(byteCount: 64)
        let rec = Recorder()
        let perThread = 200, threads = 4
        let all = LockedValue<[[DMACookie]]>([])
        var ts: [OSThread] = []
        for _ in 0..<threads {
            ts.append(try OSThread(name: "submitter") {
                var mine: [DMACookie] = []
                for _ in 0..<perThread {
                    let d = ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, callback: .result { rec.add($0.cookie, $0.result) })!
                    mine.append(ch.submit(d))
                }
                all.withLock { $0.append(mine) }
            })
        }
        for t in ts { t.join() }
        ch.issuePending()
        #expect(waitUntil { rec.count == threads * perThread })
        let cookies = all.withLock { $0 }
        for m in cookies { #expect(zip(m, m.dropFirst()).allSatisfy { $0.rawValue < $1.rawValue }) }
        let sorted = cookies.flatMap { $0 }.map(\.rawValue).sorted()
        #expect(sorted == Array(2..<Int32(2 + threads * perThread)))
        #expect(rec.all.map(\.0.rawValue) == sorted)
    }

    @Test func cookieWrapAndSeeding() throws {
        let ch = try makeChannel()
        defer { try? ch.release() }
        try ch.debugSeedCookie(used: DMACookie(.max - 2), last: DMACookie(.max - 2))
        let src = try ch.allocateCoherent(byteCount: 64)
        let dst = try ch.allocateCoherent(byteCount: 64)
        let rec = Recorder()
        var cookies: [DMACookie] = []
        for _ in 0..<5 {
            let d = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 64, callback: .result { rec.add($0.cookie, $0.result) }))
            cookies.append(ch.submit(d))
        }
        #expect(cookies.map(\.rawValue) == [.max - 1, .max, 1, 2, 3])
        #expect(ch.status(of: DMACookie(1)).0 == .inProgress)
        ch.issuePending()
        #expect(waitUntil { rec.count == 5 })
        #expect(ch.status(of: DMACookie(1)).0 == .complete)
    }

    @Test func burstConfigSetsChunksPerDescriptor() throws {
        let ch = try makeChannel()
        defer { try? ch.release() }
        let src = try ch.allocateCoherent(byteCount: 4096)
        fill(src, seed: 4)
        let dst = try ch.allocateCoherent(byteCount: 8192)
        let accesses = LockedValue<[DMACookie: Int]>([:])
        ch.debugSetAccessProbe { a in if a.kind == .read { accesses.withLock { $0[a.cookie, default: 0] += 1 } } }
        let rec = Recorder()
        let a = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 4096, callback: .result { rec.add($0.cookie, $0.result) }))
        let ca = ch.submit(a)
        try ch.configure(DMAConfig(burstBytes: 512))
        let b = try #require(ch.prepareMemcpy(to: dst.base + 4096, from: src.base, length: 4096, callback: .result { rec.add($0.cookie, $0.result) }))
        let cb = ch.submit(b)
        ch.issuePending()
        #expect(waitUntil { rec.count == 2 })
        #expect(accesses.withLock { $0 } == [ca: 1, cb: 8])
        #expect(equal(dst.base, src.base, 4096) && equal(dst.base + 4096, src.base, 4096))
    }
}
