// dmabench — DMAEngineCPU
//
// The cpu backend's state and logic: the kernel's async_tx fallback (a synchronous CPU copy
// when no channel exists), DPDK's CPU_MEM_COPY, SPDK's software accel module. No thread:
// `issuePending` copies on the calling thread, in cookie order, then runs the callbacks with
// no lock held. One thread drains at a time; work issued meanwhile (by other threads, or by
// a callback, which must not recurse) is drained by that thread before it returns, as an
// event loop defers nested dispatch to its outermost frame.

import DMAEngine
import Glibc
import Platform
import Synchronization

/// One descriptor of the pool. Guarded by `CPUCore.state`'s lock, except while the
/// draining thread owns it (phase `.running`).
struct CPUSlot {
    enum Phase: UInt8 { case free, prepared, queued, running }
    var phase = Phase.free
    var generation: UInt32 = 1
    var isMemset = false
    var interrupt = true
    var value: UInt8 = 0
    var destination: UnsafeMutableRawPointer? = nil
    var source: UnsafeRawPointer? = nil
    var length = 0
    var burstBytes = 0
    var cookie = DMACookie(0)
    var callback = DMACallback()
    var injection = DMAInjection()
    /// Scatter-gather: pieces in `CPUCore.pieces` at `index * pieceCapacity` (0 = flat).
    var pieceCount = 0
}

/// One completed descriptor's callback, run with no lock held.
struct CPUDelivery {
    var callback: DMACallback
    var cookie: DMACookie
    var result: DMAResult
}

/// Everything the lock guards except the slots' contents.
struct CPUState {
    var freeList: [Int32]
    /// Submitted and issued descriptors in cookie order: a ring of slot indices.
    /// `[head, issuedEnd)` is issued, `[issuedEnd, tail)` submitted. Counters only grow.
    var fifo: [Int32]
    /// `fifo.count - 1`: the ring holds a power of two ≥ the pool, so a position is a mask,
    /// not a division, on the per-descriptor path.
    let fifoMask: Int
    var head = 0
    var issuedEnd = 0
    var tail = 0
    var watermark = DMACookieWatermark()
    /// A thread is draining (copying a batch or running its callbacks).
    var draining = false
    /// Bumped by every terminate; a batch taken before a bump is dropped, not completed.
    var terminateEpoch: UInt64 = 0
    /// The epoch of the batch being drained (valid while `draining`).
    var batchEpoch: UInt64 = 0
    /// The size of the batch being drained (0 once its last descriptor completed).
    var batchCount = 0
    var config = DMAConfig()
    var failNextSubmits = 0
    var released = false
    var probe: DMAAccessProbe? = nil

    init(poolSize: Int) {
        freeList = (0..<poolSize).reversed().map { Int32($0) }
        var n = 1
        while n < poolSize { n <<= 1 }
        fifo = Array(repeating: -1, count: n)
        fifoMask = n - 1
    }
}

final class CPUCore: @unchecked Sendable {
    let poolSize: Int
    let slots: UnsafeMutablePointer<CPUSlot>
    let state: LockedValue<CPUState>
    /// The watermark, packed, for the lock-free COMPLETE answer of `status(of:)`.
    let published = Atomic<UInt64>(DMACookieWatermark().packed)
    /// `CPUState.terminateEpoch`, for the draining thread's check before each copy.
    let terminateEpochMirror = Atomic<UInt64>(0)
    /// Bumped by `debugReleaseStalls()`; a stalled transfer waits for a change or a terminate.
    let stallGeneration = Atomic<UInt64>(0)
    /// Slot indices of the batch being drained (written under the lock; preallocated).
    private let batch: UnsafeMutablePointer<Int32>
    static let batchLimit = 64
    /// The most segments per list of `prepareMemcpySG`.
    static let maxSegments = 16
    static let pieceCapacity = DMASGPlan.pieceCapacity(maxSegments: maxSegments)
    /// Each slot's scatter-gather pieces, preallocated so that prep allocates nothing.
    let pieces: UnsafeMutablePointer<DMASGPiece>

