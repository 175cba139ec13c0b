// dmabench — Harness
//
// The terminate workload (docs/architecture.md, "Workloads"): fill the channel with N descriptors, issue, wait
// until the engine is busy, then time `terminateSync`, `terminateAsync` alone, and
// `synchronize` after it. Also counts completed against aborted descriptors, and times
// the seed-race loop (terminateAsync from inside a callback, then synchronize).

import DMAEngine
import Platform
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

public struct TerminateSample: Sendable {
    public var terminateSyncNs: Double
    public var terminateAsyncNs: Double
    public var synchronizeNs: Double
    public var seedRaceNs: Double
    public var completed: Int
    public var aborted: Int
}

/// Counts callbacks, through `callback_param` (a pointer to this counter's line).
let countingCallback: DMACallback.WithResult = { completion in
    let counter = UnsafeMutablePointer<Atomic<Int>>(bitPattern: UInt(completion.parameter))!
    // Ordering: release; pairs with the acquire loads in TerminateRunner.
    counter.pointee.add(1, ordering: .releasing)
}

/// Seed race: the callback resubmits itself until its k-th call, then terminates from inside
/// the callback (NB context) and signals the main thread.
final class SeedRaceState: @unchecked Sendable {
    let channel: any DMAChannel
    let dst: UnsafeMutableRawPointer
    let src: UnsafeRawPointer
    let size: Int
    let calls = Atomic<Int>(0)
    var stopAt = 0
    let done = ParkingEvent()
    let terminateFailed = Atomic<Bool>(false)

    init(channel: any DMAChannel, dst: UnsafeMutableRawPointer, src: UnsafeRawPointer, size: Int) {
        self.channel = channel
        self.dst = dst
        self.src = src
        self.size = size
    }

    func chain() {
        guard let d = channel.prepareMemcpy(to: dst, from: src, length: size, flags: .default) else {
            done.signal()
            return
        }
        try? channel.setCallback(.result { [self] _ in self.onCallback() }, for: d)
        _ = channel.submitAndIssue(d)
    }

    func onCallback() {
        let n = calls.add(1, ordering: .relaxed).newValue
        if n >= stopAt {
            do { try channel.terminateAsync() } catch { terminateFailed.store(true, ordering: .relaxed) }
            done.signal()
        } else {
            chain()
        }
    }
}

public final class TerminateRunner {
    public let channel: any DMAChannel
    public let size: Int
    let slots: Int
    let src: DMABuffer
    let dst: DMABuffer
    let counterLine: UnsafeMutableRawPointer
    let counter: UnsafeMutablePointer<Atomic<Int>>

    public private(set) var verifiedMemory = VerifiedMemory()

    public init(channel: any DMAChannel, size: Int, maxInFlight: Int, memory: MemoryPlacer? = nil) throws {
        self.channel = channel
        self.size = size
        slots = max(1, min(maxInFlight, 64))
        let stride = (size + 63) / 64 * 64
        do {
            src = try channel.allocateCoherent(byteCount: slots * stride)
            dst = try channel.allocateCoherent(byteCount: slots * stride)
        } catch {
            throw WorkloadError("cannot allocate DMA memory for the terminate workload: \(error)")
        }
        if let memory {
            try memory.bind(src, role: .src)
            try memory.bind(dst, role: .dst)
        }
        memset(src.base, 0x5A, src.count)
        memset(dst.base, 0, dst.count)
        if let memory {
            verifiedMemory = VerifiedMemory(src: try memory.verify(src, role: .src), dst: try memory.verify(dst, role: .dst))
        }
        counterLine = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
        counter = counterLine.bindMemory(to: Atomic<Int>.self, capacity: 1)
        counter.initialize(to: Atomic(0))
    }

    deinit {
        counter.deinitialize(count: 1)
        counterLine.deallocate()
        channel.freeCoherent(src)
        channel.freeCoherent(dst)
    }

    /// Fills the channel with `n` descriptors and issues them; waits until the engine has
    /// started (the first cookie's residue drops or a completion arrives).
    private func fill(_ n: Int) throws -> [DMACookie] {
        counter.pointee.store(0, ordering: .relaxed)
        guard n > 0 else { return [] }
        let stride = (size + 63) / 64 * 64
        var cookies: [DMACookie] = []
        cookies.reserveCapacity(n)
        for i in 0..<n {
            let s = i % slots
            guard let d = channel.prepareMemcpy(to: dst.base + s * stride, from: src.base + s * stride, length: size, flags: .default) else {
                throw WorkloadError("descriptor pool exhausted at \(i) of \(n) in flight; raise the pool size")
            }
            try? channel.setCallback(DMACallback(withResult: countingCallback, parameter: UInt64(UInt(bitPattern: counter))), for: d)
            let c = channel.submit(d)
            guard c.isValid else { throw WorkloadError("submit failed (\(c)) while filling \(n) descriptors") }
            cookies.append(c)
        }
        channel.issuePending()
        let first = cookies[0]
        let t0 = MonotonicClock.now()
        while MonotonicClock.now() - t0 < 100_000_000 {
            let (st, state) = channel.status(of: first)
            if st == .complete || st == .outOfOrder || state.residue < size { break }
            // Ordering: acquire; pairs with the release add in the counting callback.
            if counter.pointee.load(ordering: .acquiring) > 0 { break }
            cpuRelax()
        }
        return cookies
    }

    public func measure(inFlight n: Int, seedRaceIterations: Int) throws -> TerminateSample {
        // 1. terminateSync with n in flight.
        _ = try fill(n)
        var t0 = MonotonicClock.now()
        try channel.terminateSync()
        let tSync = Double(MonotonicClock.now() - t0)
        // Ordering: acquire; after terminateSync no callback runs, so this count is final.
        let completed = counter.pointee.load(ordering: .acquiring)

        // 2. terminateAsync alone, then 3. synchronize after it.
        _ = try fill(n)
        t0 = MonotonicClock.now()
        try channel.terminateAsync()
        let t1 = MonotonicClock.now()
        try channel.synchronize()
        let t2 = MonotonicClock.now()

        // 4. Seed race loop: terminateAsync from inside a callback, then synchronize.
        var seed: [Double] = []
        for i in 0..<seedRaceIterations {
            let race = SeedRaceState(channel: channel, dst: dst.base, src: src.base, size: min(size, 4096))
            race.stopAt = 1 + (i % 4)
            let s0 = MonotonicClock.now()
            race.chain()
            if !race.done.wait(spinNanoseconds: 20_000, timeoutNanoseconds: 5_000_000_000) {
                throw WorkloadError("seed race: the callback chain did not terminate within 5 s")
            }
            try channel.synchronize()
            seed.append(Double(MonotonicClock.now() - s0))
            if race.terminateFailed.load(ordering: .relaxed) {
                throw WorkloadError("seed race: terminateAsync from a callback failed")
            }
        }
        return TerminateSample(
            terminateSyncNs: tSync, terminateAsyncNs: Double(t1 - t0), synchronizeNs: Double(t2 - t1),
            seedRaceNs: seed.isEmpty ? 0 : Statistics.median(seed), completed: completed, aborted: max(0, n - completed))
    }
}
