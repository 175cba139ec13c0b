// dmabench — PluginTests
//
// The reference C engine (Sources/CRingEngine, a plain-C port of the ring backend) through
// the plugin ABI: every conformance scenario in both callback contexts, the random-client
// checker, and the broken C engine (synchronize returns at once), which the suite must catch
// through the same path. The engine advertises every optional capability, so a skipped
// scenario is a failure.

import DMAEngine
import DMAEnginePlugin
import DMAEngineTestSupport
import TestHelpers
import Platform
import Synchronization
import Testing

enum CRingSubject {
    static let configuration = ConformanceConfiguration.standard()
    static let contexts: [DMACallbackContext] = [.executorThread, .engineThread]

    static func engine(_ path: String) throws -> PluginEngine {
        try PluginLibrary.load(path: path).engine(named: nil)
    }

    static func subject(_ path: String, _ context: DMACallbackContext) -> ConformanceSubject {
        ConformanceSubject(name: "cring(\(context.rawValue))") { options in
            var o = options
            o.callbackContext = context
            return try PluginChannel(engine: try engine(path), options: o)
        }
    }
}

@Suite(.serialized, .enabled(if: PluginFixtures.missingReason == nil, "\(PluginFixtures.missingReason ?? "")"))
struct CRingConformanceTests {
    @Test("the C ring engine, loaded as a plugin, passes scenario", arguments: ConformanceScenario.all, CRingSubject.contexts)
    func scenario(_ scenario: ConformanceScenario, _ context: DMACallbackContext) {
        let r = runConformanceScenario(
            scenario.number, subject: CRingSubject.subject(PluginFixtures.referenceEngine, context),
            configuration: CRingSubject.configuration)
        expectScenario(r, tag: "cring(\(context.rawValue))")
    }

    /// Engines without `host_area` keep the callbacks in the host's table: the same suite on
    /// that path.
    @Test("the C ring engine passes scenario with the callbacks in the host's own table", arguments: ConformanceScenario.all)
    func scenarioWithoutHostArea(_ scenario: ConformanceScenario) {
        let subject = ConformanceSubject(name: "cring(host table)") { options in
            try PluginChannel(engine: try CRingSubject.engine(PluginFixtures.referenceEngine), options: options, hostArea: false)
        }
        let r = runConformanceScenario(scenario.number, subject: subject, configuration: CRingSubject.configuration)
        expectScenario(r, tag: "cring(host table)")
    }

    @Test("the suite catches the broken C engine (synchronize returns early) through the plugin path", arguments: CRingSubject.contexts)
    func brokenEngineIsCaught(_ context: DMACallbackContext) throws {
        #expect(try CRingSubject.engine(PluginFixtures.brokenEngine).name == "cring-broken-sync")
        var c = ConformanceConfiguration.standard()
        c.protectFreedBuffers = false
        c.iterations = min(c.iterations, 500)
        c.watchdogSeconds = 5
        let results = checkDMAChannelConformance(
            subject: CRingSubject.subject(PluginFixtures.brokenEngine, context), configuration: c, scenarios: [16, 17, 15, 29])
        for r in results { print("[cring-broken-sync] \(r.description.prefix(600))") }
        #expect(results.contains { $0.failed }, "no scenario of 15, 16, 17, 29 caught a synchronize that returns early")
    }

    /// A REUSE descriptor is back in prepared once its callback has returned, seen from
    /// another thread: the engine retires it only after complete() returns, and the checker
    /// caught a resubmit in between that failed busy (the executor had been preempted there).
    @Test("a REUSE descriptor resubmits from another thread as soon as its callback returned", arguments: CRingSubject.contexts)
    func reuseResubmitAfterCallback(_ context: DMACallbackContext) throws {
        var o = DMAChannelOptions()
        o.callbackContext = context
        let ch = try PluginChannel(engine: try CRingSubject.engine(PluginFixtures.referenceEngine), options: o)
        defer { try? ch.release() }
        let src = try ch.allocateCoherent(byteCount: 256)
        let dst = try ch.allocateCoherent(byteCount: 256)
        let returned = Atomic<Int>(0)
        let callback = DMACallback(plain: { _ in
            // Ordering: release; pairs with the acquire load below (the callback is over).
            returned.wrappingAdd(1, ordering: .releasing)
        })
        let d = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 256, flags: [.interrupt]))
        try ch.setReuse(true, for: d)
        try ch.setCallback(callback, for: d)
        var busy = 0
        for round in 1...2000 {
            let cookie = ch.submit(d)
            if cookie.rawValue < 0 {
                busy += 1
                break
            }
            ch.issuePending()
            // Ordering: acquire; pairs with the callback's release increment.
            while returned.load(ordering: .acquiring) < round { cpuRelax() }
        }
        #expect(busy == 0, "submit failed on a REUSE descriptor whose callback had returned")
        try ch.terminateSync()
        try ch.free(d)
    }

    @Test("the random-client checker passes on the C ring engine", arguments: CRingSubject.contexts)
    func contractFuzz(_ context: DMACallbackContext) {
        expectContractFuzzPasses(CRingSubject.subject(PluginFixtures.referenceEngine, context), seed: 0x5EED_00C1)
    }
}
