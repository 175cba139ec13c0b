// dmabench — DMAEngineEmbedded
//
// The embedded double's state: its descriptors, lists and watermark, guarded by the
// channel's `LockedValue`, and the status computation that reads them.

#if os(Linux)
import Glibc
#endif
import DMAEngine
import Platform

/// What a descriptor does. Raw pointers are the client's; the channel only copies through them.
struct Job: @unchecked Sendable {
    enum Kind { case memcpy, memset, cyclic, memcpySG }
    var kind: Kind
    var destination: UnsafeMutableRawPointer
    var source: UnsafeRawPointer?
    var value: UInt8
    var length: Int
    var period: Int
    /// `.memcpySG`: the walk, piece by piece (a piece lies in one source and one
    /// destination segment).
    var pieces: [DMASGPiece] = []
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
    /// Scatter-gather: this work ends a piece that is not the last (the walk goes on).
    var continues = false
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
        if job.kind == .memcpySG {
            // The piece that holds byte `done`: one piece per work, so each access lies in a
            // segment.
            var start = 0
            for p in job.pieces {
                if slot.done < start + p.length {
                    let n = min(limit, start + p.length - slot.done)
                    return Work(
                        index: h, generation: slot.generation, cookie: slot.cookie, destination: p.destination,
                        source: p.source, value: 0, offset: slot.done - start, sourceOffset: slot.done - start, count: n,
                        chunk: min(chunk, max(1, n)), fault: slot.injection?.fault, probe: probe,
                        continues: slot.done + n == start + p.length && start + p.length < job.length)
                }
                start += p.length
            }
        }
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
