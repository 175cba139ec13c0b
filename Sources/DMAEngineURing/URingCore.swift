// dmabench — DMAEngineURing
//
// The channel state and the engine thread behind `URingChannel`. The engine thread owns the
// completion side of the ring in every setup (and, with DEFER_TASKRUN, the whole ring): it
// reaps CQEs in batches, delivers callbacks in cookie order, feeds paced (latency-injected)
// descriptors chunk by chunk, queues cancels, and keeps an eventfd doorbell armed so that
// other threads can wake it. The engine thread holds a strong reference to this object,
// never to the channel, so that a channel dropped without `release()` still shuts down.

import CURing
import DMAEngine
import Glibc
import Platform
import Synchronization

/// Bits of `URingCore.control`: requests to the engine thread.
enum URingControl {
    /// Hand issued descriptors to the kernel (DEFER_TASKRUN: only the engine may submit).
    static let flush: UInt32 = 1
    /// Queue an IORING_OP_ASYNC_CANCEL.
    static let cancel: UInt32 = 2
    /// Something changed for paced descriptors or delivery (resume, stall release).
    static let service: UInt32 = 4
    /// Exit once nothing is in the kernel.
    static let stop: UInt32 = 8
}

final class URingCore: @unchecked Sendable {
    let setup: URingSetup
    let pool: URingPool
    let options: DMAChannelOptions
    /// The result of pinning io-wq workers to the engine CPU: 0, -errno, or nil when no
    /// engine CPU was given.
    var iowqAffinityResult: Int32?
    let sqEntries: Int
    let maxChunks: Int
    let fixedFile: Bool
    /// The pool mapping is a registered buffer (READ_FIXED when dst is in the pool). The
    /// kernel refuses to register pages of a regular file (only anonymous, shmem and hugetlb
    /// memory), so with a page-cache pool this stays false. Set before `initDone`.
    var fixedBuffer = false

    /// Guards `st`, `slots`, `freeList`, `fifo` and `paced`. Never held while a callback
    /// runs or while waiting for the kernel.
    let lock = URingLock()
    /// Owns the submission queue: every `curing_prep_*`/`curing_submit` runs under it
    /// (clients in plain/sqpoll mode submit from their own thread). Lock order: `sqLock`
    /// before `lock`.
    let sqLock = URingLock()
    let st: UnsafeMutablePointer<URingState>
    let slots: UnsafeMutablePointer<URingSlot>
    let slotCount: Int
    let freeList: UnsafeMutablePointer<UInt32>
    let fifo: UnsafeMutablePointer<UInt32>
    let fifoMask: Int
    let paced: UnsafeMutablePointer<UInt32>

    // Engine-private buffers (reap and delivery), preallocated: nothing is allocated per
    // descriptor.
    static let reapBatch = 256
    static let deliveryBatch = 64
    let cqeData: UnsafeMutablePointer<UInt64>
    let cqeRes: UnsafeMutablePointer<Int32>
    let batch: UnsafeMutablePointer<URingDelivery>

    /// The doorbell eventfd; -1 once `closeFiles` ran (after the engine exited).
    let doorbell = Atomic<Int32>(-1)
    var doorbellFD: Int32 { doorbell.load(ordering: .relaxed) }
    let doorbellBuffer: UnsafeMutablePointer<UInt64>
    /// The ring. Written by the engine thread before `initDone` is signalled and cleared,
    /// under `sqLock`, when the engine exits; submitters read it under `sqLock`.
    var ring: OpaquePointer?
    /// Engine thread only: the next round must run `pumpFromEngine` (the doorbell needs
    /// re-arming, or a paced chunk completed). Requests from other threads come through
    /// `control` instead.
    var pumpNeeded = true
    /// Engine thread only: a flush on the engine put a paced descriptor on the list, which
    /// the next round must schedule.
    var pacedAdded = false
    var initError: Int32 = 0
    let initDone = ParkingEvent()
    var enginePThread = pthread_t()
    var engineThread: OSThread?

    /// The watermark, packed, for lock-free `status(of:)` and `debugWatermark()`.
    let published = Atomic<UInt64>(DMACookieWatermark().packed)
    /// Data SQEs (reads and fault NOPs) in the kernel. Written under `lock`; read without it
    /// by `pause` waiters and by the doorbell decision.
    let outstanding = Atomic<Int>(0)
    let inFlightBytes = Atomic<Int>(0)
    let control = Atomic<UInt32>(0)
    /// The engine is about to wait, or waits, in io_uring_enter.
    let parked = Atomic<Bool>(false)
    /// Odd while the engine runs a batch of callbacks.
    let batchSeq = Atomic<UInt64>(0)
    /// Threads waiting in `waitFor` (synchronize, pause).
    let waiters = Atomic<Int>(0)
    let released = Atomic<Bool>(false)
    /// CQEs for terminated descriptors that arrived after a synchronize had returned: each is
    /// a broken seed guarantee (also reported to the access probe).
    let lateCompletions = Atomic<Int>(0)
    /// CQEs whose user_data matched no slot in use.
    let strayCompletions = Atomic<Int>(0)
    /// The last unexpected io_uring_submit error (0 = none).
    let lastSubmitError = Atomic<Int32>(0)
    /// A futex word bumped when waiters may have something to see.
    private let progressStorage: UnsafeMutableRawPointer
    private var progress: UnsafeMutablePointer<Atomic<UInt32>> { progressStorage.assumingMemoryBound(to: Atomic<UInt32>.self) }
    private var progressWord: UnsafeMutablePointer<UInt32> { progressStorage.assumingMemoryBound(to: UInt32.self) }

