// swift-tools-version: 6.1
//
// dmabench: a Swift benchmarking suite for DMA-engine implementations.
//
// Layout (see docs/architecture.md, "Modules and their dependencies"):
//   DMAEngine            the channel protocol (no OS calls)
//   DMAEngineEmbedded    a deterministic, hand-driven double
//   DMAEngineLocked      virt-dma style backend (one lock, five lists)
//   DMAEngineRing        lock-free ring backend
//   DMAEngineCPU         the plain CPU on the issuing thread (the baseline)
//   DMAEngineURing       io_uring backend
//   DMAEngineTestSupport the conformance suite (CONTRACT.md part B) as reusable code
//   DMAEnginePlugin      engines in C shared objects, through the plugin ABI (CDMAPlugin)
//   CRingEngine          the reference C engine (a plain-C ring), built as a plugin
//   Platform             Linux facilities, wrapped once
//   C*                   thin C shims and system libraries
//   Harness              workloads, runner, statistics, result model
//   DMABackends          the registry of backends, keyed by name
//   DMABenchCLI          the command line as a library (DMABenchMain.main(extraBackends:))
//   dmabench             the executable: DMABenchMain.main()
import PackageDescription

let package = Package(
    name: "dmabench",
    products: [
        .library(name: "DMAEngine", targets: ["DMAEngine"]),
        .library(name: "DMAEngineEmbedded", targets: ["DMAEngineEmbedded"]),
        .library(name: "DMAEngineLocked", targets: ["DMAEngineLocked"]),
        .library(name: "DMAEngineRing", targets: ["DMAEngineRing"]),
        .library(name: "DMAEngineCPU", targets: ["DMAEngineCPU"]),
        .library(name: "DMAEngineURing", targets: ["DMAEngineURing"]),
        .library(name: "DMAEngineTestSupport", targets: ["DMAEngineTestSupport"]),
        .library(name: "Platform", targets: ["Platform"]),
        .library(name: "Harness", targets: ["Harness"]),
        .library(name: "DMABackends", targets: ["DMABackends"]),
        .library(name: "DMABenchCLI", targets: ["DMABenchCLI"]),
        .library(name: "DMAEnginePlugin", targets: ["DMAEnginePlugin"]),
        // The reference C engine as a plugin (`dmabench run --backend plugin:PATH`), and a
        // deliberately broken one that the suite must catch through the same path.
        .library(name: "DMABenchCRing", type: .dynamic, targets: ["CRingEngine"]),
        .library(name: "DMABenchCRingBroken", type: .dynamic, targets: ["CRingEngineBroken"]),
        .executable(name: "dmabench", targets: ["dmabench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // MARK: C shims and system libraries
        .target(name: "CDMAContext"),
        .target(name: "CLinuxShims"),
        .systemLibrary(name: "CPerf", providers: [.apt(["libpfm4-dev"])]),
        .systemLibrary(name: "CNUMA", pkgConfig: "numa", providers: [.apt(["libnuma-dev"])]),
        // An opaque C wrapper: its public header does not include liburing.h, so liburing's
        // feature macros (_GNU_SOURCE/_XOPEN_SOURCE) never meet glibc's fd_set in another
        // module (docs/architecture.md, "liburing behind an opaque C wrapper").
        .target(name: "CURing", linkerSettings: [.linkedLibrary("uring")]),
        // The plugin ABI (include/dmabench_engine.h), shared by the adapter and the C engines.
        .target(name: "CDMAPlugin"),
        .target(name: "CRingEngine", dependencies: ["CDMAPlugin"], linkerSettings: [.linkedLibrary("pthread")]),
        .target(name: "CRingEngineBroken", dependencies: ["CDMAPlugin"], linkerSettings: [.linkedLibrary("pthread")]),

        // MARK: Protocol and backends
        .target(name: "DMAEngine", dependencies: ["CDMAContext"]),
        .target(name: "DMAEngineEmbedded", dependencies: ["DMAEngine", "Platform"]),
        .target(name: "Platform", dependencies: ["CLinuxShims", "CPerf", "CNUMA"]),
        .target(name: "DMAEngineLocked", dependencies: ["DMAEngine", "Platform"]),
        .target(name: "DMAEngineRing", dependencies: ["DMAEngine", "Platform"]),
        .target(name: "DMAEngineCPU", dependencies: ["DMAEngine", "Platform"]),
        .target(name: "DMAEngineURing", dependencies: ["DMAEngine", "Platform", "CURing"]),
        .target(name: "DMAEngineTestSupport", dependencies: ["DMAEngine", "Platform"]),
        // Engines from shared objects through the C plugin ABI (docs/plugin-abi.md).
        .target(name: "DMAEnginePlugin", dependencies: ["DMAEngine", "Platform", "CDMAPlugin"]),

        // MARK: Harness, registry, command line
        .target(
            name: "Harness",
            dependencies: ["DMAEngine", "Platform", .product(name: "Histogram", package: "hdrhistogram-swift")]
        ),
        .target(
            name: "DMABackends",
            dependencies: ["DMAEngine", "DMAEngineCPU", "DMAEngineLocked", "DMAEngineRing", "DMAEngineURing", "DMAEnginePlugin"]
        ),
        // The whole command line as a library, so that a package of its own can run it for
        // its own backends (`DMABenchMain.main(extraBackends:)`).
        .target(
            name: "DMABenchCLI",
            dependencies: [
                "DMAEngine", "DMABackends", "Harness", "Platform", "DMAEngineTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "dmabench", dependencies: ["DMABenchCLI"]),

        // MARK: Tests
        // Helpers every test target shares (waitUntil, scenario outcome to expectations).
        .target(name: "TestHelpers", dependencies: ["DMAEngine", "DMAEngineTestSupport", "Platform"]),
        .testTarget(name: "DMAEngineTests", dependencies: ["TestHelpers", "DMAEngine", "DMAEngineEmbedded", "Platform"]),
        .testTarget(
            name: "ConformanceTests",
            dependencies: ["TestHelpers", "DMAEngine", "DMAEngineEmbedded", "DMAEngineLocked", "DMAEngineTestSupport", "Platform"]
        ),
        .testTarget(name: "LockedTests", dependencies: ["TestHelpers", "DMAEngine", "DMAEngineLocked", "DMAEngineTestSupport", "Platform"]),
        .testTarget(name: "RingTests", dependencies: ["TestHelpers", "DMAEngine", "DMAEngineRing", "DMAEngineTestSupport", "Platform"]),
        .testTarget(name: "CPUTests", dependencies: ["TestHelpers", "DMAEngine", "DMAEngineCPU", "DMAEngineTestSupport", "Platform"]),
        .testTarget(name: "URingTests", dependencies: ["TestHelpers", "DMAEngine", "DMAEngineURing", "DMAEngineTestSupport", "Platform"]),
        .testTarget(
            name: "PluginTests",
            dependencies: ["TestHelpers", "DMAEngine", "DMAEnginePlugin", "DMAEngineTestSupport", "Platform"],
            exclude: ["BadPlugins"]
        ),
        .testTarget(name: "PlatformTests", dependencies: ["TestHelpers", "Platform"]),
        .testTarget(name: "HarnessTests", dependencies: ["TestHelpers", "Harness", "DMAEngine", "DMAEngineEmbedded", "DMABackends"]),
        .testTarget(name: "CLITests", dependencies: ["TestHelpers", "dmabench"]),
        .testTarget(name: "ReliabilityTests", dependencies: ["TestHelpers", "DMAEngine", "DMABackends", "dmabench"]),
    ],
    swiftLanguageModes: [.v6]
)
