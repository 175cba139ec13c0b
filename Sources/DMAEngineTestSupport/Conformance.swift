// dmabench — DMAEngineTestSupport
//
// The conformance suite of docs/contract.md part B as reusable code (after swift-collections' `checkCollection`): any backend, a third party's too, runs all 38
// scenarios by handing over a channel factory. It is plain code, not tied to a test
// framework, so that `dmabench conformance` runs it as well as swift-testing does.
//
// Use from any backend's tests:
//
//     let results = checkDMAChannelConformance(makeChannel: { options in try MyChannel(options: options) })
//     for r in results where r.failed { Issue.record("\(r)") }
//
// or one scenario per test case:
//
//     @Test(arguments: ConformanceScenario.all)
//     func conformance(_ s: ConformanceScenario) {
//         let r = runConformanceScenario(s.number, subject: ConformanceSubject(name: "mine") { try MyChannel(options: $0) })
//         #expect(r.passed, "\(r)")   // a skip (capability not advertised) carries its reason
//     }
//
// Freed buffers are protected with PROT_NONE by default, so a backend that writes after
// `synchronize` returned dies with SIGSEGV (that is a failure too); negative controls set
// `protectFreedBuffers = false` so that the access probe and the poison check record it.

#if os(Linux)
import DMAEngine
import Glibc
import Platform
import Synchronization

/// How the suite runs.
public struct ConformanceConfiguration: Sendable {
    /// Iterations of each race scenario (15, 19, 20, 21). The contract asks for at least
    /// 10 000.
    public var iterations: Int
    /// Long mode (`DMABENCH_LONG_TESTS=1`): more iterations, longer soak.
    public var longMode: Bool
    /// A wait that makes no progress for this long is a failure (a hang).
    public var watchdogSeconds: Double
    /// Seed of every random choice (sleeps, lengths, offsets); printed with failures.
    public var seed: UInt64
    /// Scenario 34 runs for this long (seconds) instead of a fixed number of iterations.
    public var soakDuration: Double?
    /// Scenario 34's iterations per thread (dmatest `iterations`).
    public var soakIterations: Int
    /// Whether freed buffers are protected with PROT_NONE (a late engine write then kills
    /// the process with SIGSEGV). Off, a late access is recorded by the probe and by the
    /// poison check, and the process survives: what negative controls need.
    public var protectFreedBuffers: Bool
    /// Rule C3 [K]: a fresh channel's first cookie is 2. Off, only C1/C2 are required.
    public var kernelCookieProfile: Bool
    /// "Returns promptly" bound for calls that must not wait (the contract says 10 ms; a
    /// shared, loaded machine needs slack: 0.5 s by default). A call that really blocks
    /// (waits for its own callback) never returns and is caught by the watchdog.
    public var promptSeconds: Double
    /// How long a "slow" transfer takes (the contract asks for at least 50 ms).
    public var slowTransferSeconds: Double
    /// Options every channel is created with (scenarios that need a small pool change
    /// `poolSize`).
    public var channelOptions: DMAChannelOptions
    /// Why the iterations were scaled (for example under ThreadSanitizer); shown in results.
    public var scalingNote: String?

    public init(
        iterations: Int = 10_000, longMode: Bool = false, watchdogSeconds: Double = 10, seed: UInt64 = 0x5eed_d3a5,
        soakDuration: Double? = nil, soakIterations: Int = 2_000, protectFreedBuffers: Bool = true,
        kernelCookieProfile: Bool = true, promptSeconds: Double = 0.5, slowTransferSeconds: Double = 0.1,
        channelOptions: DMAChannelOptions = DMAChannelOptions(), scalingNote: String? = nil
    ) {
        self.iterations = iterations
        self.longMode = longMode
        self.watchdogSeconds = watchdogSeconds
        self.seed = seed
        self.soakDuration = soakDuration
        self.soakIterations = soakIterations
        self.protectFreedBuffers = protectFreedBuffers
        self.kernelCookieProfile = kernelCookieProfile
        self.promptSeconds = promptSeconds
        self.slowTransferSeconds = slowTransferSeconds
        self.channelOptions = channelOptions
        self.scalingNote = scalingNote
    }

    /// The default configuration, read from the environment: `DMABENCH_LONG_TESTS=1`
    /// selects long mode (100 000 race iterations, 20 000 soak iterations per thread);
    /// `DMABENCH_SEED=N` fixes the seed. Under ThreadSanitizer the iterations are divided
    /// by 5 (TSan slows every access several times over), and `scalingNote` says so.
    public static func standard() -> ConformanceConfiguration {
        var c = ConformanceConfiguration()
        if let v = getenv("DMABENCH_LONG_TESTS"), String(cString: v) == "1" {
            c.longMode = true
            c.iterations = 100_000
            c.soakIterations = 20_000
            c.watchdogSeconds = 30
        }
        if let v = getenv("DMABENCH_SEED"), let s = UInt64(String(cString: v)) { c.seed = s }
        if Self.isThreadSanitizerActive {
            c.iterations = max(200, c.iterations / 5)
            c.soakIterations = max(100, c.soakIterations / 5)
            c.watchdogSeconds *= 3
            c.promptSeconds *= 4
            c.scalingNote = "iterations scaled down by 5 under ThreadSanitizer"
        }
        return c
    }