    init(options: DMAChannelOptions, setup: URingSetup, pool: URingPool) throws(DMAError) {
        guard options.poolSize > 0, options.poolSize < URingUserData.maxSlots else {
            throw .invalidArgument("poolSize = \(options.poolSize); it must be in 1..<\(URingUserData.maxSlots)")
        }
        self.options = options
        self.setup = setup
        self.pool = pool
        switch pool.backing {
        case .registeredFile:
            fixedFile = true
        default:
            fixedFile = false
        }
        slotCount = options.poolSize
        var cap = 1
        while cap < slotCount { cap <<= 1 }
        fifoMask = cap - 1
        sqEntries = max(256, min(4096, cap))
        maxChunks = min(sqEntries, URingUserData.maxChunks)

        st = .allocate(capacity: 1)
        st.initialize(to: URingState())
        slots = .allocate(capacity: slotCount)
        slots.initialize(repeating: URingSlot(), count: slotCount)
        freeList = .allocate(capacity: slotCount)
        for i in 0..<slotCount { freeList[i] = UInt32(slotCount - 1 - i) }
        st.pointee.freeCount = slotCount
        fifo = .allocate(capacity: cap)
        fifo.initialize(repeating: 0, count: cap)
        paced = .allocate(capacity: slotCount)
        paced.initialize(repeating: 0, count: slotCount)
        cqeData = .allocate(capacity: Self.reapBatch)
        cqeData.initialize(repeating: 0, count: Self.reapBatch)
        cqeRes = .allocate(capacity: Self.reapBatch)
        cqeRes.initialize(repeating: 0, count: Self.reapBatch)
        batch = .allocate(capacity: Self.deliveryBatch)
        doorbellBuffer = .allocate(capacity: 1)
        doorbellBuffer.initialize(to: 0)
        progressStorage = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
        progressStorage.bindMemory(to: Atomic<UInt32>.self, capacity: 1).initialize(to: Atomic(0))

        let efd = curing_eventfd()
        doorbell.store(efd, ordering: .relaxed)
        if efd < 0 {
            throw .unavailable("eventfd for the engine doorbell: \(Errno.message(-efd)) (\(Errno.name(-efd)))")
        }
        do {
            engineThread = try OSThread(name: "uring-engine", cpu: options.engineCPU) { [self] in
                self.engineMain()
            }
        } catch {
            throw .unavailable("cannot start the io_uring engine thread: \(error)")
        }
        initDone.wait(spinNanoseconds: 0)
        if ring == nil {
            engineThread?.join()
            engineThread = nil
            throw Self.setupError(initError, setup: setup, backing: pool.backing)
        }
    }

    deinit {
        slots.deinitialize(count: slotCount)
        slots.deallocate()
        st.deinitialize(count: 1)
        st.deallocate()
        freeList.deallocate()
        fifo.deallocate()
        paced.deallocate()
        cqeData.deallocate()
        cqeRes.deallocate()
        batch.deallocate()
        doorbellBuffer.deallocate()
        progress.deinitialize(count: 1)
        progressStorage.deallocate()
        closeFiles()
        lock.destroy()
        sqLock.destroy()
    }

    static func setupError(_ rc: Int32, setup: URingSetup, backing: URingPoolBacking) -> DMAError {
        if rc == Self.registerFailedMarker {
            return .unavailable("io_uring_register_files for the \(backing) pool failed")
        }
        let e = -rc
        let what = "\(Errno.message(e)) (\(Errno.name(e)))"
        switch e {
        case ENOSYS: return .unavailable("io_uring_setup: \(what): the kernel has no io_uring")
        case EPERM:
            return .unavailable(
                "io_uring_setup: \(what): io_uring is disabled (/proc/sys/kernel/io_uring_disabled = \(URingChannel.disabledSysctl() ?? "?")) or blocked by seccomp")
        case EOPNOTSUPP: return .unavailable("io_uring lacks IORING_FEAT_EXT_ARG (Linux 5.11 or later is needed)")
        case EINVAL where setup == .deferTaskrun:
            return .unavailable("io_uring_setup(SINGLE_ISSUER|DEFER_TASKRUN): \(what): Linux 6.1 or later is needed")
        default: return .unavailable("io_uring_queue_init_params(\(setup.rawValue)): \(what)")
        }
    }

    static let registerFailedMarker: Int32 = Int32.min
    /// IORING_SETUP_SQPOLL's `sq_thread_idle`: how long the SQ thread polls before it sleeps.
    static let sqIdleMilliseconds: UInt32 = 10

