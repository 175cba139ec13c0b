// dmabench — ConformanceTests
//
// The watchdog turns a hang into a failure: a channel whose synchronize never returns makes
// the scenario fail as hung instead of blocking the test run.

import DMAEngine
import DMAEngineEmbedded
import DMAEngineTestSupport
import Platform
import Synchronization
import Testing

/// An embedded channel whose `terminateSync` blocks until `unblock()` (a deadlock stand-in).
final class HangingChannel: DMAChannel {
    let inner: EmbeddedChannel
    let gate = ParkingEvent()
    let open = Atomic<Bool>(false)

    init(options: DMAChannelOptions) { inner = EmbeddedChannel(options: options) }

    func unblock() {
        // Ordering: release; pairs with the acquire load in `terminateSync`.
        open.store(true, ordering: .releasing)
        gate.signal()
    }

    var backendName: String { "hanging" }
    var capabilities: DMACapabilities { inner.capabilities }
    func configure(_ config: DMAConfig) throws(DMAError) { try inner.configure(config) }
    func allocateCoherent(byteCount: Int) throws(DMAError) -> DMABuffer { try inner.allocateCoherent(byteCount: byteCount) }
    func freeCoherent(_ buffer: DMABuffer) { inner.freeCoherent(buffer) }
    func prepareMemcpy(to d: UnsafeMutableRawPointer, from s: UnsafeRawPointer, length: Int, flags: DMAPrepFlags) -> DMADescriptor? {
        inner.prepareMemcpy(to: d, from: s, length: length, flags: flags)
    }
    func prepareMemset(to d: UnsafeMutableRawPointer, value: UInt8, length: Int, flags: DMAPrepFlags) -> DMADescriptor? {
        inner.prepareMemset(to: d, value: value, length: length, flags: flags)
    }
    func prepareCyclic(to d: UnsafeMutableRawPointer, from s: UnsafeRawPointer, bufferLength: Int, periodLength: Int, flags: DMAPrepFlags) -> DMADescriptor? {
        inner.prepareCyclic(to: d, from: s, bufferLength: bufferLength, periodLength: periodLength, flags: flags)
    }
    func setCallback(_ callback: DMACallback, for d: DMADescriptor) throws(DMAError) { try inner.setCallback(callback, for: d) }
    func setReuse(_ reuse: Bool, for d: DMADescriptor) throws(DMAError) { try inner.setReuse(reuse, for: d) }
    func free(_ d: DMADescriptor) throws(DMAError) { try inner.free(d) }
    func submit(_ d: DMADescriptor) -> DMACookie { inner.submit(d) }
    func issuePending() { inner.issuePending() }
    func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) { inner.status(of: cookie) }
    func pause() throws(DMAError) { try inner.pause() }
    func resume() throws(DMAError) { try inner.resume() }
    func terminateAsync() throws(DMAError) { try inner.terminateAsync() }
    func synchronize() throws(DMAError) { try inner.synchronize() }
    func terminateSync() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        // Ordering: acquire; pairs with the release store in `unblock`.
        if !open.load(ordering: .acquiring) { gate.wait(spinNanoseconds: 0) }  // the "deadlock"
        try inner.terminateSync()
    }
    func release() throws(DMAError) { try inner.release() }
    func debugSeedCookie(used: DMACookie, last: DMACookie) throws(DMAError) { try inner.debugSeedCookie(used: used, last: last) }
    func debugWatermark() -> DMACookieWatermark { inner.debugWatermark() }
    func debugInject(_ injection: DMAInjection, into d: DMADescriptor) throws(DMAError) { try inner.debugInject(injection, into: d) }
    func debugFailNextSubmits(_ count: Int) { inner.debugFailNextSubmits(count) }
    func debugReleaseStalls() { inner.debugReleaseStalls() }
    func debugSetAccessProbe(_ probe: DMAAccessProbe?) { inner.debugSetAccessProbe(probe) }
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
            drive: { ($0 as? HangingChannel)?.inner.completeAll() })
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
