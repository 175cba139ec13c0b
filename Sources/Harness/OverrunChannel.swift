// dmabench — Harness
//
// A deliberately broken variant of any backend (`dmabench run --debug-overrun N`): every
// memcpy copies N bytes more than it was asked to. It exists to show that the verifier's
// guard check catches an engine that writes past its length, as dmatest's would. With N = 0
// it is a plain forwarder that counts how descriptors were prepared (tests).

import DMAEngine
import Synchronization

public final class OverrunChannel: DMAChannel {
    public let inner: any DMAChannel
    public let overrun: Int
    /// Memcpy preps with and without `.interrupt`, and with a callback: what a test reads to
    /// see how a client prepared its descriptors. Relaxed: read after the client's run.
    public let preparedWithInterrupt = Atomic<Int>(0)
    public let preparedWithCallback = Atomic<Int>(0)
    public let preparedPlain = Atomic<Int>(0)

    public init(_ inner: any DMAChannel, overrun: Int) {
        self.inner = inner
        self.overrun = overrun
    }

    public var backendName: String { inner.backendName + "+overrun\(overrun)" }
    public var threadIDs: [DMAThreadRole: Int32] { inner.threadIDs }
    public var capabilities: DMACapabilities { inner.capabilities }
    public func configure(_ config: DMAConfig) throws(DMAError) { try inner.configure(config) }
    public func allocateCoherent(byteCount: Int) throws(DMAError) -> DMABuffer { try inner.allocateCoherent(byteCount: byteCount) }
    public func freeCoherent(_ buffer: DMABuffer) { inner.freeCoherent(buffer) }

    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        count(flags, callback: false)
        return inner.prepareMemcpy(to: destination, from: source, length: length + overrun, flags: flags)
    }

    func count(_ flags: DMAPrepFlags, callback: Bool) {
        if flags.contains(.interrupt) { preparedWithInterrupt.add(1, ordering: .relaxed) }
        if callback { preparedWithCallback.add(1, ordering: .relaxed) } else { preparedPlain.add(1, ordering: .relaxed) }
    }

    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags,
        callback: consuming DMACallback
    ) -> DMADescriptor? {
        count(flags, callback: true)
        return inner.prepareMemcpy(to: destination, from: source, length: length + overrun, flags: flags, callback: callback)
    }

    public func prepareMemset(to destination: UnsafeMutableRawPointer, value: UInt8, length: Int, flags: DMAPrepFlags) -> DMADescriptor? {
        inner.prepareMemset(to: destination, value: value, length: length, flags: flags)
    }

    /// Scatter-gather: the last source and destination segments are N bytes longer (the
    /// lists are copied into stack memory, so the wrapper allocates nothing either).
    public func prepareMemcpySG(
        destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        count(flags, callback: false)
        guard overrun > 0, !destinations.isEmpty, !sources.isEmpty else {
            return inner.prepareMemcpySG(destinations: destinations, sources: sources, flags: flags)
        }
        return withUnsafeTemporaryAllocation(of: DMASegment.self, capacity: destinations.count + sources.count) { t in
            for (k, d) in destinations.enumerated() { t[k] = d }
            for (k, s) in sources.enumerated() { t[destinations.count + k] = s }
            t[destinations.count - 1].length += overrun
            t[t.count - 1].length += overrun
            let d = UnsafeBufferPointer(rebasing: t[0..<destinations.count])
            let s = UnsafeBufferPointer(rebasing: t[destinations.count...])
            return inner.prepareMemcpySG(destinations: d, sources: s, flags: flags)
        }
    }

    public var periodClock: DMAPeriodClock? { inner.periodClock }

    public func prepareCyclic(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, bufferLength: Int, periodLength: Int,
        flags: DMAPrepFlags
    ) -> DMADescriptor? {
        inner.prepareCyclic(to: destination, from: source, bufferLength: bufferLength, periodLength: periodLength, flags: flags)
    }

    public func setCallback(_ callback: DMACallback, for descriptor: DMADescriptor) throws(DMAError) {
        try inner.setCallback(callback, for: descriptor)
    }
    public func setReuse(_ reuse: Bool, for descriptor: DMADescriptor) throws(DMAError) { try inner.setReuse(reuse, for: descriptor) }
    public func free(_ descriptor: DMADescriptor) throws(DMAError) { try inner.free(descriptor) }
    public func submit(_ descriptor: DMADescriptor) -> DMACookie { inner.submit(descriptor) }
    public func issuePending() { inner.issuePending() }
    public func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) { inner.status(of: cookie) }
    public func poll() -> Int { inner.poll() }
    public var pollThreshold: Int { inner.pollThreshold }
    public func pause() throws(DMAError) { try inner.pause() }
    public func resume() throws(DMAError) { try inner.resume() }
    public func terminateAsync() throws(DMAError) { try inner.terminateAsync() }
    public func synchronize() throws(DMAError) { try inner.synchronize() }
    public func terminateSync() throws(DMAError) { try inner.terminateSync() }
    public func release() throws(DMAError) { try inner.release() }
    public func debugSeedCookie(used: DMACookie, last: DMACookie) throws(DMAError) { try inner.debugSeedCookie(used: used, last: last) }
    public func debugWatermark() -> DMACookieWatermark { inner.debugWatermark() }
    public func debugInject(_ injection: DMAInjection, into descriptor: DMADescriptor) throws(DMAError) {
        try inner.debugInject(injection, into: descriptor)
    }
    public func debugFailNextSubmits(_ count: Int) { inner.debugFailNextSubmits(count) }
    public func debugReleaseStalls() { inner.debugReleaseStalls() }
    public func debugSetAccessProbe(_ probe: DMAAccessProbe?) { inner.debugSetAccessProbe(probe) }
}
