// dmabench — Benchmarks/Latency
//
// Completion latency per backend: 64 B, batch 1, depth 1 (submit → start of callback),
// 2 000 descriptors per iteration, p50 and p99 as custom metrics.

import Benchmark
import DMABackends
import DMAEngine
import Harness

let benchmarks: @Sendable () -> Void = {
    let metrics: [BenchmarkMetric] = [.wallClock, .mallocCountTotal] + BenchMetrics.latency
    Benchmark.defaultConfiguration = .init(
        metrics: metrics,
        warmupIterations: 2,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 100,
        thresholds: BenchMetrics.thresholds(for: metrics)
    )
    for entry in BackendRegistry.all where entry.unavailableReason() == nil {
        let fixture = Fixture<ClosedLoopClient>()
        Benchmark("Latency", configuration: .init(tags: ["backend": entry.name, "size": "64"])) { benchmark in
            let client = fixture.value!
            client.resetHistogram()
            benchmark.startMeasurement()
            let sample = try client.run()
            benchmark.stopMeasurement()
            let h = client.histogram.pointee
            benchmark.measurement(BenchMetrics.latencyP50, Int(h.valueAtPercentile(50)))
            benchmark.measurement(BenchMetrics.latencyP99, Int(h.valueAtPercentile(99)))
            benchmark.measurement(BenchMetrics.errors, sample.errors + sample.verifyFailures)
        } setup: {
            let c = try ChannelClients.make(entry, size: 64, batch: 1, depth: 1, descriptors: 2_000, latency: true)
            fixture.value = c
            fixture.channel = c.channel
        } teardown: {
            fixture.value = nil
            try? fixture.channel?.release()
            fixture.channel = nil
        }
    }
}
