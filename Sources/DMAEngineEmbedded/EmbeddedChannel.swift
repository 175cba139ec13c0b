// dmabench — DMAEngineEmbedded
//
// A deterministic, hand-driven channel (docs/architecture.md, "Modules and their dependencies"), modelled on NIO's EmbeddedChannel:
// `submit` puts a descriptor on the pending (submitted) list, `issuePending` moves the
// pending list to the active (issued) list, and nothing moves a byte until the test calls
// `completeNext()`, `advance(byteCount:)` or `completeAll()`. Callbacks run inline, on the
// thread that drives the channel, inside `DMACallback.invoke` (so in a non-blocking
// context). There is no engine thread, so `synchronize()` never waits.
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
        descriptorReuse: true, completionNoOrder: false, memset: true, cyclic: true)

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
        guard let work = state.withLock({ s in s.takeWork(limit: byteCount) }) else { return nil }
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
            return nil
        }
        if let callback = completion.callback {
            callback.invoke(cookie: completion.cookie, result: completion.result)
        }
        state.withLock { s in
            s.retireDispatched(completion)
            s.driving = false
        }
        return completion.cookie
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

// MARK: - State

/// What a descriptor does. Raw pointers are the client's; the channel only copies through them.
struct Job: @unchecked Sendable {
    enum Kind { case memcpy, memset, cyclic }
    var kind: Kind
    var destination: UnsafeMutableRawPointer
    var source: UnsafeRawPointer?
    var value: UInt8
    var length: Int
    var period: Int
}

/// One piece of work taken from the head of the active list, done outside the lock.
struct Work: @unchecked Sendable {
    var index: Int
    var generation: UInt32
    var cookie: DMACookie
    var destination: UnsafeMutableRawPointer
    var source: UnsafeRawPointer?
    var value: UInt8
    /// Where this piece starts in the destination (and source) and how many bytes it moves.
    var offset: Int
    var sourceOffset: Int
    var count: Int
    var chunk: Int
    var fault: DMAFault?
    var probe: DMAAccessProbe?
}

/// A descriptor whose callback is about to run (the kernel's "dispatched" state).
struct Dispatch: Sendable {
    var index: Int
    var generation: UInt32
    var cookie: DMACookie
    var result: DMAResult
    var callback: DMACallback?
    var cyclic: Bool
}

struct Slot {
    enum Phase { case free, prepared, submitted, issued, dispatched, terminated }
    var generation: UInt32 = 0
    var phase: Phase = .free
    var job: Job?
    var flags: DMAPrepFlags = []
    var callback: DMACallback?
    var reuse = false
    var injection: DMAInjection?
    var stallReleased = false
    var burstBytes = 0
    var cookie = DMACookie(0)
    /// Bytes already moved in this submission (for a cyclic transfer: within the buffer).
    var done = 0
}

struct State: @unchecked Sendable {
    var slots: [Slot]
    var freeList: [Int]
    var pending: [Int] = []
    var issued: [Int] = []
    var terminated: [Int] = []
    var watermark = DMACookieWatermark()
    var config = DMAConfig()
    var paused = false
    var released = false
    var failNextSubmits = 0
    var probe: DMAAccessProbe?
    var coherent: Set<UInt> = []
    var accessCount = 0
    /// Sum of the lengths of the descriptors on the issued list (for `inFlightBytes`).
    var issuedBytes = 0
    /// A thread is copying the head or running its callback; other drivers wait their turn
    /// (so the engine never touches a descriptor after its callback, K7, and callbacks never
    /// overlap, K3, even with several driving threads).
    var driving = false

    init(poolSize: Int) {
        slots = Array(repeating: Slot(), count: poolSize)
        freeList = Array((0..<poolSize).reversed())
    }

    func validate(_ d: DMADescriptor) throws(DMAError) -> Int {
        if released { throw .released }
        let i = Int(d.index)
        guard i < slots.count, slots[i].generation == d.generation, slots[i].phase != .free else {
            throw .invalidHandle
        }
        return i
    }

    mutating func prepare(_ job: Job, flags: DMAPrepFlags) -> DMADescriptor? {
        guard !released, let i = freeList.popLast() else { return nil }
        slots[i].phase = .prepared
        slots[i].job = job
        slots[i].flags = flags
        slots[i].callback = nil
        slots[i].reuse = false
        slots[i].injection = nil
        slots[i].burstBytes = config.burstBytes
        return DMADescriptor(index: UInt32(i), generation: slots[i].generation)
    }

    mutating func recycle(_ i: Int) {
        slots[i].phase = .free
        slots[i].job = nil
        slots[i].callback = nil
        slots[i].injection = nil
        slots[i].reuse = false
        slots[i].generation &+= 1
        freeList.append(i)
    }