    @inline(__always)
    var onEngineThread: Bool { pthread_equal(pthread_self(), enginePThread) != 0 }

    @inline(__always)
    func publish() {
        // Ordering: release; pairs with the acquire load in `status(of:)` and `watermark()`,
        // so a reader that sees `last` also sees the state that made it complete.
        published.store(st.pointee.watermark.packed, ordering: .releasing)
    }

    // MARK: Waiting

    /// Wakes threads in `waitFor` if there are any. Called by the engine after it changed
    /// something they may wait for (a zombie retired, a cancel completed, a callback batch
    /// ended, the kernel went idle).
    @inline(__always)
    func notifyWaiters() {
        // Ordering: seq_cst; pairs with the seq_cst increment in `waitFor`: either this load
        // sees the waiter, or the waiter's condition check (after its increment) sees the change.
        if waiters.load(ordering: .sequentiallyConsistent) > 0 {
            // Ordering: release; pairs with the acquire load of the word in `waitFor`.
            progress.pointee.wrappingAdd(1, ordering: .releasing)
            Futex.wake(progressWord)
        }
    }

    /// Blocks until `condition` holds (blocking context only).
    func waitFor(_ condition: () -> Bool) {
        // Ordering: seq_cst; pairs with the seq_cst load in `notifyWaiters`.
        waiters.wrappingAdd(1, ordering: .sequentiallyConsistent)
        defer { waiters.wrappingSubtract(1, ordering: .relaxed) }
        var spins = 0
        while !condition() {
            // Ordering: acquire; pairs with the release increment in `notifyWaiters`.
            let v = progress.pointee.load(ordering: .acquiring)
            if condition() { return }
            spins += 1
            if spins < 16 {
                sched_yield()
            } else {
                Futex.wait(progressWord, expected: v, timeoutNanoseconds: 1_000_000)
            }
        }
    }

    /// Wakes the engine thread if it sleeps in io_uring_enter. A doorbell write is skipped
    /// when the caller is the engine, when the engine is awake, and (unless `urgent`) when
    /// data SQEs are in the kernel: their CQEs will wake it, and it checks `control` first.
    @inline(__always)
    func wakeEngine(urgent: Bool) {
        if onEngineThread { return }
        // Ordering: seq_cst; pairs with the seq_cst store of `parked` and load of `control`
        // in `engineLoop` (a Dekker pair: the caller set `control` before this load).
        if parked.load(ordering: .sequentiallyConsistent) {
            if urgent || outstanding.load(ordering: .sequentiallyConsistent) == 0 {
                let fd = doorbellFD
                if fd >= 0 { _ = curing_eventfd_signal(fd) }
            }
        }
    }

    @inline(__always)
    func request(_ bits: UInt32, urgent: Bool) {
        // Ordering: seq_cst; pairs with the seq_cst exchange/load of `control` in `engineLoop`.
        control.bitwiseOr(bits, ordering: .sequentiallyConsistent)
        wakeEngine(urgent: urgent)
    }

    // MARK: Slots (caller holds `lock`)

    @inline(__always)
    func preparedSlot(_ d: DMADescriptor) -> UnsafeMutablePointer<URingSlot>? {
        guard Int(d.index) < slotCount else { return nil }
        let s = slots + Int(d.index)
        guard s.pointee.generation == d.generation, s.pointee.state == .prepared else { return nil }
        return s
    }

    /// Splits a slot's transfer into SQE-sized chunks of about `requested` bytes (0: whole).
    @inline(__always)
    func setChunking(_ s: UnsafeMutablePointer<URingSlot>, requested: Int) {
        let len = s.pointee.length
        if (requested <= 0 || requested >= len) && len <= 1 << 30 {
            // The common case: one SQE for the whole transfer, no division on the hot path.
            s.pointee.chunkBytes = len
            s.pointee.chunkCount = 1
            return
        }
        var cb = requested > 0 ? min(requested, len) : len
        cb = min(cb, 1 << 30)
        var n = (len + cb - 1) / cb
        if n > maxChunks {
            cb = (len + maxChunks - 1) / maxChunks
            n = (len + cb - 1) / cb
        }
        s.pointee.chunkBytes = cb
        s.pointee.chunkCount = n
    }

    /// Retires a slot: releases its callback and returns it to the free stack.
    @inline(__always)
    func retire(_ idx: UInt32) {
        let s = slots + Int(idx)
        s.pointee.callback = DMACallback()
        s.pointee.state = .free
        s.pointee.onPacedList = false
        s.pointee.generation &+= 1
        s.pointee.destination = nil
        freeList[st.pointee.freeCount] = idx
        st.pointee.freeCount += 1
    }

    // MARK: Submission side (caller holds `sqLock`)

