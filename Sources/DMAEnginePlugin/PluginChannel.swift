// dmabench — DMAEnginePlugin
//
// The channel protocol over an engine written in C (docs/plugin-abi.md): each call crosses
// to the engine's table once. The adapter keeps what the C side cannot: the client's
// callbacks (closures) keyed by descriptor index, the non-blocking-context check before every
// blocking call, the "fail next submits" test hook, coherent memory, and `.released` after
// release, so that the engine is never called on a released channel.

import CDMAPlugin
import DMAEngine
import Glibc
import Platform
import Synchronization

/// A box that keeps an access probe alive for as long as the channel lives (the engine may
/// still be calling a replaced probe when it is replaced).
final class PluginProbeBox: @unchecked Sendable {
    let probe: DMAAccessProbe
    init(_ probe: @escaping DMAAccessProbe) { self.probe = probe }
}

/// The host side of one channel, which the engine's threads call back (`dmabench_host`).
final class PluginHost: @unchecked Sendable {
    let poolSize: Int
    /// Where each descriptor's callback lives, by index: in the engine's own descriptor when
    /// it offers `host_area` (the client writes the descriptor's lines at prep anyway, and the
    /// engine has them when it calls `complete`), else in a table of the host's, one cache line
    /// each. Written by the client while the descriptor is prepared (it owns it), read by the
    /// engine's callback thread in `complete`; the engine's own submit → complete chain orders
    /// the two (docs/plugin-abi.md, "Ownership"). The array itself is written once, at
    /// creation. Through a separate packed table the callback path cost the C ring 0.74x of
    /// the Swift ring at 64 B b32 d256, against 0.91x with polled completions.
    let areas: UnsafeMutablePointer<UnsafeMutablePointer<HostSlot>>
    /// The host's own table, when the engine has no `host_area` (or before it is adopted).
    var ownSlots: UnsafeMutableRawPointer?
    /// Set once the slots are deinitialized (before the engine frees its descriptors).
    var slotsReleased = false
    static let slotStride = 64
    /// An `Unmanaged<PluginProbeBox>` pointer, or 0.
    let probe = Atomic<UInt>(0)
    let probeBoxes = LockedValue<[PluginProbeBox]>([])
    let periodClock = DMAPeriodClock()
    /// The cyclic cookie the period clock counts (touched by the engine's data thread only).
    var clockCookie: Int32 = 0
    let failNext = Atomic<Int>(0)
    /// The host functions, at a stable address for the channel's life (the engine keeps it).
    let opsPointer: UnsafeMutablePointer<dmabench_host_ops>

    static let reuseBit: UInt8 = 1
    static let cyclicBit: UInt8 = 2

    init(poolSize: Int) {
        self.poolSize = poolSize
        precondition(MemoryLayout<HostSlot>.stride <= Self.slotStride, "HostSlot outgrew its line")
        precondition(MemoryLayout<HostSlot>.size <= Int(DMABENCH_HOST_AREA_BYTES), "HostSlot outgrew the ABI's host area")
        let own = UnsafeMutableRawPointer.allocate(byteCount: poolSize * Self.slotStride, alignment: Self.slotStride)
        ownSlots = own
        areas = .allocate(capacity: poolSize)
        for i in 0..<poolSize {
            let p = (own + i * Self.slotStride).bindMemory(to: HostSlot.self, capacity: 1)
            p.initialize(to: HostSlot())
            areas[i] = p
        }
        var ops = dmabench_host_ops()
        ops.struct_size = UInt32(MemoryLayout<dmabench_host_ops>.size)
        ops.complete = pluginComplete
        ops.access = pluginAccess
        ops.period_ended = pluginPeriodEnded
        opsPointer = .allocate(capacity: 1)
        opsPointer.initialize(to: ops)
    }

    deinit {
        releaseSlots()
        areas.deallocate()
        opsPointer.deallocate()
        probeBoxes.withLock { boxes in
            for box in boxes { Unmanaged.passUnretained(box).release() }
            boxes = []
        }
    }

    @inline(__always)
    func slot(_ index: UInt32) -> UnsafeMutablePointer<HostSlot> { areas[Int(index)] }

