// swift-tools-version: 6.1
//
// dmabench's package-benchmark suites: a nested package, so that the main package does not
// depend on package-benchmark. One target per concern: submission, latency, terminate, streams (scatter-gather, cyclic).
//
//   cd Benchmarks && swift package benchmark                         # run all
//   swift package benchmark thresholds check                          # CI gate (p90 of each metric)
//
// package-benchmark 1.38.1 needs tools 6.1 and `traits: ["MallocInterposer"]` (the default
// traits pull in a runtime interposer that the local mirror does not have).
import PackageDescription

let package = Package(
    name: "Benchmarks",
    dependencies: [
        .package(name: "dmabench", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: ["Submission", "Latency", "Terminate", "Streams"].map { name in
        .executableTarget(
            name: name,
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "DMAEngine", package: "dmabench"),
                .product(name: "DMABackends", package: "dmabench"),
                .product(name: "Harness", package: "dmabench"),
            ],
            path: "Benchmarks/\(name)",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    },
    swiftLanguageModes: [.v6]
)
