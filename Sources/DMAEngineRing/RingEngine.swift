// dmabench — DMAEngineRing
//
// The engine thread: consumes issued tickets from the submission ring in ticket (= cookie)
// order, moves the bytes, and feeds the completion ring. It polls with a bounded spin and
// then parks on a futex; a waker issues a futex wake only when the engine is parked.
//
// Terminate protocol (engine side). When the engine observes a new epoch with cutoff C it
// drains every ticket ≤ C (issued or not), dropping them without touching their memory; an
// active transfer with ticket ≤ C is aborted at its next chunk boundary. Dropped and aborted
// descriptors still go through the completion ring, flagged `terminated`, so the executor
// retires them in order. Once its consumer position is past C it publishes the completion
// ring and stores `ack` = (epoch, completion-ring position): every entry of a pre-terminate
// descriptor lies before that position.
//
// Engine-thread callbacks (`DMACallbackContext.engineThread`): the engine owns the executor
// object (`executor`, with `inline` set) and runs it itself at safe points only: after the
// main loop published a batch, before it idles or parks (idle, paused, stopping, a full
// completion ring), at the start of a slow or cyclic transfer (which may wait), and at a
// chunk boundary in `mustAbort` (then it re-reads `control` before moving data). So a
// callback never runs between a control check and the bytes it guards, and everything
// `synchronize` waits for (`compHead` past the acknowledged position) is dispatched before
// the engine parks.

import DMAEngine
import Glibc
import Platform
import Synchronization

final class RingEngine: @unchecked Sendable {
    let core: RingCore
    /// The callback executor the engine runs itself when `inline` is true (engine-thread and
    /// client-poll modes); with an executor thread the engine never touches it. A non-optional
    /// `let`, as `core` is: binding an optional payload (`if let x = inline`) made the engine
    /// retain and release the executor up to three times a descriptor, each a locked
    /// instruction (docs/measurement-notes.md, "RingEngine.executor: no retain per descriptor").
    private let executor: RingExecutor
    private let inline: Bool

    // Engine-private state (only the engine thread touches it).
    private var head: UInt32 = 1
    private var issuedCache: UInt32 = 0
    /// Whether to look for issue marks: only while the issues it sees cover one ticket each.
    /// A client that submits a batch before it issues writes the batch's slots, four to a
    /// line, while the engine waits; polling the mark of the first of them took each line
    /// back between two of its stores and halved ring 64 B b32 d256 in some rounds.
    private var pollMarks = false
    private var seen: Control
    private var draining = false
    private var drainUntil: UInt32 = 0
    private var needAck = false
    private var stopping = false
    private var compTailPrivate: UInt32 = 0
    private var compHeadCache: UInt32 = 0
    private var published: UInt32 = 0
    /// Client-poll mode: `published` when the backlog was last checked.
    private var backlogChecked: UInt32 = 0
    private var pendingLast: UInt32 = 0
    private var pendingCount = 0
    private var pendingBytes = 0
    /// Negative control `.engineKeepsCopyingTerminated`: the terminated ticket that gets one
    /// late chunk.
    private var lateChunkTicket: UInt32? = nil

    /// Publish completions after this many descriptors or bytes (batching the `last` CAS,
    /// the completion-tail store and, in engine-thread mode, a run of callbacks), and always
    /// before the engine idles, so the last completion of a burst is never held back
    /// (docs/measurement-notes.md, "RingEngine.flushCount and flushBytes").
    private let flushCount = 32
    private let flushBytes = 256 << 10

    init(core: RingCore, executor: RingExecutor, inline: Bool) {
        self.core = core
        self.executor = executor
        self.inline = inline
        seen = Control(raw: core.control.pointee.load(ordering: .relaxed))
    }

