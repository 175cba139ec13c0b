// dmabench — CLITests
//
// `run --callbacks`: the choice reaches the channel and the result records it; without it
// the result says nothing (each backend's default, `dmabench list backends`).

import Foundation
import TestHelpers
import Testing

@Suite(.serialized)
struct CallbackContextCLITests {
    func run(_ extra: [String], _ name: String) throws -> [String: Any] {
        let dir = try temporaryDirectory("callbacks-\(name)")
        let out = dir.appendingPathComponent("r.json").path
        let r = try DMABenchBinary.run([
            "run", "--backend", "ring,locked", "--workload", "throughput", "--size", "4K", "--repetitions", "1",
            "--duration", "0.05", "--events", "none", "--format", "json", "--no-plot", "--output", out,
        ] + extra)
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let doc = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any])
        let points = try #require(doc["points"] as? [[String: Any]])
        #expect(points.count == 2)
        for p in points {
            let m = try #require(p["metrics"] as? [String: Any])
            #expect((m["errors"] as? Int ?? -1) == 0, "\(p["backend"] ?? "?"): errors")
            let rate = (m["descriptorsPerSecond"] as? [String: Any])?["median"] as? Double ?? 0
            #expect(rate > 0, "\(p["backend"] ?? "?"): nothing completed")
        }
        return try #require(doc["context"] as? [String: Any])
    }

    @Test("--callbacks executor|engine|client-poll runs and is recorded; the default records nothing",
          arguments: [("executor", "executorThread"), ("engine", "engineThread"), ("client-poll", "clientPoll")])
    func recorded(_ c: (String, String)) throws {
        let context = try run(["--callbacks", c.0], c.0)
        #expect(context["callbackContext"] as? String == c.1)
    }

    @Test func defaultRecordsNothing() throws {
        let context = try run([], "default")
        #expect(context["callbackContext"] == nil || context["callbackContext"] is NSNull)
    }
}
