// dmabench — HarnessTests
//
// Scatter-gather descriptors (`--sge`) and paced cyclic streams (`--workload cyclic`)
// against real backends from the registry. Counts and bounds only: how fast is measured by
// `dmabench run` and the benchmark suites, never here.

import DMABackends
import DMAEngine
import DMAEngineEmbedded
import Foundation
import Platform
import TestHelpers
import Testing

@testable import Harness

@Suite("Scatter-gather and cyclic workloads")
struct StreamWorkloadTests {
    static func channel(_ name: String, options: DMAChannelOptions = DMAChannelOptions(poolSize: 320, coherentPoolBytes: 64 << 20))
        throws -> any DMAChannel
    {
        let e = try #require(BackendRegistry.all.first { $0.name == name })
        return try e.make(options)
    }

    static func sgSpec(_ shape: SGShape, size: Int = 4096) -> WorkloadSpec {
        var s = WorkloadSpec(
            size: size, batch: 8, depth: 64, durationNanoseconds: 0, warmupDescriptors: 200, verify: true,
            recordLatency: true, maxDescriptors: 2_000)
        s.verifySampleEvery = 16
        s.sge = shape
        return s
    }

    // MARK: Scatter-gather

    @Test("segments are laid out with 64-byte gaps and cover the size exactly")
    func segmentLayout() {
        let segs = (0..<3).map { SGShape.segment($0, of: 3, length: 1000) }
        #expect(segs.map(\.length) == [334, 333, 333])
        #expect(segs.map(\.offset) == [0, 334 + 64, 334 + 333 + 128])
        #expect(SGShape.span(3, length: 1000) == 1128)
        #expect(SGShape(parsing: "4:1") == SGShape(sources: 4, destinations: 1))
        #expect(SGShape(parsing: "4") == nil && SGShape(parsing: "0:1") == nil && SGShape(parsing: "4:x") == nil)
    }

    @Test("SG copies land byte for byte and leave the gaps alone", arguments: ["cpu", "locked", "ring"], ["4:1", "1:4", "8:8", "1:1"])
    func sgVerifies(_ backend: String, _ shape: String) throws {
        try Self.sgRun(backend, shape)
    }

    @Test(
        "SG copies through io_uring: one READ per piece", .enabled(if: URingProbe.unavailableReason == nil, "io_uring is unavailable here"),
        arguments: ["4:1", "1:4", "8:8"])
    func sgVerifiesURing(_ shape: String) throws {
        try Self.sgRun("uring", shape)
    }