    func run() {
        while true {
            // Ordering: acquire; pairs with the seq_cst CAS of `control` in terminate, pause,
            // resume and release.
            let c = Control(raw: core.control.pointee.load(ordering: .acquiring))
            if c != seen { observe(c) }
            if stopping {
                flush()
                if inline && core.clientPolls { executor.claimForStop(upTo: published) } else { runCallbacks() }
                return
            }
            if draining && Tickets.distance(head, drainUntil) > 0 { draining = false }
            if needAck && !draining { acknowledge() }
            if seen.paused && !draining {
                // Rule P2: issued work does not start while paused.
                flush()
                runCallbacks()
                waitForControlChange()
                continue
            }
            var limit = issuedCache
            if Tickets.distance(head, limit) > 0 {
                if pollMarks && isMarked(head) {
                    // Issued, by the mark: start it without reading `issuedTail`, whose line
                    // the issuer's compare-and-swap may be holding.
                    limit = head
                } else {
                    // No mark on the next ticket (at depth 1: caught up): publish and call back
                    // before the reload, which misses on the line the issuer's compare-and-swap
                    // took (docs/measurement-notes.md, "RingEngine: calling back before
                    // reloading issuedTail").
                    if pollMarks {
                        flush()
                        runCallbacks()
                    }
                    // Ordering: acquire; pairs with the seq_cst CAS of `issuedTail` in
                    // `issuePending` (the slot contents are published by each slot's own `seq`).
                    let tail = core.issuedTail.pointee.load(ordering: .acquiring)
                    if tail != issuedCache {
                        pollMarks = tail &- issuedCache == 1
                        issuedCache = tail
                    }
                    limit = issuedCache
                }
            }
            if draining && Tickets.distance(drainUntil, limit) > 0 { limit = drainUntil }
            if Tickets.distance(head, limit) > 0 {
                flush()
                runCallbacks()
                idle()
                continue
            }
            if !draining && Tickets.distance(head, limit) < 0 && compTailPrivate &- compHeadCache < core.compCapacity {
                // The common case: more than one ticket to run, nothing to drain, room in the
                // completion ring. One ticket (depth 1) takes the loop's path below, which
                // sets up nothing.
                burst(through: limit)
                runCallbacksBetweenTransfers()
                continue
            }
            // Consume ticket `head`.
            let t = head
            let index = Self.consume(core.sub + Int(t & core.mask), ticket: t, capacity: core.capacity, active: core.active)
            head = t &+ 1
            prefetchNext(of: head, issued: issuedCache, sub: core.sub, mask: core.mask, poolBase: core.poolBase)
            if draining && Tickets.distance(t, drainUntil) <= 0 {
                push(index: index, ticket: t, code: .aborted, residue: 0, terminated: true, bytes: 0)
                continue
            }
            execute(index: index, ticket: t)
            // Engine-thread mode: the callbacks of the batch `push` just published.
            runCallbacksBetweenTransfers()
        }
    }

    /// Consumes and copies tickets `head` through `limit` with the loop's state in locals:
    /// the loop's path between two copies was the ring's gap to the anchor at 4 KiB
    /// (docs/measurement-notes.md, "RingEngine.burst"). Back to the loop at `limit`, a flush,
    /// a control change, a full completion ring, or a descriptor that is not one flat copy.
    /// Only while not draining: the loop's other checks all follow a change of `control`.
    private func burst(through limit: UInt32) {
        let sub = core.sub, mask = core.mask, capacity = core.capacity
        let comp = core.comp, compMask = core.compMask, compCapacity = core.compCapacity
        let control = core.control, active = core.active, poolBase = core.poolBase
        let seenRaw = seen.raw, epoch = seen.epoch, issued = issuedCache
        // Ordering: acquire; pairs with the release store in `debugSetAccessProbe`.
        let probed = core.probe.pointee.load(ordering: .acquiring) != 0
        var t = head
        var tail = compTailPrivate
        var count = pendingCount, bytes = pendingBytes, last = pendingLast
        var room = compCapacity &- (tail &- compHeadCache)
        while room > 0 {
            let index = Self.consume(sub + Int(t & mask), ticket: t, capacity: capacity, active: active)
            let next = t &+ 1
            prefetchNext(of: next, issued: issued, sub: sub, mask: mask, poolBase: poolBase)
            let d = RingCore.descriptor(index, in: poolBase)
            if d.pointee.slow || probed || d.pointee.pieceCount != 0 || d.pointee.isMemset {
                head = next
                compTailPrivate = tail
                pendingCount = count
                pendingBytes = bytes
                pendingLast = last
                execute(index: index, ticket: t)
                return
            }
            let n = d.pointee.length
            memcpy(d.pointee.destination.unsafelyUnwrapped, d.pointee.source.unsafelyUnwrapped, n)
            Self.record(comp + Int(tail & compMask), index: index, ticket: t, epoch: epoch, terminated: false, code: .noError, residue: 0)
            tail &+= 1
            room &-= 1
            last = t
            count &+= 1
            bytes &+= n
            t = next
            if count >= flushCount || bytes >= flushBytes || Tickets.distance(t, limit) > 0 { break }
            // Ordering: acquire; pairs with the seq_cst CAS of `control` (as at the loop's top).
            if control.pointee.load(ordering: .acquiring) != seenRaw { break }
            if room == 0 {
                // Ordering: acquire; pairs with the seq_cst store in `publishCompHead`.
                compHeadCache = core.compHead.pointee.load(ordering: .acquiring)
                room = compCapacity &- (tail &- compHeadCache)
            }
        }
        head = t
        compTailPrivate = tail
        pendingCount = count
        pendingBytes = bytes
        pendingLast = last
        if count >= flushCount || bytes >= flushBytes { flush() }
    }