    init(options: DMAChannelOptions) throws(DMAError) {
        guard options.poolSize >= 1, options.poolSize <= 1 << 20 else {
            throw .invalidArgument("poolSize \(options.poolSize); valid: 1...\(1 << 20)")
        }
        poolSize = options.poolSize
        slots = .allocate(capacity: poolSize)
        slots.initialize(repeating: CPUSlot(), count: poolSize)
        pieces = .allocate(capacity: poolSize * Self.pieceCapacity)
        batch = .allocate(capacity: Self.batchLimit)
        batch.initialize(repeating: 0, count: Self.batchLimit)
        state = LockedValue(CPUState(poolSize: poolSize))
    }

    deinit {
        slots.deinitialize(count: poolSize)
        slots.deallocate()
        batch.deallocate()
        pieces.deallocate()
    }

    var isReleased: Bool { state.withLock { $0.released } }

    /// Publishes the watermark for lock-free readers. Under the lock.
    @inline(__always)
    func publish(_ s: inout CPUState) {
        // Ordering: release; pairs with the acquire load in `status(of:)`, so a reader that
        // sees a cookie COMPLETE also sees its bytes (copied before the lock was taken).
        published.store(s.watermark.packed, ordering: .releasing)
    }

    // MARK: Prep

    func prepare(
        destination: UnsafeMutableRawPointer, source: UnsafeRawPointer?, value: UInt8, isMemset: Bool, length: Int,
        flags: DMAPrepFlags, callback: consuming DMACallback?,
        segments: (UnsafeBufferPointer<DMASegment>, UnsafeBufferPointer<DMASegment>)? = nil
    ) -> DMADescriptor? {
        guard length > 0 else { return nil }
        let cb = callback
        return state.withLock { s -> DMADescriptor? in
            guard !s.released, let i = s.freeList.last else { return nil }
            let p = slots + Int(i)
            var length = length
            p.pointee.pieceCount = 0
            if let (dsts, srcs) = segments {
                guard let plan = DMASGPlan.plan(
                    destinations: dsts, sources: srcs, maxSegments: Self.maxSegments,
                    into: pieces + Int(i) * Self.pieceCapacity)
                else { return nil }
                p.pointee.pieceCount = plan.count
                length = plan.total
            }
            s.freeList.removeLast()
            p.pointee.phase = .prepared
            p.pointee.isMemset = isMemset
            p.pointee.interrupt = flags.contains(.interrupt)
            p.pointee.value = value
            p.pointee.destination = destination
            p.pointee.source = source
            p.pointee.length = length
            p.pointee.burstBytes = s.config.burstBytes
            p.pointee.cookie = DMACookie(0)
            p.pointee.injection = DMAInjection()
            if let cb { p.pointee.callback = cb }
            return DMADescriptor(index: UInt32(i), generation: p.pointee.generation)
        }
    }

    /// The slot of a prepared (not yet submitted) descriptor. Under the lock.
    @inline(__always)
    private func prepared(_ d: DMADescriptor, _ s: inout CPUState) throws(DMAError) -> UnsafeMutablePointer<CPUSlot> {
        if s.released { throw .released }
        guard Int(d.index) < poolSize else { throw .invalidHandle }
        let p = slots + Int(d.index)
        guard p.pointee.generation == d.generation, p.pointee.phase == .prepared else { throw .invalidHandle }
        return p
    }

    func setCallback(_ callback: DMACallback, for d: DMADescriptor) throws(DMAError) {
        try state.withLock { s throws(DMAError) in try prepared(d, &s).pointee.callback = callback }
    }

    func free(_ d: DMADescriptor) throws(DMAError) {
        try state.withLock { s throws(DMAError) in
            if s.released { throw .released }
            guard Int(d.index) < poolSize, slots[Int(d.index)].generation == d.generation,
                slots[Int(d.index)].phase != .free
            else { throw .invalidHandle }
            throw .notPermitted
        }
    }

