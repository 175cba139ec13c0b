// dmabench — TestHelpers
//
// The plugins the tests load (docs/plugin-abi.md): the reference C engine and the broken
// one, which the package builds as dynamic libraries beside the test bundle, and the bad
// plugins of Tests/PluginTests/BadPlugins, compiled here with the C compiler on demand.

#if os(Linux)
import Foundation
import Platform

public enum PluginFixtures {
    /// The build folder of the running test bundle (`.build/<triple>/debug`), where SwiftPM
    /// puts the package's dynamic library products.
    public static var buildDirectory: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).resolvingSymlinksInPath().deletingLastPathComponent()
        // The test runner may be inside the .xctest bundle folder.
        if dir.lastPathComponent.hasSuffix(".xctest") { dir.deleteLastPathComponent() }
        return dir.path
    }

    /// libDMABenchCRing.so: the plain-C ring engine ("cring").
    public static var referenceEngine: String { buildDirectory + "/libDMABenchCRing.so" }
    /// libDMABenchCRingBroken.so: the same engine with a synchronize that returns at once.
    public static var brokenEngine: String { buildDirectory + "/libDMABenchCRingBroken.so" }

    /// The package root (for sources the tests compile).
    public static var packageRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
    }

    /// Why the reference engines are missing, or nil when both are built.
    public static var missingReason: String? {
        for p in [referenceEngine, brokenEngine] where !FileManager.default.fileExists(atPath: p) {
            return "\(p) is not built (swift build builds the DMABenchCRing products)"
        }
        return nil
    }

    /// A C compiler on PATH (the Swift toolchain's clang, else cc or gcc), or nil.
    public static var cCompiler: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in ["clang", "cc", "gcc"] {
            for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
                return "\(dir)/\(name)"
            }
        }
        return nil
    }

    /// Compiles Tests/PluginTests/BadPlugins/bad_plugins.c with `-D<variant>` (or none) into
    /// a shared object in `directory`; returns its path.
    public static func badPlugin(_ variant: String?, in directory: String) throws -> String {
        guard let cc = cCompiler else { throw FixtureError("no C compiler on PATH") }
        let out = "\(directory)/bad-\(variant ?? "none").so"
        var args = [
            "-shared", "-fPIC", "-fvisibility=hidden", "-O1", "-I", "\(packageRoot)/Sources/CDMAPlugin/include",
            "\(packageRoot)/Tests/PluginTests/BadPlugins/bad_plugins.c", "-o", out,
        ]
        if let variant { args.insert("-D\(variant)", at: 0) }
        let r = try ChildProcess.run([cc] + args, captureStandardError: true)
        guard r.status == 0 else { throw FixtureError("\(cc) failed (\(r.status)): \(r.output)") }
        return out
    }

    public struct FixtureError: Error, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }
}
#endif