    /// Whether an issuer marked ticket `t` issued in its slot (`SubmissionSlot.issued`).
    @inline(__always)
    private func isMarked(_ t: UInt32) -> Bool {
        // Ordering: relaxed; pairs with nothing: the mark only says that `t` was issued, and
        // the slot's contents are read after the acquire wait on its `seq`.
        (core.sub + Int(t & core.mask)).pointee.issued.load(ordering: .relaxed) == t
    }

    /// Takes ticket `t` out of its submission slot and frees the slot; returns the descriptor
    /// index. The loop and `burst` both consume through here, with the core's pointers as
    /// arguments so that `burst` can pass its locals.
    @inline(__always)
    private static func consume(
        _ slot: UnsafeMutablePointer<SubmissionSlot>, ticket t: UInt32, capacity: UInt32,
        active: UnsafeMutablePointer<Atomic<UInt64>>
    ) -> UInt32 {
        // Ordering: acquire; pairs with the release store of `seq` in `submit`, which
        // publishes the slot and the descriptor fields written at prep.
        while slot.pointee.seq.load(ordering: .acquiring) != t &+ 1 { cpuRelax() }
        let index = slot.pointee.descriptor.load(ordering: .relaxed)
        // Active before the slot is released: `status(of:)` finds a queued cookie either
        // in its slot or as the active one, never in neither (rule S5 residue).
        let length = slot.pointee.length.load(ordering: .relaxed)
        active.pointee.store(UInt64(t) << 32 | UInt64(length), ordering: .relaxed)
        // Consumed: the mark can never match again (t + 1 is a ticket of the next slot),
        // not even 2^32 tickets on. Ordering: relaxed; a mark is read only as a hint
        // whose slot is then published by `seq`.
        slot.pointee.issued.store(t &+ 1, ordering: .relaxed)
        // Ordering: release; pairs with the acquire wait on `seq` in `submit` for ticket
        // t + capacity (the slot is free again; we copied what we need out of it), and
        // with the acquire load of `seq` in `residue(of:)` (the `active` store is visible).
        slot.pointee.seq.store(t &+ capacity, ordering: .releasing)
        return index
    }

    /// Starts fetching the descriptor of ticket `next` when it is issued (up to `issued`): the
    /// client wrote it at prep, and it is fetched while this one's bytes move; a hint only,
    /// nothing is read from it here (docs/measurement-notes.md, "RingEngine.prefetchNext").
    @inline(__always)
    private func prefetchNext(
        of next: UInt32, issued: UInt32, sub: UnsafeMutablePointer<SubmissionSlot>, mask: UInt32,
        poolBase: UnsafeMutableRawPointer
    ) {
        guard Tickets.distance(next, issued) <= 0 else { return }
        let slot = sub + Int(next & mask)
        // Ordering: relaxed; only a hint. The slot is published when `seq` is next + 1; the
        // index read after it may be stale only in a model that x86 and arm64 do not have
        // for two loads of one line, and a stale index prefetches the wrong descriptor.
        if slot.pointee.seq.load(ordering: .relaxed) == next &+ 1 {
            // The first line only: the second is read-mostly, and a write
            // prefetch would take it from the client, whose prep reads it.
            let index = slot.pointee.descriptor.load(ordering: .relaxed)
            prefetchForWrite(RingCore.descriptor(index, in: poolBase), count: 64)
        }
    }