    /// Moves every slot into the engine's descriptors (`host_area`), once, right after create
    /// (nothing is prepared yet). False when the engine gave an unusable area.
    func adopt(_ areaOf: (UInt32) -> UnsafeMutableRawPointer?) -> Bool {
        var found: [UnsafeMutablePointer<HostSlot>] = []
        found.reserveCapacity(poolSize)
        for i in 0..<poolSize {
            guard let p = areaOf(UInt32(i)), Int(bitPattern: p) % 16 == 0 else { return false }
            found.append(p.bindMemory(to: HostSlot.self, capacity: 1))
        }
        for i in 0..<poolSize {
            areas[i].deinitialize(count: 1)
            found[i].initialize(to: HostSlot())
            areas[i] = found[i]
        }
        ownSlots?.deallocate()
        ownSlots = nil
        return true
    }

    /// Drops every callback; before the engine frees the descriptors that hold them, once no
    /// `complete` can run (after terminate and synchronize, or when the engine never started).
    func releaseSlots() {
        guard !slotsReleased else { return }
        slotsReleased = true
        for i in 0..<poolSize { areas[i].deinitialize(count: 1) }
        ownSlots?.deallocate()
        ownSlots = nil
    }

    /// Runs `body` on the host behind a `dmabench_host` pointer, without a retain/release
    /// pair per call (the channel keeps the host alive while the engine runs).
    @inline(__always)
    static func with<R>(_ raw: OpaquePointer?, _ body: (PluginHost) -> R) -> R {
        Unmanaged<PluginHost>.fromOpaque(UnsafeRawPointer(raw!))._withUnsafeGuaranteedRef(body)
    }
}

/// One descriptor's callback and kind (bit 0 REUSE, bit 1 cyclic: the callback outlives one
/// completion).
struct HostSlot {
    var callback = DMACallback()
    var kind: UInt8 = 0
}

/// `host_ops.complete`: the client's callback, in a non-blocking context (DMACallback.invoke).
private let pluginComplete: @convention(c) (OpaquePointer?, UInt32, Int32, Int32, UInt64) -> Void = {
    raw, index, cookie, result, residue in
    PluginHost.with(raw) { host in
    guard Int(index) < host.poolSize else { return }
    let code: DMAResultCode
    switch result {
    case Int32(DMABENCH_RESULT_READ_FAILED): code = .readFailed
    case Int32(DMABENCH_RESULT_WRITE_FAILED): code = .writeFailed
    case Int32(DMABENCH_RESULT_ABORTED): code = .aborted
    default: code = .noError
    }
    let slot = host.slot(index)
    if slot.pointee.kind == 0 {
        // A one-shot descriptor: move the callback out, so that what it captured is released
        // before the engine recycles the slot.
        var callback = DMACallback()
        swap(&callback, &slot.pointee.callback)
        callback.invoke(cookie: DMACookie(cookie), result: DMAResult(code, residue: Int(residue)))
    } else {
        slot.pointee.callback.invoke(cookie: DMACookie(cookie), result: DMAResult(code, residue: Int(residue)))
    }
    }
}

/// `host_ops.access`: the engine-access probe.
private let pluginAccess: @convention(c) (OpaquePointer?, Int32, Int32, UnsafeRawPointer?, UInt64) -> Void = {
    raw, cookie, write, address, count in
    PluginHost.with(raw) { host in
    // Ordering: acquire; pairs with the release store in `debugSetAccessProbe`.
    let p = host.probe.load(ordering: .acquiring)
    guard p != 0, let boxRaw = UnsafeRawPointer(bitPattern: p) else { return }
    let box = Unmanaged<PluginProbeBox>.fromOpaque(boxRaw).takeUnretainedValue()
    box.probe(DMAAccess(
        cookie: DMACookie(cookie), kind: write != 0 ? .write : .read, address: UInt(bitPattern: address), count: Int(count)))
    }
}

/// `host_ops.period_ended`: stamps the channel's period clock.
private let pluginPeriodEnded: @convention(c) (OpaquePointer?, Int32) -> Void = { raw, cookie in
    PluginHost.with(raw) { host in
        if host.clockCookie != cookie {
            host.clockCookie = cookie
            host.periodClock.restart(cookie: DMACookie(cookie))
        }
        host.periodClock.periodEnded(at: MonotonicClock.now())
    }
}

