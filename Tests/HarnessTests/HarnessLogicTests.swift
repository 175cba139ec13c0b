// dmabench — HarnessTests
//
// Harness logic with no timing assertions: sweep enumeration and sharding, statistics,
// size parsing, the result schema round trip, atomic writes, and rejection of bad files.

import Foundation
import Testing

@testable import Harness

@Suite("Sweep")
struct SweepTests {
    @Test func enumeratesEveryCombinationAndSkipsBatchLargerThanDepth() {
        let plan = SweepPlan(
            backends: ["a", "b"], workloads: [.throughput], sizes: [64, 4096], batches: [1, 32], depths: [1, 256])
        let points = plan.points()
        // per backend: sizes 2 × (depth 1: batch 1 only; depth 256: batches 1, 32) = 2 × 3
        #expect(points.count == 2 * 2 * 3)
        #expect(!points.contains { $0.parameters.batch > $0.parameters.depth })
    }

    @Test func terminateCoversAllFiveInFlightCounts() {
        let plan = SweepPlan(backends: ["x"], workloads: [.terminate], sizes: [64, 4096], batches: [32], depths: [256])
        #expect(plan.points().compactMap(\.parameters.inFlight) == [0, 1, 16, 256, 4096])
        #expect(plan.points().allSatisfy { $0.parameters.size == 4096 })
    }

    @Test func shardsPartitionTheSweep() {
        var plan = SweepPlan(backends: ["a", "b", "c"], workloads: [.throughput, .latency], sizes: [64, 4096, 65536], batches: [1, 32], depths: [1, 256])
        let all = plan.points()
        var union: [PointSpec] = []
        for i in 0..<4 {
            plan.shard = ShardInfo(index: i, count: 4)
            union += plan.points()
        }
        #expect(union.count == all.count)
        #expect(Set(union) == Set(all))
    }
}

@Suite("Statistics")
struct StatisticsTests {
    @Test func medianOfOddAndEven() {
        #expect(Statistics.median([3, 1, 2]) == 2)
        #expect(Statistics.median([4, 1, 3, 2]) == 2.5)
    }

    @Test func confidenceIntervalBracketsTheMedian() {
        let samples = (1...21).map(Double.init).shuffled()
        let m = MetricSummary(samples: samples)
        #expect(m.median == 11)
        #expect(m.ciLow <= m.median && m.median <= m.ciHigh)
        #expect(m.ciLow > 1 && m.ciHigh < 21, "with 21 samples the 95% CI is narrower than the range")
        // Known order statistics for n = 21: ranks 6 and 16 (1-based).
        #expect(m.ciLow == 6 && m.ciHigh == 16)
    }

    @Test func fewSamplesGiveTheRange() {
        let m = MetricSummary(samples: [5, 1, 3])
        #expect(m.ciLow == 1 && m.ciHigh == 5)
    }
}

@Suite("Sizes")
struct SizeTests {
    @Test(arguments: [("64", 64), ("4K", 4096), ("4k", 4096), ("64K", 65536), ("1M", 1 << 20), ("1G", 1 << 30), ("4KiB", 4096)])
    func parses(_ c: (String, Int)) {
        #expect(ByteSize.parse(c.0) == c.1)
    }

    @Test(arguments: ["", "4Q", "-1", "K", "1.5K", "abc", "99999999999999999999G"])
    func rejects(_ s: String) {
        #expect(ByteSize.parse(s) == nil)
    }
}

func sampleDocument() -> ResultDocument {
    var ctx = ResultContext(
        date: "2026-11-25T14:00:00Z", host: "host-test", cpu: "Test CPU", cores: 2, kernel: "6.18", commit: "abc",
        dirty: false, governor: nil, numaNodes: [0], counters: ["task-clock": "ok", "cycles": "unsupported: no PMU on this machine (ENOENT)"],
        commandLine: ["dmabench", "run"], toolVersion: "0.1.0")
    ctx.calibration = Calibration(memcpyBytesPerSecond: ["64": 1.5e10], roundTripNs: 110)
    var m = PointMetrics()
    m.descriptorsPerSecond = MetricSummary(samples: [1e6, 2e6, 3e6])
    m.bytesPerSecond = MetricSummary(samples: [64e6, 128e6, 192e6])
    m.latencyNs = LatencySummary(p50: 100, p90: 200, p99: 300, p999: 400, p9999: 500, max: 600, count: 10, histogram: "x")
    m.errors = 0
    let point = ResultPoint(
        backend: "ring", workload: "throughput", parameters: PointParameters(size: 64, batch: 32, depth: 256, channels: 1),
        placement: PlacementRecord(requested: .init(submitter: "cpu0", engine: "cpu1", src: 0, dst: 0), verified: .init(submitter: "cpu0", engine: "cpu1", src: 0, dst: 0)),
        metrics: m, counters: ["submitter": ["task-clock": CounterValue(perDescriptor: 41.5, scaling: 1, value: 415)]])
    return ResultDocument(context: ctx, points: [point])
}