    /// Writes completion entry `e` (the loop's `push` and `burst`).
    @inline(__always)
    private static func record(
        _ e: UnsafeMutablePointer<CompletionEntry>, index: UInt32, ticket t: UInt32, epoch: UInt32,
        terminated: Bool, code: DMAResultCode, residue: Int
    ) {
        e.pointee.descriptor = index
        e.pointee.ticket = t
        e.pointee.epoch = epoch
        e.pointee.terminated = terminated
        e.pointee.code = code
        e.pointee.residue = residue
    }

    /// Engine-thread and client-poll modes: runs the callbacks of every published
    /// completion not yet dispatched (in client-poll mode, unless a polling client is running
    /// them: it then runs these too). One compare when there is nothing to do (or in
    /// executor-thread mode).
    @inline(__always)
    private func runCallbacks() {
        guard inline, !executor.dispatched(upTo: published) else { return }
        if core.clientPolls { executor.dispatchFromEngine(upTo: published) } else { executor.runOnEngine(upTo: published) }
    }

    /// Between two transfers. Engine-thread mode: the callbacks of what `push` published.
    /// Client-poll mode: only once `RingExecutor.engineBacklog` wait, since a polling
    /// client takes them a batch at a time while the engine goes on copying.
    @inline(__always)
    private func runCallbacksBetweenTransfers() {
        guard inline else { return }
        if !core.clientPolls {
            if executor.head != published { executor.runOnEngine(upTo: published) }
            return
        }
        guard published != backlogChecked else { return }
        backlogChecked = published
        // Ordering: relaxed; a hint only (the claim orders what the dispatch reads).
        if published &- core.compHead.pointee.load(ordering: .relaxed) >= RingExecutor.engineBacklog {
            executor.dispatchFromEngine(upTo: published)
        }
    }

    // MARK: Transfers

    @inline(__always)
    private func execute(index: UInt32, ticket t: UInt32) {
        let d = core.descriptor(index)
        let length = d.pointee.length
        // Ordering: acquire; pairs with the release store in `debugSetAccessProbe`.
        if !d.pointee.slow && core.probe.pointee.load(ordering: .acquiring) == 0 {
            // The hot path: one copy, no clock, no lock, no allocation.
            if d.pointee.pieceCount == 0 && !d.pointee.isMemset {
                memcpy(d.pointee.destination.unsafelyUnwrapped, d.pointee.source.unsafelyUnwrapped, length)
            } else {
                fillOrPieces(index)
            }
            push(index: index, ticket: t, code: .noError, residue: 0, terminated: false, bytes: length)
            return
        }
        slowTransfer(index: index, ticket: t)
    }

    /// The fast path's other kinds, out of line so that the flat copy's path stays as short
    /// as it was: a fill, or a scatter-gather copy in one burst, the pieces back to back.
    /// (Through the slow path, which publishes and dispatches before every transfer, ring ran
    /// 1:1 scatter-gather at 0.59x of a flat copy.)
    @inline(never)
    private func fillOrPieces(_ index: UInt32) {
        let d = core.descriptor(index)
        if d.pointee.isMemset {
            memset(d.pointee.destination.unsafelyUnwrapped, Int32(d.pointee.fill), d.pointee.length)
            return
        }
        let p = core.pieces + Int(index) * RingCore.pieceCapacity
        for k in 0..<Int(d.pointee.pieceCount) { memcpy(p[k].destination, p[k].source, p[k].length) }
    }

