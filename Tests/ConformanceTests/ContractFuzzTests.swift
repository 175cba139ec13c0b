// dmabench — ConformanceTests
//
// The random-client checker (docs/contract.md, part D) against the locked backend, and its
// negative controls: three deliberately broken variants that the scenarios miss, each of
// which the checker must catch within its default budget.

import DMAEngine
@_spi(NegativeControls) import DMAEngineLocked
import DMAEngineTestSupport
import Foundation
import TestHelpers
import Synchronization
import Testing

@Suite(.serialized)
struct ContractFuzzTests {
    @Test("the checker passes on the locked backend", arguments: [DMACallbackContext.executorThread, .engineThread])
    func lockedPasses(_ context: DMACallbackContext) {
        let subject = ConformanceSubject(name: "locked(\(context))") { options in
            var o = options
            o.callbackContext = context
            return try LockedChannel(options: o)
        }
        expectContractFuzzPasses(subject, seed: 0x5EED_0001)
    }

    /// The checker's own race: a transfer another thread's issuePending completes before its
    /// submitter has recorded the cookie. A channel whose `submit` returns 2 ms after it
    /// queued the descriptor makes that the common case. The checker took such a callback
    /// for a stale cookie's and reported K1 (seen on io_uring, in CI and in the suite: there
    /// another thread's io_uring_enter copies inline); it must pass.
    @Test("the checker passes on a channel whose submit returns late")
    func slowSubmitPasses() {
        let subject = ConformanceSubject(name: "locked(slow submit)") { options in
            SlowSubmit(try LockedChannel(options: options), nanoseconds: 2_000_000)
        }
        var cfg = ContractFuzzConfiguration(seed: 0x5EED_0003, duration: 10)
        cfg.shrinkSeconds = 0
        let report = checkContractFuzz(subject: subject, configuration: cfg)
        print("[fuzz slow submit] \(report)")
        #expect(report.failure == nil, "\(report)")
        #expect(report.trials > 0, "no trial ran: \(report)")
    }

    @Test("a hand-driven double is skipped with its reason")
    func handDrivenSkips() {
        let report = checkContractFuzz(subject: Subjects.embedded)
        #expect(report.skipped?.contains("hand-driven") == true, "\(report)")
    }

    /// Each new defect, and what the checker must report for it.
    static let controls: [(LockedDefect, String)] = [
        (.residueAfterChunkEnd, "P1"),
        (.periodAfterPause, "P1"),
        (.chainIgnoresPause, "P"),
    ]

    @Suite(
        .serialized,
        .disabled(
            if: ConformanceConfiguration.isThreadSanitizerActive,
            "the defective backends race on purpose (that is the defect); ThreadSanitizer would report those races"))
    struct NegativeControls {
        @Test("the checker catches a defect that the scenarios miss, within its default budget", arguments: ContractFuzzTests.controls)
        func checkerCatches(_ c: (LockedDefect, String)) {
            let (defect, rule) = c
            let subject = ConformanceSubject(name: "locked(\(defect))") { options in
                try LockedChannel(options: options, defect: defect)
            }
            // The default configuration, with the seed fixed for the suite and a shorter
            // shrink (the time to detection is what is measured).
            var cfg = ContractFuzzConfiguration()
            cfg.seed = 0xC0DE_0000 &+ UInt64(ContractFuzzTests.controls.firstIndex { $0.0 == defect }!)
            cfg.shrinkSeconds = 10
            let report = checkContractFuzz(subject: subject, configuration: cfg)
            print("[fuzz negative control \(defect)] time to detection \(report.timeToDetection.map { "\($0) s" } ?? "none"), \(report.trials) trials\n\(report)")
            #expect(report.failure != nil, "the checker did not catch \(defect) in \(cfg.duration) s")
            let caughtByRule = report.failure?.violations.contains { $0.hasPrefix(rule) } ?? false
            #expect(caughtByRule, "expected a \(rule) violation for \(defect): \(report)")
        }