    func inject(_ injection: DMAInjection, into d: DMADescriptor) throws(DMAError) {
        guard injection.chunkBytes >= 0, injection.delayPerChunkNanoseconds >= 0 else {
            throw .invalidArgument("injection chunkBytes and delayPerChunkNanoseconds must be >= 0")
        }
        try state.withLock { s throws(DMAError) in try prepared(d, &s).pointee.injection = injection }
    }

    // MARK: Submit, issue, status

    func submit(_ d: DMADescriptor) -> DMACookie {
        state.withLock { s -> DMACookie in
            if s.released { return .failure(ENODEV) }
            guard Int(d.index) < poolSize else { return .failure(EINVAL) }
            let p = slots + Int(d.index)
            guard p.pointee.generation == d.generation, p.pointee.phase == .prepared else { return .failure(EINVAL) }
            if s.failNextSubmits > 0 {
                s.failNextSubmits -= 1
                return .failure(EIO)
            }
            let cookie = s.watermark.assign()
            p.pointee.cookie = cookie
            p.pointee.phase = .queued
            s.fifo[s.tail & s.fifoMask] = Int32(d.index)
            s.tail += 1
            publish(&s)
            return cookie
        }
    }

    /// Issues what was submitted, then, unless another frame is already draining (another
    /// thread, or an outer `issuePending` of this one whose callback called this), drains
    /// the issued work on this thread before returning.
    func issuePending() {
        let drain = state.withLock { s -> Bool in
            if s.released { return false }
            s.issuedEnd = s.tail
            if s.draining || s.head == s.issuedEnd { return false }
            s.draining = true
            return true
        }
        if drain { self.drain() }
    }

    /// Runs batches until nothing issued is left: take up to `batchLimit` descriptors under
    /// one lock, then for each: copy it without the lock, complete it under the lock (`last`
    /// moves before its callback, rule K2), and run its callback with no lock held. A
    /// terminate meanwhile drops the rest of the batch uncopied (its cookies already read
    /// COMPLETE, rule S6) and without callbacks.
    private func drain() {
        while true {
            let taken = state.withLock { s -> (n: Int, epoch: UInt64, probe: DMAAccessProbe?) in
                let n = min(Self.batchLimit, s.issuedEnd - s.head)
                if n == 0 || s.released {
                    s.draining = false
                    return (0, 0, nil)
                }
                for k in 0..<n {
                    let i = s.fifo[(s.head + k) & s.fifoMask]
                    batch[k] = i
                    slots[Int(i)].phase = .running
                }
                s.head += n
                s.batchEpoch = s.terminateEpoch
                s.batchCount = n
                return (n, s.terminateEpoch, s.probe)
            }
            if taken.n == 0 { return }
            for k in 0..<taken.n {
                let p = slots + Int(batch[k])
                // Ordering: relaxed; a hint only: the completion below re-checks under the lock.
                let live = terminateEpochMirror.load(ordering: .relaxed) == taken.epoch
                let result = live ? run(p, epoch: taken.epoch, probe: taken.probe) : DMAResult(.aborted)
                let callback = state.withLock { s -> CPUDelivery? in
                    var d: CPUDelivery? = nil
                    if s.terminateEpoch == taken.epoch {
                        s.watermark.last = p.pointee.cookie
                        publish(&s)
                        if p.pointee.interrupt && p.pointee.callback.isSet {
                            d = CPUDelivery(callback: p.pointee.callback, cookie: p.pointee.cookie, result: result)
                        }
                    }
                    retire(p, &s)
                    if k == taken.n - 1 { s.batchCount = 0 }
                    return d
                }
                callback?.callback.invoke(cookie: callback!.cookie, result: callback!.result)
            }
        }
    }

