// dmabench — DMAEngineRing
//
// The lock-free ring backend (docs/architecture.md, "Channel and core"): MPSC submission ring, polling engine thread
// with a bounded spin then a futex park, SPSC completion ring to a callback executor thread,
// terminate as an epoch protocol. With `options.callbackContext == .engineThread` there is no
// executor thread: the engine thread runs the callbacks itself (RingEngine.swift).
//
// Why one MPSC ring and not an SPSC ring per submitting thread: contiguous channel-wide
// cookies (rule C4) need one atomic add on a shared counter per submit in any layout, and
// per-thread rings would also make the engine merge them by cookie (docs/measurement-notes.md,
// "RingChannel: why one MPSC submission ring").

import DMAEngine
import Glibc
import Platform
import Synchronization

/// The ring backend's channel. Registry name `ring`.
public final class RingChannel: DMAChannel {
    let core: RingCore
    /// The executor a client's `poll()` runs (`DMACallbackContext.clientPoll` only).
    private let pollTarget: RingExecutor?

    public var backendName: String { "ring" }

    /// Creates a channel and starts its engine and callback-executor threads (pinned to
    /// `options.engineCPU` / `options.executorCPU` when given); with
    /// `options.callbackContext == .engineThread` only the engine thread, which then runs the
    /// callbacks.
    /// The corresponding kernel call is `dma_request_chan()`.
    public convenience init(options: DMAChannelOptions = .init()) throws(DMAError) {
        try self.init(options: options, negativeControl: .none)
    }

    /// Creates a deliberately broken variant, to prove that the detectors detect.
    @_spi(NegativeControls)
    public init(options: DMAChannelOptions = .init(), negativeControl: RingNegativeControl) throws(DMAError) {
        core = try RingCore(options: options, negative: negativeControl)
        let executor = try core.start()
        pollTarget = core.clientPolls ? executor : nil
    }

    deinit {
        core.stopFromDeinit()
    }

    public var threadIDs: [DMAThreadRole: Int32] {
        var ids: [DMAThreadRole: Int32] = [:]
        if let t = core.engineThread { ids[.engine] = t.threadID }
        if let t = core.executorThread { ids[.executor] = t.threadID }
        return ids
    }

    public var capabilities: DMACapabilities {
        DMACapabilities(
            cmdPause: true, cmdResume: true, cmdTerminate: true, residueGranularity: .burst,
            descriptorReuse: true, completionNoOrder: false, memset: true, cyclic: true,
            memcpySG: true, maxSegments: RingCore.maxSegments)
    }

    /// Stamped by the engine at the end of each period of a cyclic transfer.
    public var periodClock: DMAPeriodClock? { core.periodClock }

    /// The corresponding kernel call is `dmaengine_prep_dma_memcpy_sg()`.
    public func prepareMemcpySG(
        destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        core.prepareMemcpySG(destinations: destinations, sources: sources, flags: flags)
    }

    // MARK: Configuration and memory (the logic is in RingCore+Client.swift)

    public func configure(_ config: DMAConfig) throws(DMAError) { try core.configure(config) }

    public func allocateCoherent(byteCount: Int) throws(DMAError) -> DMABuffer {
        try core.allocateCoherent(byteCount: byteCount)
    }

    public func freeCoherent(_ buffer: DMABuffer) { core.freeCoherent(buffer) }

    // MARK: Prep

    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        core.prepareMemcpy(to: destination, from: source, length: length, flags: flags)
    }

    /// Prep with the callback written at once (the descriptor is the caller's until submit;
    /// no second handle check).
    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags,
        callback: consuming DMACallback
    ) -> DMADescriptor? {
        core.prepareMemcpy(to: destination, from: source, length: length, flags: flags, callback: callback)
    }

    public func prepareMemset(
        to destination: UnsafeMutableRawPointer, value: UInt8, length: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        core.prepareMemset(to: destination, value: value, length: length, flags: flags)
    }

    /// A cyclic copy: the engine runs it period by period until it is terminated; the
    /// callback runs once per period, or fewer when periods elapse faster than the executor
    /// catches up (rule K1). Descriptors submitted after it wait behind it, as on hardware.
    /// The corresponding kernel call is `dmaengine_prep_dma_cyclic()`.
    public func prepareCyclic(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, bufferLength: Int,
        periodLength: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        core.prepareCyclic(to: destination, from: source, bufferLength: bufferLength, periodLength: periodLength, flags: flags)
    }

    // MARK: Descriptor

    public func setCallback(_ callback: DMACallback, for descriptor: DMADescriptor) throws(DMAError) {
        try core.setCallback(callback, for: descriptor)
    }

    public func setReuse(_ reuse: Bool, for descriptor: DMADescriptor) throws(DMAError) {
        try core.setReuse(reuse, for: descriptor)
    }

    public func free(_ descriptor: DMADescriptor) throws(DMAError) { try core.free(descriptor) }

    // MARK: Submit, issue, status

    public func submit(_ descriptor: DMADescriptor) -> DMACookie { core.submit(descriptor) }

    public func issuePending() { core.issuePending() }

    public func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) { core.status(of: cookie) }

    public func poll() -> Int { pollTarget?.poll() ?? 0 }

    public var pollThreshold: Int { pollTarget == nil ? .max : Int(core.pollBatch) }

    // MARK: Flow control

    public func pause() throws(DMAError) { try core.pause() }

    public func resume() throws(DMAError) { try core.resume() }

    // MARK: Termination

    public func terminateAsync() throws(DMAError) { try core.terminateAsync() }

    public func synchronize() throws(DMAError) { try core.synchronize() }

    public func terminateSync() throws(DMAError) { try core.terminateSync() }

    public func release() throws(DMAError) { try core.release() }

    // MARK: Test hooks

    public func debugSeedCookie(used: DMACookie, last: DMACookie) throws(DMAError) {
        try core.debugSeedCookie(used: used, last: last)
    }

    public func debugWatermark() -> DMACookieWatermark { core.debugWatermark() }

    public func debugInject(_ injection: DMAInjection, into descriptor: DMADescriptor) throws(DMAError) {
        try core.debugInject(injection, into: descriptor)
    }

    public func debugFailNextSubmits(_ count: Int) { core.debugFailNextSubmits(count) }

    public func debugReleaseStalls() { core.debugReleaseStalls() }

    public func debugSetAccessProbe(_ probe: DMAAccessProbe?) { core.debugSetAccessProbe(probe) }
}
