// dmabench — Benchmarks (shared by the three targets through a symlink)
//
// Custom metrics carry the harness figures; thresholds gate on the deterministic ones.

import Benchmark
import DMABackends
import DMAEngine
import Harness

enum BenchMetrics {
    static let descriptorsPerSecond = BenchmarkMetric.custom("descriptors/s", polarity: .prefersLarger, useScalingFactor: false)
    static let submitNs = BenchmarkMetric.custom("submit ns/desc", polarity: .prefersSmaller, useScalingFactor: false)
    static let latencyP50 = BenchmarkMetric.custom("latency p50 ns", polarity: .prefersSmaller, useScalingFactor: false)
    static let latencyP99 = BenchmarkMetric.custom("latency p99 ns", polarity: .prefersSmaller, useScalingFactor: false)
    static let errors = BenchmarkMetric.custom("errors", polarity: .prefersSmaller, useScalingFactor: false)
    static let terminateSyncNs = BenchmarkMetric.custom("terminateSync ns", polarity: .prefersSmaller, useScalingFactor: false)
    static let synchronizeNs = BenchmarkMetric.custom("synchronize ns", polarity: .prefersSmaller, useScalingFactor: false)

    static let submission: [BenchmarkMetric] = [descriptorsPerSecond, submitNs, errors]
    static let latency: [BenchmarkMetric] = [latencyP50, latencyP99, errors]
    static let terminate: [BenchmarkMetric] = [terminateSyncNs, synchronizeNs]

    /// Deterministic metrics gate; time metrics are information only on a shared 2-core
    /// machine (wide tolerances). Every entry has a .p90 tolerance, because a static
    /// thresholds check compares p90 only.
    static var thresholds: [BenchmarkMetric: BenchmarkThresholds] { [
        // No allocation per descriptor: at most a handful of mallocs per iteration of 10 000
        // descriptors (absolute, p90), whatever the backend does at start-up.
        .mallocCountTotal: .init(absolute: [.p50: 0, .p90: 4]),
        errors: .init(absolute: [.p50: 0, .p90: 0]),
        .wallClock: .init(relative: [.p50: 100, .p90: 200]),
        .throughput: .init(relative: [.p50: 100, .p90: 200]),
        descriptorsPerSecond: .init(relative: [.p50: 60, .p90: 80]),
        submitNs: .init(relative: [.p50: 150, .p90: 200]),
        latencyP50: .init(relative: [.p50: 150, .p90: 200]),
        latencyP99: .init(relative: [.p50: 300, .p90: 400]),
        terminateSyncNs: .init(relative: [.p50: 300, .p90: 400]),
        synchronizeNs: .init(relative: [.p50: 300, .p90: 400]),
    ] }

    /// The tolerances of `metrics` only (package-benchmark warns about the others).
    static func thresholds(for metrics: [BenchmarkMetric]) -> [BenchmarkMetric: BenchmarkThresholds] {
        thresholds.filter { metrics.contains($0.key) }
    }

    static func record(_ s: WorkloadSample, into benchmark: Benchmark) {
        benchmark.measurement(descriptorsPerSecond, Int(s.descriptorsPerSecond))
        benchmark.measurement(submitNs, s.descriptors == 0 ? 0 : Int(s.submitNanoseconds) / s.descriptors)
        benchmark.measurement(errors, s.errors + s.verifyFailures)
    }
}

/// What a benchmark's setup makes and its teardown releases (package-benchmark's hooks take
/// no arguments, so the closures share this box).
final class Fixture<T>: @unchecked Sendable {
    var value: T?
    var channel: (any DMAChannel)?
}

enum ChannelClients {
    static func make(_ entry: BackendEntry, size: Int, batch: Int, depth: Int, descriptors: Int, latency: Bool = false) throws -> ClosedLoopClient {
        let ch = try entry.make(DMAChannelOptions(poolSize: max(1024, 2 * depth), engineCPU: 1, executorCPU: nil))
        let spec = WorkloadSpec(
            size: size, batch: batch, depth: depth, durationNanoseconds: 0, warmupDescriptors: 0, verify: true,
            recordLatency: latency, maxDescriptors: descriptors)
        return try ClosedLoopClient(channel: ch, spec: spec)
    }
}
