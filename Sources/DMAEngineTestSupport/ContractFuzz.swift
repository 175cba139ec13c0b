// dmabench — DMAEngineTestSupport
//
// The random-client checker (docs/contract.md, part D): where the 38 scenarios each run one
// pattern, it runs random valid client programs (1–4 threads; memcpy, memset and cyclic
// transfers of 1 B–1 MiB; pause windows; terminates from the client and from callbacks;
// REUSE; callbacks that resubmit behind a stop gate) and checks the recorded history
// against a model of the contract. Use it from any backend's tests as the suite is used:
//
//     let report = checkContractFuzz(subject: ConformanceSubject(name: "mine") { try MyChannel(options: $0) })
//     #expect(report.failure == nil, "\(report)")
//
// A failure carries its seed and the smallest failing program that shrinking found;
// `dmabench conformance --fuzz 10s --seed N --backend B` replays it.

#if os(Linux)
import DMAEngine
import Glibc
import Platform
import Synchronization

public struct ContractFuzzConfiguration: Sendable {
    /// The seed of the first trial; trial k uses a seed derived from it. A failure prints the
    /// seed of its trial, and passing that seed here replays the trial first.
    public var seed: UInt64
    /// How long to run trials, in seconds (the budget; a failing trial ends the run early).
    public var duration: Double
    /// Client threads per trial: 1 to this many.
    public var maxThreads: Int
    /// Operations per client thread in a trial: a quarter of this to this many.
    public var maxOperations: Int
    /// Freed buffers are PROT_NONE (a late engine write faults after the probe has printed
    /// the seed). Off, late writes are found by the access probe and the poison check.
    public var protectFreedBuffers: Bool
    /// A trial that makes no progress for this long has hung; so has a transfer that takes
    /// longer to complete at the end of a trial.
    public var watchdogSeconds: Double
    /// How long shrinking may take, in seconds.
    public var shrinkSeconds: Double
    /// Stop after this many trials (nil: run for `duration`).
    public var maxTrials: Int?

    public init(
        seed: UInt64 = 0xD1A_5EED, duration: Double = 60, maxThreads: Int = 4, maxOperations: Int = 40,
        protectFreedBuffers: Bool = true, watchdogSeconds: Double = 10, shrinkSeconds: Double = 30, maxTrials: Int? = nil
    ) {
        self.seed = seed
        self.duration = duration
        self.maxThreads = maxThreads
        self.maxOperations = maxOperations
        self.protectFreedBuffers = protectFreedBuffers
        self.watchdogSeconds = watchdogSeconds
        self.shrinkSeconds = shrinkSeconds
        self.maxTrials = maxTrials
    }

    /// The seed of trial `k`.
    public func trialSeed(_ k: Int) -> UInt64 {
        if k == 0 { return seed }
        var r = ConformanceRandom(seed: seed ^ UInt64(k) &* 0x9E37_79B9_7F4A_7C15)
        return r.next()
    }
}

/// A failing trial, shrunk.
public struct ContractFuzzFailure: Sendable {
    /// The seed of the failing trial: `--seed` replays its program.
    public var seed: UInt64
    /// One line (or a few) per violated rule, each with the events involved.
    public var violations: [String]
    /// The smallest failing program found, one line per client thread.
    public var program: String
    public var threads: Int
    public var operations: Int
    /// The original program's size, before shrinking.
    public var originalThreads: Int
    public var originalOperations: Int
    /// The history of the smallest failing trial: every event if there are at most 80,
    /// else the first 20 and the last 60.
    public var history: [String] = []
}

public struct ContractFuzzReport: Sendable, CustomStringConvertible {
    public var subject: String
    public var trials: Int
    public var operations: Int
    public var pauseWindows: Int
    public var callbacks: Int
    /// Callbacks of plain transfers that ran while the channel was paused, every one of them
    /// for a cookie that had completed before pause returned (P1 allows those).
    public var callbacksWhilePaused = 0
    public var duration: Double
    /// Seconds from the start to the end of the first failing trial.
    public var timeToDetection: Double?
    public var failure: ContractFuzzFailure?
    /// Why the checker did not run (a hand-driven double).
    public var skipped: String?

    public var passed: Bool { failure == nil && skipped == nil }