/// A channel of a plugin engine. Registry name: the engine's own.
public final class PluginChannel: DMAChannel, @unchecked Sendable {
    let table: UnsafePointer<dmabench_engine>
    let chan: OpaquePointer
    let host: PluginHost
    let released = Atomic<Bool>(false)
    /// The watermark at release, for `status(of:)` and `debugWatermark()` afterwards
    /// (written once by `release`, before the released flag is visible to its caller).
    var finalWatermark = DMACookieWatermark()
    public let backendName: String
    public let capabilities: DMACapabilities

    /// Creates a channel: the engine starts its threads (pinned as `options` asks). With
    /// `hostArea` false the callbacks stay in the host's own table even when the engine offers
    /// `host_area` (the path of engines without it, for tests and comparisons).
    public init(engine: PluginEngine, options: DMAChannelOptions = .init(), hostArea: Bool = true) throws(DMAError) {
        guard options.poolSize >= 1, options.poolSize <= 1 << 20 else {
            throw .invalidArgument("poolSize \(options.poolSize); valid: 1...\(1 << 20)")
        }
        table = engine.table
        backendName = engine.name
        capabilities = engine.capabilities
        host = PluginHost(poolSize: options.poolSize)
        var o = dmabench_chan_options()
        o.struct_size = UInt32(MemoryLayout<dmabench_chan_options>.size)
        o.pool_size = UInt32(options.poolSize)
        o.engine_cpu = Int32(options.engineCPU ?? -1)
        o.executor_cpu = Int32(options.executorCPU ?? -1)
        o.spin_ns = options.spinNanoseconds
        o.callbacks_on_engine = options.callbackContext != .executorThread ? 1 : 0  // the ABI has no client poll
        var out: OpaquePointer? = nil
        let h = host
        let hostRaw = OpaquePointer(Unmanaged.passUnretained(h).toOpaque())
        let rc = h.opsPointer.withMemoryRebound(to: dmabench_host_ops.self, capacity: 1) { ops in
            engine.table.pointee.create(&o, ops, hostRaw, &out)
        }
        guard rc == 0, let c = out else {
            throw Self.error(rc == 0 ? Int32(DMABENCH_E_UNAVAILABLE) : rc, "create")
        }
        chan = c
        if hostArea, let areaOf = table.pointee.host_area {
            guard h.adopt({ areaOf(c, $0) }) else {
                released.store(true, ordering: .relaxed)
                _ = table.pointee.release(c)
                throw .unavailable("engine \(engine.name): host_area returned NULL or an area not 16-byte aligned")
            }
        }
    }

    deinit {
        guard !released.load(ordering: .relaxed) else { return }
        // Dropped without release(): release the engine, unless this is one of its threads
        // (the last reference dropped in a callback), which cannot join itself; then the
        // channel's threads and memory are leaked rather than deadlocked.
        if threadIDs.values.contains(CPU.currentThreadID) {
            _ = Unmanaged.passRetained(host)  // the engine's threads still call into it
            return
        }
        // Quiesce, drop the callbacks (they may live in the engine's descriptors), then free.
        _ = table.pointee.terminate_async(chan)
        _ = table.pointee.synchronize(chan)
        host.releaseSlots()
        _ = table.pointee.release(chan)
    }

    static func error(_ rc: Int32, _ op: String) -> DMAError {
        switch rc {
        case Int32(DMABENCH_E_ILLEGAL_CONTEXT): return .illegalContext
        case Int32(DMABENCH_E_NOT_SUPPORTED): return .notSupported
        case Int32(DMABENCH_E_NOT_PERMITTED): return .notPermitted
        case Int32(DMABENCH_E_BUSY): return .busy
        case Int32(DMABENCH_E_NOT_PAUSED): return .notPaused
        case Int32(DMABENCH_E_RELEASED): return .released
        case Int32(DMABENCH_E_INVALID_HANDLE): return .invalidHandle
        case Int32(DMABENCH_E_NO_RESOURCES): return .noResources
        case Int32(DMABENCH_E_TIMED_OUT): return .timedOut
        case Int32(DMABENCH_E_INVALID_ARGUMENT): return .invalidArgument("\(op): rejected by the engine")
        default: return .unavailable("\(op) failed in the engine (\(rc))")
        }
    }

