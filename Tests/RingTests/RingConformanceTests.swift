// dmabench — RingTests
//
// Runs every conformance scenario (CONTRACT.md part B, DMAEngineTestSupport) against
// RingChannel, one test per scenario, and proves that the suite catches the ring's own
// negative controls. The ring advertises every optional capability (memset, cyclic, reuse,
// pause), so a skipped scenario is a failure here.

import DMAEngine
@_spi(NegativeControls) import DMAEngineRing
import DMAEngineTestSupport
import Testing

enum RingSubject {
    static let configuration = ConformanceConfiguration.standard()

    static let ring = ConformanceSubject(name: "ring") { options in try RingChannel(options: options) }

    static func check(_ scenario: ConformanceScenario) {
        let r = runConformanceScenario(scenario.number, subject: ring, configuration: configuration)
        print("[ring] \(r)")
        for note in r.notes { print("[ring]   \(note)") }
        switch r.outcome {
        case .passed:
            #expect(r.number == scenario.number)
        case .failed(let lines):
            let message = "ring: scenario \(r.number) (\(r.name)) failed:\n" + lines.joined(separator: "\n")
            Issue.record("\(message)")
        case .skipped(let why):
            Issue.record("ring: scenario \(r.number) (\(r.name)) was skipped, but the ring advertises what it needs: \(why)")
        }
    }
}

@Suite(.serialized)
struct RingConformanceTests {
    @Test("ring backend passes scenario", arguments: ConformanceScenario.all)
    func scenario(_ scenario: ConformanceScenario) {
        RingSubject.check(scenario)
    }

    /// The ring's negative controls the suite must catch. `.executorSkipsEpochCheck` is not
    /// listed: it needs a transfer that completed but was not dispatched when terminate ran,
    /// an interleaving the suite's scenarios reach only by chance; the dedicated test
    /// `RingNegativeControlTests.executorEpochCheckIsNeeded` builds it deterministically.
    static let negativeCases: [(RingNegativeControl, [Int])] = [
        // synchronize returns while a callback still runs.
        (.synchronizeDoesNotWait, [16, 17, 15, 29]),
        // the engine keeps writing a terminated active transfer after synchronize.
        (.engineKeepsCopyingTerminated, [14, 30, 33]),
    ]

    static var negativeConfiguration: ConformanceConfiguration {
        var c = ConformanceConfiguration.standard()
        c.protectFreedBuffers = false
        c.iterations = min(c.iterations, 500)
        c.watchdogSeconds = 5
        return c
    }

    @Test("the suite fails on a deliberately broken ring backend", arguments: negativeCases)
    func suiteCatchesNegativeControl(_ control: RingNegativeControl, _ scenarios: [Int]) {
        let subject = ConformanceSubject(name: "ring(\(control))") { options in
            try RingChannel(options: options, negativeControl: control)
        }
        let results = checkDMAChannelConformance(
            subject: subject, configuration: Self.negativeConfiguration, scenarios: scenarios)
        for r in results { print("[negative control \(control)] \(r.description.prefix(600))") }
        let caught = results.filter(\.failed).map(\.number)
        #expect(!caught.isEmpty, "no scenario of \(scenarios) caught the negative control \(control)")
    }
}