    static func sgRun(_ backend: String, _ shape: String) throws {
        let ch = try Self.channel(backend)
        defer { try? ch.release() }
        let c = try ClosedLoopClient(channel: ch, spec: Self.sgSpec(try #require(SGShape(parsing: shape))))
        let s = try c.run()
        let v = try #require(s.verification)
        #expect(s.descriptors == 2_000 && s.errors == 0)
        #expect(v.checked >= 2_200 / 16, "one descriptor in 16 checked whole, plus every slot at the end")
        #expect(v.mismatches == 0, "\(v.first)")
    }

    @Test("a backend that writes one byte past the last segment is caught by the guard bytes", arguments: ["cpu", "ring"])
    func sgOverrunCaught(_ backend: String) throws {
        let ch = OverrunChannel(try Self.channel(backend), overrun: 1)
        defer { try? ch.release() }
        let c = try ClosedLoopClient(channel: ch, spec: Self.sgSpec(SGShape(sources: 4, destinations: 1)))
        let s = try c.run()
        let v = try #require(s.verification)
        #expect(v.guardOverwritten > 0, "the byte after the last destination segment is a guard byte")
        #expect(v.srcMismatch == 0 && v.dstMismatch == 0)
        #expect(s.verifyFailures > 0)
    }

    @Test("a backend without scatter-gather, or too few segments, is refused before anything runs")
    func sgCapabilityChecked() throws {
        let plain = WithoutScatterGather()
        #expect(!plain.capabilities.memcpySG)
        #expect(throws: WorkloadError.self) { _ = try ClosedLoopClient(channel: plain, spec: Self.sgSpec(SGShape(sources: 2, destinations: 1))) }
        let ring = try Self.channel("ring")
        defer { try? ring.release() }
        #expect(ring.capabilities.maxSegments == 16)
        #expect(throws: WorkloadError.self) { _ = try ClosedLoopClient(channel: ring, spec: Self.sgSpec(SGShape(sources: 17, destinations: 1))) }
        var random = Self.sgSpec(SGShape(sources: 2, destinations: 2))
        random.offsets = .random
        #expect(throws: WorkloadError.self) { _ = try ClosedLoopClient(channel: ring, spec: random) }
    }

    @Test("the runner skips SG points of a backend without memcpySG, and cyclic points of one without cyclic, with the reason")
    func preflightSkips() throws {
        var plan = SweepPlan(
            backends: ["cpu", "embedded"], workloads: [.throughput, .cyclic], sizes: [4096], batches: [8], depths: [64],
            repetitions: 1, durationNanoseconds: 1_000_000)
        plan.sges = [SGShape(sources: 2, destinations: 1)]
        let factories = [
            ChannelFactory(name: "cpu") { o in try BackendRegistry.entry(named: "cpu")!.make(o) },
            ChannelFactory(name: "embedded") { _ in WithoutScatterGather() },
        ]
        let runner = Runner(plan: plan, factories: factories)
        let skipped = try runner.preflight()
        #expect(skipped.contains { $0.backend == "embedded" && $0.reason.contains("memcpySG is false") })
        #expect(skipped.contains { $0.backend == "embedded" && $0.reason.contains("periodClock is nil") })
        #expect(skipped.contains { $0.backend == "cpu" && $0.reason.contains("cyclic is false") })
        #expect(!skipped.contains { $0.backend == "cpu" && $0.reason.contains("memcpySG") })
        plan.sges = [SGShape(sources: 1, destinations: 40)]
        #expect(throws: PreflightError.self) { _ = try Runner(plan: plan, factories: factories).preflight() }
    }

    // MARK: Cyclic

    static func cyclicOptions() -> DMAChannelOptions {
        var o = DMAChannelOptions(poolSize: 64, coherentPoolBytes: 8 << 20)
        o.requestedCallbackContext = .executorThread
        return o
    }

    @Test("a paced stream keeps its pace, reports every period once, and stops, pauses and resumes", arguments: ["locked", "ring"])
    func pacedStream(_ backend: String) throws {
        let ch = try Self.channel(backend, options: Self.cyclicOptions())
        defer { try? ch.release() }
        // 4 KiB periods at 4 MB/s: one period per ~1 ms, a 60 ms window.
        let spec = CyclicSpec(periodBytes: 4096, periods: 4, pace: 4_096_000, durationNanoseconds: 60_000_000)
        let client = try CyclicClient(channel: ch, spec: spec)
        let s = try client.run()
        // Memory speed would be thousands of times faster; the pace bounds the stream.
        #expect(s.achievedPace <= 1.2 * Double(spec.pace), "achieved \(s.achievedPace) B/s for a pace of \(spec.pace)")
        #expect(s.achievedPace >= 0.3 * Double(spec.pace), "achieved \(s.achievedPace) B/s for a pace of \(spec.pace)")
        #expect(s.periods >= 10, "\(s.periods) periods in \(s.elapsedNanoseconds) ns")
        #expect(s.callbacks >= 1 && s.callbacks <= s.periods + 1, "K1: at most one callback per period")
        #expect(s.mismatchedBytes == 0)
        #expect(client.histogram.totalCount > 0, "period latencies recorded")
        #expect(s.stopFromCallbackNanoseconds > 0 && s.stopFromClientNanoseconds > 0 && s.resumeToNextByteNanoseconds > 0)
        // Both stops ended the stream: no stream runs, the clock stands still.
        let periods = ch.periodClock!.completedPeriods
        MonotonicClock.sleep(nanoseconds: 5_000_000)
        #expect(ch.periodClock!.completedPeriods == periods, "the engine kept streaming after the stop")
    }

    @Test("an over-fast pace with a slow callback counts overruns and finishes", arguments: ["locked", "ring"])
    func overrunsCounted(_ backend: String) throws {
        let ch = try Self.channel(backend, options: Self.cyclicOptions())
        defer { try? ch.release() }
        // 4 KiB periods every ~40 µs; each callback spins 400 µs: about 10 periods per callback.
        var spec = CyclicSpec(periodBytes: 4096, periods: 4, pace: 100_000_000, durationNanoseconds: 40_000_000)
        spec.periodWorkNanoseconds = 400_000
        let client = try CyclicClient(channel: ch, spec: spec)
        let s = try client.run()
        #expect(s.overruns > 0, "\(s.periods) periods, \(s.callbacks) callbacks, no overrun")
        #expect(s.callbacks < s.periods, "callbacks coalesce (K1)")
    }

    @Test("the period clock counts per stream and keeps the last stamps")
    func periodClock() {
        let clock = DMAPeriodClock()
        clock.restart(cookie: DMACookie(7))
        #expect(clock.stream == DMACookie(7) && clock.completedPeriods == 0)
        let t0 = MonotonicClock.now()
        for k in 0..<300 { clock.periodEnded(at: t0 + UInt64(k) * 1000) }
        #expect(clock.completedPeriods == 300)
        let now = t0 + 1_000_000
        #expect(clock.end(ofPeriod: 299, now: now) == t0 + 299_000)
        #expect(clock.end(ofPeriod: 300 - UInt64(DMAPeriodClock.capacity), now: now) == t0 + UInt64(300 - DMAPeriodClock.capacity) * 1000)
        #expect(clock.end(ofPeriod: 299 - UInt64(DMAPeriodClock.capacity), now: now) == nil, "overwritten")
        #expect(clock.end(ofPeriod: 300, now: now) == nil, "not ended")
        clock.restart(cookie: DMACookie(8))
        #expect(clock.stream == DMACookie(8) && clock.completedPeriods == 0 && clock.end(ofPeriod: 0, now: now) == nil)
    }

    @Test("the sweep's cyclic points: the audio-like stream and memory speed, with their labels")
    func cyclicPoints() {
        var plan = SweepPlan(
            backends: ["ring"], workloads: [.cyclic], sizes: [64], batches: [1], depths: [1], repetitions: 1,
            durationNanoseconds: 1_000_000)
        let pts = plan.points()
        #expect(pts.map(\.parameters.pace) == [384_000, 0])
        #expect(pts.allSatisfy { $0.parameters.size == 8192 && $0.parameters.periods == 4 })
        #expect(pts[0].description.contains("pace=384000B/s") && pts[1].description.contains("pace=memory"))
        plan.periods = 8
        plan.paces = [48_000]
        #expect(plan.points().map(\.parameters.periods) == [8])
    }
}

/// The embedded double without scatter-gather (its capabilities say so, and prep refuses,
/// as the protocol's default does): what a backend that lacks it looks like.
final class WithoutScatterGather: ForwardingChannel, @unchecked Sendable {
    init() { super.init(EmbeddedChannel()) }
    override var backendName: String { "embedded-without-sg" }
    override var capabilities: DMACapabilities {
        var c = inner.capabilities
        c.memcpySG = false
        c.maxSegments = 0
        return c
    }
    override func prepareMemcpySG(
        destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, flags: DMAPrepFlags
    ) -> DMADescriptor? { nil }
}

/// Why io_uring cannot run here, or nil.
enum URingProbe {
    static let unavailableReason: String? = BackendRegistry.entry(named: "uring").map { $0.unavailableReason() } ?? "no uring backend"
}