    /// Chunked transfer with control checks, injected delay, stall, faults and the access probe.
    @inline(never)
    private func slowTransfer(index: UInt32, ticket t: UInt32) {
        let d = core.descriptor(index)
        if d.pointee.isCyclic {
            cyclicTransfer(index: index, ticket: t)
            return
        }
        let length = d.pointee.length
        let chunk = max(1, d.pointee.chunkBytes > 0 ? d.pointee.chunkBytes : length)
        let cookie = core.cookie(ofTicket: t)
        // Publish what completed before this transfer: it may wait (delay, stall, pause).
        flush()
        runCallbacks()
        core.active.pointee.store(UInt64(t) << 32 | UInt64(UInt32(truncatingIfNeeded: length)), ordering: .relaxed)

        if d.pointee.stall {
            let stallSeen = d.pointee.stallSeen
            while true {
                if mustAbort(ticket: t) {
                    push(index: index, ticket: t, code: .aborted, residue: length, terminated: true, bytes: 0)
                    return
                }
                // Ordering: acquire; pairs with the release increment in `debugReleaseStalls`.
                if core.stallGeneration.pointee.load(ordering: .acquiring) != stallSeen { break }
                interruptibleSleep(nanoseconds: -1, stallSeen: stallSeen)
            }
        }
        if d.pointee.fault != 0 {
            if mustAbort(ticket: t) {
                push(index: index, ticket: t, code: .aborted, residue: length, terminated: true, bytes: 0)
                return
            }
            let code: DMAResultCode = d.pointee.fault == 1 ? .readFailed : .writeFailed
            push(index: index, ticket: t, code: code, residue: length, terminated: false, bytes: 0)
            return
        }
        var offset = 0
        // Scatter-gather: the piece the walk is in, and the offset in it (each chunk stays
        // inside one piece, so pause, terminate and the probe work per segment).
        let pieceCount = Int(d.pointee.pieceCount)
        let pieces = core.pieces + Int(index) * RingCore.pieceCapacity
        var piece = 0, inPiece = 0
        while offset < length {
            if mustAbort(ticket: t) {
                push(index: index, ticket: t, code: .aborted, residue: length - offset, terminated: true, bytes: 0)
                return
            }
            // Terminate or pause cut an injected delay short: re-check before touching memory.
            if injectedDelayInterrupted(d.pointee.delayPerChunk) { continue }
            var n = min(chunk, length - offset)
            var dst = d.pointee.destination.unsafelyUnwrapped + offset
            var src = d.pointee.source.map { $0 + offset }
            if pieceCount > 0 {
                n = min(n, pieces[piece].length - inPiece)
                dst = pieces[piece].destination + inPiece
                src = pieces[piece].source + inPiece
            }
            // Ordering: acquire; pairs with the release store in `debugSetAccessProbe`.
            let p = core.probe.pointee.load(ordering: .acquiring)
            if p != 0, let raw = UnsafeRawPointer(bitPattern: p) {
                let box = Unmanaged<ProbeBox>.fromOpaque(raw).takeUnretainedValue()
                if !d.pointee.isMemset, let s = src {
                    box.probe(DMAAccess(cookie: cookie, kind: .read, address: UInt(bitPattern: s), count: n))
                }
                box.probe(DMAAccess(cookie: cookie, kind: .write, address: UInt(bitPattern: dst), count: n))
            }
            if d.pointee.isMemset {
                memset(dst, Int32(d.pointee.fill), n)
            } else {
                memcpy(dst, src.unsafelyUnwrapped, n)
            }
            offset += n
            if pieceCount > 0 {
                inPiece += n
                if inPiece == pieces[piece].length {
                    piece += 1
                    inPiece = 0
                }
            }
            core.active.pointee.store(UInt64(t) << 32 | UInt64(UInt32(truncatingIfNeeded: length - offset)), ordering: .relaxed)
        }
        push(index: index, ticket: t, code: .noError, residue: 0, terminated: false, bytes: length)
    }

