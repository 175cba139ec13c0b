// dmabench — command line: `dmabench conformance`
//
// Runs the docs/contract.md part B suite (DMAEngineTestSupport) against registered backends and
// prints one dmatest-style summary line per scenario (tests, failures, iops, KB/s, return
// code). `--soak 10m` repeats the race scenarios with random timing for as long as asked.

import ArgumentParser
import DMABackends
import DMAEngine
import DMAEngineTestSupport
import Foundation
import Harness
import Platform

struct ConformanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance", abstract: "Run the docs/contract.md part B conformance suite against backends.")

    @Option(help: "Backends, comma-separated, or 'all'; plugin:PATH[:NAME] loads an engine from a C shared object.")
    var backend: String = "all"

    @Option(parsing: .unconditional, help: "Iterations of each race scenario (default 10000).")
    var iterations: Int?

    @Option(help: "Scenario numbers to run, comma-separated (default: all 38).")
    var scenario: String?

    @Option(help: "Soak: repeat the race scenarios (15, 19, 20, 21, 34, 38) with random timing for this long, e.g. 90s, 10m, 1h.")
    var soak: String?

    @Option(help: "Random seed (default: fixed, or random in soak and fuzz mode). With --fuzz, the seed a failure printed replays its trial first.")
    var seed: UInt64?

    @Option(help: "Run the random-client contract checker for this long per backend instead of the scenarios, e.g. 60s, 10m (docs/contract.md, part D).")
    var fuzz: String?

    @Option(parsing: .unconditional, help: "Leak check instead of the suite: create and release N channels per backend; open fds and threads must return to the baseline.")
    var leaks: Int?

    static let raceScenarios = [15, 19, 20, 21, 34, 38]

    func run() throws {
        let requested = backend == "all" ? [] : try BackendArguments.resolve(backend)
        let registry = BackendRegistry.names
        var backends: [String] = []
        if backend == "all" {
            backends = registry
        } else {
            for b in requested {
                guard registry.contains(b) else {
                    throw CLIError.usage("unknown backend '\(b)'; valid backends: \(registry.joined(separator: ", ")), all")
                }
                backends.append(b)
            }
        }
        var config = ConformanceConfiguration.standard()
        if let n = iterations {
            guard n >= 1, n <= 100_000_000 else { throw CLIError.usage("invalid iterations \(n): must be from 1 to 100000000") }
            config.iterations = n
        }
        if let s = seed { config.seed = s }
        var numbers: [Int]?
        if let s = scenario {
            numbers = try ListParser.positiveInts(s, name: "scenario", max: ConformanceScenario.all.count)
        }
        var soakSeconds: Double?
        if let s = soak {
            guard let v = Self.parseDuration(s), v > 0 else {
                throw CLIError.usage("invalid soak duration '\(s)': expected a number with s, m or h, e.g. 90s, 10m, 1h")
            }
            soakSeconds = v
        }
        var fuzzSeconds: Double?
        if let s = fuzz {
            guard let v = Self.parseDuration(s), v > 0 else {
                throw CLIError.usage("invalid fuzz duration '\(s)': expected a number with s, m or h, e.g. 60s, 10m")
            }
            guard soak == nil, scenario == nil, leaks == nil else {
                throw CLIError.usage("--fuzz runs the checker alone: it cannot be combined with --soak, --scenario or --leaks")
            }
            fuzzSeconds = v
        }
        if let n = leaks {
            guard n >= 1, n <= 1_000_000 else { throw CLIError.usage("invalid leaks \(n): must be from 1 to 1000000 channels") }
            try leakCheck(backends: backends, channels: n)
            return
        }
        installInterruptHandler()
        var anyFailed = false
        for name in backends {
            guard let entry = BackendRegistry.entry(named: name) else { continue }
            if let why = entry.unavailableReason() {
                Console.note("skipping backend \(name): \(why)")
                print("\(name): skipped: \(why)")
                continue
            }
            let subject = ConformanceSubject(name: name) { o in try entry.make(o) }
            if let fuzzSeconds {
                anyFailed = fuzzRun(name: name, subject: subject, seconds: fuzzSeconds) || anyFailed
            } else if let soakSeconds {
                anyFailed = try soakRun(name: name, subject: subject, config: config, seconds: soakSeconds) || anyFailed
            } else {
                let results = checkDMAChannelConformance(subject: subject, configuration: config, scenarios: numbers) { r in
                    print(Self.summaryLine(backend: name, r))
                    for n in r.notes { print("  \(n)") }
                    if r.failed { for f in r.failures.prefix(32) { print("  \(f)") } }
                    fflush(nil)  // one line per scenario as it finishes, also into a file or pipe
                }
                print("\(name): \(conformanceSummary(results))")
                if results.contains(where: \.failed) { anyFailed = true }
            }
            if StopFlag.isSet { break }
        }
        if StopFlag.isSet { throw CLIError(message: "interrupted (SIGINT)", status: 130) }
        if anyFailed { throw CLIError(message: "conformance failures (see above)", status: 1) }
    }

    /// The dmatest summary line for one scenario (docs/contract.md C.4).
    static func summaryLine(backend: String, _ r: ScenarioResult) -> String {
        if case .skipped(let why) = r.outcome { return "\(backend)-s\(r.number): skipped (\(r.name)): \(why)" }
        let failures = r.failures.count
        let s = DMATestSummary(
            thread: "\(backend)-s\(r.number)", tests: max(r.iterations, 1), failures: failures, bytes: r.bytesCopied,
            nanoseconds: UInt64(r.duration * 1e9), result: failures == 0 ? 0 : -5)
        return s.line + " \(r.name)"
    }

    func soakRun(name: String, subject: ConformanceSubject, config: ConformanceConfiguration, seconds: Double) throws -> Bool {
        var cfg = config
        cfg.soakDuration = nil
        let start = MonotonicClock.now()
        var rounds = 0, tests = 0, failures = 0
        var failed = false
        var rng = SystemRandomNumberGenerator()
        Console.note("soak \(name) for \(Int(seconds)) s: scenarios \(Self.raceScenarios.map(String.init).joined(separator: ","))")
        while Double(MonotonicClock.now() - start) / 1e9 < seconds && !StopFlag.isSet {
            cfg.seed = seed ?? rng.next()
            for n in Self.raceScenarios {
                if StopFlag.isSet { break }
                let r = runConformanceScenario(n, subject: subject, configuration: cfg)
                tests += max(r.iterations, 1)
                failures += r.failures.count
                print(Self.summaryLine(backend: name, r) + " (round \(rounds + 1), seed \(cfg.seed))")
                fflush(nil)
                if r.failed {
                    failed = true
                    for f in r.failures.prefix(32) { print("  \(f)") }
                }
            }
            rounds += 1
        }
        let elapsed = Double(MonotonicClock.now() - start) / 1e9
        print("\(name): soak \(String(format: "%.0f", elapsed)) s, \(rounds) rounds, \(tests) iterations, \(failures) failures")
        return failed
    }

    /// The random-client checker for `seconds`; one progress line every 10 s on stderr.
    func fuzzRun(name: String, subject: ConformanceSubject, seconds: Double) -> Bool {
        var cfg = ContractFuzzConfiguration(duration: seconds)
        var rng = SystemRandomNumberGenerator()
        cfg.seed = seed ?? rng.next()
        if ConformanceConfiguration.isThreadSanitizerActive { cfg.watchdogSeconds *= 3 }
        Console.note("fuzz \(name) for \(Int(seconds)) s, seed \(cfg.seed)")
        let start = MonotonicClock.now()
        var lastNote = start
        let report = checkContractFuzz(subject: subject, configuration: cfg) { trials in
            let now = MonotonicClock.now()
            if now - lastNote >= 10_000_000_000 {
                lastNote = now
                Console.note("fuzz \(name): \(trials) trials, \(Int(Double(now - start) / 1e9)) s of \(Int(seconds)) s")
            }
        }
        print(report.description)
        fflush(nil)
        return !report.passed && report.skipped == nil
    }

    /// Creates and releases `channels` channels per backend, using every tenth for a real
    /// copy and terminate, and checks that /proc/self/fd and /proc/self/task return to the
    /// baseline. Threads the kernel owns (io_uring's SQPOLL thread and io-wq workers) exit
    /// asynchronously after the ring is closed, so the check waits up to 2 s for them.
    func leakCheck(backends: [String], channels: Int) throws {
        func count(_ dir: String) -> Int { (try? FileManager.default.contentsOfDirectory(atPath: dir).count) ?? -1 }
        var leaked = false
        for name in backends {
            guard let entry = BackendRegistry.entry(named: name) else { continue }
            if let why = entry.unavailableReason() {
                print("\(name): leak check skipped: \(why)")
                continue
            }
            do {
                // A warm-up channel: one-time allocations are not leaks.
                try entry.make(DMAChannelOptions(poolSize: 64)).release()
                // Let the warm-up's kernel-owned threads (SQPOLL, io-wq) exit before the baseline.
                var th0 = count("/proc/self/task")
                let settle = MonotonicClock.now()
                while MonotonicClock.now() - settle < 2_000_000_000 {
                    MonotonicClock.sleep(nanoseconds: 20_000_000)
                    let t = count("/proc/self/task")
                    if t == th0 { break }
                    th0 = t
                }
                let fd0 = count("/proc/self/fd")
                for i in 0..<channels {
                    let ch = try entry.make(DMAChannelOptions(poolSize: 64))
                    if i % 10 == 0 {
                        let buf = try ch.allocateCoherent(byteCount: 4096)
                        if let d = ch.prepareMemcpy(to: buf.base + 2048, from: buf.base, length: 64, flags: .default) {
                            _ = ch.submitAndIssue(d)
                        }
                        try ch.terminateSync()
                        ch.freeCoherent(buf)
                    }
                    try ch.release()
                }
                var fd1 = count("/proc/self/fd"), th1 = count("/proc/self/task")
                let t0 = MonotonicClock.now()
                while (fd1 > fd0 || th1 > th0) && MonotonicClock.now() - t0 < 2_000_000_000 {
                    MonotonicClock.sleep(nanoseconds: 10_000_000)
                    fd1 = count("/proc/self/fd")
                    th1 = count("/proc/self/task")
                }
                // Fewer threads than the baseline is not a leak (a kernel thread of the warm-up
                // channel may exit late); more is.
                let ok = fd1 <= fd0 && th1 <= th0
                leaked = leaked || !ok
                print("\(name): \(channels) channels created and released: fds \(fd0) -> \(fd1), threads \(th0) -> \(th1): \(ok ? "no leak" : "LEAK")")
            } catch {
                leaked = true
                print("\(name): leak check failed: \(error)")
            }
        }
        if leaked { throw CLIError(message: "resources leaked (see above)", status: 1) }
    }

    static func parseDuration(_ s: String) -> Double? {
        var t = Substring(s.trimmingCharacters(in: .whitespaces))
        var mult = 1.0
        if t.hasSuffix("ms") { mult = 0.001; t = t.dropLast(2) }
        else if t.hasSuffix("s") { t = t.dropLast() }
        else if t.hasSuffix("m") { mult = 60; t = t.dropLast() }
        else if t.hasSuffix("h") { mult = 3600; t = t.dropLast() }
        guard let v = Double(t), v.isFinite else { return nil }
        return v * mult
    }
}
