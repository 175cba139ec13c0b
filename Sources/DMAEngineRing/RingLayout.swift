// dmabench — DMAEngineRing
//
// The memory layout of a ring channel: descriptor pool slots, submission-ring slots,
// completion-ring entries, the packed control word, and the ticket ↔ cookie mapping.
//
// Tickets. Every submit takes one ticket with a single fetch-add on `used` (the last ticket
// handed out; `last`, the last completed ticket, is a separate word on its own line).
// Tickets are UInt32 positions that wrap modulo 2^32; the submission ring is indexed by
// ticket (capacity a power of two, so indexing is continuous across the wrap). Cookies follow
// rule C2 (period Int32.max, never 0), which no power-of-two counter can follow directly, so a
// cookie is computed from a ticket through a base pair (ticket, cookie) that is moved forward
// every 2^30 tickets: cookie(t) = wrap(baseCookie + Int32(t - baseTicket)). `status(of:)`
// reads (used, last) as one consistent snapshot (rule S1): `used`, `last`, then `used` again,
// until `used` reads the same twice (`RingCore.ticketSnapshot()`).

import DMAEngine
import Synchronization

/// Descriptor slot states (the `state` atomic of `RingDescriptor`).
@usableFromInline
enum SlotState {
    @usableFromInline static let free: UInt32 = 0
    @usableFromInline static let prepared: UInt32 = 1
    @usableFromInline static let inFlight: UInt32 = 2
}

/// One descriptor of the preallocated pool. The atomics are read by any thread that holds a
/// handle; the plain fields belong to whoever owns the descriptor in its current state (the
/// client while prepared, the engine, then the executor) and are handed over through the
/// release/acquire pairs of the submission ring, the completion ring and the free queue.
///
/// Everything a plain copy touches lies in the first 64-byte line: the client's prep, the
/// engine's copy and the retire each move the descriptor's lines between CPUs, so a second
/// hot line was a second transfer each time (the callback, 40 bytes as a `DMACallback`, used
/// to spill into it). The fields of chunked, injected and cyclic transfers live in the
/// second line, which prep writes only when they change.
@usableFromInline
struct RingDescriptor: ~Copyable {
    /// `SlotState`. It and `generation` stay in the first line, which the retire writes: a
    /// line the engine had only read left the client's next prep waiting on it
    /// (docs/measurement-notes.md, "RingDescriptor: one hot line, and DMAPackedCallback").
    let state: Atomic<UInt32>
    /// Incremented each time the slot goes back to the free list (stale handles fail).
    let generation: Atomic<UInt32>
    /// The length in bytes (prep refuses more than `UInt32.max`).
    var length32: UInt32 = 0
    var isMemset = false
    var reuse = false
    var interrupt = true
    /// Chunked or injected: take the engine's slow path (probe per chunk, control checks).
    var slow = false
    var destination: UnsafeMutableRawPointer? = nil
    var source: UnsafeRawPointer? = nil
    /// The callback in 25 bytes instead of `DMACallback`'s 40.
    var packed = DMAPackedCallback()
    /// Scatter-gather: pieces in `RingCore.pieces` at `index * pieceCapacity` (0 = flat).
    var pieceCount: UInt8 = 0
    var fill: UInt8 = 0
    /// A cyclic transfer: runs period by period until terminated.
    var isCyclic = false
    var stall = false
    /// 0 none, 1 read, 2 write.
    var fault: UInt8 = 0

    // The second line: read only on the slow path.

    /// `stallGeneration` when the stall was injected: `debugReleaseStalls` after that releases it.
    var stallSeen: UInt32 = 0
    /// Cyclic: `DMAConfig.paceBytesPerSecond` at prep (0 = memory speed).
    var pace: UInt32 = 0
    var periodLength = 0
    var chunkBytes = 0
    var delayPerChunk: Int64 = 0

    init() {
        state = Atomic(SlotState.free)
        generation = Atomic(1)
    }

    var length: Int {
        @inline(__always) get { Int(length32) }
        @inline(__always) set { length32 = UInt32(truncatingIfNeeded: newValue) }
    }

    var hasCallback: Bool { @inline(__always) get { packed.isSet } }
}

/// One submission-ring slot (Vyukov bounded queue): `seq == t` free for ticket t,
/// `seq == t + 1` holds ticket t, `seq == t + capacity` consumed by the engine.
@usableFromInline
struct SubmissionSlot: ~Copyable {
    let seq: Atomic<UInt32>
    let descriptor: Atomic<UInt32>
    /// The length of the queued transfer, for `status(of:)` residue of queued cookies
    /// (every prep caps a length at `UInt32.max`).
    let length: Atomic<UInt32>
    /// The issue mark: `issuePending` stores ticket t here when t is the first ticket it
    /// issues, so that an idle engine learns of the issue from the line that already holds
    /// the slot (docs/measurement-notes.md, "RingEngine: the issue mark"). Any other value
    /// means nothing: the engine stores `t + 1`, a ticket of the next slot, when it consumes
    /// t, so a mark never outlives its lap.
    let issued: Atomic<UInt32>

    /// Slot `index` of a ring of `capacity` ≥ 2 slots, with a mark no ticket of it can match.
    init(index: Int, capacity: Int) {
        // Ticket 0 is never handed out (the first ticket is 1), so slot 0 starts as if
        // ticket 0 had been consumed: free for ticket `capacity`.
        seq = Atomic(UInt32(index == 0 ? capacity : index))
        descriptor = Atomic(0)
        length = Atomic(0)
        issued = Atomic(UInt32(index) &+ 1)
    }
}

