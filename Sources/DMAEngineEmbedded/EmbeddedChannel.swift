// dmabench — DMAEngineEmbedded
//
// A deterministic, hand-driven channel (docs/architecture.md, "Modules and their dependencies"), modelled on NIO's EmbeddedChannel:
// `submit` puts a descriptor on the pending (submitted) list, `issuePending` moves the
// pending list to the active (issued) list, and nothing moves a byte until the test calls
// `completeNext()`, `advance(byteCount:)` or `completeAll()`. Callbacks run inline, on the
// thread that drives the channel, inside `DMACallback.invoke` (so in a non-blocking
// context). There is no engine thread: `synchronize()` waits only while another thread is
// driving the channel (copying or running a callback), so that T3 covers that work too.
//
// The state sits behind one pthread mutex (`LockedValue`), which is never held while a callback or the access
// probe runs; the channel is therefore safe to use from several threads, but it is meant to
// be driven from one.

#if os(Linux)
import Glibc
#endif
import DMAEngine
import Platform

/// A deterministic DMA channel whose engine is the test itself.
///
/// Lists (as in Linux virt-dma): prepared → pending (submitted) → active (issued) →
/// retired; `terminateAsync` moves pending and active descriptors to a terminated list that
/// `synchronize` retires. The corresponding kernel structure is `struct virt_dma_chan`.
public final class EmbeddedChannel: DMAChannel {
    /// What `finish()` found still queued: the analogue of NIO's `LeftOverState`.
    public struct LeftOverState: Hashable, Sendable, CustomStringConvertible {
        /// Cookies submitted but never issued.
        public var pending: [DMACookie]
        /// Cookies issued but not completed (a cyclic transfer stays here for ever).
        public var active: [DMACookie]
        /// Descriptors terminated by `terminateAsync` whose `synchronize` had not run yet.
        public var terminatedNotSynchronized: Int
        /// Descriptors prepared (or REUSE descriptors parked) and never freed.
        public var prepared: Int

        /// True when nothing was left.
        public var isClean: Bool { pending.isEmpty && active.isEmpty && terminatedNotSynchronized == 0 && prepared == 0 }

        public var description: String {
            "pending \(pending), active \(active), terminated-not-synchronized \(terminatedNotSynchronized), prepared \(prepared)"
        }
    }

    public let backendName = "embedded"

    public let capabilities = DMACapabilities(
        cmdPause: true, cmdResume: true, cmdTerminate: true, residueGranularity: .burst,
        descriptorReuse: true, completionNoOrder: false, memset: true, cyclic: true,
        memcpySG: true, maxSegments: EmbeddedChannel.maxSegments)

    /// The most segments per list of `prepareMemcpySG`.
    public static let maxSegments = 16

    private let state: LockedValue<State>
    private let poolSize: Int

    /// Creates a channel with a pool of `options.poolSize` descriptors. The CPU and spin
    /// options mean nothing here: there are no threads.
    public init(options: DMAChannelOptions = DMAChannelOptions()) {
        poolSize = max(1, options.poolSize)
        state = LockedValue(State(poolSize: max(1, options.poolSize)))
    }

    deinit {
        let report = state.withLock { s -> String? in
            if s.released { return nil }
            let inFlight = s.pending.count + s.issued.count + s.terminated.count
            if inFlight == 0 && s.coherent.isEmpty { return nil }
            return "EmbeddedChannel deinit: leaked \(inFlight) descriptor(s) in flight and \(s.coherent.count) coherent buffer(s); maybe forgot to call finish(), terminateSync() or release()"
        }
        if let report {
            // A message, not a crash: a test that leaks should fail on its own expectations.
            print(report)
        }
    }

    // MARK: Driving the engine by hand

    /// Number of descriptors submitted but not issued.
    public var pendingCount: Int { state.withLock { $0.pending.count } }
    /// Number of descriptors issued and not completed (the head may be partly copied).
    public var activeCount: Int { state.withLock { $0.issued.count } }
    /// Number of descriptors terminated and waiting for `synchronize`.
    public var terminatedCount: Int { state.withLock { $0.terminated.count } }
    /// Number of descriptors taken from the pool (prepared, queued, or parked REUSE ones).
    public var descriptorsInUse: Int { state.withLock { s in s.slots.count(where: { $0.phase != .free }) } }
    /// True while the channel is paused.
    public var isPaused: Bool { state.withLock { $0.paused } }
    /// Every access reported to the probe so far is also counted here.
    public var accessCount: Int { state.withLock { $0.accessCount } }

