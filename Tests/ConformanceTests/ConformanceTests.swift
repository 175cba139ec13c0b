// dmabench — ConformanceTests
//
// Runs the conformance suite (docs/contract.md part B, DMAEngineTestSupport) against the locked
// backend (callbacks on the executor thread, and on the engine thread) and the embedded double, one test per scenario, and proves that the suite
// detects: every deliberately broken variant of the locked backend must fail it.
//
// Default mode keeps the whole file within a few minutes on two loaded cores;
// DMABENCH_LONG_TESTS=1 selects the long mode (100 000 race iterations). Under
// ThreadSanitizer the iterations are scaled down, and the results say so.

import DMAEngine
import DMAEngineEmbedded
@_spi(NegativeControls) import DMAEngineLocked
import DMAEngineTestSupport
import TestHelpers
import Testing

enum Subjects {
    static let configuration = ConformanceConfiguration.standard()

    static let locked = ConformanceSubject(name: "locked") { options in try LockedChannel(options: options) }

    /// The locked backend with `callbackContext = .engineThread`: no executor thread, the
    /// engine runs the callbacks itself.
    static let lockedEngineThread = ConformanceSubject(name: "locked(engineThread)") { options in
        var o = options
        o.callbackContext = .engineThread
        return try LockedChannel(options: o)
    }

    static let embedded = ConformanceSubject.handDriven(
        name: "embedded", makeChannel: { options in EmbeddedChannel(options: options) },
        drive: { channel in (channel as? EmbeddedChannel)?.completeAll() })

    static let embeddedScenarios = ConformanceScenario.all.filter { !$0.needsEngineThread }
    static let engineThreadScenarios = ConformanceScenario.all.filter(\.needsEngineThread)

    /// Runs one scenario and turns its outcome into expectations: a failure lists every line,
    /// a skip is itself a failure here (these subjects advertise every capability).
    static func check(_ scenario: ConformanceScenario, on subject: ConformanceSubject) {
        let r = runConformanceScenario(scenario.number, subject: subject, configuration: configuration)
        expectScenario(r, tag: subject.name)
    }
}

@Suite(.serialized)
struct ConformanceTests {
    @Suite(.serialized)
    struct Locked {
        @Test("locked backend passes scenario", arguments: ConformanceScenario.all)
        func scenario(_ scenario: ConformanceScenario) {
            Subjects.check(scenario, on: Subjects.locked)
        }
    }

    @Suite(.serialized)
    struct LockedEngineThread {
        @Test("locked backend with callbacks on the engine thread passes scenario", arguments: ConformanceScenario.all)
        func scenario(_ scenario: ConformanceScenario) {
            Subjects.check(scenario, on: Subjects.lockedEngineThread)
        }
    }

    @Suite(.serialized)
    struct Embedded {
        @Test("embedded double passes scenario", arguments: Subjects.embeddedScenarios)
        func scenario(_ scenario: ConformanceScenario) {
            Subjects.check(scenario, on: Subjects.embedded)
        }

        @Test(
            "embedded double: scenario needs an engine thread",
            .disabled("EmbeddedChannel is hand-driven: these scenarios need an engine running concurrently with the client"),
            arguments: Subjects.engineThreadScenarios)
        func engineThreadScenario(_ scenario: ConformanceScenario) {
            Subjects.check(scenario, on: Subjects.embedded)
        }

        @Test func handDrivenSubjectsSkipEngineThreadScenariosWithAReason() throws {
            let s = try #require(Subjects.engineThreadScenarios.first)
            let r = runConformanceScenario(s.number, subject: Subjects.embedded, configuration: Subjects.configuration)
            guard case .skipped(let why) = r.outcome else {
                Issue.record("expected a visible skip, got \(r)")
                return
            }
            #expect(why.contains("hand-driven"))
        }
    }

    /// Negative controls (docs/architecture.md, "Negative controls"): each defect breaks one guarantee of A.7, and at
    /// least one of the scenarios named for it must fail. Freed buffers are not protected
    /// here (a late write would kill the process); the access probe and the poison check
    /// record it instead.
    @Suite(
        .serialized,
        .disabled(
            if: ConformanceConfiguration.isThreadSanitizerActive,
            "the defective backends race on purpose (that is the defect); ThreadSanitizer would report those races"))
    struct NegativeControls {
        static let cases: [(LockedDefect, [Int])] = [
            // synchronize returns while a callback still runs: 16 and 17 block a callback
            // and check the order; 15 and 29 check "no callback running at return".
            (.synchronizeDoesNotWait, [16, 17, 15, 29]),
            // the engine keeps copying a terminated active transfer: 14 (probe after
            // terminateSync), 30 (stalled transfer resumes after terminateSync), 33.
            (.terminateKeepsCopyingActive, [14, 30, 33]),
            // terminated transfers get callbacks after synchronize: 14, 30, 21, 20.
            (.callbackAfterTerminate, [14, 30, 21, 20]),
            // a scatter-gather walk that stops before its last piece: 35 checks every byte.
            (.sgSkipsLastSegment, [35]),
        ]

        static var configuration: ConformanceConfiguration {
            var c = ConformanceConfiguration.standard()
            c.protectFreedBuffers = false
            c.iterations = min(c.iterations, 500)
            c.watchdogSeconds = 5
            return c
        }

        @Test(
            "the suite fails on a deliberately broken locked backend", arguments: cases,
            [DMACallbackContext.executorThread, .engineThread])
        func suiteCatchesDefect(_ c: (LockedDefect, [Int]), _ context: DMACallbackContext) {
            let (defect, scenarios) = c
            let subject = ConformanceSubject(name: "locked(\(defect), \(context))") { options in
                var o = options
                o.callbackContext = context
                return try LockedChannel(options: o, defect: defect)
            }
            let results = checkDMAChannelConformance(
                subject: subject, configuration: Self.configuration, scenarios: scenarios)
            for r in results { print("[negative control \(defect), \(context)] \(r.description.prefix(600))") }
            let caught = results.filter(\.failed).map(\.number)
            #expect(!caught.isEmpty, "no scenario of \(scenarios) caught the defect \(defect) (callbacks on \(context))")
        }
    }
}
