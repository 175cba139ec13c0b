// dmabench — CLITests
//
// dmabench as a library, out of tree: a package built in a temporary directory, depending
// on this checkout by path, defines a backend of its own and runs the whole command line
// through `DMABenchMain.main(extraBackends:)`: `list`, `conformance` and a quick `run`.

import Foundation
import Testing

enum SwiftToolchain {
    /// The `swift` driver that built these tests (beside it), or the one on PATH.
    static let path: String? = {
        let fm = FileManager.default
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") + ["/opt/swift/usr/bin"] {
            let p = "\(dir)/swift"
            if fm.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }()
}

@Suite("Out of tree")
struct OutOfTreeTests {
    /// The checkout these tests belong to (this file is Tests/CLITests/OutOfTreeTests.swift).
    static let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static let manifest = """
        // swift-tools-version: 6.1
        import PackageDescription

        let package = Package(
            name: "outside",
            dependencies: [.package(path: "deps/dmabench")],
            targets: [
                .executableTarget(
                    name: "outsidebench",
                    dependencies: [
                        .product(name: "DMABenchCLI", package: "dmabench"),
                        .product(name: "DMABackends", package: "dmabench"),
                        .product(name: "DMAEngine", package: "dmabench"),
                        .product(name: "DMAEngineCPU", package: "dmabench"),
                    ])
            ],
            swiftLanguageModes: [.v6]
        )
        """

    /// A trivial engine of the package's own: the CPU backend behind a channel type of its
    /// own, under its own name.
    static let main = """
        import DMABackends
        import DMABenchCLI
        import DMAEngine
        import DMAEngineCPU

        final class OutsideChannel: DMAChannel, @unchecked Sendable {
            let inner: CPUChannel
            init(options: DMAChannelOptions) throws(DMAError) { inner = try CPUChannel(options: options) }
            var backendName: String { "outside" }
            var capabilities: DMACapabilities { inner.capabilities }
            func configure(_ config: DMAConfig) throws(DMAError) { try inner.configure(config) }
            func allocateCoherent(byteCount: Int) throws(DMAError) -> DMABuffer { try inner.allocateCoherent(byteCount: byteCount) }
            func freeCoherent(_ buffer: DMABuffer) { inner.freeCoherent(buffer) }
            func prepareMemcpy(to d: UnsafeMutableRawPointer, from s: UnsafeRawPointer, length: Int, flags: DMAPrepFlags) -> DMADescriptor? {
                inner.prepareMemcpy(to: d, from: s, length: length, flags: flags)
            }
            func prepareMemcpySG(destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, flags: DMAPrepFlags) -> DMADescriptor? {
                inner.prepareMemcpySG(destinations: destinations, sources: sources, flags: flags)
            }
            func prepareMemset(to d: UnsafeMutableRawPointer, value: UInt8, length: Int, flags: DMAPrepFlags) -> DMADescriptor? {
                inner.prepareMemset(to: d, value: value, length: length, flags: flags)
            }
            func prepareCyclic(to d: UnsafeMutableRawPointer, from s: UnsafeRawPointer, bufferLength: Int, periodLength: Int, flags: DMAPrepFlags) -> DMADescriptor? {
                inner.prepareCyclic(to: d, from: s, bufferLength: bufferLength, periodLength: periodLength, flags: flags)
            }
            func setCallback(_ callback: DMACallback, for d: DMADescriptor) throws(DMAError) { try inner.setCallback(callback, for: d) }
            func setReuse(_ reuse: Bool, for d: DMADescriptor) throws(DMAError) { try inner.setReuse(reuse, for: d) }
            func free(_ d: DMADescriptor) throws(DMAError) { try inner.free(d) }
            func submit(_ d: DMADescriptor) -> DMACookie { inner.submit(d) }
            func issuePending() { inner.issuePending() }
            func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) { inner.status(of: cookie) }
            func pause() throws(DMAError) { try inner.pause() }
            func resume() throws(DMAError) { try inner.resume() }
            func terminateAsync() throws(DMAError) { try inner.terminateAsync() }
            func synchronize() throws(DMAError) { try inner.synchronize() }
            func terminateSync() throws(DMAError) { try inner.terminateSync() }
            func release() throws(DMAError) { try inner.release() }
            func debugSeedCookie(used: DMACookie, last: DMACookie) throws(DMAError) { try inner.debugSeedCookie(used: used, last: last) }
            func debugWatermark() -> DMACookieWatermark { inner.debugWatermark() }
            func debugInject(_ i: DMAInjection, into d: DMADescriptor) throws(DMAError) { try inner.debugInject(i, into: d) }
            func debugFailNextSubmits(_ count: Int) { inner.debugFailNextSubmits(count) }
            func debugReleaseStalls() { inner.debugReleaseStalls() }
            func debugSetAccessProbe(_ probe: DMAAccessProbe?) { inner.debugSetAccessProbe(probe) }
        }

        DMABenchMain.main(extraBackends: [
            BackendEntry(name: "outside", summary: "the CPU backend behind a channel type built outside the tree") { o throws(DMAError) in
                try OutsideChannel(options: o)
            }
        ])
        """

