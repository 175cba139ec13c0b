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
        descriptorReuse: false, completionNoOrder: false, memset: false, cyclic: false)

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
        // Ordering: acquire; pairs with the release store in `shutdown`, so a release on
        // another thread is complete before this deinit skips the shutdown.
        if !core.released.load(ordering: .acquiring) {
            shutdown(waitForQuiescence: !core.onEngineThread)
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

    public func configure(_ config: DMAConfig) throws(DMAError) {
        guard config.burstBytes >= 0 else { throw .invalidArgument("burstBytes = \(config.burstBytes); it must be >= 0") }
        let c = core
        c.lock.lock()
        defer { c.lock.unlock() }
        if c.st.pointee.released { throw .released }
        c.st.pointee.config = config
    }

    /// Carves a zero-filled, page-aligned buffer from the pool file. The corresponding
    /// kernel call is `dma_alloc_coherent()`.
    public func allocateCoherent(byteCount: Int) throws(DMAError) -> DMABuffer {
        // Ordering: acquire; pairs with the release store in `shutdown` (the pool is unmapped after it).
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
        let c = core
        guard length > 0, let off = c.pool.offset(of: source, length: length) else { return nil }
        c.lock.lock()
        defer { c.lock.unlock() }
        guard !c.st.pointee.released, c.st.pointee.freeCount > 0 else { return nil }
        c.st.pointee.freeCount -= 1
        let idx = c.freeList[c.st.pointee.freeCount]
        let s = c.slots + Int(idx)
        s.pointee.state = .prepared
        s.pointee.flags = flags
        s.pointee.destination = destination
        s.pointee.sourceOffset = off
        s.pointee.length = length
        s.pointee.chunksIssued = 0
        s.pointee.outstanding = 0
        s.pointee.bytesDone = 0
        s.pointee.result = .noError
        s.pointee.delay = 0
        s.pointee.stall = false
        s.pointee.fault = nil
        s.pointee.nextDue = 0
        c.setChunking(s, requested: c.st.pointee.config.burstBytes)
        return DMADescriptor(index: idx, generation: s.pointee.generation)
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
        let c = core
        c.lock.lock()
        defer { c.lock.unlock() }
        if c.st.pointee.released { throw .released }
        guard let s = c.preparedSlot(descriptor) else { throw .invalidHandle }
        s.pointee.callback = callback
    }

    /// `.notPermitted`: this backend does not reuse descriptors (`capabilities.descriptorReuse == false`).
    public func setReuse(_ reuse: Bool, for descriptor: DMADescriptor) throws(DMAError) {
        // Ordering: acquire; pairs with the release store in `shutdown` (the pool is unmapped after it).
        if core.released.load(ordering: .acquiring) { throw .released }
        throw .notPermitted
    }

    /// `.notPermitted` for every valid handle (no descriptor here is REUSE).
    public func free(_ descriptor: DMADescriptor) throws(DMAError) {
        let c = core
        c.lock.lock()
        defer { c.lock.unlock() }
        if c.st.pointee.released { throw .released }
        guard Int(descriptor.index) < c.slotCount, c.slots[Int(descriptor.index)].generation == descriptor.generation,
            c.slots[Int(descriptor.index)].state != .free
        else { throw .invalidHandle }
        throw .notPermitted
    }

    // MARK: Submit, issue, status

    /// The corresponding kernel call is `dmaengine_submit()`.
    public func submit(_ descriptor: DMADescriptor) -> DMACookie {
        let c = core
        c.lock.lock()
        defer { c.lock.unlock() }
        if c.st.pointee.released { return .failure(ENODEV) }
        guard let s = c.preparedSlot(descriptor) else { return .failure(EINVAL) }
        if c.st.pointee.failNextSubmits > 0 {
            c.st.pointee.failNextSubmits -= 1
            return .failure(EIO)
        }
        let cookie = c.st.pointee.watermark.assign()
        s.pointee.cookie = cookie
        s.pointee.state = .submitted
        c.fifo[c.st.pointee.tail & c.fifoMask] = descriptor.index
        c.st.pointee.tail += 1
        c.publish()
        return cookie
    }

    /// Hands every submitted descriptor to the kernel: `io_uring_submit` on this thread with
    /// `.plain`/`.sqpoll`, a hand-off to the engine thread with `.deferTaskrun`. Nothing
    /// reaches the kernel while paused. The corresponding kernel call is
    /// `dma_async_issue_pending()`.
    public func issuePending() {
        let c = core
        c.lock.lock()
        if c.st.pointee.released {
            c.lock.unlock()
            return
        }
        c.st.pointee.issuedEnd = c.st.pointee.tail
        let go = !c.st.pointee.paused && c.st.pointee.barrier < 0 && c.st.pointee.kcursor < c.st.pointee.issuedEnd
        c.lock.unlock()
        guard go else { return }
        if setup == .deferTaskrun {
            c.request(URingControl.flush, urgent: false)
        } else {
            c.pumpFromClient()
        }
    }

    /// The corresponding kernel call is `dmaengine_tx_status()`.
    public func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) {
        let c = core
        // Ordering: acquire; pairs with the release store in `URingCore.publish()`.
        let wm = DMACookieWatermark(packed: c.published.load(ordering: .acquiring))
        if wm.isComplete(cookie) {
            return (.complete, DMATxState(last: wm.last, used: wm.used, residue: 0,
                                          inFlightBytes: c.inFlightBytes.load(ordering: .relaxed)))
        }
        c.lock.lock()
        defer { c.lock.unlock() }
        let w = c.st.pointee.watermark
        let inFlight = c.st.pointee.bytesInKernel
        if w.isComplete(cookie) {
            return (.complete, DMATxState(last: w.last, used: w.used, residue: 0, inFlightBytes: inFlight))
        }
        var residue = 0
        var pos = c.st.pointee.head
        while pos < c.st.pointee.tail {
            let s = c.slots + Int(c.fifo[pos & c.fifoMask])
            if s.pointee.cookie == cookie {
                switch s.pointee.state {
                case .active, .done: residue = max(1, s.pointee.length - s.pointee.bytesDone)
                default: residue = s.pointee.length
                }
                break
            }
            pos += 1
        }
        return (c.st.pointee.paused ? .paused : .inProgress,
                DMATxState(last: w.last, used: w.used, residue: residue, inFlightBytes: inFlight))
    }

    // MARK: Flow control

    /// Holds back submission and returns once no SQE of this channel is in the kernel. From a
    /// callback (the engine thread) it reaps in place; from another thread it waits for the
    /// engine (bounded by the reads in flight). The corresponding kernel call is `dmaengine_pause()`.
    public func pause() throws(DMAError) {
        let c = core
        c.lock.lock()
        if c.st.pointee.released {
            c.lock.unlock()
            throw .released
        }
        c.st.pointee.paused = true
        c.lock.unlock()
        if c.onEngineThread {
            c.drainInline()
        } else {
            // Ordering: seq_cst; pairs with the seq_cst decrement in `URingCore.absorb`.
            c.waitFor { c.outstanding.load(ordering: .sequentiallyConsistent) == 0 }
        }
    }

    /// The corresponding kernel call is `dmaengine_resume()`.
    public func resume() throws(DMAError) {
        let c = core
        c.lock.lock()
        if c.st.pointee.released {
            c.lock.unlock()
            throw .released
        }
        guard c.st.pointee.paused else {
            c.lock.unlock()
            throw .notPaused
        }
        c.st.pointee.paused = false
        c.lock.unlock()
        if setup != .deferTaskrun { c.pumpFromClient() }
        c.request(URingControl.flush | URingControl.service, urgent: true)
    }

    // MARK: Termination

    /// NB-safe. The corresponding kernel call is `dmaengine_terminate_async()`.
    public func terminateAsync() throws(DMAError) {
        let c = core
        c.lock.lock()
        if c.st.pointee.released {
            c.lock.unlock()
            throw .released
        }
        let cancel = c.terminateLocked()
        c.lock.unlock()
        if cancel { c.request(URingControl.cancel, urgent: true) }
    }

    /// The corresponding kernel call is `dmaengine_synchronize()`.
    public func synchronize() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        // Ordering: acquire; pairs with the release store in `shutdown` (the pool is unmapped after it).
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
        let c = core
        c.lock.lock()
        if c.st.pointee.released {
            c.lock.unlock()
            throw .released
        }
        c.lock.unlock()
        shutdown(waitForQuiescence: true)
    }

    private func shutdown(waitForQuiescence: Bool) {
        let c = core
        c.lock.lock()
        c.st.pointee.released = true
        let cancel = c.terminateLocked()
        c.lock.unlock()
        // Ordering: release; pairs with the acquire loads of `released` in the public calls.
        c.released.store(true, ordering: .releasing)
        if cancel { c.request(URingControl.cancel, urgent: true) }
        if waitForQuiescence { c.waitQuiescent() }
        c.stopEngine()
    }

    // MARK: Test hooks

    public func debugSeedCookie(used: DMACookie, last: DMACookie) throws(DMAError) {
        guard used.isValid, last.isValid else {
            throw .invalidArgument("debugSeedCookie(used: \(used), last: \(last)); cookies must be >= 1")
        }
        let c = core
        c.lock.lock()
        defer { c.lock.unlock() }
        if c.st.pointee.released { throw .released }
        guard c.st.pointee.head == c.st.pointee.tail, c.st.pointee.zombies == 0 else { throw .busy }
        c.st.pointee.watermark = DMACookieWatermark(used: used, last: last)
        c.publish()
    }

    public func debugWatermark() -> DMACookieWatermark {
        // Ordering: acquire; pairs with the release store in `URingCore.publish()`.
        DMACookieWatermark(packed: core.published.load(ordering: .acquiring))
    }

    /// Latency: the engine feeds the transfer chunk by chunk (one SQE each), waiting
    /// `delayPerChunkNanoseconds` before each; the wait is a timed io_uring wait that pause
    /// and terminate cut short. Stall: the first chunk waits for terminate or
    /// `debugReleaseStalls()`. Fault: an IORING_OP_NOP replaces the reads, so dst is never
    /// touched, and the callback gets READ_FAILED or WRITE_FAILED.
    public func debugInject(_ injection: DMAInjection, into descriptor: DMADescriptor) throws(DMAError) {
        let c = core
        c.lock.lock()
        defer { c.lock.unlock() }
        if c.st.pointee.released { throw .released }
        guard let s = c.preparedSlot(descriptor) else { throw .invalidHandle }
        if injection.chunkBytes > 0 { c.setChunking(s, requested: injection.chunkBytes) }
        s.pointee.delay = max(0, injection.delayPerChunkNanoseconds)
        s.pointee.stall = injection.stall
        s.pointee.fault = injection.fault
    }

    public func debugFailNextSubmits(_ count: Int) {
        let c = core
        c.lock.lock()
        c.st.pointee.failNextSubmits = max(0, count)
        c.lock.unlock()
    }

    public func debugReleaseStalls() {
        let c = core
        c.lock.lock()
        for i in 0..<c.slotCount { c.slots[i].stall = false }
        c.lock.unlock()
        c.request(URingControl.service, urgent: true)
    }

    /// Reports an access when a chunk's SQE is handed to the kernel (a read of the source)
    /// and when its CQE arrives (a write of the destination: the kernel has written it by
    /// then). One write per chunk, so the count shows the burst size (scenario 32); a CQE
    /// for a terminated descriptor after `synchronize` shows up as a forbidden write.
    public func debugSetAccessProbe(_ probe: DMAAccessProbe?) {
        let c = core
        c.lock.lock()
        c.st.pointee.probe = probe
        c.st.pointee.hasProbe = probe != nil
        c.lock.unlock()
    }

    /// CQEs for terminated descriptors that arrived after a `synchronize` had returned (each
    /// one breaks the seed guarantee; 0 is the only correct value).
    public var debugLateCompletions: Int { core.lateCompletions.load(ordering: .relaxed) }
    /// CQEs that matched no descriptor in use (0 is the only correct value).
    public var debugStrayCompletions: Int { core.strayCompletions.load(ordering: .relaxed) }
}
