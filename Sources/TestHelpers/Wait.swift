// dmabench — TestHelpers
//
// What the test targets share: polling for a condition with a watchdog, and turning a
// conformance scenario's outcome into swift-testing expectations. Test targets only.

#if os(Linux)
import DMAEngineTestSupport
import Platform
import Testing

/// Polls `condition` every 100 µs until it holds or `seconds` pass; returns whether it held.
/// A watchdog for a test, never a timing assertion.
public func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = MonotonicClock.now() + UInt64(seconds * 1e9)
    while MonotonicClock.now() < deadline {
        if condition() { return true }
        MonotonicClock.sleep(nanoseconds: 100_000)
    }
    return condition()
}

/// Records a scenario's outcome as expectations: every failure line is an issue, and a skip
/// is one too unless `skipAllowed` (the subject advertises what the scenario needs).
public func expectScenario(
    _ r: ScenarioResult, tag: String, skipAllowed: Bool = false, sourceLocation: SourceLocation = #_sourceLocation
) {
    print("[\(tag)] \(r)")
    for note in r.notes { print("[\(tag)]   \(note)") }
    switch r.outcome {
    case .passed: break
    case .failed(let lines):
        let message = "\(tag): scenario \(r.number) (\(r.name)) failed:\n" + lines.joined(separator: "\n")
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
    case .skipped(let why):
        if !skipAllowed {
            let message = "\(tag): scenario \(r.number) (\(r.name)) was skipped, but \(tag) advertises what it needs: \(why)"
            Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
        }
    }
}
/// Runs the random-client checker (docs/contract.md, part D) on `subject` for a few seconds
/// (fewer under ThreadSanitizer, with a longer watchdog) and expects it to pass and to have
/// run at least one pause window. CI runs it for 60 s per backend (`Scripts/test-fuzz.sh`).
public func expectContractFuzzPasses(
    _ subject: ConformanceSubject, seed: UInt64, seconds: Double = 6, sourceLocation: SourceLocation = #_sourceLocation
) {
    let tsan = ConformanceConfiguration.isThreadSanitizerActive
    var c = ContractFuzzConfiguration(seed: seed, duration: tsan ? min(4, seconds) : seconds)
    if tsan { c.watchdogSeconds = 30 }
    let report = checkContractFuzz(subject: subject, configuration: c)
    print("[fuzz] \(report)")
    #expect(report.passed, "\(report)", sourceLocation: sourceLocation)
    #expect(report.pauseWindows > 0, "the checker ran no pause window: \(report)", sourceLocation: sourceLocation)
}
#endif
