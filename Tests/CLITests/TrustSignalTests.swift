// dmabench — CLITests
//
// Trust signals end to end: a run beside two busy loops is flagged with its reason, counted
// in the summary, and fails under --strict with 75; `env --check` lists the settings;
// `env --round-trip` prints one JSON line.

import Foundation
import Testing

@Suite("Trust signals", .serialized)
struct TrustSignalTests {
    /// Busy loops, one per online CPU, killed when the closure returns.
    static func withBusyLoops<T>(_ body: () throws -> T) throws -> T {
        var loops: [Process] = []
        for _ in 0..<ProcessInfo.processInfo.activeProcessorCount {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            // Bounded on their own too (about a minute here), should the test process die
            // before its defer runs.
            p.arguments = ["-c", "i=0; while [ $i -lt 50000000 ]; do i=$((i+1)); done"]
            try p.run()
            loops.append(p)
        }
        defer {
            for p in loops {
                // SIGKILL: a child spawned from a test thread inherits its blocked signals,
                // and SIGTERM stays blocked in the shell.
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
        }
        return try body()
    }

    static func tempFile(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("dmabench-trust-\(getpid())-\(name)").path
    }

    @Test("a run beside busy loops flags its points with the reason, counts them, and --strict exits 75 with the result saved")
    func busyLoopsAreFlagged() throws {
        let out = Self.tempFile("busy.json")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let args = ["run", "--backend", "cpu", "--workload", "throughput", "--size", "64", "--repetitions", "3", "--duration", "0.2",
                    "--events", "none", "--output", out, "--strict"]
        let r = try Self.withBusyLoops { try DMABenchBinary.run(args) }
        #expect(r.status == 75, "stderr: \(r.stderr)")
        #expect(r.stderr.contains("interference: cpu throughput"), "\(r.stderr)")
        #expect(r.stderr.contains("background CPU"), "\(r.stderr)")
        #expect(r.stderr.contains("1 of 1 points flagged for interference"), "\(r.stderr)")
        #expect(r.stderr.contains("--strict: 1 point flagged"), "\(r.stderr)")
        #expect(r.stdout.contains("! cpu") && r.stdout.contains("flagged for interference"), "\(r.stdout)")
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as! [String: Any]
        let ctx = doc["context"] as! [String: Any]
        #expect(ctx["flaggedPoints"] as? Int == 1)
        #expect((ctx["machine"] as? [[String: Any]])?.isEmpty == false)
        let env = ((doc["points"] as! [[String: Any]])[0])["environment"] as! [String: Any]
        #expect(env["interference"] as? Bool == true)
        #expect((env["backgroundCPU"] as? Double ?? 0) > 0.05, "\(env)")
        #expect((env["reasons"] as? [String])?.first?.contains("background CPU") == true)
    }

    @Test("env --check lists every setting with its value or why it is unknown, and changes nothing without --apply")
    func envCheck() throws {
        let r = try DMABenchBinary.run(["env", "--check"])
        #expect(r.status == 0, "\(r.stderr)")
        for name in ["cpufreq governor", "boost/turbo", "SMT", "isolcpus", "nohz_full", "clock source", "transparent huge pages",
                     "perf_event_paranoid", "load average", "virtual machine"] {
            #expect(r.stdout.contains(name), "\(name) missing from:\n\(r.stdout)")
        }
        #expect(r.stdout.contains("--apply"), "says what --apply would do")
        let bad = try DMABenchBinary.run(["env", "--apply"])
        #expect(bad.status == 64 && bad.stderr.contains("--apply needs --check"))
    }

    @Test("env --round-trip prints one JSON line", .enabled(if: ProcessInfo.processInfo.activeProcessorCount > 1, "a round trip needs two CPUs"))
    func roundTrip() throws {
        let r = try DMABenchBinary.run(["env", "--round-trip", "--cpus", "0,1"])
        #expect(r.status == 0, "\(r.stderr)")
        let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
        #expect((obj["roundTripNs"] as? Double ?? 0) > 0)
        #expect(obj["cpus"] as? [Int] == [0, 1])
        let bad = try DMABenchBinary.run(["env", "--round-trip", "--cpus", "0,0"])
        #expect(bad.status == 64 && bad.stderr.contains("invalid cpus '0,0'"))
    }
}
