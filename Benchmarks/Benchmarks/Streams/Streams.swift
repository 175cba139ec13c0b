// dmabench — Benchmarks/Streams
//
// Scatter-gather throughput (4 KiB descriptors as 4 source segments into 1, and 1 into 4,
// batch 32, depth 256, 10 000 descriptors per iteration) with an allocation gate per
// backend (prep copies the segment lists into a preallocated pool: no malloc per
// descriptor), and cyclic period latency (4 periods of 4 KiB at 4 MB/s, one period per
// millisecond, a 50 ms window per iteration; the callbacks on an executor thread).

import Benchmark
import DMABackends
import DMAEngine
import Harness

let sgDescriptors = 10_000

let periodLatencyP50 = BenchmarkMetric.custom("period latency p50 ns", polarity: .prefersSmaller, useScalingFactor: false)
let periodLatencyP99 = BenchmarkMetric.custom("period latency p99 ns", polarity: .prefersSmaller, useScalingFactor: false)
let overruns = BenchmarkMetric.custom("overruns", polarity: .prefersSmaller, useScalingFactor: false)

enum SGClients {
    static func make(_ entry: BackendEntry, shape: SGShape) throws -> ClosedLoopClient {
        let ch = try entry.make(DMAChannelOptions(poolSize: 1024, engineCPU: 1, executorCPU: nil))
        var spec = WorkloadSpec(
            size: 4096, batch: 32, depth: 256, durationNanoseconds: 0, warmupDescriptors: 0, verify: true,
            recordLatency: false, maxDescriptors: sgDescriptors)
        spec.sge = shape
        return try ClosedLoopClient(channel: ch, spec: spec)
    }
}

let benchmarks: @Sendable () -> Void = {
    let metrics: [BenchmarkMetric] = [.wallClock] + BenchMetrics.submission
    Benchmark.defaultConfiguration = .init(
        metrics: metrics, warmupIterations: 2, scalingFactor: .one, maxDuration: .seconds(2), maxIterations: 100,
        thresholds: BenchMetrics.thresholds(for: metrics))
    let probe = DMAChannelOptions(poolSize: 64, coherentPoolBytes: 1 << 20)
    for entry in BackendRegistry.all where entry.unavailableReason() == nil {
        guard let ch = try? entry.make(probe) else { continue }
        let caps = ch.capabilities
        try? ch.release()
        if caps.memcpySG {
            // The deterministic gate, as Submission's Allocations-<backend> (one name per backend, no tags).
            let allocFixture = Fixture<ClosedLoopClient>()
            Benchmark(
                "Allocations-sg-\(entry.name)",
                configuration: .init(
                    metrics: [.mallocCountTotal, BenchMetrics.errors], maxDuration: .seconds(1), maxIterations: 20,
                    thresholds: BenchMetrics.thresholds(for: [.mallocCountTotal, BenchMetrics.errors]))
            ) { benchmark in
                let client = allocFixture.value!
                benchmark.startMeasurement()
                let sample = try client.run()
                benchmark.stopMeasurement()
                benchmark.measurement(BenchMetrics.errors, sample.errors + sample.verifyFailures)
            } setup: {
                let c = try SGClients.make(entry, shape: SGShape(sources: 4, destinations: 1))
                allocFixture.value = c
                allocFixture.channel = c.channel
            } teardown: {
                allocFixture.value = nil
                try? allocFixture.channel?.release()
                allocFixture.channel = nil
            }
            for shape in [SGShape(sources: 4, destinations: 1), SGShape(sources: 1, destinations: 4)] {
                let fixture = Fixture<ClosedLoopClient>()
                Benchmark("ScatterGather", configuration: .init(tags: ["backend": entry.name, "sge": "\(shape.sources)x\(shape.destinations)"])) { benchmark in
                    let client = fixture.value!
                    benchmark.startMeasurement()
                    let sample = try client.run()
                    benchmark.stopMeasurement()
                    BenchMetrics.record(sample, into: benchmark)
                } setup: {
                    let c = try SGClients.make(entry, shape: shape)
                    fixture.value = c
                    fixture.channel = c.channel
                } teardown: {
                    fixture.value = nil
                    try? fixture.channel?.release()
                    fixture.channel = nil
                }
            }
        }
        if caps.cyclic {
            let fixture = Fixture<CyclicClient>()
            Benchmark(
                "CyclicPeriodLatency",
                configuration: .init(
                    metrics: [.wallClock, periodLatencyP50, periodLatencyP99, overruns, BenchMetrics.errors],
                    tags: ["backend": entry.name, "pace": "4MB/s"], maxDuration: .seconds(3), maxIterations: 20,
                    thresholds: BenchMetrics.thresholds(for: [BenchMetrics.errors]))
            ) { benchmark in
                let client = fixture.value!
                client.resetHistogram()
                benchmark.startMeasurement()
                let s = try client.run()
                benchmark.stopMeasurement()
                let h = client.histogram
                benchmark.measurement(periodLatencyP50, Int(h.valueAtPercentile(50)))
                benchmark.measurement(periodLatencyP99, Int(h.valueAtPercentile(99)))
                benchmark.measurement(overruns, s.overruns)
                benchmark.measurement(BenchMetrics.errors, s.mismatchedBytes)
            } setup: {
                var o = DMAChannelOptions(poolSize: 64, engineCPU: 1, executorCPU: nil, coherentPoolBytes: 8 << 20)
                o.requestedCallbackContext = .executorThread
                let ch = try entry.make(o)
                fixture.channel = ch
                fixture.value = try CyclicClient(
                    channel: ch, spec: CyclicSpec(periodBytes: 4096, periods: 4, pace: 4_096_000, durationNanoseconds: 50_000_000))
            } teardown: {
                fixture.value = nil
                try? fixture.channel?.release()
                fixture.channel = nil
            }
        }
    }
}
