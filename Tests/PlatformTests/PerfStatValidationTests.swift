// dmabench — PlatformTests
//
// Our counters against `perf stat` (linux-perf) on the same thread over the same window.

#if os(Linux)
import Glibc
import Platform
import Testing

enum PerfTool {
    static let path: String? = ["/usr/bin/perf", "/usr/local/bin/perf"].first { access($0, X_OK) == 0 }
    static var installed: Bool { path != nil }
}

/// A control FIFO pair for `perf stat --control fifo:ctl,ack`, opened without blocking so that
/// a perf that fails to start cannot hang the test.
private final class PerfControl {
    let dir: String
    var ctlFD: Int32 = -1
    var ackFD: Int32 = -1

    init() throws {
        var template = Array("/tmp/dmabench-perfctl-XXXXXX".utf8CString)
        guard let d = mkdtemp(&template) else { throw SystemError("mkdtemp", errno: errno) }
        dir = String(cString: d)
        for name in ["ctl", "ack"] where mkfifo(dir + "/" + name, 0o600) != 0 {
            throw SystemError("mkfifo", errno: errno)
        }
    }

    var ctlPath: String { dir + "/ctl" }
    var ackPath: String { dir + "/ack" }

    /// Opens both ends once perf has opened its side (up to 10 s).
    func connect() throws {
        ackFD = open(ackPath, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard ackFD >= 0 else { throw SystemError("open(ack fifo)", errno: errno) }
        for _ in 0..<1000 {
            ctlFD = open(ctlPath, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            if ctlFD >= 0 { return }
            guard errno == ENXIO else { throw SystemError("open(ctl fifo)", errno: errno) }
            MonotonicClock.sleep(nanoseconds: 10_000_000)
        }
        throw SystemError("open(ctl fifo): perf did not open it within 10 s", errno: ENXIO)
    }

    /// Sends a command ("enable", "disable") and waits for perf's "ack" (up to 10 s).
    func send(_ command: String) throws {
        let line = Array((command + "\n").utf8)
        guard write(ctlFD, line, line.count) == line.count else { throw SystemError("write(ctl fifo)", errno: errno) }
        var got: [UInt8] = []
        let deadline = MonotonicClock.now() + 10_000_000_000
        while !String(decoding: got, as: UTF8.self).contains("ack\n") {
            guard MonotonicClock.now() < deadline else { throw SystemError("perf did not ack '\(command)'", errno: ETIMEDOUT) }
            var pfd = pollfd(fd: ackFD, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, 100)
            var buf = [UInt8](repeating: 0, count: 64)
            let n = read(ackFD, &buf, buf.count)
            if n > 0 { got += buf[0..<n] }
        }
    }

    deinit {
        if ctlFD >= 0 { close(ctlFD) }
        if ackFD >= 0 { close(ackFD) }
        unlink(ctlPath)
        unlink(ackPath)
        rmdir(dir)
    }
}


/// A whole small text file.
private func readText(_ path: String) -> String? {
    guard let f = fopen(path, "r") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n == 0 { break }
        bytes += buf[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

@Suite("Counters against perf stat")
struct PerfStatValidationTests {
    /// perf stat -x, lines: value,unit,event,run-time,percentage,...
    static func parse(_ csv: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in csv.split(separator: "\n") where !line.hasPrefix("#") {
            let f = line.split(separator: ",", omittingEmptySubsequences: false)
            guard f.count >= 3, let v = Double(f[0]) else { continue }
            let name = f[2].split(separator: ":").first.map(String.init) ?? String(f[2])
            out[name] = f[1] == "msec" ? v * 1_000_000 : v  // task-clock comes in msec; ours is ns
        }
        return out
    }

    @Test("task-clock and context-switches agree with perf stat within 5% on the same thread and window",
          .enabled(if: PerfTool.installed, "perf (linux-perf) is not installed"),
          .enabled(if: PerfProbe.softwareEventsWork, "perf_event_open(task-clock) fails here"))
    func matchesPerfStat() throws {
        // The worker is parked before and after its work, so a window that opens before `go`
        // and closes after it has parked again sees all of the work and nothing else, for
        // both perf and us.
        let go = ParkingEvent(), done = ParkingEvent(), exit = ParkingEvent()
        let worker = try OSThread(name: "perfstat-work") {
            go.wait(spinNanoseconds: 0)
            _ = busyWindow(spinMilliseconds: 60, pages: 16, sleeps: 10)
            done.signal()
            exit.wait(spinNanoseconds: 0)
        }
        defer { exit.signal(); worker.join() }
        let tid = worker.threadID

        let control = try PerfControl()
        let output = control.dir + "/stat.csv"
        let perf = try ChildProcess.start(PerfTool.path!, [
            "stat", "-t", "\(tid)", "-e", "task-clock,context-switches", "-x", ",", "-o", output,
            "--control", "fifo:\(control.ctlPath),\(control.ackPath)", "-D", "-1"])
        try control.connect()

        let session = try PerfCounterSession(events: ["task-clock", "context-switches"], target: .thread(id: tid))
        try control.send("enable")
        session.start()
        go.signal()
        done.wait(spinNanoseconds: 0)
        MonotonicClock.sleep(nanoseconds: 20_000_000)  // let the worker park (its last switch)
        session.stop()
        try control.send("disable")
        perf.stop(with: SIGINT)

        let csv = try #require(readText(output), "perf stat wrote no \(output)")
        let theirs = Self.parse(csv)
        let ours = session.read()
        let ourTC = try #require(ours[0].scaled, "\(ours)")
        let perfTC = try #require(theirs["task-clock"], "perf stat output: \(csv)")
        #expect(ourTC >= 50_000_000, "the worker spun 60 ms of CPU time; task-clock \(ourTC) ns")
        #expect(abs(ourTC - perfTC) <= 0.05 * perfTC, "task-clock: ours \(ourTC) ns, perf \(perfTC) ns")
        // Without kernel-mode counting, perf reports context-switches:u (always 0) and we
        // refuse it; that refusal is checked in CounterSessionTests.
        guard kernelCountingAllowed else { return }
        let ourCS = try #require(ours[1].scaled, "\(ours)")
        let perfCS = try #require(theirs["context-switches"], "perf stat output: \(csv)")
        // At least the 10 sleeps plus the final park; preemptions on a loaded machine add to
        // both counts alike. One switch of slack covers a park that lands at a window edge.
        #expect(ourCS >= 11, "context-switches \(ourCS)")
        #expect(abs(ourCS - perfCS) <= max(1, 0.05 * perfCS), "context-switches: ours \(ourCS), perf \(perfCS)")
    }
}
#endif