    public var description: String {
        if let s = skipped { return "\(subject): fuzz skipped: \(s)" }
        let head = "\(subject): \(trials) trials, \(operations) operations, \(pauseWindows) pause windows, \(callbacks) callbacks (\(callbacksWhilePaused) while paused) in \(format3(duration)) s"
        guard let f = failure else { return head + ": passed" }
        var lines = [head + ": FAILED after \(format3(timeToDetection ?? duration)) s, seed \(f.seed)"]
        lines.append("  replay: dmabench conformance --fuzz 10s --seed \(f.seed) --backend \(subject)")
        lines.append("  shrunk from \(f.originalThreads) threads, \(f.originalOperations) operations to \(f.threads) threads, \(f.operations) operations:")
        lines.append(f.program)
        for v in f.violations.prefix(8) { lines.append("  " + v) }
        if f.violations.count > 8 { lines.append("  … and \(f.violations.count - 8) more") }
        if !f.history.isEmpty {
            lines.append("  history of the smallest failing trial ([invocation…response] thread operation):")
            for h in f.history { lines.append("    " + h) }
        }
        return lines.joined(separator: "\n")
    }
}

/// What one trial found.
struct FuzzTrialOutcome {
    var violations: [String]
    /// The trial's history, one line per event (kept for failing trials only).
    var history: [String] = []
    var operations: Int
    var pauses: Int
    var callbacks: Int
    var callbacksWhilePaused = 0
}

/// Runs the random-client checker against `subject` for `configuration.duration` seconds.
/// `progress` is called after each trial with the trials run so far.
public func checkContractFuzz(
    subject: ConformanceSubject, configuration: ContractFuzzConfiguration = .init(), progress: ((Int) -> Void)? = nil
) -> ContractFuzzReport {
    var report = ContractFuzzReport(
        subject: subject.name, trials: 0, operations: 0, pauseWindows: 0, callbacks: 0, duration: 0)
    if subject.isHandDriven {
        report.skipped = "\(subject.name) is hand-driven: the checker needs an engine running concurrently with its clients"
        return report
    }
    let caps: DMACapabilities
    do {
        let probe = try subject.makeChannel(DMAChannelOptions())
        caps = probe.capabilities
        try probe.release()
    } catch {
        report.failure = ContractFuzzFailure(
            seed: configuration.seed, violations: ["could not create a channel: \(error)"], program: "", threads: 0,
            operations: 0, originalThreads: 0, originalOperations: 0)
        return report
    }
    let start = MonotonicClock.now()
    func elapsed() -> Double { Double(MonotonicClock.now() &- start) / 1e9 }
    var k = 0
    while elapsed() < configuration.duration || k == 0 {
        if let m = configuration.maxTrials, k >= m { break }
        let program = FuzzProgram.generate(
            seed: configuration.trialSeed(k), capabilities: caps, maxThreads: configuration.maxThreads,
            maxOperations: configuration.maxOperations)
        let outcome = runFuzzTrial(program, subject: subject, configuration: configuration)
        k += 1
        report.trials = k
        report.operations += outcome.operations
        report.pauseWindows += outcome.pauses
        report.callbacks += outcome.callbacks
        report.callbacksWhilePaused += outcome.callbacksWhilePaused
        progress?(k)
        if !outcome.violations.isEmpty {
            report.timeToDetection = elapsed()
            report.failure = shrink(program, outcome, subject: subject, configuration: configuration)
            break
        }
    }
    report.duration = elapsed()
    return report
}

/// Tries smaller programs (fewer threads, fewer operations) until none of them fails within
/// three runs each, or the shrinking budget is spent.
func shrink(
    _ program: FuzzProgram, _ outcome: FuzzTrialOutcome, subject: ConformanceSubject, configuration: ContractFuzzConfiguration
) -> ContractFuzzFailure {
    var best = program
    var bestOutcome = outcome
    let start = MonotonicClock.now()
    func spent() -> Bool { Double(MonotonicClock.now() &- start) / 1e9 > configuration.shrinkSeconds }
    var improved = true
    while improved && !spent() {
        improved = false
        for candidate in best.shrinkCandidates() {
            if spent() { break }
            var found: FuzzTrialOutcome?
            for _ in 0..<3 {
                let o = runFuzzTrial(candidate, subject: subject, configuration: configuration)
                if !o.violations.isEmpty {
                    found = o
                    break
                }
            }
            if let found {
                best = candidate
                bestOutcome = found
                improved = true
                break
            }
        }
    }
    let h = bestOutcome.history
    return ContractFuzzFailure(
        seed: program.seed, violations: bestOutcome.violations, program: best.listing, threads: best.threads.count,
        operations: best.operationCount, originalThreads: program.threads.count, originalOperations: program.operationCount,
        history: h.count <= 80 ? h : Array(h.prefix(20)) + ["…"] + Array(h.suffix(60)))
}