@Suite("Result files")
struct ResultFileTests {
    @Test func schemaRoundTrip() throws {
        let doc = sampleDocument()
        let data = try ResultIO.encode(doc)
        let back = try ResultIO.decode(data, name: "mem")
        #expect(back.schemaVersion == 1)
        #expect(back.points.count == 1)
        #expect(back.points[0].metrics.descriptorsPerSecond == doc.points[0].metrics.descriptorsPerSecond)
        #expect(back.context.counters == doc.context.counters)
        // Fixed key names that scripts read.
        let obj = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let point = (obj["points"] as! [[String: Any]])[0]
        let metrics = point["metrics"] as! [String: Any]
        let dps = metrics["descriptorsPerSecond"] as! [String: Any]
        #expect(Set(dps.keys) == ["median", "ciLow", "ciHigh", "samples"])
        let params = point["parameters"] as! [String: Any]
        #expect(Set(params.keys) == [
            "size", "batch", "depth", "channels", "rate", "inFlight", "offsets", "alignment", "completion", "cache", "sge", "periods", "pace",
            "periodWorkNs",
        ])
        #expect(params["sge"] is NSNull && params["pace"] is NSNull)
        #expect(params["rate"] is NSNull)
    }

    @Test func rejectsTruncatedAndWrongVersion() throws {
        let data = try ResultIO.encode(sampleDocument())
        #expect(throws: ResultIOError.self) { try ResultIO.decode(data.prefix(data.count / 2), name: "half") }
        var obj = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        obj["schemaVersion"] = 99
        let wrong = try JSONSerialization.data(withJSONObject: obj)
        do {
            _ = try ResultIO.decode(wrong, name: "v99")
            Issue.record("a wrong schemaVersion was accepted")
        } catch {
            #expect(error.description.contains("schemaVersion 99"))
        }
        #expect(throws: ResultIOError.self) { try ResultIO.decode(Data("[]".utf8), name: "array") }
    }

    @Test func atomicWriteReplacesAndFailureKeepsThePreviousFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dmabench-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("r.json").path
        try ResultIO.writeAtomically(Data("first".utf8), to: path)
        try ResultIO.writeAtomically(Data("second".utf8), to: path)
        #expect(String(decoding: FileManager.default.contents(atPath: path)!, as: UTF8.self) == "second")
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["r.json"])
        // A write into a read-only directory fails and leaves the old file intact.
        chmod(dir.path, 0o500)
        defer { chmod(dir.path, 0o700) }
        if geteuid() != 0 {
            #expect(throws: ResultIOError.self) { try ResultIO.writeAtomically(Data("third".utf8), to: path) }
            #expect(String(decoding: FileManager.default.contents(atPath: path)!, as: UTF8.self) == "second")
        }
        // Root ignores directory permissions; a path under /proc cannot be created by anyone.
        #expect(throws: ResultIOError.self) { try ResultIO.writeAtomically(Data("x".utf8), to: "/proc/dmabench-nope/r.json") }
    }

    @Test func formatsRenderEveryPoint() throws {
        let doc = sampleDocument()
        let table = Formats.table(doc)
        #expect(table.contains("ring") && table.contains("throughput"))
        #expect(table.contains("task-clock"))
        let csv = Formats.csv(doc)
        #expect(csv.split(separator: "\n").count == 2)
        let g = try JSONSerialization.jsonObject(with: Formats.gbench(doc)) as! [String: Any]
        let benches = g["benchmarks"] as! [[String: Any]]
        #expect(benches.filter { ($0["run_type"] as? String) == "iteration" }.count == 3)
        #expect(benches.contains { ($0["aggregate_name"] as? String) == "median" })
        #expect(benches.allSatisfy { $0["time_unit"] as? String == "ns" && $0["real_time"] is Double })
    }

    @Test("every point gets its speed-up over the cpu point of the same workload, parameters and placement")
    func speedupOverCPU() throws {
        var doc = sampleDocument()
        var cpu = doc.points[0]
        cpu.backend = "cpu"
        cpu.metrics.descriptorsPerSecond = MetricSummary(samples: [0.5e6, 0.5e6, 0.5e6])
        cpu.metrics.latencyNs = LatencySummary(p50: 400, p90: 500, p99: 600, p999: 700, p9999: 800, max: 900, count: 10, histogram: "x")
        var latencyRing = doc.points[0]
        latencyRing.workload = "latency"
        var latencyCPU = cpu
        latencyCPU.workload = "latency"
        var other = doc.points[0]
        other.parameters.size = 4096  // no cpu point at 4 KiB
        doc.points = [cpu, doc.points[0], latencyCPU, latencyRing, other]
        doc.annotateSpeedupOverCPU()
        #expect(doc.points[0].metrics.speedupOverCPU == nil, "the baseline has no speed-up over itself")
        #expect(doc.points[1].metrics.speedupOverCPU == 4, "2e6 desc/s over the cpu's 0.5e6")
        #expect(doc.points[3].metrics.speedupOverCPU == 4, "latency: the cpu's p50 400 ns over 100 ns")
        #expect(doc.points[4].metrics.speedupOverCPU == nil, "no cpu point with these parameters")
        let table = Formats.table(doc)
        #expect(table.contains("vs cpu") && table.contains("4.00x") && table.contains("1 (base)"))
        let csv = Formats.csv(doc).split(separator: "\n")
        let header = csv[0].split(separator: ",", omittingEmptySubsequences: false)
        let column = try #require(header.firstIndex(of: "speedupOverCPU"))
        #expect(csv[2].split(separator: ",", omittingEmptySubsequences: false)[column] == "4.0")
        #expect(!Formats.table(sampleDocument()).contains("vs cpu"), "no column without a cpu point")
    }

    @Test("the summary fits a terminal for a default-sized sweep: terminate points folded per backend, counters as columns, unsupported events once")
    func summaryFitsOneScreen() {
        var doc = sampleDocument()
        let base = doc.points[0]
        var points: [ResultPoint] = []
        for b in ["cpu", "locked", "ring", "uring", "uring-defer", "uring-sqpoll"] {
            for w in ["throughput", "latency"] {
                for size in [64, 4096] {
                    var p = base
                    p.backend = b
                    p.workload = w
                    p.parameters.size = size
                    p.counters = [
                        "submitter": ["task-clock": CounterValue(perDescriptor: 40, scaling: 1, value: 400),
                                      "cycles": CounterValue(unsupported: "unsupported: no PMU on this machine (ENOENT)")],
                        "engine": ["task-clock": CounterValue(perDescriptor: 60, scaling: 1, value: 600)],
                    ]
                    points.append(p)
                }
            }
            for n in [0, 1, 16, 256, 4096] {
                var t = base
                t.backend = b
                t.workload = "terminate"
                t.parameters = PointParameters(size: 4096, batch: 1, depth: max(1, n), channels: 1, inFlight: n)
                t.metrics = PointMetrics()
                t.metrics.terminateSyncNs = MetricSummary(samples: [Double(1000 + n)])
                t.metrics.errors = 0
                points.append(t)
            }
        }
        doc.points = points
        let s = Formats.summary(doc)
        let lines = s.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count <= 60, "\(lines.count) lines:\n\(s)")
        #expect(lines.allSatisfy { $0.count <= 120 }, "a line is wider than 120 columns:\n\(s)")
        #expect(s.contains("cpu/desc") && s.contains("100ns"), "task-clock summed over the threads: 40 + 60 ns")
        #expect(s.components(separatedBy: "no PMU on this machine").count == 2, "the unsupported event is named once:\n\(s)")
        #expect(s.contains("N=4096") && s.contains("5096ns"), "terminate points folded into one row per backend")
        #expect(!s.contains("counters per descriptor:"), "no per-point counter blocks in the summary")
        #expect(Formats.summary(doc, counters: .full).contains("counters per descriptor:"), "--counters full keeps them")
    }

    @Test("long footer lines wrap at 120 columns")
    func wrapping() {
        let line = String(repeating: "word ", count: 60)
        let w = Formats.wrap(line, width: 120).split(separator: "\n")
        #expect(w.count > 1 && w.allSatisfy { $0.count <= 120 } && w.dropFirst().allSatisfy { $0.hasPrefix("  ") })
        #expect(Formats.wrap("short", width: 120) == "short")
    }

    @Test func calibrationLooksUpTheNearestSmallerSize() {
        let c = Calibration(memcpyBytesPerSecond: ["64": 1, "4096": 2, "65536": 3])
        #expect(c.memcpy(forSize: 4096) == 2)
        #expect(c.memcpy(forSize: 8192) == 2)
        #expect(c.memcpy(forSize: 16) == 1)
    }
}
