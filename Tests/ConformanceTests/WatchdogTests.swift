// dmabench — ConformanceTests
//
// The watchdog turns a hang into a failure: a channel whose synchronize never returns makes
// the scenario fail as hung instead of blocking the test run.

import DMAEngine
import DMAEngineEmbedded
import DMAEngineTestSupport
import Platform
import Synchronization
import TestHelpers
import Testing

/// An embedded channel whose `terminateSync` blocks until `unblock()` (a deadlock stand-in).
final class HangingChannel: ForwardingChannel, @unchecked Sendable {
    let embedded: EmbeddedChannel
    let gate = ParkingEvent()
    let open = Atomic<Bool>(false)

    init(options: DMAChannelOptions) {
        embedded = EmbeddedChannel(options: options)
        super.init(embedded)
    }

    func unblock() {
        // Ordering: release; pairs with the acquire load in `terminateSync`.
        open.store(true, ordering: .releasing)
        gate.signal()
    }

    override var backendName: String { "hanging" }
    override func terminateSync() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        // Ordering: acquire; pairs with the release store in `unblock`.
        if !open.load(ordering: .acquiring) { gate.wait(spinNanoseconds: 0) }  // the "deadlock"
        try embedded.terminateSync()
    }
}

struct WatchdogTests {
    @Test func aHangingTerminateSyncFailsTheScenarioAsHung() {
        let made = LockedBox<HangingChannel?>(nil)
        let subject = ConformanceSubject.handDriven(
            name: "hanging",
            makeChannel: { options in
                let c = HangingChannel(options: options)
                made.set(c)
                return c
            },
            drive: { ($0 as? HangingChannel)?.embedded.completeAll() })
        var config = ConformanceConfiguration.standard()
        config.watchdogSeconds = 1
        // Scenario 13 calls terminateSync on an idle channel first.
        let r = runConformanceScenario(13, subject: subject, configuration: config)
        #expect(r.failed)
        #expect(r.failures.contains { $0.contains("watchdog: no progress") && $0.contains("hung") }, "\(r)")
        #expect(r.duration < 30)
        made.get()?.unblock()  // let the abandoned scenario thread finish
    }
}

/// A value shared with a @Sendable factory.
final class LockedBox<T>: @unchecked Sendable {
    private let lock = ParkingEvent()
    private var value: T
    init(_ v: T) {
        value = v
        lock.signal()
    }
    func set(_ v: T) {
        lock.wait(spinNanoseconds: 0)
        value = v
        lock.signal()
    }
    func get() -> T {
        lock.wait(spinNanoseconds: 0)
        defer { lock.signal() }
        return value
    }
}