    /// Completes the head of the active list: copies (or fills) its remaining bytes, moves
    /// the watermark, runs its callback inline, and retires it. For a cyclic head, moves one
    /// period and runs its callback (a cyclic transfer never completes). Returns the cookie,
    /// or nil when nothing can run (nothing issued, paused, stalled, or released).
    @discardableResult
    public func completeNext() -> DMACookie? {
        advance(byteCount: .max)
    }

    /// Moves at most `byteCount` bytes of the head of the active list. Returns its cookie if
    /// that completed it (or finished a cyclic period), nil otherwise.
    @discardableResult
    public func advance(byteCount: Int) -> DMACookie? {
        precondition(byteCount > 0, "advance(byteCount:) needs a positive byte count, got \(byteCount)")
        var budget = byteCount
        while true {
            guard let work = state.withLock({ s in s.takeWork(limit: budget) }) else { return nil }
            let (cookie, moved) = advance(work)
            if let cookie { return cookie }
            // A scatter-gather walk goes on into its next piece while the budget lasts.
            guard work.continues, budget == .max || moved < budget else { return nil }
            if budget != .max { budget -= moved }
        }
    }

    /// Moves one piece of work; returns the cookie when that completed it, and the bytes moved.
    private func advance(_ work: Work) -> (DMACookie?, Int) {
        let probe = work.probe
        var accesses = 0
        var moved = 0
        if let fault = work.fault {
            // A faulted transfer touches its first chunk of source (read fault) or writes
            // nothing (write fault), and completes with an error (rule K5).
            if fault == .read {
                probe?(DMAAccess(cookie: work.cookie, kind: .read, address: UInt(bitPattern: work.source), count: min(work.chunk, work.count)))
                accesses += 1
            }
        } else {
            while moved < work.count {
                let n = min(work.chunk, work.count - moved)
                let d = work.destination + work.offset + moved
                if let s = work.source {
                    let src = s + work.sourceOffset + moved
                    probe?(DMAAccess(cookie: work.cookie, kind: .read, address: UInt(bitPattern: src), count: n))
                    probe?(DMAAccess(cookie: work.cookie, kind: .write, address: UInt(bitPattern: d), count: n))
                    accesses += 2
                    d.copyMemory(from: src, byteCount: n)
                } else {
                    probe?(DMAAccess(cookie: work.cookie, kind: .write, address: UInt(bitPattern: d), count: n))
                    accesses += 1
                    d.initializeMemory(as: UInt8.self, repeating: work.value, count: n)
                }
                moved += n
            }
        }
        let completion = state.withLock { s in s.finishWork(work, moved: moved, accesses: accesses) }
        guard let completion else {
            state.withLock { $0.driving = false }
            return (nil, moved)
        }
        if let callback = completion.callback {
            callback.invoke(cookie: completion.cookie, result: completion.result)
        }
        state.withLock { s in
            s.retireDispatched(completion)
            s.driving = false
        }
        return (completion.cookie, moved)
    }

    /// Runs `body` on the state once no thread is driving the engine (copying or running a
    /// callback), so that `synchronize` covers work a concurrent driver has started (T3).
    private func whenIdle<R>(_ body: (inout State) throws(DMAError) -> R) throws(DMAError) -> R {
        while true {
            let r = try state.withLock { s throws(DMAError) -> R? in
                if s.released { throw .released }
                return s.driving ? nil : try body(&s)
            }
            if let r { return r }
            #if os(Linux)
            sched_yield()
            #endif
        }
    }

    /// Completes the active list in order until it is empty, paused, stalled, or its head
    /// is cyclic. Work that callbacks issue meanwhile is completed too. Returns the cookies.
    @discardableResult
    public func completeAll() -> [DMACookie] {
        var done: [DMACookie] = []
        while state.withLock({ s in s.headIsRunnableNonCyclic }), let c = completeNext() {
            done.append(c)
        }
        return done
    }