    static func run(_ exe: String, _ args: [String], in dir: URL) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.currentDirectoryURL = dir
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test(
        "a package of its own runs list, conformance and run on its own backend",
        .enabled(if: SwiftToolchain.path != nil, "no swift toolchain on PATH to build the out-of-tree package"))
    func outOfTreePackage() throws {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("dmabench-outside-\(getpid())")
        try? fm.removeItem(at: dir)
        try fm.createDirectory(at: dir.appendingPathComponent("Sources/outsidebench"), withIntermediateDirectories: true)
        try fm.createDirectory(at: dir.appendingPathComponent("deps"), withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: dir) }
        // The dependency's identity is its directory's name: a link named dmabench, whatever
        // the checkout is called.
        try fm.createSymbolicLink(at: dir.appendingPathComponent("deps/dmabench"), withDestinationURL: Self.checkout)
        try Self.manifest.write(to: dir.appendingPathComponent("Package.swift"), atomically: true, encoding: .utf8)
        try Self.main.write(to: dir.appendingPathComponent("Sources/outsidebench/main.swift"), atomically: true, encoding: .utf8)

        let build = try Self.run(SwiftToolchain.path!, ["build", "--product", "outsidebench"], in: dir)
        try #require(build.status == 0, "swift build of the out-of-tree package failed:\n\(build.out.suffix(3000))\n\(build.err.suffix(3000))")
        let exe = dir.appendingPathComponent(".build/debug/outsidebench").path

        let list = try Self.run(exe, ["list", "backends"], in: dir)
        #expect(list.status == 0)
        #expect(list.out.contains("outside") && list.out.contains("ring"), "its backend beside the built-in ones:\n\(list.out)")

        let conf = try Self.run(exe, ["conformance", "--backend", "outside"], in: dir)
        #expect(conf.status == 0, "conformance failed:\n\(conf.out.suffix(2000))\n\(conf.err.suffix(2000))")
        #expect(conf.out.contains("outside: 38 scenarios:") && conf.out.contains(" 0 failed"), "\(conf.out.suffix(1000))")

        let result = dir.appendingPathComponent("r.json")
        let r = try Self.run(
            exe, ["run", "--backend", "outside", "--workload", "throughput", "--size", "64", "--quick", "--events", "none", "--output", result.path],
            in: dir)
        #expect(r.status == 0, "run failed:\n\(r.err.suffix(2000))")
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: result)) as? [String: Any]
        let points = doc?["points"] as? [[String: Any]] ?? []
        #expect(points.count == 1 && points.first?["backend"] as? String == "outside")
        let errors = (points.first?["metrics"] as? [String: Any])?["errors"] as? Int
        #expect(errors == 0)

        // A name that is already taken is refused, with one line and exit 64.
        try Self.main.replacingOccurrences(of: "name: \"outside\"", with: "name: \"ring\"")
            .write(to: dir.appendingPathComponent("Sources/outsidebench/main.swift"), atomically: true, encoding: .utf8)
        let rebuild = try Self.run(SwiftToolchain.path!, ["build", "--product", "outsidebench"], in: dir)
        try #require(rebuild.status == 0, "\(rebuild.err.suffix(2000))")
        let dup = try Self.run(exe, ["list", "backends"], in: dir)
        #expect(dup.status == 64 && dup.err.contains("backend name 'ring' is already registered"), "\(dup.err)")
    }
}
