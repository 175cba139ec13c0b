// dmabench — DMAEngineLocked
//
// The reference backend: Linux virt-dma in user space (docs/architecture.md, "Channel and core", docs/contract.md appendix V).

import DMAEngine
import Platform

/// A DMA channel that reproduces Linux virt-dma: one lock guards the descriptor lists and
/// the cookie counters, an engine thread copies, and callbacks run with the lock dropped, one
/// at a time, in cookie order. Prep draws from a magazine of free slots and the engine
/// chains quick transfers, so the lock is taken about once per descriptor
/// (docs/architecture.md, "The locked backend"; docs/measurement-notes.md, "LockedChannel:
/// design and tuning"). Termination and pause follow virt-dma (docs/contract.md A.7, A.8).
public final class LockedChannel: DMAChannel {
    let core: LockedCore

    /// Creates a channel and starts its engine and executor threads (pinned to
    /// `options.engineCPU` / `options.executorCPU` when given). The corresponding kernel
    /// call is `dma_request_chan()`.
    public init(options: DMAChannelOptions = .init()) throws(DMAError) {
        core = try LockedCore(options: options, defect: nil)
        try core.start()
    }

    /// Creates a deliberately broken channel for negative-control tests (docs/architecture.md, "Negative controls").
    /// See `LockedDefect` for what each defect breaks.
    @_spi(NegativeControls)
    public init(options: DMAChannelOptions = .init(), defect: LockedDefect) throws(DMAError) {
        core = try LockedCore(options: options, defect: defect)
        try core.start()
    }

    deinit {
        core.shutdownFromDeinit()
    }

    public var backendName: String { "locked" }