    @inline(__always)
    func check(_ rc: Int32, _ op: String) throws(DMAError) {
        if rc != 0 { throw Self.error(rc, op) }
    }

    @inline(__always)
    var isReleased: Bool { released.load(ordering: .relaxed) }

    @inline(__always)
    static func handle(_ d: DMADescriptor) -> dmabench_desc { dmabench_desc(index: d.index, generation: d.generation) }

    public var threadIDs: [DMAThreadRole: Int32] {
        if isReleased { return [:] }
        var engine: Int32 = 0
        var executor: Int32 = 0
        table.pointee.thread_ids(chan, &engine, &executor)
        var ids: [DMAThreadRole: Int32] = [:]
        if engine > 0 { ids[.engine] = engine }
        if executor > 0 { ids[.executor] = executor }
        return ids
    }

    public var periodClock: DMAPeriodClock? { capabilities.cyclic ? host.periodClock : nil }

    public func configure(_ config: DMAConfig) throws(DMAError) {
        if isReleased { throw .released }
        guard config.burstBytes >= 0, config.paceBytesPerSecond >= 0 else {
            throw .invalidArgument("burstBytes and paceBytesPerSecond must be >= 0")
        }
        var c = dmabench_config(burst_bytes: UInt64(config.burstBytes), pace_bytes_per_second: UInt64(config.paceBytesPerSecond))
        try check(table.pointee.configure(chan, &c), "configure")
    }

    // MARK: Coherent memory (page memory: the engine copies in user space)

    public func allocateCoherent(byteCount: Int) throws(DMAError) -> DMABuffer {
        if isReleased { throw .released }
        guard byteCount > 0 else { throw .invalidArgument("byteCount \(byteCount); valid: > 0") }
        do {
            return DMABuffer(base: try PageMemory.map(byteCount: byteCount), count: byteCount)
        } catch {
            throw .unavailable("\(error)")
        }
    }

    public func freeCoherent(_ buffer: DMABuffer) { PageMemory.unmap(buffer.base, byteCount: buffer.count) }

    // MARK: Prep

