// dmabench — DMAEngine
//
// The channel protocol: the Linux dmaengine client API, one call for one call
// (docs/contract.md A.2, docs/architecture.md, "The channel protocol in brief").
//
// Context rules. Each requirement says whether it is *NB-safe* (legal in a non-blocking
// context: a completion callback or a `withNonBlockingContext` region; bounded time; never
// waits for the engine or the callback executor) or *blocking* (blocking context only; it
// returns `.illegalContext`, with no side effect, when called in a non-blocking context).

/// Memory that the engine can read and write: the analogue of `dma_alloc_coherent()`.
///
/// Backends that copy in user space hand out page-aligned anonymous memory; the io_uring
/// backend hands out memory mapped from its pool file, because the kernel reads the source
/// from that file. Always allocate sources with `DMAChannel.allocateCoherent(byteCount:)`.
public struct DMABuffer: @unchecked Sendable, Hashable {
    public var base: UnsafeMutableRawPointer
    public var count: Int

    public init(base: UnsafeMutableRawPointer, count: Int) {
        self.base = base
        self.count = count
    }

    public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base, count: count) }
}

/// Which thread runs completion callbacks (the tasklet analogue, docs/contract.md A.1).
public enum DMACallbackContext: String, Sendable, Hashable, Codable {
    /// A callback executor thread of its own (the default): the engine never runs client code.
    case executorThread
    /// The engine thread runs callbacks itself, after a batch of completions, with no backend
    /// lock held. Two threads instead of three: on a 2-CPU machine a third busy thread has no
    /// CPU of its own, and every hand-off to it costs a context switch. Callbacks are still
    /// serialized and in completion order, and `synchronize` still waits for a running one.
    case engineThread
    /// Like `engineThread`, and a client thread that calls `DMAChannel.poll()` runs the
    /// callbacks of a full batch itself, as ioat's `tx_status` runs its cleanup in the caller.
    /// The engine then only moves bytes and publishes completions (the anchors' split); it
    /// still runs what no poll took before it idles, so a client that never polls still gets
    /// every callback. Callbacks stay serialized and in completion order; one of them may run
    /// on the polling thread, inside `poll()`. Backends without it treat it as `engineThread`.
    case clientPoll
}

/// Where a backend runs its threads, given at creation.
public struct DMAChannelOptions: Sendable, Hashable {
    /// Descriptors in the preallocated pool; `prepare…` returns nil when all are in use.
    public var poolSize: Int
    /// CPU for the engine thread (nil = not pinned).
    public var engineCPU: Int?
    /// CPU for the callback executor (nil = not pinned).
    public var executorCPU: Int?
    /// How long the engine and executor spin before they park, in nanoseconds.
    public var spinNanoseconds: Int64
    /// Bytes of coherent memory to reserve for `allocateCoherent` (backends with a pool).
    public var coherentPoolBytes: Int
    /// Which thread runs callbacks. Backends that have no separate executor ignore it.
    public var callbackContext: DMACallbackContext = .executorThread
    /// A client's explicit choice of callback context, which a registry entry that picks
    /// its own default (`DMABackends`) honours instead. The harness asks for the executor
    /// thread on cyclic streams, so that a slow period callback cannot hold the engine back.
    public var requestedCallbackContext: DMACallbackContext?
    /// Under `DMACallbackContext.clientPoll`: the fewest waiting completions that a `poll()`
    /// takes (`DMAChannel.pollThreshold`). A batch, by default, so that at low depth the
    /// engine calls back as in `engineThread`; the conformance tests use 1, so that polls
    /// race the engine for every callback.
    public var clientPollBatch: Int = 32

    public init(
        poolSize: Int = 4096, engineCPU: Int? = nil, executorCPU: Int? = nil,
        spinNanoseconds: Int64 = 50_000, coherentPoolBytes: Int = 64 << 20
    ) {
        self.poolSize = poolSize
        self.engineCPU = engineCPU
        self.executorCPU = executorCPU
        self.spinNanoseconds = spinNanoseconds
        self.coherentPoolBytes = coherentPoolBytes
    }
}

/// One DMA channel, as a client sees it after `dma_request_chan()`.
public protocol DMAChannel: AnyObject, Sendable {
    /// The registry name of the backend (`locked`, `ring`, `uring`, …).
    var backendName: String { get }

    /// The backend's own threads as Linux thread ids (gettid), by role, for per-thread
    /// counters and placement checks. A default implementation returns an empty map.
    var threadIDs: [DMAThreadRole: Int32] { get }

    /// What the channel supports. NB-safe. The corresponding kernel call is
    /// `dma_get_slave_caps()`.
    var capabilities: DMACapabilities { get }

    /// Changes the configuration for later preps only. NB-safe.
    /// The corresponding kernel call is `dmaengine_slave_config()`.
    func configure(_ config: DMAConfig) throws(DMAError)

    // MARK: Coherent memory