    /// Copies (or fills) one descriptor in bursts, reporting each to the probe. A stall waits
    /// for `debugReleaseStalls()` or a terminate; a terminate during a stall or an injected
    /// delay stops the transfer before its next chunk.
    private func run(_ p: UnsafeMutablePointer<CPUSlot>, epoch: UInt64, probe: DMAAccessProbe?) -> DMAResult {
        let inj = p.pointee.injection
        let len = p.pointee.length
        if inj.stall {
            // Ordering: acquire; pairs with the release add in `releaseStalls()`.
            let seen = stallGeneration.load(ordering: .acquiring)
            while stallGeneration.load(ordering: .acquiring) == seen && !terminated(since: epoch) {
                MonotonicClock.sleep(nanoseconds: 50_000)
            }
            if terminated(since: epoch) { return DMAResult(.aborted, residue: len) }
        }
        if let fault = inj.fault { return DMAResult(fault == .read ? .readFailed : .writeFailed, residue: len) }
        let chunk = inj.chunkBytes > 0 ? inj.chunkBytes : (p.pointee.burstBytes > 0 ? p.pointee.burstBytes : len)
        if p.pointee.pieceCount > 0 { return runSG(p, epoch: epoch, probe: probe) }
        let dst = p.pointee.destination!
        var off = 0
        while off < len {
            if inj.delayPerChunkNanoseconds > 0 {
                // A terminate stops a slow transfer between chunks, as a DMA engine's abort does.
                if terminated(since: epoch) { return DMAResult(.aborted, residue: len - off) }
                MonotonicClock.sleep(nanoseconds: inj.delayPerChunkNanoseconds)
                if terminated(since: epoch) { return DMAResult(.aborted, residue: len - off) }
            }
            let n = min(chunk, len - off)
            if p.pointee.isMemset {
                probe?(DMAAccess(cookie: p.pointee.cookie, kind: .write, address: UInt(bitPattern: dst + off), count: n))
                memset(dst + off, Int32(p.pointee.value), n)
            } else {
                let src = p.pointee.source! + off
                if let probe {
                    probe(DMAAccess(cookie: p.pointee.cookie, kind: .read, address: UInt(bitPattern: src), count: n))
                    probe(DMAAccess(cookie: p.pointee.cookie, kind: .write, address: UInt(bitPattern: dst + off), count: n))
                }
                memcpy(dst + off, src, n)
            }
            off += n
        }
        return DMAResult(.noError)
    }

    /// A scatter-gather copy: the slot's pieces in order, in bursts, each burst inside one
    /// piece (the probe sees each segment's accesses).
    private func runSG(_ p: UnsafeMutablePointer<CPUSlot>, epoch: UInt64, probe: DMAAccessProbe?) -> DMAResult {
        let inj = p.pointee.injection
        let len = p.pointee.length
        let chunk = inj.chunkBytes > 0 ? inj.chunkBytes : (p.pointee.burstBytes > 0 ? p.pointee.burstBytes : len)
        let pieces = self.pieces + (p - slots) * Self.pieceCapacity
        var done = 0
        for k in 0..<p.pointee.pieceCount {
            let piece = pieces[k]
            var off = 0
            while off < piece.length {
                if inj.delayPerChunkNanoseconds > 0 {
                    if terminated(since: epoch) { return DMAResult(.aborted, residue: len - done) }
                    MonotonicClock.sleep(nanoseconds: inj.delayPerChunkNanoseconds)
                    if terminated(since: epoch) { return DMAResult(.aborted, residue: len - done) }
                }
                let n = min(chunk, piece.length - off)
                if let probe {
                    probe(DMAAccess(cookie: p.pointee.cookie, kind: .read, address: UInt(bitPattern: piece.source + off), count: n))
                    probe(DMAAccess(cookie: p.pointee.cookie, kind: .write, address: UInt(bitPattern: piece.destination + off), count: n))
                }
                memcpy(piece.destination + off, piece.source + off, n)
                off += n
                done += n
            }
        }
        return DMAResult(.noError)
    }

    private func terminated(since epoch: UInt64) -> Bool {
        // Ordering: relaxed; a stall or a delay only ends sooner, and the completion re-checks
        // under the lock.
        terminateEpochMirror.load(ordering: .relaxed) != epoch
    }

    /// Back to the free list; every old handle goes stale. Under the lock.
    @inline(__always)
    private func retire(_ p: UnsafeMutablePointer<CPUSlot>, _ s: inout CPUState) {
        p.pointee.phase = .free
        p.pointee.generation &+= 1
        p.pointee.callback = DMACallback()
        p.pointee.destination = nil
        p.pointee.source = nil
        s.freeList.append(Int32(p - slots))
    }

