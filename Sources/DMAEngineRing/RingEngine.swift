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

import DMAEngine
import Glibc
import Platform
import Synchronization

final class RingEngine: @unchecked Sendable {
    let core: RingCore

    // Engine-private state (only the engine thread touches it).
    private var head: UInt32 = 1
    private var issuedCache: UInt32 = 0
    private var seen: Control
    private var draining = false
    private var drainUntil: UInt32 = 0
    private var needAck = false
    private var stopping = false
    private var compTailPrivate: UInt32 = 0
    private var compHeadCache: UInt32 = 0
    private var published: UInt32 = 0
    private var pendingLast: UInt32 = 0
    private var pendingCount = 0
    private var pendingBytes = 0

    /// Publish completions after this many descriptors or bytes (batching the `last` CAS
    /// and the completion-tail store; small enough that latency stays per-batch).
    private let flushCount = 32
    private let flushBytes = 64 << 10

    init(core: RingCore) {
        self.core = core
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
                return
            }
            if draining && Tickets.distance(head, drainUntil) > 0 { draining = false }
            if needAck && !draining { acknowledge() }
            if seen.paused && !draining {
                // Rule P2: issued work does not start while paused.
                flush()
                waitForControlChange()
                continue
            }
            var limit = issuedCache
            if Tickets.distance(head, limit) > 0 {
                // Ordering: acquire; pairs with the seq_cst CAS of `issuedTail` in
                // `issuePending` (the slot contents are published by each slot's own `seq`).
                issuedCache = core.issuedTail.pointee.load(ordering: .acquiring)
                limit = issuedCache
            }
            if draining && Tickets.distance(drainUntil, limit) > 0 { limit = drainUntil }
            if Tickets.distance(head, limit) > 0 {
                flush()
                idle()
                continue
            }
            // Consume ticket `head`.
            let t = head
            let slot = core.sub + Int(t & core.mask)
            // Ordering: acquire; pairs with the release store of `seq` in `submit`, which
            // publishes the slot and the descriptor fields written at prep.
            while slot.pointee.seq.load(ordering: .acquiring) != t &+ 1 { cpuRelax() }
            let index = slot.pointee.descriptor.load(ordering: .relaxed)
            // Ordering: release; pairs with the acquire wait on `seq` in `submit` for ticket
            // t + capacity (the slot is free again; we copied what we need out of it).
            slot.pointee.seq.store(t &+ core.capacity, ordering: .releasing)
            head = t &+ 1
            if draining && Tickets.distance(t, drainUntil) <= 0 {
                push(index: index, ticket: t, code: .aborted, residue: 0, terminated: true, bytes: 0)
                continue
            }
            execute(index: index, ticket: t)
        }
    }

    // MARK: Transfers

    @inline(__always)
    private func execute(index: UInt32, ticket t: UInt32) {
        let d = core.pool + Int(index)
        let length = d.pointee.length
        // Ordering: acquire; pairs with the release store in `debugSetAccessProbe`.
        if !d.pointee.slow && core.probe.pointee.load(ordering: .acquiring) == 0 {
            // The hot path: one copy, no clock, no lock, no allocation.
            core.active.pointee.store(UInt64(t) << 32 | UInt64(UInt32(truncatingIfNeeded: length)), ordering: .relaxed)
            if d.pointee.isMemset {
                memset(d.pointee.destination.unsafelyUnwrapped, Int32(d.pointee.fill), length)
            } else {
                memcpy(d.pointee.destination.unsafelyUnwrapped, d.pointee.source.unsafelyUnwrapped, length)
            }
            push(index: index, ticket: t, code: .noError, residue: 0, terminated: false, bytes: length)
            return
        }
        slowTransfer(index: index, ticket: t)
    }

    /// Chunked transfer with control checks, injected delay, stall, faults and the access probe.
    @inline(never)
    private func slowTransfer(index: UInt32, ticket t: UInt32) {
        let d = core.pool + Int(index)
        let length = d.pointee.length
        let chunk = max(1, d.pointee.chunkBytes > 0 ? d.pointee.chunkBytes : length)
        let cookie = core.cookie(ofTicket: t)
        // Publish what completed before this transfer: it may wait (delay, stall, pause).
        flush()
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
        while offset < length {
            if mustAbort(ticket: t) {
                push(index: index, ticket: t, code: .aborted, residue: length - offset, terminated: true, bytes: 0)
                return
            }
            let delay = d.pointee.delayPerChunk
            if delay > 0 {
                let deadline = Int64(bitPattern: MonotonicClock.now()) + delay
                var interrupted = false
                while true {
                    let remaining = deadline - Int64(bitPattern: MonotonicClock.now())
                    if remaining <= 0 { break }
                    if interruptibleSleep(nanoseconds: remaining, stallSeen: nil) {
                        interrupted = true
                        break
                    }
                }
                // Terminate or pause cut the wait short: re-check before touching memory.
                if interrupted { continue }
            }
            let n = min(chunk, length - offset)
            // Ordering: acquire; pairs with the release store in `debugSetAccessProbe`.
            let p = core.probe.pointee.load(ordering: .acquiring)
            if p != 0, let raw = UnsafeRawPointer(bitPattern: p) {
                let box = Unmanaged<ProbeBox>.fromOpaque(raw).takeUnretainedValue()
                if !d.pointee.isMemset, let s = d.pointee.source {
                    box.probe(DMAAccess(cookie: cookie, kind: .read, address: UInt(bitPattern: s + offset), count: n))
                }
                if let dst = d.pointee.destination {
                    box.probe(DMAAccess(cookie: cookie, kind: .write, address: UInt(bitPattern: dst + offset), count: n))
                }
            }
            if d.pointee.isMemset {
                memset(d.pointee.destination! + offset, Int32(d.pointee.fill), n)
            } else {
                memcpy(d.pointee.destination! + offset, d.pointee.source! + offset, n)
            }
            offset += n
            core.active.pointee.store(UInt64(t) << 32 | UInt64(UInt32(truncatingIfNeeded: length - offset)), ordering: .relaxed)
        }
        push(index: index, ticket: t, code: .noError, residue: 0, terminated: false, bytes: length)
    }

    /// At a chunk boundary: handles a control change. Returns true when the active transfer
    /// must stop (terminated or channel stopping); parks while paused.
    private func mustAbort(ticket t: UInt32) -> Bool {
        while true {
            // Ordering: acquire; pairs with the seq_cst CAS of `control` (terminate/pause/…).
            let c = Control(raw: core.control.pointee.load(ordering: .acquiring))
            if c != seen { observe(c) }
            if stopping { return true }
            if draining && Tickets.distance(t, drainUntil) <= 0 {
                guard core.negative == .engineKeepsCopyingTerminated else { return true }
                // Negative control: acknowledge as if drained, and carry on copying.
                draining = false
                acknowledge()
                return false
            }
            if draining && Tickets.distance(head, drainUntil) > 0 { draining = false }
            if seen.paused {
                // Rule P1: stop moving data, publish, acknowledge, wait for resume/terminate.
                flush()
                acknowledge()
                waitForControlChange()
                continue
            }
            if needAck && !draining { acknowledge() }
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
                // Ordering: acquire; pairs with the release store of `compHead` in the
                // executor (the entries before it are free to overwrite).
                compHeadCache = core.compHead.pointee.load(ordering: .acquiring)
                if compTailPrivate &- compHeadCache < core.compCapacity { break }
                flush()
                cpuRelax()
            }
        }
        let e = core.comp + Int(compTailPrivate & core.compMask)
        e.pointee.descriptor = index
        e.pointee.ticket = t
        e.pointee.epoch = seen.epoch
        e.pointee.terminated = terminated
        e.pointee.code = code
        e.pointee.residue = residue
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
            // Ordering: seq_cst (release part pairs with the acquire load of `compTail` in the
            // executor; the seq_cst part with the executor's seq_cst park announcement).
            core.compTail.pointee.store(published, ordering: .sequentiallyConsistent)
            core.wakeExecutorIfParked()
        }
    }

    private func acknowledge() {
        flush()
        needAck = false
        // Ordering: release; pairs with the acquire load of `ack` in `synchronize` and
        // `pause`: every completion entry of an earlier epoch lies before `published`.
        core.ack.pointee.store(seen.upper | UInt64(published), ordering: .releasing)
        core.signalSyncWaiters()
    }

    // MARK: Waiting

    /// Spins about `spinNanoseconds` for new issued work or a control change, then parks.
    private func idle() {
        let spin = core.options.spinNanoseconds
        if spin > 0 {
            let start = MonotonicClock.now()
            var spins = 0
            while true {
                if core.issuedTail.pointee.load(ordering: .relaxed) != issuedCache { return }
                if core.control.pointee.load(ordering: .relaxed) != seen.raw { return }
                cpuRelax()
                spins &+= 1
                if spins & 63 == 0 && Int64(MonotonicClock.now() &- start) > spin { break }
            }
        }
        let cached = issuedCache
        let seenRaw = seen.raw
        core.park(core.enginePark) {
            // Ordering: seq_cst; pairs with the seq_cst CAS in `issuePending` / of `control`.
            core.issuedTail.pointee.load(ordering: .sequentiallyConsistent) != cached
                || core.control.pointee.load(ordering: .sequentiallyConsistent) != seenRaw
        }
    }

    /// Parks until `control` changes (paused: waiting for resume, terminate or release).
    private func waitForControlChange() {
        let seenRaw = seen.raw
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
