// dmabench — TestHelpers
//
// A channel that forwards every call to another one: tests subclass it and override the one
// or two calls they change (a terminateSync that hangs, capabilities without a feature),
// instead of writing the whole protocol out each time.

import DMAEngine

open class ForwardingChannel: DMAChannel, @unchecked Sendable {
    public let inner: any DMAChannel

    public init(_ inner: any DMAChannel) { self.inner = inner }

    open var backendName: String { inner.backendName }
    open var threadIDs: [DMAThreadRole: Int32] { inner.threadIDs }
    open var capabilities: DMACapabilities { inner.capabilities }
    open var periodClock: DMAPeriodClock? { inner.periodClock }
    open func configure(_ config: DMAConfig) throws(DMAError) { try inner.configure(config) }
    open func allocateCoherent(byteCount: Int) throws(DMAError) -> DMABuffer { try inner.allocateCoherent(byteCount: byteCount) }
    open func freeCoherent(_ buffer: DMABuffer) { inner.freeCoherent(buffer) }
    open func prepareMemcpy(to d: UnsafeMutableRawPointer, from s: UnsafeRawPointer, length: Int, flags: DMAPrepFlags) -> DMADescriptor? {
        inner.prepareMemcpy(to: d, from: s, length: length, flags: flags)
    }
    open func prepareMemcpySG(
        destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        inner.prepareMemcpySG(destinations: destinations, sources: sources, flags: flags)
    }
    open func prepareMemset(to d: UnsafeMutableRawPointer, value: UInt8, length: Int, flags: DMAPrepFlags) -> DMADescriptor? {
        inner.prepareMemset(to: d, value: value, length: length, flags: flags)
    }
    open func prepareCyclic(
        to d: UnsafeMutableRawPointer, from s: UnsafeRawPointer, bufferLength: Int, periodLength: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        inner.prepareCyclic(to: d, from: s, bufferLength: bufferLength, periodLength: periodLength, flags: flags)
    }
    open func setCallback(_ callback: DMACallback, for d: DMADescriptor) throws(DMAError) { try inner.setCallback(callback, for: d) }
    open func setReuse(_ reuse: Bool, for d: DMADescriptor) throws(DMAError) { try inner.setReuse(reuse, for: d) }
    open func free(_ d: DMADescriptor) throws(DMAError) { try inner.free(d) }
    open func submit(_ d: DMADescriptor) -> DMACookie { inner.submit(d) }
    open func issuePending() { inner.issuePending() }
    open func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) { inner.status(of: cookie) }
    open func poll() -> Int { inner.poll() }
    open var pollThreshold: Int { inner.pollThreshold }
    open func pause() throws(DMAError) { try inner.pause() }
    open func resume() throws(DMAError) { try inner.resume() }
    open func terminateAsync() throws(DMAError) { try inner.terminateAsync() }
    open func synchronize() throws(DMAError) { try inner.synchronize() }
    open func terminateSync() throws(DMAError) { try inner.terminateSync() }
    open func release() throws(DMAError) { try inner.release() }
    open func debugSeedCookie(used: DMACookie, last: DMACookie) throws(DMAError) { try inner.debugSeedCookie(used: used, last: last) }
    open func debugWatermark() -> DMACookieWatermark { inner.debugWatermark() }
    open func debugInject(_ i: DMAInjection, into d: DMADescriptor) throws(DMAError) { try inner.debugInject(i, into: d) }
    open func debugFailNextSubmits(_ count: Int) { inner.debugFailNextSubmits(count) }
    open func debugReleaseStalls() { inner.debugReleaseStalls() }
    open func debugSetAccessProbe(_ probe: DMAAccessProbe?) { inner.debugSetAccessProbe(probe) }
}