    /// Allocates memory the engine can use (`dma_alloc_coherent()`), page-aligned and
    /// zero-filled. Blocking (it may map memory).
    func allocateCoherent(byteCount: Int) throws(DMAError) -> DMABuffer
    /// Frees memory from `allocateCoherent`. The client must not free a buffer that a
    /// descriptor not yet retired still uses (that is what `synchronize` is for).
    func freeCoherent(_ buffer: DMABuffer)

    // MARK: Prep (NB-safe)

    /// Prepares a copy of `length` bytes. Returns nil when the pool is exhausted or the
    /// arguments are not supported. The corresponding kernel call is
    /// `dmaengine_prep_dma_memcpy()`.
    func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags
    ) -> DMADescriptor?

    /// Prepares a fill of `length` bytes with `value`; nil when `!capabilities.memset`.
    /// The corresponding kernel call is `dmaengine_prep_dma_memset()`.
    func prepareMemset(to destination: UnsafeMutableRawPointer, value: UInt8, length: Int, flags: DMAPrepFlags)
        -> DMADescriptor?

    /// Prepares a cyclic transfer that copies `source` to `destination` period by period,
    /// forever, with one callback per period (or fewer: coalescing is allowed, rule K1);
    /// nil when `!capabilities.cyclic`. The corresponding kernel call is
    /// `dmaengine_prep_dma_cyclic()`.
    func prepareCyclic(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, bufferLength: Int,
        periodLength: Int, flags: DMAPrepFlags
    ) -> DMADescriptor?

    /// Prepares a scatter-gather copy: the bytes of `sources`, in order, to `destinations`,
    /// in order. The two lists may differ in count but not in total length; each holds at most
    /// `capabilities.maxSegments` segments of at least 1 byte. Residue counts the bytes left
    /// across all segments. The channel copies the lists (into a preallocated pool), so they
    /// may be reused at once. nil when `!capabilities.memcpySG`, the lists are invalid, or the
    /// pool is exhausted. The corresponding kernel call is `dmaengine_prep_dma_memcpy_sg()`
    /// (DPDK: `rte_dma_copy_sg`).
    func prepareMemcpySG(
        destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, flags: DMAPrepFlags
    ) -> DMADescriptor?

    // MARK: Descriptor (NB-safe)

    /// Sets the completion callback; before submit only. The corresponding kernel fields are
    /// `callback`, `callback_result` and `callback_param`.
    func setCallback(_ callback: DMACallback, for descriptor: DMADescriptor) throws(DMAError)
    /// Prepares a copy and sets its callback in one call, as a kernel client writes
    /// `desc->callback` right after `dmaengine_prep_dma_memcpy()`. nil as for
    /// `prepareMemcpy`. The default is `prepareMemcpy` then `setCallback`; a backend may do
    /// both in one step (one lock acquisition instead of two). NB-safe.
    func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags,
        callback: consuming DMACallback
    ) -> DMADescriptor?
    /// Marks a descriptor reusable (`dmaengine_desc_set_reuse()`) or not
    /// (`dmaengine_desc_clear_reuse()`). `.notPermitted` when `!capabilities.descriptorReuse`.
    func setReuse(_ reuse: Bool, for descriptor: DMADescriptor) throws(DMAError)
    /// Frees an idle REUSE descriptor (`dmaengine_desc_free()`): `.notPermitted` for a
    /// non-REUSE descriptor, `.busy` while in flight.
    func free(_ descriptor: DMADescriptor) throws(DMAError)

    // MARK: Submit, issue, status (NB-safe)

    /// Assigns a cookie and queues the descriptor on the submitted list. Never starts work.
    /// Returns a negative cookie on failure (the descriptor is not queued, `used` is
    /// unchanged). The corresponding kernel call is `dmaengine_submit()`.
    func submit(_ descriptor: DMADescriptor) -> DMACookie

    /// Moves every submitted descriptor to the issued list and starts the engine if it is
    /// idle and not paused. The corresponding kernel call is `dma_async_issue_pending()`.
    func issuePending()

    /// The status of `cookie`, from one consistent snapshot of the watermark (rule S1).
    /// The corresponding kernel call is `dmaengine_tx_status()`.
    func status(of cookie: DMACookie) -> (DMAStatus, DMATxState)

    /// Under `DMACallbackContext.clientPoll`: runs the callbacks of the completions waiting
    /// (a full batch at least) on the calling thread, unless another thread is running them.
    /// Returns how many it ran. NB-safe; the callbacks it runs are in a non-blocking context.
    /// Backends and contexts where callbacks have a thread of their own return 0 (the
    /// default). The kernel has no call of its own for it: ioat runs its cleanup, callbacks
    /// included, inside `dmaengine_tx_status()`.
    func poll() -> Int

    /// The fewest outstanding descriptors for which `poll()` can have work: a client calls
    /// it only with at least this many in flight, so that at low depth its polls take no
    /// lines from the engine. `Int.max` (the default) where `poll()` does nothing.
    var pollThreshold: Int { get }

    // MARK: Flow control (NB-safe)

    /// Stops the engine moving data; returns once it has stopped (rule P1).
    /// The corresponding kernel call is `dmaengine_pause()`.
    func pause() throws(DMAError)
    /// The corresponding kernel call is `dmaengine_resume()`. `.notPaused` when not paused.
    func resume() throws(DMAError)

    // MARK: Termination

    /// Aborts every queued and active transfer and returns at once (rules T1, T2). NB-safe:
    /// legal from a callback. The client must call `synchronize()` before freeing anything
    /// the terminated transfers or their callbacks use. The corresponding kernel call is
    /// `dmaengine_terminate_async()`.
    func terminateAsync() throws(DMAError)

    /// Waits until the engine no longer touches memory of any descriptor submitted before
    /// the last terminate, and no callback of such a descriptor is running or will start
    /// (rule T3). Blocking: never from a completion callback. The corresponding kernel call
    /// is `dmaengine_synchronize()`.
    func synchronize() throws(DMAError)

    /// `terminateAsync()` followed by `synchronize()` (rule T4). Blocking: never from a
    /// completion callback; the context is checked before any effect. The corresponding
    /// kernel call is `dmaengine_terminate_sync()`.
    func terminateSync() throws(DMAError)

    /// Terminates remaining work with `terminateSync` semantics, joins every thread, closes
    /// every file descriptor and frees every descriptor, REUSE ones included. Blocking.
    /// Afterwards every operation fails with `.released`. The corresponding kernel call is
    /// `dma_release_channel()`.
    func release() throws(DMAError)

    // MARK: Test hooks (docs/contract.md A.2)

    /// Sets the watermark of an idle channel (scenarios 4, 5).
    func debugSeedCookie(used: DMACookie, last: DMACookie) throws(DMAError)
    /// The current watermark, read as one snapshot.
    func debugWatermark() -> DMACookieWatermark
    /// Attaches latency or fault injection to a prepared descriptor, before submit.
    func debugInject(_ injection: DMAInjection, into descriptor: DMADescriptor) throws(DMAError)
    /// Makes the next `count` submits fail with a negative cookie (scenario 27).
    func debugFailNextSubmits(_ count: Int)
    /// Releases every transfer stalled by `DMAInjection.stall`.
    func debugReleaseStalls()
    /// Installs (or removes, with nil) the engine-access probe.
    func debugSetAccessProbe(_ probe: DMAAccessProbe?)

    /// The period clock of the channel's running cyclic transfer (periods completed and
    /// when each ended), or nil when the backend has none. NB-safe. No kernel counterpart:
    /// a hardware driver would timestamp its period interrupt; dmabench measures how late the
    /// period callback runs after it.
    var periodClock: DMAPeriodClock? { get }
}