    /// io_uring_submit, retried on EINTR and briefly on EAGAIN/EBUSY. A failure leaves the
    /// SQEs in the SQ; the next submit (the engine pumps every round) pushes them again.
    @discardableResult
    func submitSQ(_ ring: OpaquePointer) -> Int32 {
        var tries = 0
        while true {
            let r = curing_submit(ring)
            if r >= 0 { return r }
            if r == -EINTR { continue }
            if (r == -EAGAIN || r == -EBUSY) && tries < 16 && !onEngineThread {
                tries += 1
                sched_yield()
                continue
            }
            lastSubmitError.store(r, ordering: .relaxed)
            return r
        }
    }

    /// Preps the SQEs of one non-paced descriptor (caller holds `sqLock` and `lock`, and
    /// checked the SQ has room).
    @inline(__always)
    func prepDescriptor(_ ring: OpaquePointer, _ idx: UInt32) -> Int {
        let s = slots + Int(idx)
        let gen = s.pointee.generation
        var n = 0
        if s.pointee.fault != nil {
            _ = curing_prep_nop(ring, URingUserData.make(.fault, slot: idx, generation: gen))
            n = 1
        } else {
            for c in 0..<s.pointee.chunkCount {
                n += prepChunk(ring, idx, c)
            }
        }
        s.pointee.state = .active
        s.pointee.chunksIssued = s.pointee.chunkCount
        s.pointee.outstanding += n
        st.pointee.bytesInKernel += s.pointee.length
        return n
    }

    /// Preps one chunk's IORING_OP_READ (READ_FIXED into the registered pool) and reports the
    /// source read to the access probe as handed to the kernel (the destination write is
    /// reported when the CQE arrives, so each chunk counts as one write).
    @inline(__always)
    func prepChunk(_ ring: OpaquePointer, _ idx: UInt32, _ c: Int) -> Int {
        let s = slots + Int(idx)
        let off = c * s.pointee.chunkBytes
        let n = min(s.pointee.chunkBytes, s.pointee.length - off)
        let dst = s.pointee.destination! + off
        var bufIndex: Int32 = -1
        if fixedBuffer, pool.offset(of: dst, length: n) != nil { bufIndex = 0 }
        _ = curing_prep_read(
            ring, fixedFile ? 0 : pool.fd, fixedFile ? 1 : 0, dst, UInt32(n), UInt64(s.pointee.sourceOffset + off),
            bufIndex, URingUserData.make(.data, slot: idx, chunk: c, generation: s.pointee.generation))
        if st.pointee.hasProbe, let probe = st.pointee.probe {
            let cookie = s.pointee.cookie
            probe(DMAAccess(cookie: cookie, kind: .read, address: UInt(bitPattern: pool.base + s.pointee.sourceOffset + off), count: n))
        }
        return 1
    }

    /// Hands issued descriptors to the kernel in cookie order, as far as the SQ, pause and a
    /// paced barrier allow. Returns the SQEs prepped and not yet submitted.
    func flush(_ ring: OpaquePointer, pending: Int) -> Int {
        var pending = pending
        var fullRounds = 0
        lock.lock()
        while !st.pointee.paused && st.pointee.barrier < 0 && st.pointee.kcursor < st.pointee.issuedEnd {
            let idx = fifo[st.pointee.kcursor & fifoMask]
            let s = slots + Int(idx)
            if s.pointee.paced {
                // The engine feeds it; nothing after it starts until it is done.
                s.pointee.state = .active
                s.pointee.nextDue = 0
                s.pointee.onPacedList = true
                st.pointee.barrier = Int32(idx)
                paced[st.pointee.pacedCount] = idx
                st.pointee.pacedCount += 1
                st.pointee.kcursor += 1
                st.pointee.bytesInKernel += s.pointee.length
                if onEngineThread {
                    pacedAdded = true
                } else {
                    lock.unlock()
                    request(URingControl.service, urgent: true)
                    lock.lock()
                }
                break
            }
            let need = s.pointee.fault != nil ? 1 : s.pointee.chunkCount
            if Int(curing_sq_space_left(ring)) < need {
                // SQ full: submit what is prepped and try again (with SQPOLL the kernel
                // thread frees entries asynchronously).
                lock.unlock()
                if pending > 0 { submitSQ(ring); pending = 0 } else { sched_yield() }
                fullRounds += 1
                lock.lock()
                if fullRounds > 64 { break }
                continue
            }
            // Ordering: seq_cst; pairs with the seq_cst load in `wakeEngine` (the count must be
            // visible before the SQE can complete and before a doorbell decision reads it).
            outstanding.wrappingAdd(need, ordering: .sequentiallyConsistent)
            pending += prepDescriptor(ring, idx)
            st.pointee.kcursor += 1
        }
        let leftBehind = fullRounds > 64
        inFlightBytes.store(st.pointee.bytesInKernel, ordering: .relaxed)
        lock.unlock()
        // The SQ stayed full: let the engine hand over the rest once it has reaped. On the
        // engine thread (an issuePending from a callback) that is its next round: without
        // `pumpNeeded` nothing brought it back, and the rest never started (found by the
        // random-client checker on uring-sqpoll, whose SQ thread frees entries late).
        if leftBehind {
            if onEngineThread { pumpNeeded = true } else { request(URingControl.flush, urgent: true) }
        }
        return pending
    }

