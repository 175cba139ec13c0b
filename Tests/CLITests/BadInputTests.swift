// dmabench — CLITests
//
// A table of malformed invocations. Each must exit with status 64 (73 for I/O), print one
// line that names the problem, and never trap or print a stack trace.

import Foundation
import Testing

enum DMABenchBinary {
    /// The dmabench executable built beside the test bundle.
    static var url: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // swift-testing may run from inside the .xctest bundle on some layouts.
        if dir.lastPathComponent.hasSuffix(".xctest") { dir = dir.deletingLastPathComponent() }
        return dir.appendingPathComponent("dmabench")
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func run(_ args: [String], timeout: TimeInterval = 120, directory: URL? = nil) throws -> Result {
        let p = Process()
        p.executableURL = url
        p.arguments = args
        if let directory { p.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

struct BadInvocation: CustomTestStringConvertible, Sendable {
    var args: [String]
    var status: Int32
    /// Text the one-line message must contain.
    var mentions: String
    var testDescription: String { args.joined(separator: " ") }
}

let unwritableDir = "/proc/dmabench-cannot-write"

let badInvocations: [BadInvocation] = [
    .init(args: ["run", "--backend", "nosuch"], status: 64, mentions: "unknown backend 'nosuch'"),
    .init(args: ["run", "--backend", "locked,nosuch"], status: 64, mentions: "valid backends"),
    .init(args: ["run", "--backend", ""], status: 64, mentions: "unknown backend"),
    .init(args: ["run", "--workload", "speed"], status: 64, mentions: "unknown workload 'speed'"),
    .init(args: ["run", "--format", "xml"], status: 64, mentions: "unknown format 'xml'"),
    .init(args: ["run", "--size", "0"], status: 64, mentions: "invalid size '0'"),
    .init(args: ["run", "--size", "-64"], status: 64, mentions: "invalid size '-64'"),
    .init(args: ["run", "--size", "4Q"], status: 64, mentions: "invalid size '4Q'"),
    .init(args: ["run", "--size", "64,,4K"], status: 64, mentions: "invalid size ''"),
    .init(args: ["run", "--size", "2G"], status: 64, mentions: "at most 1G"),
    .init(args: ["run", "--offsets", "random", "--alignment", "3"], status: 64, mentions: "invalid alignment 3: must be a power of two"),
    .init(args: ["run", "--offsets", "random", "--alignment", "8192", "--size", "4096"], status: 64, mentions: "invalid alignment 8192: larger than size 4K"),
    .init(args: ["run", "--alignment", "8"], status: 64, mentions: "--alignment applies to --offsets random"),
    .init(args: ["run", "--offsets", "sideways"], status: 64, mentions: "unknown offsets 'sideways'"),
    .init(args: ["run", "--completion", "maybe"], status: 64, mentions: "unknown completion 'maybe'; valid: callback, polled"),
    .init(args: ["run", "--cache", "warm"], status: 64, mentions: "unknown cache 'warm'; valid: hot, cold"),
    .init(args: ["run", "--cache", "cold", "--cache-method", "magic"], status: 64, mentions: "unknown cache-method 'magic'"),
    .init(args: ["run", "--callbacks", "tasklet"], status: 64, mentions: "unknown callbacks 'tasklet'; valid: default, executor, engine, client-poll"),
    .init(args: ["run", "--completion", "polled", "--inject-faults", "10"], status: 64, mentions: "--inject-faults needs --completion callback"),
    .init(args: ["run", "--workload", "terminate", "--completion", "polled"], status: 64, mentions: "apply to the throughput and latency workloads"),
    .init(args: ["run", "--debug-overrun", "1"], status: 64, mentions: "--debug-overrun needs --offsets random"),
    .init(args: ["run", "--size", "99999999999999999999"], status: 64, mentions: "invalid size"),
    .init(args: ["run", "--size", "abc"], status: 64, mentions: "invalid size 'abc'"),
    .init(args: ["run", "--depth", "0"], status: 64, mentions: "invalid depth '0'"),
    .init(args: ["run", "--depth", "x"], status: 64, mentions: "invalid depth 'x'"),
    .init(args: ["run", "--batch", "0"], status: 64, mentions: "invalid batch '0'"),
    .init(args: ["run", "--batch", "-1"], status: 64, mentions: "invalid batch"),
    .init(args: ["run", "--workload", "throughput", "--batch", "64", "--depth", "16"], status: 64, mentions: "batch 64 is larger than every depth"),
    .init(args: ["run", "--workload", "latency", "--rate", "0"], status: 64, mentions: "invalid rate"),
    .init(args: ["run", "--workload", "latency", "--rate", "-5"], status: 64, mentions: "invalid rate"),
    .init(args: ["run", "--workload", "throughput", "--rate", "1000"], status: 64, mentions: "--rate applies to the latency workload"),
    .init(args: ["run", "--channels", "0"], status: 64, mentions: "invalid channels"),
    .init(args: ["run", "--repetitions", "0"], status: 64, mentions: "invalid repetitions"),
    .init(args: ["run", "--duration", "0"], status: 64, mentions: "invalid duration"),
    .init(args: ["run", "--duration", "nan"], status: 64, mentions: "invalid duration"),
    .init(args: ["run", "--placement", "engine=cpu999"], status: 64, mentions: "cpu 999 does not exist"),
    .init(args: ["run", "--placement", "src=1"], status: 64, mentions: "node 1 does not exist; this machine has node 0"),
    .init(args: ["run", "--placement", "submitter=cpu0,engine=cpu0"], status: 64, mentions: "each thread needs its own cpu"),
    .init(args: ["run", "--placement", "src=0", "--numa-matrix"], status: 64, mentions: "conflict"),
    .init(args: ["run", "--placement", "gpu=0"], status: 64, mentions: "unknown placement key 'gpu'"),
    .init(args: ["run", "--placement", "submitter"], status: 64, mentions: "invalid placement"),
    .init(args: ["run", "--shard", "3/2"], status: 64, mentions: "invalid shard '3/2'"),
    .init(args: ["run", "--shard", "x"], status: 64, mentions: "invalid shard"),
    .init(args: ["run", "--size", "64", "--size", "4K"], status: 64, mentions: "--size was given more than once"),
    .init(args: ["run", "--backend", "locked", "--backend", "ring"], status: 64, mentions: "--backend was given more than once"),
    .init(args: ["run", "--frobnicate"], status: 64, mentions: "frobnicate"),
    .init(args: ["run", "--output", "/tmp"], status: 64, mentions: "is a directory"),
    .init(args: ["run", "--backend", "locked", "--workload", "throughput", "--size", "64", "--output", unwritableDir + "/r.json"], status: 73, mentions: "cannot"),
    // The reason is mkdir's own errno (it was always "Permission denied").
    .init(args: ["run", "--backend", "locked", "--size", "64", "--output", unwritableDir + "/sub/r.json"], status: 73, mentions: "No such file or directory"),
    .init(args: ["list", "gpus"], status: 64, mentions: "unknown list 'gpus'"),
    .init(args: ["conformance", "--fuzz", "soon"], status: 64, mentions: "invalid fuzz duration 'soon'"),
    .init(args: ["conformance", "--fuzz", "0s"], status: 64, mentions: "invalid fuzz duration '0s'"),
    .init(args: ["conformance", "--fuzz", "10s", "--soak", "10s"], status: 64, mentions: "cannot be combined"),
    .init(args: ["conformance", "--fuzz", "10s", "--backend", "nosuch"], status: 64, mentions: "unknown backend 'nosuch'"),
    .init(args: ["conformance", "--backend", "nosuch"], status: 64, mentions: "valid backends: cpu, locked, ring"),
    .init(args: ["conformance", "--soak", "forever"], status: 64, mentions: "invalid soak duration 'forever'"),
    .init(args: ["conformance", "--iterations", "0"], status: 64, mentions: "invalid iterations"),
    .init(args: ["conformance", "--scenario", "39"], status: 64, mentions: "invalid scenario '39'"),
    .init(args: ["run", "--events", "nosuch"], status: 64, mentions: "unknown counter event 'nosuch'"),
    .init(args: ["run", "--events", "cycles,"], status: 64, mentions: "an event name is empty"),
    .init(args: ["run", "--inject-faults", "0"], status: 64, mentions: "invalid inject-faults"),
    .init(args: ["nosuchcommand"], status: 64, mentions: "nosuchcommand"),
    .init(args: ["run", "--counters", "all"], status: 64, mentions: "unknown counters 'all'; valid: summary, full"),
    .init(args: ["show", "/nonexistent/r.json"], status: 66, mentions: "cannot read /nonexistent/r.json"),
    // Scatter-gather and cyclic streams.
    .init(args: ["run", "--sge", "0:1"], status: 64, mentions: "invalid sge '0:1'"),
    .init(args: ["run", "--sge", "4"], status: 64, mentions: "invalid sge '4': expected SRC:DST"),
    .init(args: ["run", "--sge", "4:1", "--size", "2"], status: 64, mentions: "less than one byte per segment"),
    .init(args: ["run", "--sge", "4:1", "--offsets", "random"], status: 64, mentions: "cannot be combined with --offsets random"),
    .init(args: ["run", "--workload", "cyclic", "--sge", "4:1"], status: 64, mentions: "--sge applies to the throughput and latency workloads"),
    .init(args: ["run", "--backend", "ring", "--workload", "throughput", "--size", "4K", "--sge", "32:1"], status: 64, mentions: "takes at most 16 (maxSegments)"),
    .init(args: ["run", "--workload", "cyclic", "--periods", "1"], status: 64, mentions: "invalid periods 1"),
    .init(args: ["run", "--workload", "cyclic", "--pace", "-5"], status: 64, mentions: "invalid pace '-5'"),
    .init(args: ["run", "--workload", "throughput", "--pace", "384000"], status: 64, mentions: "--pace applies to the cyclic workload"),
    .init(args: ["run", "--workload", "latency", "--periods", "4"], status: 64, mentions: "--periods applies to the cyclic workload"),
    .init(args: ["run", "--workload", "cyclic", "--period-work", "-1"], status: 64, mentions: "invalid period-work -1"),
]

@Suite("Bad command-line input")
struct BadInputTests {
    @Test("exits with a one-line error", arguments: badInvocations)
    func badInvocation(_ c: BadInvocation) throws {
        let r = try DMABenchBinary.run(c.args)
        #expect(r.status == c.status, "status \(r.status), stderr: \(r.stderr)")
        let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: true)
        #expect(lines.count == 1, "expected one line on stderr, got: \(r.stderr)")
        #expect(r.stderr.contains(c.mentions), "stderr does not mention '\(c.mentions)': \(r.stderr)")
        #expect(!r.stderr.contains("Fatal error") && !r.stderr.contains("Stack dump"), "trap: \(r.stderr)")
    }

    @Test("at least 30 malformed invocations are covered")
    func coverage() {
        #expect(badInvocations.count >= 30)
    }
}
