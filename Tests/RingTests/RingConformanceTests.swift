// dmabench — RingTests
//
// Runs every conformance scenario (docs/contract.md part B, DMAEngineTestSupport) against
// RingChannel, one test per scenario, and proves that the suite catches the ring's own
// negative controls. The ring advertises every optional capability (memset, cyclic, reuse,
// pause), so a skipped scenario is a failure here. Every scenario runs in the three callback
// contexts (`DMACallbackContext`: executor thread, engine thread, and client poll, where the
// suite's waits poll).

import DMAEngine
@_spi(NegativeControls) import DMAEngineRing
import DMAEngineTestSupport
import TestHelpers
import Testing

enum RingSubject {
    static let configuration = ConformanceConfiguration.standard()

    static func subject(_ context: DMACallbackContext) -> ConformanceSubject {
        ConformanceSubject(name: "ring(\(context.rawValue))") { options in
            var o = options
            o.callbackContext = context
            // Client polls take every completion they find, so that they race the engine
            // for each callback (the suite's waits and the checker's polls call `poll()`).
            o.clientPollBatch = 1
            return try RingChannel(options: o)
        }
    }

    static let contexts: [DMACallbackContext] = [.executorThread, .engineThread, .clientPoll]

    static func check(_ scenario: ConformanceScenario, _ context: DMACallbackContext) {
        let tag = "ring(\(context.rawValue))"
        let r = runConformanceScenario(scenario.number, subject: subject(context), configuration: configuration)
        expectScenario(r, tag: tag)
    }
}

@Suite(.serialized)
struct RingConformanceTests {
    @Test("ring backend passes scenario", arguments: ConformanceScenario.all, RingSubject.contexts)
    func scenario(_ scenario: ConformanceScenario, _ context: DMACallbackContext) {
        RingSubject.check(scenario, context)
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

    @Test("the suite fails on a deliberately broken ring backend", arguments: negativeCases, RingSubject.contexts)
    func suiteCatchesNegativeControl(_ negative: (RingNegativeControl, [Int]), _ context: DMACallbackContext) {
        let (control, scenarios) = negative
        let subject = ConformanceSubject(name: "ring(\(control), \(context.rawValue))") { options in
            var o = options
            o.callbackContext = context
            o.clientPollBatch = 1
            return try RingChannel(options: o, negativeControl: control)
        }
        let results = checkDMAChannelConformance(
            subject: subject, configuration: Self.negativeConfiguration, scenarios: scenarios)
        for r in results { print("[negative control \(control)] \(r.description.prefix(600))") }
        let caught = results.filter(\.failed).map(\.number)
        #expect(!caught.isEmpty, "no scenario of \(scenarios) caught the negative control \(control)")
    }
}

/// The random-client checker (docs/contract.md, part D) in the three callback contexts; CI runs
/// it for 60 s per backend (`Scripts/test-fuzz.sh`).
@Test("the random-client checker passes on the ring backend", arguments: RingSubject.contexts)
func ringContractFuzz(_ context: DMACallbackContext) {
    expectContractFuzzPasses(RingSubject.subject(context), seed: 0x5EED_0002)
}
