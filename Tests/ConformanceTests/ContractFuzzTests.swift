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