    /// Submits issued descriptors from the calling thread (plain and sqpoll setups).
    func pumpFromClient() {
        sqLock.lock()
        if let ring {
            let pending = flush(ring, pending: 0)
            if pending > 0 { submitSQ(ring) }
        }
        sqLock.unlock()
    }

    /// The engine's submission round: doorbell, cancel, paced chunks, then issued descriptors.
    /// Returns the earliest time a paced chunk is due (0 = none).
    func pumpFromEngine(_ ring: OpaquePointer) -> UInt64 {
        sqLock.lock()
        var pending = 0
        var due: UInt64 = 0
        pacedAdded = false
        lock.lock()
        if !st.pointee.doorbellArmed && curing_sq_space_left(ring) > 0 {
            _ = curing_prep_read(ring, doorbellFD, 0, doorbellBuffer, 8, 0, -1, URingUserData.make(.doorbell))
            st.pointee.doorbellArmed = true
            pending += 1
        }
        if st.pointee.cancelToPrep && curing_sq_space_left(ring) > 0 {
            _ = curing_prep_cancel_any(ring, URingUserData.make(.cancel))
            st.pointee.cancelToPrep = false
            pending += 1
        }
        lock.unlock()
        // Issued descriptors first (a paced one found there joins the paced list), then the
        // paced chunks; a paced descriptor that finished lifts its barrier: flush again.
        pending = flush(ring, pending: pending)
        lock.lock()
        var barrierLifted = false
        if st.pointee.pacedCount > 0 {
            pending += servicePaced(ring, due: &due, barrierLifted: &barrierLifted)
        }
        lock.unlock()
        if barrierLifted { pending = flush(ring, pending: pending) }
        if pending > 0 { submitSQ(ring) }
        lock.lock()
        // Pump again next round only if something was left behind for lack of SQ space. Paced
        // descriptors bring the engine back by themselves: a chunk's CQE sets `pumpNeeded`,
        // a delay ends at `due`, and resume/stall release come through `control`.
        pumpNeeded = pacedAdded || !st.pointee.doorbellArmed || st.pointee.cancelToPrep
            || (!st.pointee.paused && st.pointee.barrier < 0 && st.pointee.kcursor < st.pointee.issuedEnd)
        lock.unlock()
        sqLock.unlock()
        return due
    }

    /// Feeds paced descriptors: one chunk at a time, each after its delay, none while paused
    /// or stalled. Caller holds `sqLock` and `lock`.
    func servicePaced(_ ring: OpaquePointer, due: inout UInt64, barrierLifted: inout Bool) -> Int {
        var prepped = 0
        let now = MonotonicClock.now()
        var i = 0
        while i < st.pointee.pacedCount {
            let idx = paced[i]
            let s = slots + Int(idx)
            if s.pointee.state != .active {
                // Terminated meanwhile (terminate empties the list, so this is a safety net).
                s.pointee.onPacedList = false
                removePaced(at: i)
                if st.pointee.barrier == Int32(idx) {
                    st.pointee.barrier = -1
                    barrierLifted = true
                }
                continue
            }
            if s.pointee.outstanding > 0 {
                i += 1
                continue
            }
            if s.pointee.chunksIssued >= s.pointee.chunkCount {
                s.pointee.state = .done
                s.pointee.onPacedList = false
                removePaced(at: i)
                if st.pointee.barrier == Int32(idx) {
                    st.pointee.barrier = -1
                    barrierLifted = true
                }
                continue
            }
            if st.pointee.paused || s.pointee.stall {
                i += 1
                continue
            }
            if s.pointee.nextDue == 0 { s.pointee.nextDue = now &+ UInt64(max(0, s.pointee.delay)) }
            if now >= s.pointee.nextDue {
                guard curing_sq_space_left(ring) > 0 else { break }
                if s.pointee.fault != nil {
                    _ = curing_prep_nop(ring, URingUserData.make(.fault, slot: idx, generation: s.pointee.generation))
                    s.pointee.chunksIssued = s.pointee.chunkCount
                } else {
                    _ = prepChunk(ring, idx, s.pointee.chunksIssued)
                    s.pointee.chunksIssued += 1
                }
                s.pointee.outstanding = 1
                // Ordering: seq_cst; as in `flush`.
                outstanding.wrappingAdd(1, ordering: .sequentiallyConsistent)
                s.pointee.nextDue = 0
                prepped += 1
            } else if due == 0 || s.pointee.nextDue < due {
                due = s.pointee.nextDue
            }
            i += 1
        }
        return prepped
    }

    @inline(__always)
    func removePaced(at i: Int) {
        st.pointee.pacedCount -= 1
        paced[i] = paced[st.pointee.pacedCount]
    }

    // MARK: Completion side (engine thread)