extension DMAChannel {
    /// No scatter-gather (`capabilities.memcpySG == false`).
    public func prepareMemcpySG(
        destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, flags: DMAPrepFlags
    ) -> DMADescriptor? { nil }

    /// No period clock.
    public var periodClock: DMAPeriodClock? { nil }

    /// `prepareMemcpySG` with arrays (tests, setup code; the arrays are not kept).
    public func prepareMemcpySG(destinations: [DMASegment], sources: [DMASegment], flags: DMAPrepFlags = .default)
        -> DMADescriptor?
    {
        destinations.withUnsafeBufferPointer { d in
            sources.withUnsafeBufferPointer { s in prepareMemcpySG(destinations: d, sources: s, flags: flags) }
        }
    }

    /// `submit` followed by `issuePending`, like NIO's `writeAndFlush`. NB-safe.
    @inlinable
    public func submitAndIssue(_ descriptor: DMADescriptor) -> DMACookie {
        let cookie = submit(descriptor)
        issuePending()
        return cookie
    }

    /// The default of the requirement: `prepareMemcpy`, then `setCallback`.
    @inlinable
    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags,
        callback: consuming DMACallback
    ) -> DMADescriptor? {
        guard let d = prepareMemcpy(to: destination, from: source, length: length, flags: flags) else { return nil }
        do { try setCallback(callback, for: d) } catch { return nil }
        return d
    }

    /// Prepares a memcpy with the default flags and sets its callback. NB-safe. (An overload
    /// rather than a default argument, so that the call reaches a backend's own
    /// implementation of the requirement.)
    @inlinable
    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, callback: consuming DMACallback
    ) -> DMADescriptor? {
        prepareMemcpy(to: destination, from: source, length: length, flags: .default, callback: callback)
    }
}

/// The role of a thread a backend runs, for per-thread counters and placement checks.
public enum DMAThreadRole: String, Sendable, Hashable, Codable, CaseIterable {
    /// The thread that moves data (or, for io_uring, submits to the kernel).
    case engine
    /// The thread that runs completion callbacks (tasklet analogue; io_uring's reaper).
    case executor
}

extension DMAChannel {
    public func poll() -> Int { 0 }
    public var pollThreshold: Int { .max }

    /// The backend's own threads as Linux thread ids (gettid), by role. Backends that run
    /// threads override this; the default is empty.
    public var threadIDs: [DMAThreadRole: Int32] { [:] }
}
