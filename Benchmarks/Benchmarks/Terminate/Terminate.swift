// dmabench — Benchmarks/Terminate
//
// Terminate cost per backend with 256 descriptors of 4 KiB in flight: terminateSync, and
// synchronize after terminateAsync.

import Benchmark
import DMABackends
import DMAEngine
import Harness

let benchmarks: @Sendable () -> Void = {
    let metrics: [BenchmarkMetric] = [.wallClock] + BenchMetrics.terminate
    Benchmark.defaultConfiguration = .init(
        metrics: metrics,
        warmupIterations: 1,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 50,
        thresholds: BenchMetrics.thresholds(for: metrics)
    )
    for entry in BackendRegistry.all where entry.unavailableReason() == nil {
        let fixture = Fixture<TerminateRunner>()
        Benchmark("Terminate", configuration: .init(tags: ["backend": entry.name, "inFlight": "256"])) { benchmark in
            let runner = fixture.value!
            benchmark.startMeasurement()
            let s = try runner.measure(inFlight: 256, seedRaceIterations: 0)
            benchmark.stopMeasurement()
            benchmark.measurement(BenchMetrics.terminateSyncNs, Int(s.terminateSyncNs))
            benchmark.measurement(BenchMetrics.synchronizeNs, Int(s.synchronizeNs))
        } setup: {
            let ch = try entry.make(DMAChannelOptions(poolSize: 1024, engineCPU: 1))
            fixture.value = try TerminateRunner(channel: ch, size: 4096, maxInFlight: 256)
            fixture.channel = ch
        } teardown: {
            fixture.value = nil
            try? fixture.channel?.release()
            fixture.channel = nil
        }
    }
}
