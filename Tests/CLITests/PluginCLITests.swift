// dmabench — CLITests
//
// `--backend plugin:PATH[:NAME]` end to end: the reference C engine runs and passes
// conformance through the command line, the result records the plugin, the broken engine
// fails conformance, and each bad plugin exits 64 with one line.

import Foundation
import Glibc
import TestHelpers
import Testing

@Suite(.serialized, .enabled(if: PluginFixtures.missingReason == nil, "\(PluginFixtures.missingReason ?? "")"))
struct PluginCLITests {
    @Test("run --backend plugin:<C ring> --size 64,4K writes points for the plugin and records its path, ABI and hash")
    func runReferenceEngine() throws {
        let dir = try temporaryDirectory("plugin-run")
        let out = dir.appendingPathComponent("r.json").path
        let r = try DMABenchBinary.run([
            "run", "--backend", "plugin:\(PluginFixtures.referenceEngine)", "--workload", "throughput,latency",
            "--size", "64,4K", "--repetitions", "1", "--duration", "0.05", "--events", "none", "--format", "json",
            "--no-plot", "--output", out,
        ])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let doc = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        let points = try #require(doc["points"] as? [[String: Any]])
        #expect(points.count == 4, "points: \(points.count)")
        #expect(points.allSatisfy { $0["backend"] as? String == "cring" })
        for p in points {
            let m = try #require(p["metrics"] as? [String: Any])
            #expect((m["errors"] as? Int ?? 0) == 0)
        }
        let context = try #require(doc["context"] as? [String: Any])
        let plugins = try #require(context["plugins"] as? [[String: Any]])
        #expect(plugins.count == 1)
        #expect(plugins.first?["backend"] as? String == "cring")
        #expect(plugins.first?["path"] as? String == PluginFixtures.referenceEngine)
        #expect(plugins.first?["abiVersion"] as? Int == 1)
        #expect((plugins.first?["sha256"] as? String)?.count == 64)
    }

    @Test("placement, per-thread counters and shards work for a plugin backend as for a built-in one")
    func placementCountersShards() throws {
        let dir = try temporaryDirectory("plugin-place")
        let cpus = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        let engineCPU = cpus > 1 ? 1 : 0
        for shard in ["0/2", "1/2"] {
            let out = dir.appendingPathComponent("s\(shard.first!).json").path
            let r = try DMABenchBinary.run([
                "run", "--backend", "plugin:\(PluginFixtures.referenceEngine)", "--workload", "throughput",
                "--size", "64,4K", "--repetitions", "1", "--duration", "0.05", "--events", "task-clock",
                "--placement", "submitter=cpu0,engine=cpu\(engineCPU)", "--shard", shard, "--format", "json",
                "--no-plot", "--output", out,
            ])
            #expect(r.status == 0, "shard \(shard): \(r.stderr)")
            let doc = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
            let points = try #require(doc["points"] as? [[String: Any]])
            // Two sizes split over two shards: one point each.
            #expect(points.count == 1, "shard \(shard): \(points.count) points")
            for p in points {
                let placement = try #require(p["placement"] as? [String: Any])
                let details = try #require(placement["details"] as? [String: Any])
                let engine = try #require(details["engine"] as? [String: Any], "no engine thread placement: \(placement)")
                #expect(engine["cpu"] as? Int == engineCPU)
                #expect((engine["threadID"] as? Int ?? 0) > 0)
                let verified = try #require(placement["verified"] as? [String: Any])
                #expect(verified["engine"] as? String == "cpu\(engineCPU)")
                let counters = try #require(p["counters"] as? [String: Any])
                let engineCounters = try #require(counters["engine"] as? [String: Any], "counters: \(counters.keys)")
                let taskClock = try #require(engineCounters["task-clock"] as? [String: Any])
                #expect((taskClock["value"] as? Double ?? 0) > 0)
            }
        }
    }

    @Test("conformance --backend plugin:<C ring> passes; the broken C engine fails")
    func conformanceThroughCLI() throws {
        let good = try DMABenchBinary.run(
            ["conformance", "--backend", "plugin:\(PluginFixtures.referenceEngine)", "--iterations", "200"], timeout: 600)
        #expect(good.status == 0, "stdout: \(good.stdout.suffix(2000)) stderr: \(good.stderr.suffix(2000))")
        let bad = try DMABenchBinary.run(
            ["conformance", "--backend", "plugin:\(PluginFixtures.brokenEngine)", "--iterations", "200",
             "--scenario", "15,16,17,29"], timeout: 600)
        #expect(bad.status != 0, "the broken engine passed: \(bad.stdout.suffix(2000))")
    }

    @Test(
        "a bad plugin exits 64 with one line",
        .enabled(if: PluginFixtures.cCompiler != nil, "no C compiler on PATH to build the bad plugins"),
        arguments: ["MISSING_FILE", "NO_SYMBOL", "WRONG_VERSION", "PAUSE_ONLY"])
    func badPlugin(_ variant: String) throws {
        let dir = try temporaryDirectory("plugin-bad")
        let path = variant == "MISSING_FILE" ? dir.path + "/missing.so" : try PluginFixtures.badPlugin(variant, in: dir.path)
        for command in ["run", "conformance"] {
            let r = try DMABenchBinary.run([command, "--backend", "plugin:\(path)"])
            #expect(r.status == 64, "\(command) \(variant): status \(r.status), stderr: \(r.stderr)")
            let lines = r.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(command) \(variant): \(r.stderr)")
            #expect(r.stderr.contains(path), "\(command) \(variant): \(r.stderr)")
        }
    }
}