        /// A lost callback (the liveness rule K1): every 25th callback the client sets is
        /// replaced by one that does nothing, so its cookie reads COMPLETE and the client
        /// never hears of it. The checker reports it once the watchdog runs out.
        @Test("the checker reports a lost callback as K1 when its watchdog runs out")
        func lostCallback() {
            let subject = ConformanceSubject(name: "locked(drops a callback)") { options in
                DropsCallbacks(try LockedChannel(options: options), every: 25)
            }
            var cfg = ContractFuzzConfiguration(seed: 0xC0DE_0100, duration: 30, watchdogSeconds: 1)
            cfg.shrinkSeconds = 0
            let report = checkContractFuzz(subject: subject, configuration: cfg)
            print("[fuzz negative control: lost callback] \(report)")
            let k1 = report.failure?.violations.first { $0.hasPrefix("K1 (liveness)") }
            #expect(k1 != nil, "no K1 violation for a lost callback: \(report)")
            #expect(k1?.contains("still not complete after 1.0 s") == true, "expected the report after the 1 s watchdog: \(k1 ?? "none")")
            #expect(k1?.contains(", complete, ") == true, "expected the lost callback's cookie to read COMPLETE: \(k1 ?? "none")")
        }

        /// A reported seed replays the failing trial: run again from it, one trial at a time,
        /// the checker fails again with the same seed (interleavings vary, so not always at
        /// once; it may take up to 60 s of runs on a loaded machine).
        @Test("a reported seed replays the failure")
        func replay() throws {
            let subject = ConformanceSubject(name: "locked(periodAfterPause)") { options in
                try LockedChannel(options: options, defect: .periodAfterPause)
            }
            var cfg = ContractFuzzConfiguration(seed: 0xC0DE_0001)
            cfg.shrinkSeconds = 0
            let first = try #require(checkContractFuzz(subject: subject, configuration: cfg).failure)
            var again = ContractFuzzConfiguration(seed: first.seed)
            again.maxTrials = 1
            again.shrinkSeconds = 0
            var tries = 0
            var replayed: ContractFuzzReport?
            let start = Date()
            while replayed == nil && Date().timeIntervalSince(start) < 60 {
                tries += 1
                let r = checkContractFuzz(subject: subject, configuration: again)
                if r.failure != nil { replayed = r }
            }
            print("[fuzz replay of seed \(first.seed)] \(tries) tries: \(replayed.map { "\($0)" } ?? "no failure")")
            #expect(replayed?.failure?.seed == first.seed, "the seed \(first.seed) did not replay its failure in \(tries) runs (60 s)")
        }

        /// The blind spot the checker closes: the pause scenarios pass on every new defect.
        @Test("the pause and cyclic scenarios miss these defects", arguments: ContractFuzzTests.controls.map(\.0))
        func scenariosMiss(_ defect: LockedDefect) {
            let subject = ConformanceSubject(name: "locked(\(defect))") { options in
                try LockedChannel(options: options, defect: defect)
            }
            var cfg = ConformanceConfiguration.standard()
            cfg.iterations = 200
            let results = checkDMAChannelConformance(subject: subject, configuration: cfg, scenarios: [8, 22, 23, 24, 28])
            for r in results { print("[scenarios on \(defect)] \(r.description.prefix(300))") }
            let caught = results.filter(\.failed).map(\.number)
            #expect(caught.isEmpty, "scenarios \(caught) caught \(defect)")
        }
    }
}

/// Replaces every `every`-th callback that a client sets with one that does nothing: a
/// backend that loses callbacks, as the liveness rule K1 sees it.
final class DropsCallbacks: ForwardingChannel, @unchecked Sendable {
    let every: Int
    private let count = Atomic<Int>(0)

    init(_ inner: any DMAChannel, every: Int) {
        self.every = every
        super.init(inner)
    }

    override func setCallback(_ callback: DMACallback, for d: DMADescriptor) throws(DMAError) {
        // Ordering: relaxed; only a count.
        let n = count.wrappingAdd(1, ordering: .relaxed).newValue
        try inner.setCallback(n % every == 0 ? .plain { _ in } : callback, for: d)
    }
}

/// Returns from `submit` only some time after the descriptor was queued: a slow submitter
/// (preempted, or on a loaded machine), which the contract allows.
final class SlowSubmit: ForwardingChannel, @unchecked Sendable {
    let nanoseconds: Int64

    init(_ inner: any DMAChannel, nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
        super.init(inner)
    }

    override func submit(_ d: DMADescriptor) -> DMACookie {
        let cookie = inner.submit(d)
        usleep(UInt32(nanoseconds / 1000))
        return cookie
    }
}