    /// True when the process runs under ThreadSanitizer (its runtime is linked in).
    public static var isThreadSanitizerActive: Bool {
        guard let h = dlopen(nil, RTLD_NOW) else { return false }
        defer { dlclose(h) }
        return dlsym(h, "__tsan_init") != nil
    }
}

/// What one scenario found.
public struct ScenarioResult: Sendable, CustomStringConvertible {
    public enum Outcome: Sendable, Hashable {
        case passed
        /// One line per failure: scenario, iteration, what was expected and what was seen.
        case failed([String])
        /// The scenario does not apply, and why (for example "cmdPause is false").
        case skipped(String)
    }

    public var number: Int
    public var name: String
    public var outcome: Outcome
    /// Iterations run (1 for a single-shot scenario).
    public var iterations: Int
    /// Wall time, in seconds.
    public var duration: Double
    /// Bytes the engine was asked to copy or fill.
    public var bytesCopied: Int
    /// Extra lines: summaries (scenario 34), scaling notes.
    public var notes: [String]

    public init(
        number: Int, name: String, outcome: Outcome, iterations: Int, duration: Double, bytesCopied: Int,
        notes: [String]
    ) {
        self.number = number
        self.name = name
        self.outcome = outcome
        self.iterations = iterations
        self.duration = duration
        self.bytesCopied = bytesCopied
        self.notes = notes
    }

    public var passed: Bool { if case .passed = outcome { return true } else { return false } }
    public var failed: Bool { if case .failed = outcome { return true } else { return false } }
    public var skipped: Bool { if case .skipped = outcome { return true } else { return false } }
    public var failures: [String] { if case .failed(let f) = outcome { return f } else { return [] } }

    public var description: String {
        let head = "scenario \(number) (\(name))"
        let stats = "\(iterations) iteration\(iterations == 1 ? "" : "s"), \(String(format3(duration))) s"
        switch outcome {
        case .passed: return "\(head): passed (\(stats))"
        case .skipped(let why): return "\(head): skipped: \(why)"
        case .failed(let f): return "\(head): FAILED (\(stats)):\n  " + f.joined(separator: "\n  ")
        }
    }
}

func format3(_ x: Double) -> String {
    let v = (x * 1000).rounded() / 1000
    return "\(v)"
}

/// The channel under test: a factory plus, for hand-driven doubles, how to run their engine.
public struct ConformanceSubject: Sendable {
    public var name: String
    /// Creates a fresh channel with the given options.
    public var makeChannel: @Sendable (DMAChannelOptions) throws -> any DMAChannel
    /// For a channel without an engine thread (such as `EmbeddedChannel`): runs everything
    /// runnable. The suite calls it wherever it waits. nil for real backends.
    public var drive: (@Sendable (any DMAChannel) -> Void)?

    /// A backend whose engine runs on its own threads.
    public init(name: String, makeChannel: @escaping @Sendable (DMAChannelOptions) throws -> any DMAChannel) {
        self.name = name
        self.makeChannel = makeChannel
        self.drive = nil
    }

    /// A hand-driven double: scenarios that need an engine running concurrently with the
    /// client are skipped, with the reason.
    public static func handDriven(
        name: String, makeChannel: @escaping @Sendable (DMAChannelOptions) throws -> any DMAChannel,
        drive: @escaping @Sendable (any DMAChannel) -> Void
    ) -> ConformanceSubject {
        var s = ConformanceSubject(name: name, makeChannel: makeChannel)
        s.drive = drive
        return s
    }

    public var isHandDriven: Bool { drive != nil }

    /// The subject's channels advertise `synchronousIssue` (read from one channel, released
    /// at once; false when none can be made, so that the scenario reports the failure).
    public var synchronousIssue: Bool {
        guard let ch = try? makeChannel(DMAChannelOptions()) else { return false }
        defer { try? ch.release() }
        return ch.capabilities.synchronousIssue
    }
}

/// One of the 38 scenarios of docs/contract.md part B.
public struct ConformanceScenario: Sendable, Hashable, CustomStringConvertible {
    public var number: Int
    public var name: String
    /// The scenario needs an engine that runs concurrently with the client (slow transfers
    /// sampled mid-flight, races, blocked callbacks); a hand-driven double skips it.
    public var needsEngineThread: Bool
    /// The scenario runs `ConformanceConfiguration.iterations` race iterations.
    public var isRace: Bool

    public var description: String { "\(number). \(name)" }

    /// All 38, in order.
    public static let all: [ConformanceScenario] = scenarioTable.map { $0.info }

    public static func scenario(_ number: Int) -> ConformanceScenario? { all.first { $0.number == number } }
}

