// dmabench — Benchmarks/Submission
//
// Submission throughput per backend at 64 B and 4 KiB, batch 32, depth 256. Each iteration
// pushes 10 000 descriptors through one channel (made once, in setup).
//
// Metrics: wall clock and throughput (package-benchmark's), descriptors/s and submit ns per
// descriptor (custom, from the harness), and mallocCountTotal, which must stay at 0 per
// iteration: steady state allocates nothing per descriptor. Memory-sampling metrics are
// deliberately absent (they add mallocs of their own; docs/architecture.md, "package-benchmark traps"), and so are ARC
// metrics (they crash on Swift 6.3/Linux without the runtime interposer).

import Benchmark
import DMABackends
import DMAEngine
import Harness

let descriptorsPerIteration = 10_000

let benchmarks: @Sendable () -> Void = {
    let metrics: [BenchmarkMetric] = [.wallClock, .throughput] + BenchMetrics.submission
    Benchmark.defaultConfiguration = .init(
        metrics: metrics,
        warmupIterations: 2,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 200,
        thresholds: BenchMetrics.thresholds(for: metrics)
    )
    for entry in BackendRegistry.all where entry.unavailableReason() == nil {
        // Allocations: the deterministic gate. Only mallocCountTotal and errors, so that no
        // sampler thread adds mallocs of its own, and CI's thresholds check compares nothing
        // that depends on timing.
        let allocFixture = Fixture<ClosedLoopClient>()
        Benchmark(
            // One name per backend and no tags: package-benchmark 1.38.1 writes threshold files
            // for tagged names with '_' for ' ' but reads them back with spaces.
            "Allocations-\(entry.name)",
            configuration: .init(
                metrics: [.mallocCountTotal, BenchMetrics.errors],
                maxDuration: .seconds(1), maxIterations: 20,
                thresholds: BenchMetrics.thresholds(for: [.mallocCountTotal, BenchMetrics.errors]))
        ) { benchmark in
            let client = allocFixture.value!
            benchmark.startMeasurement()
            let sample = try client.run()
            benchmark.stopMeasurement()
            benchmark.measurement(BenchMetrics.errors, sample.errors + sample.verifyFailures)
        } setup: {
            let c = try ChannelClients.make(entry, size: 64, batch: 32, depth: 256, descriptors: descriptorsPerIteration)
            allocFixture.value = c
            allocFixture.channel = c.channel
        } teardown: {
            allocFixture.value = nil
            try? allocFixture.channel?.release()
            allocFixture.channel = nil
        }

        for size in [64, 4096] {
            let fixture = Fixture<ClosedLoopClient>()
            Benchmark("Submission", configuration: .init(tags: ["backend": entry.name, "size": "\(size)"])) { benchmark in
                let client = fixture.value!
                benchmark.startMeasurement()
                let sample = try client.run()
                benchmark.stopMeasurement()
                BenchMetrics.record(sample, into: benchmark)
            } setup: {
                let c = try ChannelClients.make(entry, size: size, batch: 32, depth: 256, descriptors: descriptorsPerIteration)
                fixture.value = c
                fixture.channel = c.channel
            } teardown: {
                fixture.value = nil
                try? fixture.channel?.release()
                fixture.channel = nil
            }
        }
    }
}
