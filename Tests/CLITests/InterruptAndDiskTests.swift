// dmabench — CLITests
//
// Nothing is lost: Ctrl-C in the middle of a sweep leaves a valid result file holding every
// completed point; a full disk gives an error and leaves the previous result file intact.

import Foundation
import Platform
import Testing

func temporaryDirectory(_ tag: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dmabench-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

@Suite("Interrupt and disk full", .serialized)
struct InterruptAndDiskTests {
    @Test func sigintKeepsEveryCompletedPoint() throws {
        let dir = try temporaryDirectory("sigint")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("r.json").path
        // A sweep far longer than the test: 40 points of 0.3 s × 3 repetitions. Started with
        // posix_spawn and an empty signal mask (Foundation's Process leaves SIGINT blocked in
        // the child, so Ctrl-C would never arrive).
        let args = ["run", "--backend", "locked", "--workload", "throughput", "--size", "64,128,256,512,1K,2K,4K,8K,16K,32K",
                       "--batch", "1,32", "--depth", "32,256", "--repetitions", "3", "--duration", "0.3", "--events", "none",
                       "--output", out]
        let child = try ChildProcess.start(DMABenchBinary.url.path, args)
        // Wait until at least two points are on disk, then interrupt.
        let start = Date()
        var points = 0
        while Date().timeIntervalSince(start) < 60 {
            if let d = FileManager.default.contents(atPath: out),
               let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
               let pts = o["points"] as? [Any] {
                points = pts.count
                if points >= 2 { break }
            }
            usleep(50_000)
        }
        #expect(points >= 2, "no point reached the file within 60 s")
        child.signal(SIGINT)
        let status = child.wait()
        #expect(status == 130)
        let data = try #require(FileManager.default.contents(atPath: out))
        let doc = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let ctx = try #require(doc["context"] as? [String: Any])
        #expect(ctx["complete"] as? Bool == false)
        #expect((ctx["incompleteReason"] as? String ?? "").contains("interrupted"))
        let kept = (doc["points"] as? [Any])?.count ?? 0
        #expect(kept >= points, "the file lost points: \(kept) < \(points)")
        #expect(kept < 40, "the sweep was not interrupted")
    }

    @Test(.enabled(if: geteuid() == 0, "mounting a small tmpfs needs root"))
    func fullDiskKeepsThePreviousFile() throws {
        let dir = try temporaryDirectory("full")
        defer {
            _ = try? DMABenchBinary.runTool("/bin/umount", [dir.path])
            try? FileManager.default.removeItem(at: dir)
        }
        let mount = try DMABenchBinary.runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=12k", "tmpfs", dir.path])
        try #require(mount == 0, "mount -t tmpfs failed")
        let out = dir.appendingPathComponent("r.json").path
        let previous = Data("{\"previous\": true}".utf8)
        try previous.write(to: URL(fileURLWithPath: out))
        // Fill the rest of the tmpfs so that the new result cannot be written.
        let filler = dir.appendingPathComponent("filler").path
        try #require(FileManager.default.createFile(atPath: filler, contents: Data(count: 8 * 1024)), "cannot write the filler")
        let r = try DMABenchBinary.run([
            "run", "--backend", "locked", "--workload", "throughput,latency", "--size", "64,4K", "--repetitions", "2", "--duration", "0.05",
            "--events", "none", "--output", out,
        ])
        #expect(r.status == 73, "status \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("cannot write"), "\(r.stderr)")
        #expect(FileManager.default.contents(atPath: out) == previous, "the previous result file changed")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp") }
        #expect(leftovers.isEmpty, "temporary files left: \(leftovers)")
    }
}

extension DMABenchBinary {
    static func runTool(_ path: String, _ args: [String]) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }
}

/// A child started with posix_spawn(3): empty signal mask, default SIGINT, output discarded.

/// `--plot` finds Scripts/plot.py beside the executable's package, not in the working
/// directory: started from an empty temporary directory, it still draws the plots.
@Test(.enabled(if: hasMatplotlib, "matplotlib is not installed (Scripts/setup.sh installs it)"))
func plotWorksFromAnotherDirectory() throws {
    let dir = try temporaryDirectory("plot")
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("r.json").path
    let r = try DMABenchBinary.run(
        ["run", "--backend", "locked", "--workload", "throughput", "--size", "64", "--repetitions", "1", "--duration", "0.05",
         "--events", "none", "--output", out, "--plot"], directory: dir)
    #expect(r.status == 0, "\(r.stderr)")
    let pngs = (try FileManager.default.contentsOfDirectory(atPath: dir.path)).filter { $0.hasSuffix(".png") }
    #expect(pngs.contains("r-throughput.png"), "plots written: \(pngs); stderr: \(r.stderr)")
}

let hasMatplotlib: Bool = {
    guard let r = try? DMABenchBinary.runTool("/usr/bin/env", ["python3", "-c", "import matplotlib"]) else { return false }
    return r == 0
}()
