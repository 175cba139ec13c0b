// dmabench — CLITests
//
// What a first run shows: a table that fits a terminal, and the result, its plots and its
// HTML report beside it, each named on stderr.

import Foundation
import Testing

@Suite("First run")
struct FirstRunTests {
    @Test("run prints a one-screen table and writes the result, the plots and the HTML report, naming them")
    func oneScreenAndFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dmabench-first-run-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("r.json").path
        let r = try DMABenchBinary.run([
            "run", "--backend", "cpu,locked,ring", "--size", "64,4K", "--repetitions", "1", "--duration", "0.05", "--pace", "4096000,0",
            "--periods", "4", "--events", "software", "--output", out,
        ])
        #expect(r.status == 0 || r.status == 75, "\(r.stderr.suffix(2000))")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count <= 60, "\(lines.count) lines on stdout:\n\(r.stdout)")
        #expect(lines.allSatisfy { $0.count <= 120 }, "a line wider than 120 columns:\n\(r.stdout)")
        #expect(r.stdout.contains("terminateSync") && r.stdout.contains("cyclic"), "\(r.stdout)")
        #expect(r.stderr.contains("result: \(out)"))
        let html = dir.appendingPathComponent("r.html").path
        #expect(FileManager.default.fileExists(atPath: html) && r.stderr.contains("wrote \(html)"), "\(r.stderr.suffix(1500))")
        let pngs = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".png") }
        #expect(pngs.contains("r-throughput.png") && pngs.contains("r-period-latency.png"), "\(pngs)")
        for p in pngs { #expect(r.stderr.contains(p), "\(p) is not named on stderr") }
    }
}
