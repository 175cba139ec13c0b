// dmabench — DMAEngineURing
//
// The io_uring backend: the kernel is the DMA hardware (docs/architecture.md, "Channel and core").

import CURing
import DMAEngine
import Glibc
import Platform

/// A DMA channel whose engine is the kernel's io_uring.
///
/// DMA memory comes from the channel's own pool (`allocateCoherent`, the analogue of
/// `dma_alloc_coherent()`): one file mapped `MAP_SHARED`. A memcpy descriptor becomes an
/// `IORING_OP_READ` (`READ_FIXED` with `.registeredFile`) from the pool file at the source's
/// offset into the destination, one SQE per chunk (`DMAConfig.burstBytes`, or an injected
/// chunk size). A source outside the pool cannot be read by the kernel: prep returns nil.
///
/// Threads. One engine thread per channel reaps CQEs in batches, runs callbacks, feeds
/// latency-injected descriptors chunk by chunk and queues cancels. With `.plain` and
/// `.sqpoll`, `issuePending` is `io_uring_submit` on the caller's thread (SQ access is
/// serialised by a lock). With `.deferTaskrun` only the ring's creator may submit or reap,
/// so the engine thread creates and owns the ring: `issuePending` hands the issued
/// descriptors to it and rings an eventfd doorbell (an armed `IORING_OP_READ`) only when the
/// engine sleeps with nothing in the kernel. Callbacks run on the engine thread
/// (`DMAChannelOptions.executorCPU` is not used; `engineCPU` pins the engine thread). The
/// engine spins `spinNanoseconds` (yielding, docs/measurement-notes.md, "Reference facts from the plain-C anchors") before it sleeps in
/// `io_uring_enter`, except with `.sqpoll`.
///
/// Ordering. io_uring completes out of order once a second io-wq worker runs (docs/measurement-notes.md,
/// "Reference facts from the plain-C anchors"). This backend keeps a reorder buffer instead of advertising `completionNoOrder`:
/// descriptors wait in a FIFO in cookie order, a CQE only marks its descriptor done, and
/// callbacks are delivered (and `last` advanced) from the FIFO head. Rules S1, C4 and K3
/// then hold as for any in-order engine, polled clients (`status`) work, and the cost is
/// O(1) per descriptor plus head-of-line waiting behind a slow read, which an in-order
/// hardware engine has too. A latency-injected descriptor is also a barrier: nothing after
/// it reaches the kernel until it is done, so queued cookies really are untouched.
///
/// Termination. `terminateAsync` drops every submitted descriptor (S6: `last := used`),
/// turns those with SQEs in the kernel into zombies and queues an `IORING_OP_ASYNC_CANCEL`
/// (`IORING_ASYNC_CANCEL_ALL | ANY`). A cancelled request still produces a CQE, and a read
/// already running in an io-wq worker cannot be cancelled, so `synchronize` waits until
/// every zombie's SQEs have produced their CQEs, the cancel's own CQE arrived (so it cannot
/// hit later work) and the callback batch running at the call has finished. After that the
/// kernel writes into none of those buffers; a CQE for a terminated descriptor arriving
/// after a synchronize is counted in `debugLateCompletions` and reported to the probe.
///
/// Pause stops handing SQEs to the kernel and waits until the ones in flight completed
/// (reads cannot be frozen half way); residue freezes at chunk granularity.
///
/// The pool is a page-cache file by default because the kernel runs those reads inline in
/// `io_uring_enter`, where a memfd's go to io-wq workers (docs/measurement-notes.md,
/// "URingChannel: pool backing").
public final class URingChannel: DMAChannel {
    let core: URingCore

    public let backendName: String
    public let setup: URingSetup
    public let poolBacking: URingPoolBacking

    public static let staticCapabilities = DMACapabilities(
        cmdPause: true, cmdResume: true, cmdTerminate: true, residueGranularity: .segment,
        descriptorReuse: false, completionNoOrder: false, memset: false, cyclic: false,
        memcpySG: true, maxSegments: URingCore.maxSegments)

    public var capabilities: DMACapabilities { Self.staticCapabilities }

    /// The engine thread, which submits for the defer setup, reaps completions and runs the
    /// callbacks (so it is also the callback context). Empty once released.
    public var threadIDs: [DMAThreadRole: Int32] {
        guard let t = core.engineThread, t.threadID != 0 else { return [:] }
        return [.engine: t.threadID]
    }

    /// Whether the kernel's io-wq workers were pinned to the engine CPU
    /// (IORING_REGISTER_IOWQ_AFF): nil without an engine CPU, else "ok" or the errno text.
    public var iowqAffinity: String? {
        guard let rc = core.iowqAffinityResult else { return nil }
        return rc == 0 ? "ok" : "failed: \(String(cString: strerror(-rc)))"
    }