    /// Terminates everything, synchronizes, and reports what was still queued (the analogue
    /// of NIO's `EmbeddedChannel.finish()`). The channel stays usable. Blocking context only.
    public func finish() throws(DMAError) -> LeftOverState {
        try NonBlockingContext.checkBlockingAllowed()
        let left = state.withLock { s in
            LeftOverState(
                pending: s.pending.map { s.slots[$0].cookie }, active: s.issued.map { s.slots[$0].cookie },
                terminatedNotSynchronized: s.terminated.count,
                prepared: s.slots.count(where: { $0.phase == .prepared }))
        }
        try terminateSync()
        return left
    }

    // MARK: DMAChannel

    public func configure(_ config: DMAConfig) throws(DMAError) {
        guard config.burstBytes >= 0 else { throw .invalidArgument("burstBytes must be >= 0, got \(config.burstBytes)") }
        try state.withLock { s throws(DMAError) in
            if s.released { throw .released }
            s.config = config
        }
    }

    public func allocateCoherent(byteCount: Int) throws(DMAError) -> DMABuffer {
        guard byteCount > 0 else { throw .invalidArgument("byteCount must be > 0, got \(byteCount)") }
        if state.withLock({ $0.released }) { throw .released }
        let len = Self.roundToPages(byteCount)
        #if os(Linux)
        let p = mmap(nil, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { throw .noResources }
        #else
        let p = UnsafeMutableRawPointer.allocate(byteCount: len, alignment: 4096)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: len)
        #endif
        let buffer = DMABuffer(base: p, count: byteCount)
        state.withLock { s in _ = s.coherent.insert(UInt(bitPattern: p)) }
        return buffer
    }