    /// A cyclic transfer: copies the buffer period by period, forever, until terminated
    /// (or the channel stops); after each period it bumps `cyclicPeriods` and the executor
    /// runs the callback, coalescing periods it has not caught up with (rule K1).
    @inline(never)
    private func cyclicTransfer(index: UInt32, ticket t: UInt32) {
        let d = core.descriptor(index)
        let length = d.pointee.length
        let period = max(1, min(d.pointee.periodLength, length))
        let chunk = max(1, d.pointee.chunkBytes > 0 ? d.pointee.chunkBytes : period)
        let cookie = core.cookie(ofTicket: t)
        flush()
        runCallbacks()
        core.periodClock.restart(cookie: cookie)
        // Ordering: release; pairs with the executor's acquire load of `cyclic` (the
        // descriptor's callback, written before submit, is visible to it).
        core.cyclic.pointee.store(UInt64(t) << 32 | UInt64(index), ordering: .releasing)
        var offset = 0
        var inPeriod = 0
        // The pace (DMAConfig.paceBytesPerSecond): a burst of n bytes moves once the request
        // line has asked for them, n / pace seconds after the previous one was due. A resume
        // restarts the schedule with the next burst due at once (no catching up).
        let pace = Int(d.pointee.pace)
        let nsPerByte = pace > 0 ? 1e9 / Double(pace) : 0
        var scheduleStart = MonotonicClock.now()
        var scheduled = 0  // bytes moved since scheduleStart, the first burst after a resume excepted
        var dueNow = false  // the first burst after a resume
        var pauses = seen.pauseGeneration
        core.active.pointee.store(UInt64(t) << 32 | UInt64(UInt32(truncatingIfNeeded: length)), ordering: .relaxed)
        while true {
            if mustAbort(ticket: t) {
                // Ordering: release; pairs with the executor's acquire load of `cyclic`.
                core.cyclic.pointee.store(UInt64(RingLayout.none), ordering: .releasing)
                push(index: index, ticket: t, code: .aborted, residue: length - offset, terminated: true, bytes: 0)
                return
            }
            if pace > 0 && seen.pauseGeneration != pauses {
                pauses = seen.pauseGeneration
                scheduleStart = MonotonicClock.now()
                scheduled = 0
                dueNow = true
            }
            // Terminate or pause cut an injected delay short: re-check before touching memory.
            if injectedDelayInterrupted(d.pointee.delayPerChunk) { continue }
            let n = min(chunk, period - inPeriod, length - offset)
            if pace > 0 {
                // Sleeps on the engine's futex (no CPU burnt at audio rates); a control change
                // wakes it, and the loop re-checks before it moves data.
                let due = scheduleStart &+ UInt64(Double(scheduled + n) * nsPerByte)
                let now = MonotonicClock.now()
                if now < due && !dueNow {
                    interruptibleSleep(nanoseconds: Int64(due - now), stallSeen: nil)
                    continue
                }
                if dueNow { dueNow = false } else { scheduled += n }
            }
            // Ordering: acquire; pairs with the release store in `debugSetAccessProbe`.
            let p = core.probe.pointee.load(ordering: .acquiring)
            if p != 0, let raw = UnsafeRawPointer(bitPattern: p) {
                let box = Unmanaged<ProbeBox>.fromOpaque(raw).takeUnretainedValue()
                box.probe(DMAAccess(cookie: cookie, kind: .read, address: UInt(bitPattern: d.pointee.source! + offset), count: n))
                box.probe(DMAAccess(cookie: cookie, kind: .write, address: UInt(bitPattern: d.pointee.destination! + offset), count: n))
            }
            memcpy(d.pointee.destination! + offset, d.pointee.source! + offset, n)
            offset += n
            inPeriod += n
            if offset == length { offset = 0 }
            core.active.pointee.store(UInt64(t) << 32 | UInt64(UInt32(truncatingIfNeeded: length - offset)), ordering: .relaxed)
            if inPeriod == period || offset == 0 {
                inPeriod = 0
                // The period's end, stamped before its callback can run (the callback reads it).
                core.periodClock.periodEnded(at: MonotonicClock.now())
                // Ordering: seq_cst (release part pairs with the executor's acquire load of
                // `cyclicPeriods`: the period's bytes are visible to the callback; seq_cst part
                // with the executor's seq_cst park announcement).
                core.cyclicPeriods.pointee.add(1, ordering: .sequentiallyConsistent)
                if inline {
                    // Engine-thread mode: the period's callback, here; the loop re-checks
                    // `control` (`mustAbort`) before it copies again. Client-poll mode: the
                    // same unless a polling client holds the claim (the next period then
                    // coalesces this one, rule K1).
                    if core.clientPolls { executor.dispatchFromEngine(upTo: published) } else { executor.cyclicOnEngine() }
                } else {
                    core.wakeExecutorIfParked()
                }
            }
        }
    }