    /// Reaps every ready CQE in batches (io_uring_peek_batch_cqe + io_uring_cq_advance) and
    /// applies them to the slots. Returns the number reaped.
    func reap(_ ring: OpaquePointer) -> Int {
        var total = 0
        while true {
            let n = Int(curing_reap(ring, cqeData, cqeRes, UInt32(Self.reapBatch)))
            if n == 0 { break }
            lock.lock()
            for i in 0..<n { absorb(cqeData[i], cqeRes[i]) }
            inFlightBytes.store(st.pointee.bytesInKernel, ordering: .relaxed)
            lock.unlock()
            total += n
            if n < Self.reapBatch { break }
        }
        if total > 0 { notifyWaiters() }
        return total
    }

    /// Applies one CQE. Caller holds `lock`.
    @inline(__always)
    func absorb(_ ud: UInt64, _ res: Int32) {
        switch URingUserData.kind(ud) {
        case URingUserData.Kind.doorbell.rawValue:
            st.pointee.doorbellArmed = false
            pumpNeeded = true
            return
        case URingUserData.Kind.cancel.rawValue:
            st.pointee.cancelsOutstanding -= 1
            return
        case URingUserData.Kind.exitCancel.rawValue:
            return
        default:
            break
        }
        let idx = URingUserData.slot(ud)
        guard idx < slotCount else {
            strayCompletions.wrappingAdd(1, ordering: .relaxed)
            return
        }
        let s = slots + idx
        guard UInt64(s.pointee.generation) & URingUserData.generationMask == URingUserData.generation(ud),
            s.pointee.state == .active || s.pointee.state == .zombie, s.pointee.outstanding > 0
        else {
            strayCompletions.wrappingAdd(1, ordering: .relaxed)
            return
        }
        s.pointee.outstanding -= 1
        if s.pointee.onPacedList { pumpNeeded = true }
        // Ordering: seq_cst; pairs with the seq_cst load in `wakeEngine` and in pause's wait.
        // Deferred to the end of the CQE's accounting (P1): `pause()` returns once it reads
        // zero, and the bytes done and the state must be final by then.
        defer { outstanding.wrappingSubtract(1, ordering: .sequentiallyConsistent) }
        let isData = URingUserData.kind(ud) == URingUserData.Kind.data.rawValue
        let chunk = URingUserData.chunk(ud)
        if isData, st.pointee.hasProbe, let probe = st.pointee.probe, let dst = s.pointee.destination {
            let off = chunk * s.pointee.chunkBytes
            probe(DMAAccess(cookie: s.pointee.cookie, kind: .write, address: UInt(bitPattern: dst + off),
                            count: min(s.pointee.chunkBytes, s.pointee.length - off)))
        }
        if s.pointee.state == .zombie {
            if s.pointee.zombieEpoch <= st.pointee.syncedEpoch {
                lateCompletions.wrappingAdd(1, ordering: .relaxed)
            }
            if s.pointee.outstanding == 0 {
                retire(UInt32(idx))
                st.pointee.zombies -= 1
            }
            return
        }
        if !isData {
            s.pointee.result = s.pointee.fault == .write ? .writeFailed : .readFailed
        } else if res < 0 {
            if s.pointee.result == .noError {
                s.pointee.result = res == -ECANCELED ? .aborted : (res == -EFAULT ? .writeFailed : .readFailed)
            }
        } else {
            let off = chunk * s.pointee.chunkBytes
            let want = min(s.pointee.chunkBytes, s.pointee.length - off)
            s.pointee.bytesDone += Int(res)
            if Int(res) < want && s.pointee.result == .noError { s.pointee.result = .readFailed }
        }
        if s.pointee.outstanding == 0 && !s.pointee.onPacedList && s.pointee.chunksIssued == s.pointee.chunkCount {
            s.pointee.state = .done
        }
    }

    /// Takes the done descriptors at the head of the FIFO (cookie order), advances `last`
    /// past them, and runs their callbacks with no lock held. Returns how many it retired.
    func deliver() -> Int {
        lock.lock()
        let h = st.pointee.head
        if st.pointee.paused || h == st.pointee.kcursor || slots[Int(fifo[h & fifoMask])].state != .done {
            lock.unlock()
            return 0
        }
        // Ordering: seq_cst; pairs with the load in `waitQuiescent`: a synchronize that runs
        // after a terminate which followed this point sees an odd value (or a later one).
        batchSeq.wrappingAdd(1, ordering: .sequentiallyConsistent)
        var n = 0
        var retired = 0
        var lastCookie = st.pointee.watermark.last
        while retired < Self.deliveryBatch && st.pointee.head < st.pointee.kcursor {
            let idx = fifo[st.pointee.head & fifoMask]
            let s = slots + Int(idx)
            guard s.pointee.state == .done else { break }
            if s.pointee.flags.contains(.interrupt) && s.pointee.callback.isSet {
                let code = s.pointee.result
                let residue = code == .noError ? 0 : max(0, s.pointee.length - s.pointee.bytesDone)
                (batch + n).initialize(to: URingDelivery(callback: s.pointee.callback, cookie: s.pointee.cookie,
                                                         result: DMAResult(code, residue: residue)))
                n += 1
            }
            lastCookie = s.pointee.cookie
            st.pointee.bytesInKernel -= s.pointee.length
            retire(idx)
            st.pointee.head += 1
            retired += 1
        }
        st.pointee.watermark.last = lastCookie
        publish()
        inFlightBytes.store(st.pointee.bytesInKernel, ordering: .relaxed)
        lock.unlock()
        for i in 0..<n {
            batch[i].callback.invoke(cookie: batch[i].cookie, result: batch[i].result)
        }
        batch.deinitialize(count: n)
        // Ordering: seq_cst; pairs with the load in `waitQuiescent`.
        batchSeq.wrappingAdd(1, ordering: .sequentiallyConsistent)
        notifyWaiters()
        return retired
    }