/// Runs one program on a fresh channel, under a watchdog: a trial whose history does not
/// move for `watchdogSeconds` has hung (its threads and channel are abandoned).
func runFuzzTrial(
    _ program: FuzzProgram, subject: ConformanceSubject, configuration: ContractFuzzConfiguration
) -> FuzzTrialOutcome {
    let channel: any DMAChannel
    do {
        var options = DMAChannelOptions(poolSize: 512)
        options.spinNanoseconds = 20_000
        channel = try subject.makeChannel(options)
    } catch {
        return FuzzTrialOutcome(violations: ["could not create a channel: \(error)"], operations: 0, pauses: 0, callbacks: 0)
    }
    let firstCookie = channel.debugWatermark().used.next.rawValue
    let trial = FuzzTrial(
        channel: channel, protect: configuration.protectFreedBuffers, watchdogSeconds: configuration.watchdogSeconds,
        seed: program.seed)
    let done = ParkingEvent()
    let finished = Atomic<Bool>(false)
    let body: @Sendable () -> Void = {
        try? channel.configure(DMAConfig(burstBytes: program.burst))
        var clients: [OSThread] = []
        for (t, ops) in program.threads.enumerated() {
            do {
                clients.append(try OSThread(name: "fuzz-client-\(t)") {
                    var rng = ConformanceRandom(seed: program.seed ^ UInt64(t + 1) &* 0xA24B_AED4_963E_E407)
                    for op in ops {
                        trial.run(op, thread: t)
                        rng.jitter(maxMicroseconds: 200)
                    }
                })
            } catch {
                trial.history.violation(t, "could not start client thread \(t): \(error)")
            }
        }
        for c in clients { c.join() }
        trial.finish()
        // Ordering: release; pairs with the acquire load of the watchdog below.
        finished.store(true, ordering: .releasing)
        done.signal()
    }
    var hung: String?
    do {
        let runner = try OSThread(name: "fuzz-trial", body)
        var lastTick = trial.history.tick()
        var lastMove = MonotonicClock.now()
        while true {
            if done.wait(spinNanoseconds: 0, timeoutNanoseconds: 100_000_000) { break }
            // Ordering: acquire; pairs with the release store at the end of the trial.
            if finished.load(ordering: .acquiring) { break }
            let now = trial.history.tick()
            if now > lastTick + 1 {
                lastTick = now
                lastMove = MonotonicClock.now()
            } else {
                lastTick = now
                // Twice the watchdog: the end of a trial may wait that long for a completion.
                if Double(MonotonicClock.now() &- lastMove) / 1e9 > 2 * configuration.watchdogSeconds + 5 {
                    hung = "watchdog: the trial made no progress for \(2 * configuration.watchdogSeconds + 5) s (a call that must return did not: a hang or a deadlock); its threads are abandoned"
                    break
                }
            }
        }
        if hung == nil { runner.join() }
    } catch {
        return FuzzTrialOutcome(violations: ["could not start the trial thread: \(error)"], operations: 0, pauses: 0, callbacks: 0)
    }
    let events = trial.history.all
    let settings = FuzzModelSettings(
        granularity: trial.caps.residueGranularity, inOrder: !trial.caps.completionNoOrder, firstCookie: firstCookie)
    var violations = checkHistory(events, settings)
    if let hung {
        let tail = events.suffix(12).map { "\n      " + $0.line }.joined()
        violations.insert(hung + tail, at: 0)
    }
    return FuzzTrialOutcome(
        violations: violations, history: violations.isEmpty ? [] : events.map(\.line), operations: program.operationCount, pauses: trial.pauses.load(ordering: .relaxed),
        callbacks: trial.callbacks.load(ordering: .relaxed), callbacksWhilePaused: callbacksWhilePaused(events))
}
#endif