    func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) {
        // Ordering: acquire; pairs with the release store in `publish`.
        let w = DMACookieWatermark(packed: published.load(ordering: .acquiring))
        if w.isComplete(cookie) { return (.complete, DMATxState(last: w.last, used: w.used, residue: 0)) }
        return state.withLock { s -> (DMAStatus, DMATxState) in
            let w = s.watermark
            if w.isComplete(cookie) { return (.complete, DMATxState(last: w.last, used: w.used, residue: 0)) }
            var residue = 0
            for k in 0..<s.batchCount where slots[Int(batch[k])].cookie == cookie {
                residue = slots[Int(batch[k])].length
                break
            }
            if residue == 0 {
                var pos = s.head
                while pos < s.tail {
                    let p = slots + Int(s.fifo[pos & s.fifoMask])
                    if p.pointee.cookie == cookie {
                        residue = p.pointee.length
                        break
                    }
                    pos += 1
                }
            }
            return (.inProgress, DMATxState(last: w.last, used: w.used, residue: residue))
        }
    }

    // MARK: Termination

    /// Drops everything submitted and issued without callback; `last := used` (S6). A batch
    /// being copied finishes its current memcpy, then is dropped. NB-safe.
    func terminateAsync() throws(DMAError) {
        try state.withLock { s throws(DMAError) in
            if s.released { throw .released }
            terminateLocked(&s)
        }
    }

    private func terminateLocked(_ s: inout CPUState) {
        s.terminateEpoch &+= 1
        terminateEpochMirror.store(s.terminateEpoch, ordering: .relaxed)
        while s.head < s.tail {
            retire(slots + Int(s.fifo[s.head & s.fifoMask]), &s)
            s.head += 1
        }
        s.issuedEnd = s.tail
        s.watermark.last = s.watermark.used
        publish(&s)
    }

    /// Waits until no batch taken before the last terminate is being copied or running its
    /// callbacks (T3). Blocking context only.
    func synchronize() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        let target = try state.withLock { s throws(DMAError) -> UInt64 in
            if s.released { throw .released }
            return s.terminateEpoch
        }
        waitForBatches(before: target)
    }

    private func waitForBatches(before target: UInt64) {
        var spins = 0
        while state.withLock({ $0.draining && $0.batchEpoch < target }) {
            spins += 1
            if spins < 64 { sched_yield() } else { MonotonicClock.sleep(nanoseconds: 20_000) }
        }
    }

    func terminateSync() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        try terminateAsync()
        let target = state.withLock { $0.terminateEpoch }
        waitForBatches(before: target)
    }

    func release() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        let target = try state.withLock { s throws(DMAError) -> UInt64 in
            if s.released { throw .released }
            terminateLocked(&s)
            s.released = true
            return s.terminateEpoch
        }
        waitForBatches(before: target)
    }

    // MARK: Test hooks

    func configure(_ config: DMAConfig) throws(DMAError) {
        guard config.burstBytes >= 0 else { throw .invalidArgument("burstBytes = \(config.burstBytes); it must be >= 0") }
        try state.withLock { s throws(DMAError) in
            if s.released { throw .released }
            s.config = config
        }
    }

    func seedCookie(used: DMACookie, last: DMACookie) throws(DMAError) {
        guard used.isValid, last.isValid else {
            throw .invalidArgument("debugSeedCookie(used: \(used), last: \(last)); cookies must be >= 1")
        }
        try state.withLock { s throws(DMAError) in
            if s.released { throw .released }
            guard s.head == s.tail, !s.draining else { throw .busy }
            s.watermark = DMACookieWatermark(used: used, last: last)
            publish(&s)
        }
    }

    func failNextSubmits(_ count: Int) { state.withLock { $0.failNextSubmits = max(0, count) } }

    func releaseStalls() {
        // Ordering: release; pairs with the acquire loads in `run`'s stall wait.
        stallGeneration.add(1, ordering: .releasing)
    }

    func setAccessProbe(_ probe: DMAAccessProbe?) { state.withLock { $0.probe = probe } }
}