    public func freeCoherent(_ buffer: DMABuffer) {
        let known = state.withLock { s in s.coherent.remove(UInt(bitPattern: buffer.base)) != nil }
        precondition(known, "freeCoherent: \(buffer.base) was not allocated by this channel or was freed twice")
        #if os(Linux)
        munmap(buffer.base, Self.roundToPages(buffer.count))
        #else
        buffer.base.deallocate()
        #endif
    }

    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        guard length > 0 else { return nil }
        let job = Job(kind: .memcpy, destination: destination, source: source, value: 0, length: length, period: length)
        return state.withLock { s in s.prepare(job, flags: flags) }
    }

    /// The corresponding kernel call is `dmaengine_prep_dma_memcpy_sg()`.
    public func prepareMemcpySG(
        destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        let cap = DMASGPlan.pieceCapacity(maxSegments: Self.maxSegments)
        let buffer = UnsafeMutablePointer<DMASGPiece>.allocate(capacity: cap)
        defer { buffer.deallocate() }
        guard let plan = DMASGPlan.plan(destinations: destinations, sources: sources, maxSegments: Self.maxSegments, into: buffer)
        else { return nil }
        let pieces = Array(UnsafeBufferPointer(start: buffer, count: plan.count))
        let job = Job(
            kind: .memcpySG, destination: pieces[0].destination, source: pieces[0].source, value: 0, length: plan.total,
            period: plan.total, pieces: pieces)
        return state.withLock { s in s.prepare(job, flags: flags) }
    }

    public func prepareMemset(to destination: UnsafeMutableRawPointer, value: UInt8, length: Int, flags: DMAPrepFlags)
        -> DMADescriptor?
    {
        guard length > 0 else { return nil }
        let job = Job(kind: .memset, destination: destination, source: nil, value: value, length: length, period: length)
        return state.withLock { s in s.prepare(job, flags: flags) }
    }

    public func prepareCyclic(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, bufferLength: Int,
        periodLength: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        guard bufferLength > 0, periodLength > 0, bufferLength % periodLength == 0 else { return nil }
        let job = Job(
            kind: .cyclic, destination: destination, source: source, value: 0, length: bufferLength, period: periodLength)
        return state.withLock { s in s.prepare(job, flags: flags) }
    }

    public func setCallback(_ callback: DMACallback, for descriptor: DMADescriptor) throws(DMAError) {
        try state.withLock { s throws(DMAError) in
            let i = try s.validate(descriptor)
            guard s.slots[i].phase == .prepared else { throw s.slots[i].reuse ? .busy : .invalidHandle }
            s.slots[i].callback = callback
        }
    }

    public func setReuse(_ reuse: Bool, for descriptor: DMADescriptor) throws(DMAError) {
        try state.withLock { s throws(DMAError) in
            let i = try s.validate(descriptor)
            guard s.slots[i].phase == .prepared || s.slots[i].reuse else { throw .invalidHandle }
            s.slots[i].reuse = reuse
        }
    }

    public func free(_ descriptor: DMADescriptor) throws(DMAError) {
        try state.withLock { s throws(DMAError) in
            let i = try s.validate(descriptor)
            guard s.slots[i].reuse else { throw .notPermitted }
            guard s.slots[i].phase == .prepared else { throw .busy }
            s.recycle(i)
        }
    }

    public func submit(_ descriptor: DMADescriptor) -> DMACookie {
        state.withLock { s in s.submit(descriptor) }
    }

    public func issuePending() {
        state.withLock { s in
            guard !s.released else { return }
            for i in s.pending {
                s.slots[i].phase = .issued
                s.issuedBytes += s.slots[i].job?.length ?? 0
            }
            s.issued.append(contentsOf: s.pending)
            s.pending.removeAll(keepingCapacity: true)
        }
    }

    public func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) {
        state.withLock { s in s.status(of: cookie) }
    }

    public func pause() throws(DMAError) {
        try state.withLock { s throws(DMAError) in
            if s.released { throw .released }
            s.paused = true
        }
    }

    public func resume() throws(DMAError) {
        try state.withLock { s throws(DMAError) in
            if s.released { throw .released }
            guard s.paused else { throw .notPaused }
            s.paused = false
        }
    }

    public func terminateAsync() throws(DMAError) {
        try state.withLock { s throws(DMAError) in
            if s.released { throw .released }
            s.terminateAll()
        }
    }

    /// Retires the terminated descriptors. Driven from one thread, nothing runs concurrently
    /// and it never waits; with several driving threads it waits until none is copying or
    /// running a callback.
    public func synchronize() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        try whenIdle { s in s.retireTerminated() }
    }

    public func terminateSync() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        try terminateAsync()
        try whenIdle { s in s.retireTerminated() }
    }

    public func release() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        try terminateAsync()
        try whenIdle { s in
            s.terminateAll()
            s.retireTerminated()
            for i in s.slots.indices where s.slots[i].phase != .free {
                s.slots[i].reuse = false
                s.recycle(i)
            }
            s.released = true
            s.probe = nil
        }
    }

    // MARK: Test hooks

    public func debugSeedCookie(used: DMACookie, last: DMACookie) throws(DMAError) {
        guard used.isValid, last.isValid else {
            throw .invalidArgument("cookies must be >= 1, got used \(used), last \(last)")
        }
        try state.withLock { s throws(DMAError) in
            if s.released { throw .released }
            guard s.pending.isEmpty, s.issued.isEmpty, s.terminated.isEmpty else { throw .busy }
            s.watermark = DMACookieWatermark(used: used, last: last)
        }
    }

    public func debugWatermark() -> DMACookieWatermark { state.withLock { $0.watermark } }

    public func debugInject(_ injection: DMAInjection, into descriptor: DMADescriptor) throws(DMAError) {
        try state.withLock { s throws(DMAError) in
            let i = try s.validate(descriptor)
            guard s.slots[i].phase == .prepared else { throw s.slots[i].reuse ? .busy : .invalidHandle }
            s.slots[i].injection = injection
        }
    }

    public func debugFailNextSubmits(_ count: Int) {
        state.withLock { s in s.failNextSubmits = max(0, count) }
    }

    public func debugReleaseStalls() {
        state.withLock { s in
            for i in s.slots.indices { s.slots[i].stallReleased = true }
        }
    }

    public func debugSetAccessProbe(_ probe: DMAAccessProbe?) {
        state.withLock { s in s.probe = probe }
    }

    static func roundToPages(_ n: Int) -> Int {
        #if os(Linux)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        #else
        let page = 4096
        #endif
        return max(page, (n + page - 1) / page * page)
    }
}