    // MARK: The engine thread

    func engineMain() {
        enginePThread = pthread_self()
        var r: OpaquePointer?
        let mode: Int32
        switch setup {
        case .plain: mode = Int32(CURING_MODE_PLAIN.rawValue)
        case .deferTaskrun: mode = Int32(CURING_MODE_DEFER.rawValue)
        case .sqpoll: mode = Int32(CURING_MODE_SQPOLL.rawValue)
        }
        // SQPOLL: the SQ thread is left unpinned. Pinned next to the engine thread it takes
        // that CPU for its whole idle period and the engine only runs between time slices
        // (3-4 ms p50 at depth 256 on two vCPUs).
        var rc = curing_create(UInt32(sqEntries), UInt32(4 * sqEntries), mode, -1, Self.sqIdleMilliseconds, &r)
        if rc == 0, let ring = r, fixedFile {
            if curing_register_file(ring, pool.fd) < 0 {
                curing_destroy(ring)
                r = nil
                rc = Self.registerFailedMarker
            } else {
                fixedBuffer = curing_register_buffer(ring, pool.base, pool.byteCount) == 0
            }
        }
        guard rc == 0, let ring = r else {
            initError = rc
            initDone.signal()
            return
        }
        // The engine placement covers the kernel's io-wq workers too (memfd reads run there):
        // IORING_REGISTER_IOWQ_AFF pins them to the engine CPU.
        if let cpu = options.engineCPU {
            var cpus: [Int32] = [Int32(cpu)]
            iowqAffinityResult = curing_register_iowq_affinity(ring, &cpus, 1)
        }
        self.ring = ring
        initDone.signal()
        engineLoop(ring)
        retireDoorbell(ring)
        sqLock.lock()
        self.ring = nil
        curing_destroy(ring)
        sqLock.unlock()
    }

    /// Cancels the doorbell read and reaps its CQE (bounded: 100 ms), so that nothing is
    /// pending when the ring is closed: the kernel's teardown, and with SQPOLL the SQ thread's
    /// exit, then need not cancel it themselves (an armed read kept the SQ thread alive for
    /// 50-100 ms after io_uring_queue_exit in a C check).
    func retireDoorbell(_ ring: OpaquePointer) {
        sqLock.lock()
        lock.lock()
        let armed = st.pointee.doorbellArmed
        lock.unlock()
        if armed && curing_prep_cancel_any(ring, URingUserData.make(.exitCancel)) == 0 { submitSQ(ring) }
        sqLock.unlock()
        guard armed else { return }
        let deadline = MonotonicClock.now() &+ 100_000_000
        while MonotonicClock.now() < deadline {
            _ = reap(ring)
            lock.lock()
            let stillArmed = st.pointee.doorbellArmed
            lock.unlock()
            if !stillArmed { return }
            _ = curing_wait(ring, 1_000_000)
        }
    }

    func engineLoop(_ ring: OpaquePointer) {
        var stopping = false
        var due: UInt64 = 0
        let spinNs = UInt64(max(0, options.spinNanoseconds))
        while true {
            // Ordering: acquire; pairs with the seq_cst bitwiseOr in `request`.
            let ctl = control.exchange(0, ordering: .acquiringAndReleasing)
            if ctl & URingControl.stop != 0 { stopping = true }
            let pumped = ctl != 0 || pumpNeeded || (due != 0 && MonotonicClock.now() >= due)
            if pumped { due = pumpFromEngine(ring) }
            var progressMade = reap(ring)
            if progressMade > 0 || pumped {
                while true {
                    let d = deliver()
                    if d == 0 { break }
                    progressMade += d
                }
            }
            if progressMade > 0 || pumpNeeded { continue }
            // Ordering: seq_cst; pairs with the seq_cst decrement in `absorb`.
            if stopping && outstanding.load(ordering: .sequentiallyConsistent) == 0 { break }

            // Spin a while before sleeping, yielding rather than pausing because io-wq workers
            // need the CPU; with DEFER_TASKRUN, CQEs appear only when this thread enters the
            // kernel, so spin only for requests while nothing is in flight
            // (docs/measurement-notes.md, "URingCore.engineLoop: spinning before sleeping").
            // SQPOLL: the SQ thread already spins; a spinning engine would take the CPU it needs.
            if spinNs > 0 && due == 0 && setup != .sqpoll {
                let start = MonotonicClock.now()
                let watchCQ = setup != .deferTaskrun
                var i = 0
                spin: while true {
                    if control.load(ordering: .relaxed) != 0 { break spin }
                    if watchCQ {
                        if curing_cq_ready(ring) > 0 { break spin }
                    } else if outstanding.load(ordering: .relaxed) > 0 {
                        break spin
                    }
                    i += 1
                    if i & 7 == 0 {
                        sched_yield()
                        if MonotonicClock.now() &- start > spinNs { break spin }
                    } else {
                        cpuRelax()
                    }
                }
            }

            // Ordering: seq_cst; the Dekker pair with `wakeEngine`: publish "parked", then
            // re-check `control`.
            parked.store(true, ordering: .sequentiallyConsistent)
            if control.load(ordering: .sequentiallyConsistent) != 0 || curing_cq_ready(ring) > 0 {
                parked.store(false, ordering: .relaxed)
                continue
            }
            var timeout: Int64 = -1
            if due != 0 {
                let now = MonotonicClock.now()
                timeout = due > now ? Int64(due - now) : 0
            }
            if timeout != 0 {
                _ = curing_wait(ring, timeout)
            }
            parked.store(false, ordering: .relaxed)
        }
    }