/// Runs the conformance suite (docs/contract.md part B) against channels made by `makeChannel`.
///
/// - Parameters:
///   - makeChannel: creates a fresh channel for the given options; called once or more per
///     scenario. Its capabilities decide which optional parts run.
///   - configuration: iterations, watchdog, seed; `.standard()` reads the environment.
///   - scenarios: the scenario numbers to run (nil: all 38).
///   - progress: called after each scenario, on the calling thread.
/// - Returns: one result per scenario, in order.
public func checkDMAChannelConformance(
    makeChannel: @escaping @Sendable (DMAChannelOptions) throws -> any DMAChannel,
    configuration: ConformanceConfiguration = .standard(),
    scenarios: [Int]? = nil,
    progress: ((ScenarioResult) -> Void)? = nil
) -> [ScenarioResult] {
    checkDMAChannelConformance(
        subject: ConformanceSubject(name: "channel", makeChannel: makeChannel), configuration: configuration,
        scenarios: scenarios, progress: progress)
}

/// Runs the suite against a subject (a backend or a hand-driven double).
public func checkDMAChannelConformance(
    subject: ConformanceSubject,
    configuration: ConformanceConfiguration = .standard(),
    scenarios: [Int]? = nil,
    progress: ((ScenarioResult) -> Void)? = nil
) -> [ScenarioResult] {
    let numbers = scenarios ?? ConformanceScenario.all.map(\.number)
    var results: [ScenarioResult] = []
    for n in numbers {
        let r = runConformanceScenario(n, subject: subject, configuration: configuration)
        progress?(r)
        results.append(r)
    }
    return results
}

/// A one-line tally of a run: "34 scenarios: 32 passed, 1 failed (15), 1 skipped (28)".
public func conformanceSummary(_ results: [ScenarioResult]) -> String {
    let failed = results.filter(\.failed).map(\.number)
    let skipped = results.filter(\.skipped).map(\.number)
    let passed = results.count - failed.count - skipped.count
    func list(_ n: [Int]) -> String { n.isEmpty ? "" : " (" + n.map(String.init).joined(separator: ", ") + ")" }
    return "\(results.count) scenario\(results.count == 1 ? "" : "s"): \(passed) passed, \(failed.count) failed\(list(failed)), \(skipped.count) skipped\(list(skipped))"
}

/// Runs one scenario. The body runs on its own thread under a watchdog: if it makes no
/// progress for `configuration.watchdogSeconds`, the scenario fails as hung (the stuck
/// thread and its channel are abandoned).
public func runConformanceScenario(
    _ number: Int, subject: ConformanceSubject, configuration: ConformanceConfiguration = .standard()
) -> ScenarioResult {
    guard let entry = scenarioTable.first(where: { $0.info.number == number }) else {
        let valid = "1...\(scenarioTable.count)"
        return ScenarioResult(
            number: number, name: "unknown", outcome: .failed(["no scenario \(number); valid numbers are \(valid)"]),
            iterations: 0, duration: 0, bytesCopied: 0, notes: [])
    }
    let info = entry.info
    if info.needsEngineThread, subject.isHandDriven {
        return ScenarioResult(
            number: number, name: info.name,
            outcome: .skipped("\(subject.name) is hand-driven: this scenario needs an engine running concurrently with the client"),
            iterations: 0, duration: 0, bytesCopied: 0, notes: [])
    }
    if info.needsEngineThread, subject.synchronousIssue {
        return ScenarioResult(
            number: number, name: info.name,
            outcome: .skipped("\(subject.name) advertises synchronousIssue: issuePending finishes the work on the calling thread, and this scenario needs an engine running concurrently with the client"),
            iterations: 0, duration: 0, bytesCopied: 0, notes: [])
    }
    let ctx = ScenarioContext(info: info, subject: subject, configuration: configuration)
    let start = MonotonicClock.now()
    let done = ParkingEvent()
    let body = entry.body
    do {
        let thread = try OSThread(name: "conformance-\(number)") {
            ctx.runBody(body)
            ctx.finished.store(true, ordering: .releasing)  // Ordering: release; pairs with the acquire load below.
            done.signal()
        }
        // The watchdog: wake every 100 ms and compare the last heartbeat with the limit.
        while true {
            if done.wait(spinNanoseconds: 0, timeoutNanoseconds: 100_000_000) { break }
            // Ordering: acquire; pairs with the release store after `runBody`.
            if ctx.finished.load(ordering: .acquiring) { break }
            // The heartbeat may be newer than `now` (read first): that is no idle time at all.
            let now = MonotonicClock.now()
            let beat = ctx.heartbeat.load(ordering: .relaxed)
            let idle = now > beat ? Double(now - beat) / 1e9 : 0
            if idle > configuration.watchdogSeconds {
                ctx.fail("watchdog: no progress for \(format3(idle)) s during \(ctx.currentPhase); the scenario hung (its thread is abandoned)")
                ctx.abandoned.store(true, ordering: .relaxed)
                break
            }
        }
        if !ctx.abandoned.load(ordering: .relaxed) { thread.join() }
    } catch {
        ctx.fail("could not start the scenario thread: \(error)")
    }
    let duration = Double(MonotonicClock.now() &- start) / 1e9
    return ctx.result(duration: duration)
}
#endif
