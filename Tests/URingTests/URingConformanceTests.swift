// dmabench — URingTests
//
// The shared conformance suite (docs/contract.md part B, DMAEngineTestSupport) against every
// io_uring setup, one test per scenario.

import DMAEngine
import DMAEngineTestSupport
import DMAEngineURing
import TestHelpers
import Testing

enum URingSubjects {
    /// The standard configuration (`DMABENCH_LONG_TESTS=1` for the long mode). The plain
    /// setup runs the race scenarios at full strength; the other two setups share all the
    /// engine code and differ only in who submits and reaps, so by default they run the race
    /// scenarios with a tenth of the iterations (full strength in long mode).
    static let configuration = ConformanceConfiguration.standard()
    static let variantConfiguration: ConformanceConfiguration = {
        var c = ConformanceConfiguration.standard()
        if !c.longMode {
            c.iterations = max(200, c.iterations / 10)
            c.soakIterations = max(100, c.soakIterations / 4)
            c.scalingNote = (c.scalingNote.map { $0 + "; " } ?? "") + "uring variant: race iterations / 10 (long mode runs all)"
        }
        return c
    }()

    /// Scenarios for capabilities this backend does not advertise (descriptor reuse, cyclic):
    /// the suite must skip them, with a reason.
    static let unadvertised: Set<Int> = [26, 28]
    static let applicable = ConformanceScenario.all.filter { !unadvertised.contains($0.number) }
    static let skippedScenarios = ConformanceScenario.all.filter { unadvertised.contains($0.number) }

    static func subject(_ setup: URingSetup) -> ConformanceSubject {
        ConformanceSubject(name: setup.backendName) { options in
            try URingChannel(options: options, setup: setup)
        }
    }

    static func check(_ scenario: ConformanceScenario, setup: URingSetup) {
        let subject = subject(setup)
        let config = setup == .plain ? configuration : variantConfiguration
        let r = runConformanceScenario(scenario.number, subject: subject, configuration: config)
        expectScenario(r, tag: subject.name)
    }
}

@Suite(.serialized, .enabled(if: uringAvailable, uringUnavailableReason))
struct URingConformance {
    @Test("uring (plain) passes scenario", arguments: URingSubjects.applicable)
    func plain(_ scenario: ConformanceScenario) { URingSubjects.check(scenario, setup: .plain) }

    @Test("uring-defer passes scenario", arguments: URingSubjects.applicable)
    func deferTaskrun(_ scenario: ConformanceScenario) { URingSubjects.check(scenario, setup: .deferTaskrun) }

    @Test("uring-sqpoll passes scenario", arguments: URingSubjects.applicable)
    func sqpoll(_ scenario: ConformanceScenario) { URingSubjects.check(scenario, setup: .sqpoll) }

    @Test("scenarios for capabilities uring does not advertise are skipped with a reason",
          arguments: URingSubjects.skippedScenarios)
    func unadvertised(_ scenario: ConformanceScenario) {
        let r = runConformanceScenario(scenario.number, subject: URingSubjects.subject(.plain),
                                       configuration: URingSubjects.configuration)
        guard case .skipped(let why) = r.outcome else {
            Issue.record("scenario \(r.number) should be skipped (uring advertises neither descriptor reuse nor cyclic), got \(r)")
            return
        }
        print("[uring] \(r)")
        #expect(why.contains("false"))
    }
}

/// The random-client checker (docs/contract.md, part D) on each io_uring setup; CI runs it
/// for 60 s per backend (`Scripts/test-fuzz.sh`).
@Test("the random-client checker passes on the io_uring backends", arguments: URingSetup.allCases)
func uringContractFuzz(_ setup: URingSetup) {
    expectContractFuzzPasses(URingSubjects.subject(setup), seed: 0x5EED_0003, seconds: 5)
}