    /// Waits out an injected per-chunk delay (none when `delay <= 0`). Returns true when a
    /// control change cut it short, so the caller re-checks before it moves data.
    private func injectedDelayInterrupted(_ delay: Int64) -> Bool {
        guard delay > 0 else { return false }
        let deadline = Int64(bitPattern: MonotonicClock.now()) + delay
        while true {
            let remaining = deadline - Int64(bitPattern: MonotonicClock.now())
            if remaining <= 0 { return false }
            if interruptibleSleep(nanoseconds: remaining, stallSeen: nil) { return true }
        }
    }

    /// At a chunk boundary: handles a control change. Returns true when the active transfer
    /// must stop (terminated or channel stopping); parks while paused.
    private func mustAbort(ticket t: UInt32) -> Bool {
        while true {
            // Ordering: acquire; pairs with the seq_cst CAS of `control` (terminate/pause/…).
            let c = Control(raw: core.control.pointee.load(ordering: .acquiring))
            if c != seen { observe(c) }
            if stopping { return true }
            if lateChunkTicket == t {
                lateChunkTicket = nil
                return true
            }
            if draining && Tickets.distance(t, drainUntil) <= 0 {
                guard core.negative == .engineKeepsCopyingTerminated else { return true }
                // Negative control: acknowledge as if drained, then copy one more chunk (late,
                // after synchronize returned) before aborting. Bounded, so that the suite's
                // clean-up, which unmaps the buffers, does not crash the process.
                draining = false
                acknowledge()
                lateChunkTicket = t
                return false
            }
            if draining && Tickets.distance(head, drainUntil) > 0 { draining = false }
            if seen.paused {
                // Rule P1: stop moving data, publish, acknowledge, wait for resume/terminate.
                flush()
                acknowledge()
                runCallbacks()
                waitForControlChange()
                continue
            }
            if needAck && !draining { acknowledge() }
            if inline, !executor.dispatched(upTo: published) {
                // Engine-thread mode: what `acknowledge` published must be dispatched before
                // a long transfer goes on (synchronize waits for it); then re-check `control`.
                // Client-poll mode: unless a polling client holds the claim; it runs them.
                if !core.clientPolls {
                    executor.runOnEngine(upTo: published)
                    continue
                }
                if executor.dispatchFromEngine(upTo: published) { continue }
            }
            return false
        }
    }

    private func observe(_ c: Control) {
        if c.epoch != seen.epoch {
            draining = true
            drainUntil = c.cutoff
        }
        if c.stop { stopping = true }
        seen = c
        needAck = true
    }

    // MARK: Completion ring

    @inline(__always)
    private func push(index: UInt32, ticket t: UInt32, code: DMAResultCode, residue: Int, terminated: Bool, bytes: Int) {
        if compTailPrivate &- compHeadCache >= core.compCapacity {
            while true {
                // Ordering: acquire; pairs with the seq_cst store in `publishCompHead` (the
                // entries before it are free to overwrite).
                compHeadCache = core.compHead.pointee.load(ordering: .acquiring)
                if compTailPrivate &- compHeadCache < core.compCapacity { break }
                flush()
                if inline {
                    // Engine-thread mode: nobody else frees entries; dispatch them here.
                    runCallbacks()
                } else {
                    cpuRelax()
                }
            }
        }
        Self.record(
            core.comp + Int(compTailPrivate & core.compMask), index: index, ticket: t, epoch: seen.epoch,
            terminated: terminated, code: code, residue: residue)
        compTailPrivate &+= 1
        if !terminated {
            pendingLast = t
            pendingCount += 1
            pendingBytes += bytes
            if pendingCount >= flushCount || pendingBytes >= flushBytes { flush() }
        }
    }