    /// Creates a channel: the pool file, the ring (on the engine thread) and the engine thread.
    /// Throws `.unavailable` with the cause where io_uring cannot be used, and
    /// `.invalidArgument` for a pool directory on tmpfs or bad sizes. The corresponding
    /// kernel call is `dma_request_chan()`.
    public init(
        options: DMAChannelOptions = .init(), setup: URingSetup = .plain, pool: URingPoolBacking = .default
    ) throws(DMAError) {
        if case .failure(let e) = Self.availability() { throw e }
        let p = try URingPool(backing: pool, byteCount: options.coherentPoolBytes)
        core = try URingCore(options: options, setup: setup, pool: p)
        self.setup = setup
        self.poolBacking = pool
        backendName = setup.backendName
    }

    deinit {
        // Ordering: acquire; pairs with the release store in `URingCore.shutdown`, so a release on
        // another thread is complete before this deinit skips the shutdown.
        if !core.released.load(ordering: .acquiring) {
            core.shutdown(waitForQuiescence: !core.onEngineThread)
        }
    }

    // MARK: Availability

    /// Whether io_uring can be used here: `/proc/sys/kernel/io_uring_disabled` and a probe
    /// ring (`io_uring_queue_init`). Cached after the first call. The failure names the cause
    /// and the errno (ENOSYS: no io_uring; EPERM: disabled by sysctl or seccomp).
    public static func availability() -> Result<Void, DMAError> { cachedAvailability }

    /// Nil where io_uring can be used, else the reason it cannot (for the backend registry's
    /// `unavailableReason`).
    public static var unavailableReason: String? {
        if case .failure(let e) = availability() { return "\(e)" }
        return nil
    }

    private static let cachedAvailability: Result<Void, DMAError> = {
        if let v = disabledSysctl(), v == "2" {
            return .failure(.unavailable("io_uring is disabled: /proc/sys/kernel/io_uring_disabled = 2"))
        }
        let rc = curing_probe()
        if rc < 0 { return .failure(URingCore.setupError(rc, setup: .plain, backing: .memfd)) }
        return .success(())
    }()

    /// The value of `/proc/sys/kernel/io_uring_disabled` (nil where the file does not exist).
    static func disabledSysctl() -> String? {
        guard let b = Files.readSmall("/proc/sys/kernel/io_uring_disabled", limit: 15), !b.isEmpty else { return nil }
        return String(decoding: b.filter { $0 > 32 }, as: UTF8.self)
    }

    // MARK: Configuration and memory

    public func configure(_ config: DMAConfig) throws(DMAError) { try core.configure(config) }

    /// Carves a zero-filled, page-aligned buffer from the pool file. The corresponding
    /// kernel call is `dma_alloc_coherent()`.
    public func allocateCoherent(byteCount: Int) throws(DMAError) -> DMABuffer {
        // Ordering: acquire; pairs with the release store in `URingCore.shutdown` (the pool is unmapped after it).
        if core.released.load(ordering: .acquiring) { throw .released }
        return try core.pool.allocate(byteCount: byteCount)
    }

    /// The corresponding kernel call is `dma_free_coherent()`.
    public func freeCoherent(_ buffer: DMABuffer) {
        core.pool.free(buffer)
    }

    // MARK: Prep