    mutating func submit(_ d: DMADescriptor) -> DMACookie {
        guard let i = try? validate(d) else { return .failure(released ? 19 : 22) }  // ENODEV / EINVAL
        guard slots[i].phase == .prepared else { return .failure(16) }  // EBUSY
        if failNextSubmits > 0 {
            failNextSubmits -= 1
            return .failure(5)  // EIO
        }
        let cookie = watermark.assign()
        slots[i].cookie = cookie
        slots[i].done = 0
        slots[i].stallReleased = false
        slots[i].phase = .submitted
        pending.append(i)
        return cookie
    }

    var headIsRunnableNonCyclic: Bool {
        guard !released, !paused, !driving, let h = issued.first, let job = slots[h].job else { return false }
        if slots[h].injection?.stall == true && !slots[h].stallReleased { return false }
        return job.kind != .cyclic
    }

    mutating func takeWork(limit: Int) -> Work? {
        guard !released, !paused, !driving, let h = issued.first, let job = slots[h].job else { return nil }
        let slot = slots[h]
        if slot.injection?.stall == true && !slot.stallReleased { return nil }
        driving = true
        let end = job.kind == .cyclic ? (slot.done / job.period + 1) * job.period : job.length
        let count = min(limit, end - slot.done)
        var chunk = slot.injection.map { $0.chunkBytes } ?? 0
        if chunk <= 0 { chunk = slot.burstBytes }
        if chunk <= 0 { chunk = max(1, count) }
        return Work(
            index: h, generation: slot.generation, cookie: slot.cookie, destination: job.destination,
            source: job.source, value: job.value, offset: slot.done, sourceOffset: slot.done, count: count,
            chunk: chunk, fault: slot.injection?.fault, probe: probe)
    }

    mutating func finishWork(_ w: Work, moved: Int, accesses: Int) -> Dispatch? {
        accessCount += accesses
        // The head may have been terminated by a probe or another thread meanwhile.
        guard let h = issued.first, h == w.index, slots[h].generation == w.generation, slots[h].cookie == w.cookie,
            let job = slots[h].job
        else { return nil }
        let wantsCallback = slots[h].flags.contains(.interrupt) && (slots[h].callback?.isSet ?? false)
        if let fault = w.fault {
            issued.removeFirst()
            issuedBytes -= job.length
            watermark.last = w.cookie
            slots[h].phase = .dispatched
            let code: DMAResultCode = fault == .read ? .readFailed : .writeFailed
            return Dispatch(
                index: h, generation: w.generation, cookie: w.cookie,
                result: DMAResult(code, residue: job.length - slots[h].done),
                callback: wantsCallback ? slots[h].callback : nil, cyclic: false)
        }
        if job.kind == .cyclic {
            slots[h].done = (slots[h].done + moved) % job.length
            guard slots[h].done % job.period == 0 else { return nil }
            return Dispatch(
                index: h, generation: w.generation, cookie: w.cookie, result: .noError,
                callback: wantsCallback ? slots[h].callback : nil, cyclic: true)
        }
        slots[h].done += moved
        guard slots[h].done == job.length else { return nil }
        issued.removeFirst()
        issuedBytes -= job.length
        watermark.last = w.cookie
        slots[h].phase = .dispatched
        return Dispatch(
            index: h, generation: w.generation, cookie: w.cookie, result: .noError,
            callback: wantsCallback ? slots[h].callback : nil, cyclic: false)
    }

    mutating func retireDispatched(_ d: Dispatch) {
        guard !d.cyclic, slots[d.index].generation == d.generation, slots[d.index].phase == .dispatched else { return }
        retire(d.index)
    }

    /// Virt-dma's `vchan_vdesc_fini`: a REUSE descriptor goes back to prepared, any other
    /// descriptor back to the pool (its handle turns stale).
    mutating func retire(_ i: Int) {
        if slots[i].reuse {
            slots[i].phase = .prepared
            slots[i].done = 0
        } else {
            recycle(i)
        }
    }

    /// Rule S6 [T]: terminate moves every queued descriptor to the terminated list and sets
    /// `last := used` in the same step; it also clears `paused`.
    mutating func terminateAll() {
        for i in pending + issued { slots[i].phase = .terminated }
        terminated.append(contentsOf: pending)
        terminated.append(contentsOf: issued)
        pending.removeAll(keepingCapacity: true)
        issued.removeAll(keepingCapacity: true)
        issuedBytes = 0
        watermark.last = watermark.used
        paused = false
    }

    mutating func retireTerminated() {
        for i in terminated where slots[i].phase == .terminated { retire(i) }
        terminated.removeAll(keepingCapacity: true)
    }

    func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) {
        let w = watermark
        var inFlight = issuedBytes
        if let h = issued.first, let job = slots[h].job, job.kind != .cyclic { inFlight -= slots[h].done }
        if w.isComplete(cookie) {
            return (.complete, DMATxState(last: w.last, used: w.used, residue: 0, inFlightBytes: inFlight))
        }
        var residue = 0
        for list in [pending, issued] {
            for i in list where slots[i].cookie == cookie {
                if let job = slots[i].job { residue = job.length - slots[i].done }
            }
        }
        return (paused ? .paused : .inProgress, DMATxState(last: w.last, used: w.used, residue: residue, inFlightBytes: inFlight))
    }
}