/// One completion-ring entry, written by the engine and read by the executor. Plain memory:
/// ownership moves with the release store of `compTail` (engine → executor) and of
/// `compHead` (executor → engine).
@usableFromInline
struct CompletionEntry {
    var descriptor: UInt32 = 0
    var ticket: UInt32 = 0
    /// The epoch the engine had observed when it finished the transfer.
    var epoch: UInt32 = 0
    /// The engine dropped or aborted it because of a terminate: never a callback.
    var terminated = false
    var code: DMAResultCode = .noError
    var residue = 0
}

/// The packed control word: written by terminate, pause, resume and release (cold paths),
/// read by the engine and the executor.
///
/// bits 0–31 cutoff ticket of the last terminate · bit 32 paused · bit 33 stop ·
/// bits 34–47 pause generation · bits 48–63 terminate epoch.
@usableFromInline
struct Control: Equatable {
    @usableFromInline var raw: UInt64
    @inline(__always) init(raw: UInt64) { self.raw = raw }

    @inline(__always) var cutoff: UInt32 { UInt32(truncatingIfNeeded: raw) }
    @inline(__always) var paused: Bool { raw & (1 << 32) != 0 }
    @inline(__always) var stop: Bool { raw & (1 << 33) != 0 }
    @inline(__always) var pauseGeneration: UInt32 { UInt32(truncatingIfNeeded: (raw >> 34) & 0x3FFF) }
    @inline(__always) var epoch: UInt32 { UInt32(truncatingIfNeeded: raw >> 48) }
    /// The part the engine acknowledges (everything but the cutoff).
    @inline(__always) var upper: UInt64 { raw & 0xFFFF_FFFF_0000_0000 }

    func terminated(cutoff: UInt32) -> Control {
        var r = raw & ~UInt64(0xFFFF_FFFF) & ~(UInt64(1) << 32) & ~(UInt64(0xFFFF) << 48)
        r |= UInt64(cutoff)
        r |= UInt64((epoch &+ 1) & 0xFFFF) << 48
        return Control(raw: r)
    }

    func pausing() -> Control {
        var r = raw & ~(UInt64(0x3FFF) << 34)
        r |= UInt64(1) << 32
        r |= UInt64((pauseGeneration &+ 1) & 0x3FFF) << 34
        return Control(raw: r)
    }

    func resumed() -> Control { Control(raw: raw & ~(UInt64(1) << 32)) }
    func stopping() -> Control { Control(raw: raw | (UInt64(1) << 33)) }

    /// Signed distance between two 16-bit epochs (a - b).
    @inline(__always) static func epochDistance(_ a: UInt32, _ b: UInt32) -> Int16 {
        Int16(truncatingIfNeeded: Int32(truncatingIfNeeded: a &- b))
    }
}

/// Ticket arithmetic and the ticket ↔ cookie mapping.
@usableFromInline
enum Tickets {
    @usableFromInline static let period = Int64(Int32.max)
    /// Move the cookie base every 2^30 tickets, so every ticket in play stays within ±2^31.
    @usableFromInline static let rebaseMask: UInt32 = (1 << 30) - 1

    @inline(__always) static func high(_ w: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: w >> 32) }
    @inline(__always) static func low(_ w: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: w) }
    @inline(__always) static func pack(high: UInt32, low: UInt32) -> UInt64 { UInt64(high) << 32 | UInt64(low) }

    /// a - b as a signed distance (valid while |a - b| < 2^31).
    @inline(__always) static func distance(_ a: UInt32, _ b: UInt32) -> Int32 { Int32(bitPattern: a &- b) }

    /// Folds any integer into the cookie range 1...Int32.max (rule C2).
    @inline(__always) static func wrapCookie(_ x: Int64) -> Int32 {
        // Almost always already in range: skip the division.
        if x >= 1 && x <= period { return Int32(truncatingIfNeeded: x) }
        var r = (x - 1) % period
        if r < 0 { r += period }
        return Int32(truncatingIfNeeded: r + 1)
    }

    @inline(__always) static func cookie(ofTicket t: UInt32, base: UInt64) -> DMACookie {
        let baseTicket = high(base)
        let baseCookie = Int64(Int32(bitPattern: low(base)))
        return DMACookie(wrapCookie(baseCookie + Int64(distance(t, baseTicket))))
    }

    /// How many cookies `c` lies behind `reference` (0 ..< Int32.max).
    @inline(__always) static func cookiesBehind(_ c: Int32, _ reference: Int32) -> UInt32 {
        var d = (Int64(reference) - Int64(c)) % period
        if d < 0 { d += period }
        return UInt32(truncatingIfNeeded: d)
    }

    /// True when ticket `t` comes after `last` (serial-number order; live tickets span far
    /// less than 2^31): completing it moves `last` forward. No upper bound: a terminate moves
    /// `last` to its cutoff, which may be past the engine's issued tail (the bound this used
    /// to take, which then let a stale completion move `last` back).
    @inline(__always) static func isAfter(_ t: UInt32, _ last: UInt32) -> Bool { distance(t, last) > 0 }
}

/// Raw, 128-byte-aligned storage helpers.
@usableFromInline
enum RingLayout {
    @usableFromInline static let line = 128
    @usableFromInline static let none: UInt32 = .max

    static func powerOfTwo(atLeast n: Int) -> Int {
        var p = 2
        while p < n { p <<= 1 }
        return p
    }
}