    /// The corresponding kernel call is `dmaengine_prep_dma_memcpy()`. Nil when the pool is
    /// exhausted, `length <= 0`, or the source is not in this channel's coherent pool.
    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        core.prepareMemcpy(to: destination, from: source, length: length, flags: flags)
    }

    /// Prep with the callback written in the same lock section (the descriptor is the
    /// caller's until submit; no second handle check).
    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags,
        callback: consuming DMACallback
    ) -> DMADescriptor? {
        core.prepareMemcpy(to: destination, from: source, length: length, flags: flags, callback: callback)
    }

    /// The corresponding kernel call is `dmaengine_prep_dma_memcpy_sg()`. Every source
    /// segment must come from `allocateCoherent` (the pool file); nil otherwise.
    public func prepareMemcpySG(
        destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        core.prepareMemcpySG(destinations: destinations, sources: sources, flags: flags)
    }

    /// Not supported (`capabilities.memset == false`): io_uring has no fill opcode.
    public func prepareMemset(to destination: UnsafeMutableRawPointer, value: UInt8, length: Int, flags: DMAPrepFlags)
        -> DMADescriptor?
    { nil }

    /// Not supported (`capabilities.cyclic == false`).
    public func prepareCyclic(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, bufferLength: Int,
        periodLength: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? { nil }

    // MARK: Descriptor

    public func setCallback(_ callback: DMACallback, for descriptor: DMADescriptor) throws(DMAError) {
        try core.setCallback(callback, for: descriptor)
    }

    /// `.notPermitted`: this backend does not reuse descriptors (`capabilities.descriptorReuse == false`).
    public func setReuse(_ reuse: Bool, for descriptor: DMADescriptor) throws(DMAError) {
        // Ordering: acquire; pairs with the release store in `URingCore.shutdown`.
        if core.released.load(ordering: .acquiring) { throw .released }
        throw .notPermitted
    }

    /// `.notPermitted` for every valid handle (no descriptor here is REUSE).
    public func free(_ descriptor: DMADescriptor) throws(DMAError) { try core.free(descriptor) }

    // MARK: Submit, issue, status

    /// The corresponding kernel call is `dmaengine_submit()`.
    public func submit(_ descriptor: DMADescriptor) -> DMACookie { core.submit(descriptor) }

    /// Hands every submitted descriptor to the kernel: `io_uring_submit` on this thread with
    /// `.plain`/`.sqpoll`, a hand-off to the engine thread with `.deferTaskrun`. Nothing
    /// reaches the kernel while paused. The corresponding kernel call is
    /// `dma_async_issue_pending()`.
    public func issuePending() { core.issuePending() }

    /// The corresponding kernel call is `dmaengine_tx_status()`.
    public func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) { core.status(of: cookie) }

    // MARK: Flow control

    /// Holds back submission and returns once no SQE of this channel is in the kernel. From a
    /// callback (the engine thread) it reaps in place; from another thread it waits for the
    /// engine (bounded by the reads in flight). The corresponding kernel call is `dmaengine_pause()`.
    public func pause() throws(DMAError) { try core.pause() }

    /// The corresponding kernel call is `dmaengine_resume()`.
    public func resume() throws(DMAError) { try core.resume() }

    // MARK: Termination

    /// NB-safe. The corresponding kernel call is `dmaengine_terminate_async()`.
    public func terminateAsync() throws(DMAError) { try core.terminateAsync() }

    /// The corresponding kernel call is `dmaengine_synchronize()`.
    public func synchronize() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        // Ordering: acquire; pairs with the release store in `URingCore.shutdown`.
        if core.released.load(ordering: .acquiring) { throw .released }
        core.waitQuiescent()
    }

    /// The corresponding kernel call is `dmaengine_terminate_sync()`.
    public func terminateSync() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        try terminateAsync()
        core.waitQuiescent()
    }

    /// Terminates, synchronizes, stops and joins the engine thread, destroys the ring and
    /// closes the doorbell and pool files. The pool mapping stays until the channel object is
    /// freed, so buffers from `allocateCoherent` remain readable. The corresponding kernel
    /// call is `dma_release_channel()`.
    public func release() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        try core.withLiveLock { _ throws(DMAError) in }
        core.shutdown(waitForQuiescence: true)
    }

    // MARK: Test hooks

    public func debugSeedCookie(used: DMACookie, last: DMACookie) throws(DMAError) {
        try core.seedCookie(used: used, last: last)
    }

    public func debugWatermark() -> DMACookieWatermark {
        // Ordering: acquire; pairs with the release store in `URingCore.publish`.
        DMACookieWatermark(packed: core.published.load(ordering: .acquiring))
    }

    /// Latency: the engine feeds the transfer chunk by chunk (one SQE each), waiting
    /// `delayPerChunkNanoseconds` before each; the wait is a timed io_uring wait that pause
    /// and terminate cut short. Stall: the first chunk waits for terminate or
    /// `debugReleaseStalls()`. Fault: an IORING_OP_NOP replaces the reads, so dst is never
    /// touched, and the callback gets READ_FAILED or WRITE_FAILED.
    public func debugInject(_ injection: DMAInjection, into descriptor: DMADescriptor) throws(DMAError) {
        try core.inject(injection, into: descriptor)
    }

    public func debugFailNextSubmits(_ count: Int) { core.failNextSubmits(count) }

    public func debugReleaseStalls() { core.releaseStalls() }

    /// Reports an access when a chunk's SQE is handed to the kernel (a read of the source)
    /// and when its CQE arrives (a write of the destination: the kernel has written it by
    /// then). One write per chunk, so the count shows the burst size (scenario 32); a CQE
    /// for a terminated descriptor after `synchronize` shows up as a forbidden write.
    public func debugSetAccessProbe(_ probe: DMAAccessProbe?) { core.setAccessProbe(probe) }

    /// CQEs for terminated descriptors that arrived after a `synchronize` had returned (each
    /// one breaks the seed guarantee; 0 is the only correct value).
    public var debugLateCompletions: Int { core.lateCompletions.load(ordering: .relaxed) }
    /// CQEs that matched no descriptor in use (0 is the only correct value).
    public var debugStrayCompletions: Int { core.strayCompletions.load(ordering: .relaxed) }
}