    /// The engine and executor threads (gettid), for per-thread counters and placement checks.
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
            memcpySG: true, maxSegments: LockedCore.maxSegments)
    }

    /// Stamped by the engine at the end of each period of a cyclic transfer.
    public var periodClock: DMAPeriodClock? { core.periodClock }

    /// The corresponding kernel call is `dmaengine_slave_config()`. Affects later preps only.
    public func configure(_ config: DMAConfig) throws(DMAError) { try core.configure(config) }

    // MARK: Coherent memory

    /// Page-aligned, zero-filled anonymous memory. The corresponding kernel call is
    /// `dma_alloc_coherent()`.
    public func allocateCoherent(byteCount: Int) throws(DMAError) -> DMABuffer {
        guard byteCount > 0 else { throw .invalidArgument("byteCount \(byteCount); valid: 1 or more") }
        if core.isReleased { throw .released }
        do throws(SystemError) {
            return DMABuffer(base: try PageMemory.map(byteCount: byteCount), count: byteCount)
        } catch {
            throw .unavailable("\(error)")
        }
    }

    /// The corresponding kernel call is `dma_free_coherent()`.
    public func freeCoherent(_ buffer: DMABuffer) { PageMemory.unmap(buffer.base, byteCount: buffer.count) }

    // MARK: Prep

    /// The corresponding kernel call is `dmaengine_prep_dma_memcpy()` (virt-dma: `vchan_tx_prep`).
    /// Nil when the pool is exhausted, the channel is released, or `length < 1`.
    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        guard length > 0 else { return nil }
        return core.prepare(
            kind: .memcpy, destination: destination, source: source, length: length, periodLength: 0, value: 0,
            flags: flags)
    }

    /// Prep and callback under one acquisition of the channel lock (`vchan_tx_prep` takes it
    /// once; the kernel client's `desc->callback = …` takes none).
    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags,
        callback: consuming DMACallback
    ) -> DMADescriptor? {
        guard length > 0 else { return nil }
        return core.prepare(
            kind: .memcpy, destination: destination, source: source, length: length, periodLength: 0, value: 0,
            flags: flags, callback: callback)
    }

    /// The corresponding kernel call is `dmaengine_prep_dma_memcpy_sg()`: the lists are
    /// merged into pieces in the slot's preallocated piece table, which the engine walks.
    public func prepareMemcpySG(
        destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        core.prepare(
            kind: .memcpySG, destination: UnsafeMutableRawPointer(bitPattern: 1)!, source: nil, length: 0,
            periodLength: 0, value: 0, flags: flags, segments: (destinations, sources))
    }

    /// The corresponding kernel call is `dmaengine_prep_dma_memset()`.
    public func prepareMemset(to destination: UnsafeMutableRawPointer, value: UInt8, length: Int, flags: DMAPrepFlags)
        -> DMADescriptor?
    {
        guard length > 0 else { return nil }
        return core.prepare(
            kind: .memset, destination: destination, source: nil, length: length, periodLength: 0, value: value,
            flags: flags)
    }

    /// The corresponding kernel call is `dmaengine_prep_dma_cyclic()`. `bufferLength` must be
    /// a whole number of periods.
    public func prepareCyclic(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, bufferLength: Int,
        periodLength: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        guard periodLength > 0, bufferLength >= periodLength, bufferLength % periodLength == 0 else { return nil }
        return core.prepare(
            kind: .cyclic, destination: destination, source: source, length: bufferLength,
            periodLength: periodLength, value: 0, flags: flags)
    }

    // MARK: Descriptor

    /// Sets `callback`/`callback_result` and `callback_param`; before submit only.
    public func setCallback(_ callback: DMACallback, for descriptor: DMADescriptor) throws(DMAError) {
        try core.setCallback(callback, for: descriptor)
    }

    /// The corresponding kernel calls are `dmaengine_desc_set_reuse()` and
    /// `dmaengine_desc_clear_reuse()`.
    public func setReuse(_ reuse: Bool, for descriptor: DMADescriptor) throws(DMAError) {
        try core.setReuse(reuse, for: descriptor)
    }

    /// The corresponding kernel call is `dmaengine_desc_free()`.
    public func free(_ descriptor: DMADescriptor) throws(DMAError) { try core.free(descriptor) }

    // MARK: Submit, issue, status

    /// The corresponding kernel call is `dmaengine_submit()` (virt-dma: `vchan_tx_submit`).
    public func submit(_ descriptor: DMADescriptor) -> DMACookie { core.submit(descriptor) }

    /// The corresponding kernel call is `dma_async_issue_pending()` (virt-dma:
    /// `vchan_issue_pending`).
    public func issuePending() { core.issuePending() }

    /// The corresponding kernel call is `dmaengine_tx_status()`. `inFlightBytes` is exact
    /// when the cookie is IN_PROGRESS/PAUSED and approximate for a COMPLETE cookie.
    public func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) { core.status(of: cookie) }

    // MARK: Flow control

    /// The corresponding kernel call is `dmaengine_pause()`. Returns once the engine has
    /// finished the chunk it was moving (at most one burst).
    public func pause() throws(DMAError) { try core.pause() }

    /// The corresponding kernel call is `dmaengine_resume()`.
    public func resume() throws(DMAError) { try core.resume() }

    // MARK: Termination

    /// The corresponding kernel call is `dmaengine_terminate_async()`.
    public func terminateAsync() throws(DMAError) { try core.terminateAsync() }

    /// The corresponding kernel call is `dmaengine_synchronize()` (virt-dma: `vchan_synchronize`).
    public func synchronize() throws(DMAError) { try core.synchronize() }

    /// The corresponding kernel call is `dmaengine_terminate_sync()`.
    public func terminateSync() throws(DMAError) { try core.terminateSync() }

    /// The corresponding kernel call is `dma_release_channel()`. Joins both threads.
    public func release() throws(DMAError) { try core.release() }

    // MARK: Test hooks

    public func debugSeedCookie(used: DMACookie, last: DMACookie) throws(DMAError) {
        try core.seedCookie(used: used, last: last)
    }

    public func debugWatermark() -> DMACookieWatermark {
        core.watermarkSnapshot()
    }

    public func debugInject(_ injection: DMAInjection, into descriptor: DMADescriptor) throws(DMAError) {
        try core.inject(injection, into: descriptor)
    }

    public func debugFailNextSubmits(_ count: Int) { core.failNextSubmits(count) }

    public func debugReleaseStalls() { core.releaseStalls() }

    public func debugSetAccessProbe(_ probe: DMAAccessProbe?) { core.setAccessProbe(probe) }
}
