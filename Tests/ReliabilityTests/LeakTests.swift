// dmabench — ReliabilityTests
//
// Create and release 1 000 channels per backend: the process's open file descriptors
// (/proc/self/fd) and threads (/proc/self/task) must come back to the baseline. Releasing a
// channel joins every thread and closes every fd (io_uring, perf, memfd).
//
// The count is process-wide, so it runs in a process of its own (`dmabench conformance
// --leaks`): test suites running in parallel in this process would move the counts.

import DMABackends
import DMAEngine
import Foundation
import Testing

enum Binary {
    static var dmabench: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if dir.lastPathComponent.hasSuffix(".xctest") { dir = dir.deletingLastPathComponent() }
        return dir.appendingPathComponent("dmabench")
    }

    static func run(_ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = dmabench
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// The backends that can run here.
let runnableBackends: [String] = BackendRegistry.all.filter { $0.unavailableReason() == nil }.map(\.name)

@Suite("Leaks")
struct LeakTests {
    @Test("1000 channels: fds and threads return to the baseline", arguments: runnableBackends)
    func createAndRelease(_ name: String) throws {
        let n = ProcessInfo.processInfo.environment["DMABENCH_LONG_TESTS"] == "1" ? "10000" : "1000"
        let r = try Binary.run(["conformance", "--backend", name, "--leaks", n])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("\(name): \(n) channels created and released"), "\(r.output)")
        #expect(r.output.contains("no leak"), "\(r.output)")
    }

    @Test("operations after release fail with .released", arguments: runnableBackends)
    func afterRelease(_ name: String) throws {
        let ch = try BackendRegistry.entry(named: name)!.make(DMAChannelOptions(poolSize: 16))
        try ch.release()
        #expect(throws: DMAError.released) { try ch.terminateSync() }
        #expect(throws: DMAError.released) { try ch.pause() }
        #expect(throws: DMAError.released) { try ch.release() }
        #expect(!ch.submit(DMADescriptor(index: 0, generation: 0)).isValid)
        #expect(ch.prepareMemcpy(to: UnsafeMutableRawPointer(bitPattern: 4096)!, from: UnsafeRawPointer(bitPattern: 4096)!, length: 1, flags: .default) == nil)
    }
}
