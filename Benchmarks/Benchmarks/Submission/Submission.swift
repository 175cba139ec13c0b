// dmabench — Benchmarks/Submission
//
// Submission throughput per backend at 64 B and 4 KiB, batch 32, depth 256. Each iteration
// pushes 10 000 descriptors through one channel (made once, in setup).
//
// Metrics: wall clock and throughput (package-benchmark's), descriptors/s and submit ns per
// descriptor (custom, from the harness), and mallocCountTotal, which must stay at 0 per
// iteration: steady state allocates nothing per descriptor. Memory-sampling metrics are
// deliberately absent (they add mallocs of their own; TOOLCHAIN.md §4), and so are ARC
// metrics (they crash on Swift 6.3/Linux without the runtime interposer).

import Benchmark
import DMABackends
import DMAEngine
import Harness

let descriptorsPerIteration = 10_000

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal] + BenchMetrics.submission,
        warmupIterations: 2,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 200,
        thresholds: BenchMetrics.thresholds
    )
    for entry in BackendRegistry.all where entry.unavailableReason() == nil {
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