    /// Stores the callback of a freshly prepared descriptor (the client owns the slot).
    @inline(__always)
    func arm(_ d: dmabench_desc, callback: consuming DMACallback, kind: UInt8) -> DMADescriptor {
        let slot = host.slot(d.index)
        slot.pointee.callback = callback
        if slot.pointee.kind != kind { slot.pointee.kind = kind }
        return DMADescriptor(index: d.index, generation: d.generation)
    }

    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        guard !isReleased, length > 0 else { return nil }
        var d = dmabench_desc()
        guard table.pointee.prep_memcpy(chan, destination, source, UInt64(length), flags.rawValue, &d) == 0 else { return nil }
        return arm(d, callback: DMACallback(), kind: 0)
    }

    /// Prep and callback in one crossing (DMABENCH_PREP_CALLBACK), as the ring backend does.
    public func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags,
        callback: consuming DMACallback
    ) -> DMADescriptor? {
        guard !isReleased, length > 0 else { return nil }
        let f = flags.rawValue | (callback.isSet ? UInt32(DMABENCH_PREP_CALLBACK) : 0)
        var d = dmabench_desc()
        guard table.pointee.prep_memcpy(chan, destination, source, UInt64(length), f, &d) == 0 else { return nil }
        return arm(d, callback: callback, kind: 0)
    }

    public func prepareMemset(
        to destination: UnsafeMutableRawPointer, value: UInt8, length: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        guard !isReleased, length > 0, let prep = table.pointee.prep_memset else { return nil }
        var d = dmabench_desc()
        guard prep(chan, destination, value, UInt64(length), flags.rawValue, &d) == 0 else { return nil }
        return arm(d, callback: DMACallback(), kind: 0)
    }

    public func prepareCyclic(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, bufferLength: Int,
        periodLength: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        guard !isReleased, bufferLength > 0, periodLength > 0, let prep = table.pointee.prep_cyclic else { return nil }
        var d = dmabench_desc()
        guard prep(chan, destination, source, UInt64(bufferLength), UInt64(periodLength), flags.rawValue, &d) == 0
        else { return nil }
        return arm(d, callback: DMACallback(), kind: PluginHost.cyclicBit)
    }

    public func prepareMemcpySG(
        destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        guard !isReleased, let prep = table.pointee.prep_memcpy_sg, destinations.count > 0, sources.count > 0,
            destinations.count <= capabilities.maxSegments, sources.count <= capabilities.maxSegments
        else { return nil }
        // DMASegment is (pointer, Int), dmabench_segment (pointer, uint64_t): the same layout,
        // checked here once rather than copied per call.
        assert(MemoryLayout<DMASegment>.stride == MemoryLayout<dmabench_segment>.stride)
        var d = dmabench_desc()
        let rc = destinations.withMemoryRebound(to: dmabench_segment.self) { dst in
            sources.withMemoryRebound(to: dmabench_segment.self) { src in
                prep(chan, dst.baseAddress, UInt32(dst.count), src.baseAddress, UInt32(src.count), flags.rawValue, &d)
            }
        }
        guard rc == 0 else { return nil }
        return arm(d, callback: DMACallback(), kind: 0)
    }

    // MARK: Descriptor

    public func setCallback(_ callback: DMACallback, for descriptor: DMADescriptor) throws(DMAError) {
        if isReleased { throw .released }
        guard Int(descriptor.index) < host.poolSize else { throw .invalidHandle }
        try check(table.pointee.set_callback(chan, Self.handle(descriptor), callback.isSet ? 1 : 0), "set_callback")
        host.slot(descriptor.index).pointee.callback = callback
    }

    public func setReuse(_ reuse: Bool, for descriptor: DMADescriptor) throws(DMAError) {
        if isReleased { throw .released }
        guard let op = table.pointee.set_reuse else { throw .notPermitted }
        guard Int(descriptor.index) < host.poolSize else { throw .invalidHandle }
        try check(op(chan, Self.handle(descriptor), reuse ? 1 : 0), "set_reuse")
        let slot = host.slot(descriptor.index)
        slot.pointee.kind = reuse ? slot.pointee.kind | PluginHost.reuseBit : slot.pointee.kind & ~PluginHost.reuseBit
    }

    public func free(_ descriptor: DMADescriptor) throws(DMAError) {
        if isReleased { throw .released }
        guard Int(descriptor.index) < host.poolSize else { throw .invalidHandle }
        // Dropped before the engine may hand the slot out again.
        let slot = host.slot(descriptor.index)
        let saved = slot.pointee.callback
        slot.pointee.callback = DMACallback()
        do { try check(table.pointee.free_desc(chan, Self.handle(descriptor)), "free_desc") } catch {
            slot.pointee.callback = saved
            throw error
        }
    }

    // MARK: Submit, issue, status

    public func submit(_ descriptor: DMADescriptor) -> DMACookie {
        if isReleased { return .failure(ENODEV) }
        if host.failNext.load(ordering: .relaxed) > 0 && host.failNext.takeInjectedFailure() { return .failure(EIO) }
        return DMACookie(table.pointee.submit(chan, Self.handle(descriptor)))
    }

    public func issuePending() {
        if isReleased { return }
        table.pointee.issue_pending(chan)
    }

    public func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) {
        var s = dmabench_tx_state()
        let rc: Int32
        if isReleased {
            // The engine's channel is gone: the watermark it had when it was released.
            (s.used, s.last) = (finalWatermark.used.rawValue, finalWatermark.last.rawValue)
            rc = Int32(DMABENCH_STATUS_COMPLETE)
        } else {
            rc = table.pointee.tx_status(chan, cookie.rawValue, &s)
        }
        let status: DMAStatus
        switch rc {
        case Int32(DMABENCH_STATUS_COMPLETE): status = .complete
        case Int32(DMABENCH_STATUS_PAUSED): status = .paused
        case Int32(DMABENCH_STATUS_ERROR): status = .error
        case Int32(DMABENCH_STATUS_OUT_OF_ORDER): status = .outOfOrder
        default: status = .inProgress
        }
        return (status, DMATxState(
            last: DMACookie(s.last), used: DMACookie(s.used), residue: Int(s.residue), inFlightBytes: Int(s.in_flight_bytes)))
    }

    // MARK: Flow control

    public func pause() throws(DMAError) {
        if isReleased { throw .released }
        guard let op = table.pointee.pause else { throw .notSupported }
        try check(op(chan), "pause")
    }

    public func resume() throws(DMAError) {
        if isReleased { throw .released }
        guard let op = table.pointee.resume else { throw .notSupported }
        try check(op(chan), "resume")
    }

    // MARK: Termination

    public func terminateAsync() throws(DMAError) {
        if isReleased { throw .released }
        try check(table.pointee.terminate_async(chan), "terminate_async")
    }

    public func synchronize() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        if isReleased { throw .released }
        try check(table.pointee.synchronize(chan), "synchronize")
    }

    public func terminateSync() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        if isReleased { throw .released }
        try check(table.pointee.terminate_async(chan), "terminate_async")
        try check(table.pointee.synchronize(chan), "synchronize")
    }

    public func release() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        // Ordering: relaxed; release is not called concurrently with other operations (that
        // is client misuse); the flag only makes later calls fail with `.released`.
        let (first, _) = released.compareExchange(expected: false, desired: true, ordering: .relaxed)
        guard first else { throw .released }
        // Terminate and synchronize first, so that the watermark read next is final.
        _ = table.pointee.terminate_async(chan)
        _ = table.pointee.synchronize(chan)
        var u: Int32 = 1
        var l: Int32 = 1
        table.pointee.debug_watermark(chan, &u, &l)
        finalWatermark = DMACookieWatermark(used: DMACookie(u), last: DMACookie(l))
        host.releaseSlots()
        try check(table.pointee.release(chan), "release")
    }

    // MARK: Test hooks

    public func debugSeedCookie(used: DMACookie, last: DMACookie) throws(DMAError) {
        if isReleased { throw .released }
        guard used.isValid, last.isValid else {
            throw .invalidArgument("cookies used \(used), last \(last); valid: 1...\(Int32.max)")
        }
        try check(table.pointee.debug_seed_cookie(chan, used.rawValue, last.rawValue), "debug_seed_cookie")
    }

    public func debugWatermark() -> DMACookieWatermark {
        if isReleased { return finalWatermark }
        var u: Int32 = 1
        var l: Int32 = 1
        table.pointee.debug_watermark(chan, &u, &l)
        return DMACookieWatermark(used: DMACookie(u), last: DMACookie(l))
    }

    public func debugInject(_ injection: DMAInjection, into descriptor: DMADescriptor) throws(DMAError) {
        if isReleased { throw .released }
        guard injection.chunkBytes >= 0, injection.delayPerChunkNanoseconds >= 0 else {
            throw .invalidArgument("injection chunkBytes/delay must be >= 0")
        }
        var i = dmabench_injection(
            chunk_bytes: UInt64(injection.chunkBytes), delay_per_chunk_ns: injection.delayPerChunkNanoseconds,
            stall: injection.stall ? 1 : 0,
            fault: injection.fault == .read ? 1 : injection.fault == .write ? 2 : 0)
        try check(table.pointee.debug_inject(chan, Self.handle(descriptor), &i), "debug_inject")
    }

    public func debugFailNextSubmits(_ count: Int) { host.failNext.store(max(0, count), ordering: .relaxed) }

    public func debugReleaseStalls() {
        if isReleased { return }
        table.pointee.debug_release_stalls(chan)
    }

    public func debugSetAccessProbe(_ probe: DMAAccessProbe?) {
        if isReleased { return }
        guard let probe else {
            table.pointee.debug_set_probe(chan, 0)
            // Ordering: release; pairs with the acquire load in `pluginAccess`.
            host.probe.store(0, ordering: .releasing)
            return
        }
        let box = PluginProbeBox(probe)
        host.probeBoxes.withLock { $0.append(box) }
        let raw = Unmanaged.passRetained(box).toOpaque()
        // Ordering: release; pairs with the acquire load in `pluginAccess` (the box is fully
        // initialized before the engine's thread can call it). Replaced boxes stay alive until
        // the channel is deinitialized, as the engine may still be calling one.
        host.probe.store(UInt(bitPattern: raw), ordering: .releasing)
        table.pointee.debug_set_probe(chan, 1)
    }
}