    /// Reaps on the engine thread until no data SQE is in the kernel (pause from a callback).
    func drainInline() {
        guard let ring else { return }
        // Ordering: seq_cst; pairs with the seq_cst decrement in `absorb` (on this thread here,
        // so the order is program order; seq_cst as everywhere `outstanding` is read).
        while outstanding.load(ordering: .sequentiallyConsistent) > 0 {
            if reap(ring) == 0 { _ = curing_wait(ring, 1_000_000) }
        }
    }

    // MARK: Termination

    /// terminateAsync's effect (caller checked the context rules): every submitted descriptor
    /// is dropped without callback; those with SQEs in the kernel become zombies until their
    /// CQEs arrive, and an IORING_OP_ASYNC_CANCEL is queued for them. `last := used` (S6).
    func terminateLocked() -> Bool {
        st.pointee.terminateEpoch &+= 1
        var pos = st.pointee.head
        while pos < st.pointee.tail {
            let idx = fifo[pos & fifoMask]
            let s = slots + Int(idx)
            if s.pointee.state == .active && s.pointee.outstanding > 0 {
                s.pointee.state = .zombie
                s.pointee.zombieEpoch = st.pointee.terminateEpoch
                s.pointee.callback = DMACallback()
                st.pointee.zombies += 1
            } else {
                retire(idx)
            }
            pos += 1
        }
        st.pointee.head = st.pointee.tail
        st.pointee.kcursor = st.pointee.tail
        st.pointee.issuedEnd = st.pointee.tail
        st.pointee.barrier = -1
        st.pointee.pacedCount = 0
        st.pointee.bytesInKernel = 0
        inFlightBytes.store(0, ordering: .relaxed)
        st.pointee.watermark.last = st.pointee.watermark.used
        publish()
        st.pointee.paused = false
        if st.pointee.zombies > 0 && !st.pointee.cancelToPrep {
            st.pointee.cancelToPrep = true
            st.pointee.cancelsOutstanding += 1
            return true
        }
        return false
    }

    /// synchronize's wait: no zombie left, no cancel outstanding, and no callback batch that
    /// began before this call still running.
    func waitQuiescent() {
        lock.lock()
        let epoch = st.pointee.terminateEpoch
        lock.unlock()
        // Ordering: seq_cst; pairs with the increments in `deliver`.
        let seq = batchSeq.load(ordering: .sequentiallyConsistent)
        waitFor {
            lock.lock()
            let idle = st.pointee.zombies == 0 && st.pointee.cancelsOutstanding == 0
            lock.unlock()
            // Ordering: seq_cst; pairs with the increments in `deliver` (see above).
            return idle && (seq & 1 == 0 || batchSeq.load(ordering: .sequentiallyConsistent) != seq)
        }
        lock.lock()
        if st.pointee.syncedEpoch < epoch { st.pointee.syncedEpoch = epoch }
        lock.unlock()
    }

    /// Stops the engine thread and joins it (unless called on it: then it exits by itself
    /// after the current callback batch and drops its reference to this object). Once
    /// joined, the ring is gone and the doorbell and pool files are closed.
    func stopEngine() {
        request(URingControl.stop, urgent: true)
        if !onEngineThread {
            engineThread?.join()
            closeFiles()
        }
    }

    /// Closes the doorbell eventfd and the pool file (the pool mapping stays until the
    /// channel is freed, so buffers the client still holds remain valid memory). Only after
    /// the engine exited: it is the only thread that waits on the doorbell, and the ring that
    /// reads the pool file is destroyed by then.
    func closeFiles() {
        let fd = doorbell.exchange(-1, ordering: .relaxed)
        if fd >= 0 { close(fd) }
        pool.closeFile()
    }
}
