// dmabench — DMAEngineURing
//
// The channel state and the engine thread behind `URingChannel`. The engine thread owns the
// completion side of the ring in every setup (and, with DEFER_TASKRUN, the only right to
// enter it: clients prep SQEs, the engine submits them): it
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
    /// Hand issued descriptors to the kernel (prep them if nobody has, then submit).
    static let flush: UInt32 = 1
    /// Queue an IORING_OP_ASYNC_CANCEL.
    static let cancel: UInt32 = 2
    /// Something changed for paced descriptors or delivery (resume, stall release).
    static let service: UInt32 = 4
    /// Exit once nothing is in the kernel.
    static let stop: UInt32 = 8
    /// DEFER_TASKRUN: a client prepped SQEs up to `URingCore.preppedTail`; enter for them
    /// (no lock needed, unlike a `flush`).
    static let enter: UInt32 = 16
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
    let sqLock = URingSQLock()
    let st: UnsafeMutablePointer<URingState>
    let slots: UnsafeMutablePointer<URingSlot>
    /// Each slot's pacing and termination times (`URingSlotCold`).
    let slotCold: UnsafeMutablePointer<URingSlotCold>
    /// The most segments per list of `prepareMemcpySG`.
    static let maxSegments = 16
    static let pieceCapacity = DMASGPlan.pieceCapacity(maxSegments: maxSegments)
    /// Each slot's scatter-gather pieces, preallocated so that prep allocates nothing.
    let pieces: UnsafeMutablePointer<DMASGPiece>
    /// Each slot's runs of pieces that are contiguous in the pool file (one SQE each: a READ
    /// for a single piece, a READV for several), and the iovecs the READVs read into.
    let runs: UnsafeMutablePointer<URingRun>
    let iovecs: UnsafeMutablePointer<iovec>
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
    /// DEFER_TASKRUN: the SQ tail after the last SQE whose contents are written (stored under
    /// `sqLock` after each prep), which the engine publishes to the kernel without the lock.
    let preppedTail = Atomic<UInt32>(0)
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
        // 64-byte aligned, so that each slot starts a cache line (see `URingSlot`).
        slots = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<URingSlot>.stride * slotCount, alignment: 64)
            .bindMemory(to: URingSlot.self, capacity: slotCount)
        pieces = .allocate(capacity: slotCount * Self.pieceCapacity)
        runs = .allocate(capacity: slotCount * Self.pieceCapacity)
        iovecs = .allocate(capacity: slotCount * Self.pieceCapacity)
        slots.initialize(repeating: URingSlot(), count: slotCount)
        slotCold = .allocate(capacity: slotCount)
        slotCold.initialize(repeating: URingSlotCold(), count: slotCount)
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
        UnsafeMutableRawPointer(slots).deallocate()
        slotCold.deallocate()
        pieces.deallocate()
        runs.deallocate()
        iovecs.deallocate()
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
    func publish(_: borrowing Held) {
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

    // MARK: Slots (under `lock`: a `Held`)

    @inline(__always)
    func preparedSlot(_ d: DMADescriptor, _: borrowing Held) -> UnsafeMutablePointer<URingSlot>? {
        guard Int(d.index) < slotCount else { return nil }
        let s = slots + Int(d.index)
        guard s.pointee.generation == d.generation, s.pointee.state == .prepared else { return nil }
        return s
    }

    /// Chunk `c` of slot `idx`: where its bytes go, where they come from in the pool file,
    /// and how many.
    /// (A scatter-gather chunk is a run: its first piece's destination, the run's source
    /// offset and its total length.)
    @inline(__always)
    func span(_ idx: UInt32, _ c: Int) -> (destination: UnsafeMutableRawPointer, sourceOffset: Int, count: Int) {
        let s = slots + Int(idx)
        if s.pointee.pieceCount > 0 {
            let r = runs[Int(idx) * Self.pieceCapacity + c]
            let p = pieces[Int(idx) * Self.pieceCapacity + Int(r.first)]
            return (p.destination, UnsafeRawPointer(p.source) - UnsafeRawPointer(pool.base), r.length)
        }
        let off = c * s.pointee.chunkBytes
        return (s.pointee.destination! + off, s.pointee.sourceOffset + off, min(s.pointee.chunkBytes, s.pointee.length - off))
    }

    /// Splits a slot's transfer into SQE-sized chunks of about `requested` bytes (0: whole).
    @inline(__always)
    func setChunking(_ s: UnsafeMutablePointer<URingSlot>, requested: Int, _: borrowing Held) {
        // Scatter-gather: one chunk per run, whatever the burst.
        if s.pointee.pieceCount > 0 {
            s.pointee.chunkCount = s.pointee.runCount
            return
        }
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

    /// Retires a slot: releases its callback (if delivery did not take it) and returns it to
    /// the free stack.
    @inline(__always)
    func retire(_ idx: UInt32, _: borrowing Held) {
        let s = slots + Int(idx)
        if s.pointee.callback.isSet { s.pointee.callback.clear() }
        s.pointee.state = .free
        s.pointee.onPacedList = false
        s.pointee.generation &+= 1
        s.pointee.destination = nil
        freeList[st.pointee.freeCount] = idx
        st.pointee.freeCount += 1
    }
}

/// A run of a scatter-gather copy's pieces whose sources follow each other in the pool file:
/// one READ (a single piece) or one READV (several), `docs/measurement-notes.md`,
/// "Scatter-gather and cyclic streams".
struct URingRun {
    var first: Int32
    var count: Int32
    var length: Int
}