    /// Moves `last` forward over what completed, then publishes the completion ring (in that
    /// order: rule K2, a callback starts only after its cookie reads COMPLETE).
    @inline(__always)
    private func flush() {
        if pendingCount > 0 {
            core.advanceLast(to: pendingLast)
            pendingCount = 0
            pendingBytes = 0
        }
        if compTailPrivate != published {
            published = compTailPrivate
            if !inline {
                // Ordering: seq_cst (release part pairs with the acquire load of `compTail` in
                // the executor; the seq_cst part with the executor's seq_cst park
                // announcement, Dekker with `wakeExecutorIfParked`).
                core.compTail.pointee.store(published, ordering: .sequentiallyConsistent)
                core.wakeExecutorIfParked()
            } else {
                // Engine-thread mode: no executor thread parks on it, so no store-load fence
                // (an `xchg` per flush, on the path to every callback). Ordering: release;
                // pairs with the acquire load in `idleEngineWitness` (which reads it only
                // after it saw the engine's later seq_cst park store).
                core.compTail.pointee.store(published, ordering: .releasing)
            }
        }
    }

    private func acknowledge() {
        flush()
        needAck = false
        // Every completion entry of an earlier epoch lies before `published` (the orderings
        // are in `publishAck`).
        core.publishAck(seen.upper | UInt64(published))
    }

    // MARK: Waiting

    /// Spins about `spinNanoseconds` for new issued work or a control change, then parks.
    private func idle() {
        let spin = core.options.spinNanoseconds
        if spin > 0 {
            let start = MonotonicClock.now()
            var spins = 0
            while true {
                // The mark first: an issuer stores it before its compare-and-swap. While marks
                // are polled the next issue marks `head`'s slot, so `issuedTail`, whose line the
                // issuer's compare-and-swap takes, is read only every 64 spins (for an issuer
                // that read a stale tail and marked an older slot).
                if pollMarks && isMarked(head) { return }
                if (!pollMarks || spins & 63 == 0) && core.issuedTail.pointee.load(ordering: .relaxed) != issuedCache {
                    return
                }
                if core.control.pointee.load(ordering: .relaxed) != seen.raw { return }
                cpuRelax()
                spins &+= 1
                if spins & 63 == 0 && Int64(MonotonicClock.now() &- start) > spin { break }
            }
        }
        let cached = issuedCache
        let seenRaw = seen.raw
        // Everything before `head` is done and published (the caller flushed): say so, for
        // `idleEngineWitness`. The park's seq_cst store of 1 orders this store before it.
        core.idleMark.pointee.store(UInt64(1) << 32 | UInt64(head), ordering: .relaxed)
        defer { core.idleMark.pointee.store(0, ordering: .relaxed) }
        core.park(core.enginePark) {
            // Ordering: seq_cst; pairs with the seq_cst CAS in `issuePending` / of `control`.
            core.issuedTail.pointee.load(ordering: .sequentiallyConsistent) != cached
                || core.control.pointee.load(ordering: .sequentiallyConsistent) != seenRaw
        }
    }

    /// Parks until `control` changes (paused: waiting for resume, terminate or release).
    private func waitForControlChange() {
        let seenRaw = seen.raw
        // Ordering: acquire; pairs with the seq_cst CAS of `control` in resume/terminate/release.
        while core.control.pointee.load(ordering: .acquiring) == seenRaw {
            core.park(core.enginePark) {
                // Ordering: seq_cst; pairs with the seq_cst CAS of `control`.
                core.control.pointee.load(ordering: .sequentiallyConsistent) != seenRaw
            }
        }
    }

    /// Sleeps up to `nanoseconds` (< 0: until woken), cut short by a control change or a
    /// stall release. Returns true when interrupted by one of those.
    @discardableResult
    private func interruptibleSleep(nanoseconds: Int64, stallSeen: UInt32?) -> Bool {
        let seenRaw = seen.raw
        func changed() -> Bool {
            // Ordering: seq_cst; pairs with the seq_cst CAS of `control`, and the release
            // increment of `stallGeneration` followed by a wake in `debugReleaseStalls`.
            if core.control.pointee.load(ordering: .sequentiallyConsistent) != seenRaw { return true }
            if let s = stallSeen, core.stallGeneration.pointee.load(ordering: .sequentiallyConsistent) != s {
                return true
            }
            return false
        }
        if changed() { return true }
        core.park(core.enginePark, timeoutNanoseconds: nanoseconds, changed: changed)
        return changed()
    }
}
