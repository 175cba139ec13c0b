// dmabench — DMAEngineCPU
//
// The cpu backend: the plain CPU as the baseline every engine must beat (docs/architecture.md,
// "The cpu backend"). The channel is the API surface and forwards to `CPUCore`.

import DMAEngine
import Glibc
import Platform

/// A DMA channel whose "engine" is the thread that calls `issuePending`: the copy runs there,
/// synchronously, as the kernel's async_tx does when no DMA channel exists. Callbacks run
/// on that thread too, after the copies, in cookie order, in a non-blocking context.
///
/// What a synchronous engine cannot do, it does not advertise: pause (nothing is ever in
/// flight between two client calls; `cmdPause == false`), descriptor reuse and cyclic
/// transfers; and `synchronousIssue` tells clients and the conformance suite that issued
/// work is done when `issuePending` returns (unless another thread is draining it).
public final class CPUChannel: DMAChannel {
    let core: CPUCore

    public let backendName = "cpu"

    public static let staticCapabilities = DMACapabilities(
        cmdPause: false, cmdResume: false, cmdTerminate: true, residueGranularity: .segment,
        descriptorReuse: false, completionNoOrder: false, memset: true, cyclic: false, synchronousIssue: true,
        memcpySG: true, maxSegments: CPUCore.maxSegments)

    public var capabilities: DMACapabilities { Self.staticCapabilities }

    /// No threads: the client's thread does the work.
    public var threadIDs: [DMAThreadRole: Int32] { [:] }

    /// The corresponding kernel call is `dma_request_chan()` (here it cannot fail for lack of
    /// hardware; only bad options throw).
    public init(options: DMAChannelOptions = .init()) throws(DMAError) {
        core = try CPUCore(options: options)
    }

    public func configure(_ config: DMAConfig) throws(DMAError) { try core.configure(config) }

    /// Plain page-aligned memory: the CPU reads and writes any memory.
    public func allocateCoherent(byteCount: Int) throws(DMAError) -> DMABuffer {
        if core.isReleased { throw .released }
        guard byteCount > 0 else { throw .invalidArgument("byteCount \(byteCount); valid: > 0") }
        do {
            return DMABuffer(base: try PageMemory.map(byteCount: byteCount), count: byteCount)
        } catch {
            throw .unavailable("\(error)")
        }
    }

    public func freeCoherent(_ buffer: DMABuffer) { PageMemory.unmap(buffer.base, byteCount: buffer.count) }

    // MARK: Prep

    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        core.prepare(destination: destination, source: source, value: 0, isMemset: false, length: length, flags: flags, callback: nil)
    }

    /// Prep and callback in one lock acquisition.
    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags,
        callback: consuming DMACallback
    ) -> DMADescriptor? {
        core.prepare(destination: destination, source: source, value: 0, isMemset: false, length: length, flags: flags, callback: callback)
    }

    public func prepareMemset(to destination: UnsafeMutableRawPointer, value: UInt8, length: Int, flags: DMAPrepFlags)
        -> DMADescriptor?
    {
        core.prepare(destination: destination, source: nil, value: value, isMemset: true, length: length, flags: flags, callback: nil)
    }

    /// The corresponding kernel call is `dmaengine_prep_dma_memcpy_sg()`: the lists are merged
    /// into the slot's preallocated piece table and copied piece by piece at issue.
    public func prepareMemcpySG(
        destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        guard let d = destinations.first, let s = sources.first else { return nil }
        return core.prepare(
            destination: UnsafeMutableRawPointer(mutating: d.address), source: s.address, value: 0, isMemset: false,
            length: 1, flags: flags, callback: nil, segments: (destinations, sources))
    }

    /// Not supported (`capabilities.cyclic == false`): a cyclic transfer needs an engine that
    /// runs between client calls.
    public func prepareCyclic(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, bufferLength: Int,
        periodLength: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? { nil }

    // MARK: Descriptor

    public func setCallback(_ callback: DMACallback, for descriptor: DMADescriptor) throws(DMAError) {
        try core.setCallback(callback, for: descriptor)
    }

    /// `.notPermitted`: no descriptor reuse (`capabilities.descriptorReuse == false`).
    public func setReuse(_ reuse: Bool, for descriptor: DMADescriptor) throws(DMAError) {
        if core.isReleased { throw .released }
        throw .notPermitted
    }

    public func free(_ descriptor: DMADescriptor) throws(DMAError) { try core.free(descriptor) }

    // MARK: Submit, issue, status

    /// The corresponding kernel call is `dmaengine_submit()`.
    public func submit(_ descriptor: DMADescriptor) -> DMACookie { core.submit(descriptor) }

    /// Copies everything issued on this thread, then runs the callbacks; returns at once when
    /// another frame is already doing so. The corresponding kernel call is
    /// `dma_async_issue_pending()`.
    public func issuePending() { core.issuePending() }

    /// The corresponding kernel call is `dmaengine_tx_status()`.
    public func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) { core.status(of: cookie) }

    // MARK: Flow control

    /// `.notSupported` (`cmdPause == false`, rule P4).
    public func pause() throws(DMAError) {
        if core.isReleased { throw .released }
        throw .notSupported
    }

    /// `.notSupported` (`cmdPause == false`, rule P4).
    public func resume() throws(DMAError) {
        if core.isReleased { throw .released }
        throw .notSupported
    }

    // MARK: Termination

    /// NB-safe. The corresponding kernel call is `dmaengine_terminate_async()`.
    public func terminateAsync() throws(DMAError) { try core.terminateAsync() }

    /// The corresponding kernel call is `dmaengine_synchronize()`.
    public func synchronize() throws(DMAError) { try core.synchronize() }

    /// The corresponding kernel call is `dmaengine_terminate_sync()`.
    public func terminateSync() throws(DMAError) { try core.terminateSync() }

    /// The corresponding kernel call is `dma_release_channel()`.
    public func release() throws(DMAError) { try core.release() }

    // MARK: Test hooks

    public func debugSeedCookie(used: DMACookie, last: DMACookie) throws(DMAError) {
        try core.seedCookie(used: used, last: last)
    }

    public func debugWatermark() -> DMACookieWatermark {
        // Ordering: acquire; pairs with the release store in `CPUCore.publish`.
        DMACookieWatermark(packed: core.published.load(ordering: .acquiring))
    }

    /// Delays run inline, on the issuing thread; a stall blocks it until
    /// `debugReleaseStalls()` or a terminate from another thread.
    public func debugInject(_ injection: DMAInjection, into descriptor: DMADescriptor) throws(DMAError) {
        try core.inject(injection, into: descriptor)
    }

    public func debugFailNextSubmits(_ count: Int) { core.failNextSubmits(count) }

    public func debugReleaseStalls() { core.releaseStalls() }

    public func debugSetAccessProbe(_ probe: DMAAccessProbe?) { core.setAccessProbe(probe) }
}
