// dmabench — HarnessTests
//
// The interference arithmetic on synthetic snapshots, and the flags and their reasons.

import Foundation
import Platform
import Testing

@testable import Harness

@Suite("Interference")
struct TrustTests {
    static let tick = UInt64(1e9 / SystemState.ticksPerSecond)

    /// Two CPUs watched for one second: `busyTicks` each, our threads ran `ownNs` in all.
    static func env(busyTicks: UInt64, stealTicks: UInt64 = 0, ownNs: UInt64, switches: UInt64 = 3) -> PointEnvironment {
        let hz = UInt64(SystemState.ticksPerSecond)
        let a = InterferenceSnapshot(
            time: 0, cpus: [0: .init(busy: 100, idle: 0, steal: 0), 1: .init(busy: 100, idle: 0, steal: 0), 2: .init(busy: 0, idle: 0, steal: 0)],
            threads: [7: .init(runNanoseconds: 1_000, involuntarySwitches: 10), 8: .init(runNanoseconds: 0, involuntarySwitches: 0)])
        let b = InterferenceSnapshot(
            time: 1_000_000_000,
            cpus: [0: .init(busy: 100 + busyTicks, idle: hz - busyTicks, steal: stealTicks), 1: .init(busy: 100 + busyTicks, idle: hz - busyTicks, steal: stealTicks),
                   2: .init(busy: hz, idle: 0, steal: 0)],
            threads: [7: .init(runNanoseconds: 1_000 + ownNs / 2, involuntarySwitches: 10 + switches), 8: .init(runNanoseconds: ownNs / 2, involuntarySwitches: 0)])
        return InterferenceSnapshot.environment(from: a, to: b, watched: [0, 1], measured: [7])
    }

    @Test("background CPU is the watched CPUs' busy time less our threads' run time, over their time; an unwatched CPU does not count")
    func arithmetic() {
        let hz = UInt64(SystemState.ticksPerSecond)
        // Each CPU busy half the second, our threads ran 0.8 s of the 1.0 s busy: 0.2 of 2 s.
        let e = Self.env(busyTicks: hz / 2, stealTicks: hz / 10, ownNs: 800_000_000)
        #expect(abs((e.backgroundCPU ?? -1) - 0.1) < 1e-9)
        #expect(abs((e.steal ?? -1) - 0.1) < 1e-9)
        #expect(e.involuntarySwitches == 3, "only the measured thread's switches")
        #expect(e.windowSeconds == 1 && e.cpus == [0, 1])
        #expect(abs((e.resolution ?? -1) - 2 / SystemState.ticksPerSecond) < 1e-9, "two ticks over one second")
        // Our own time above the busy time (tick rounding) is no interference, never negative.
        #expect(Self.env(busyTicks: 1, ownNs: 900_000_000).backgroundCPU == 0)
    }

    @Test("a thread born during the point (an io-wq worker) is ours, not background")
    func threadBornDuringThePoint() {
        let hz = UInt64(SystemState.ticksPerSecond)
        let a = InterferenceSnapshot(
            time: 0, cpus: [0: .init(busy: 0, idle: 0, steal: 0)], threads: [7: .init(runNanoseconds: 0, involuntarySwitches: 0)])
        let b = InterferenceSnapshot(
            time: 1_000_000_000, cpus: [0: .init(busy: hz / 2, idle: hz / 2, steal: 0)],
            threads: [7: .init(runNanoseconds: 100_000_000, involuntarySwitches: 0), 9: .init(runNanoseconds: 400_000_000, involuntarySwitches: 0)])
        let e = InterferenceSnapshot.environment(from: a, to: b, watched: [0], measured: [7])
        #expect(abs((e.backgroundCPU ?? -1) - 0.0) < 1e-9, "0.5 s busy, all of it ours (0.1 s + the new thread's 0.4 s)")
    }

    @Test("judge flags background, steal, variation and round-trip drift, each with a reason, and nothing else")
    func judging() {
        var quiet = PointEnvironment(cpus: [0, 1], windowSeconds: 1, backgroundCPU: 0.01, steal: 0, roundTripNs: [90, 95], roundTripDrift: 1.1, cv: 0.02)
        quiet.judge(.standard)
        #expect(!quiet.interference && quiet.reasons.isEmpty)
        var noisy = PointEnvironment(cpus: [0, 1], windowSeconds: 1, backgroundCPU: 0.41, steal: 0.06, roundTripNs: [90, 420], roundTripDrift: 4.67, cv: 0.2)
        noisy.judge(.standard, reference: 90)
        #expect(noisy.interference && noisy.reasons.count == 4)
        #expect(noisy.reasons[0] == "background CPU 41% of the window on cpu 0,1 (threshold 5%, resolution 0%)")
        #expect(noisy.reasons[1].hasPrefix("steal 6%"))
        #expect(noisy.reasons[2].contains("coefficient of variation 20%"))
        #expect(noisy.reasons[3] == "cross-CPU round trip drifted 4.7x (run's calibration 90 ns; this point 90 ns and 420 ns; threshold 2.0x)")
    }

    @Test("a window too short for /proc/stat's ticks is never flagged for background CPU or steal")
    func resolution() {
        var short = PointEnvironment(cpus: [0, 1], windowSeconds: 0.002, backgroundCPU: 1, steal: 1, resolution: 10)
        short.judge(.standard)
        #expect(!short.interference)
        var long = PointEnvironment(cpus: [0, 1], windowSeconds: 0.6, backgroundCPU: 0.07, resolution: 0.033)
        long.judge(.standard)
        #expect(!long.interference, "7% is within 5% + 3.3%")
        long.backgroundCPU = 0.09
        long.judge(.standard)
        #expect(long.interference && long.reasons == ["background CPU 9% of the window on cpu 0,1 (threshold 5%, resolution 3%)"])
    }

    @Test("the coefficient of variation is the sample standard deviation over the mean")
    func cv() {
        #expect(Statistics.coefficientOfVariation([10]) == 0)
        #expect(abs(Statistics.coefficientOfVariation([9, 10, 11]) - 0.1) < 1e-12)
    }

    @Test("the environment round-trips through JSON and CSV")
    func coding() throws {
        var e = PointEnvironment(cpus: [0, 1], windowSeconds: 1.5, backgroundCPU: 0.3, steal: 0, involuntarySwitches: 4, roundTripNs: [90], cv: 0.01)
        e.judge(.standard)
        let back = try JSONDecoder().decode(PointEnvironment.self, from: JSONEncoder().encode(e))
        #expect(back == e)
        var p = ResultPoint(
            backend: "ring", workload: "throughput", parameters: PointParameters(size: 64, batch: 32, depth: 256, channels: 1),
            placement: PlacementRecord(requested: .init(), verified: .init()), metrics: PointMetrics())
        p.environment = e
        let doc = ResultDocument(
            context: ResultContext(date: "", host: "h", cpu: "c", cores: 2, kernel: "k", commit: "x", dirty: false, governor: nil, numaNodes: [0], commandLine: [], toolVersion: "t"),
            points: [p])
        let csv = Formats.csv(doc).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let col = { (n: String) in csv[0].firstIndex(of: n)! }
        #expect(csv[1][col("interference")] == "true" && csv[1][col("backgroundCPU")] == "0.3" && csv[1][col("involuntarySwitches")] == "4")
        let table = Formats.table(doc)
        #expect(table.contains("! ring") && table.contains("1 of 1 points flagged for interference"))
    }
}
