// dmabench — DMAEngineURing
//
// The pieces of the channel state: the descriptor slot, the `user_data` packing, the state
// guarded by the channel lock, and that lock.

import CURing
import DMAEngine
import Glibc
import Platform

/// Where a slot is in its life (docs/contract.md A.3). `submitted` and `issued` are told apart by
/// the slot's position in the FIFO (`URingState.issuedEnd`), not by this field.
enum URingSlotState: UInt8 {
    case free
    case prepared
    /// Has a cookie; waits in the FIFO for issuePending and then for the kernel.
    case submitted
    /// Its SQEs are in the kernel (or, paced, the engine feeds them chunk by chunk).
    case active
    /// Every SQE produced its CQE; waits for its turn in cookie order.
    case done
    /// Terminated while SQEs were in the kernel: retired once the last CQE arrives.
    case zombie
}

/// One descriptor of the preallocated pool. Guarded by the channel lock.
///
/// Both threads touch a slot per descriptor (the client in prep and submit, the engine in
/// flush, reap and delivery), so every cache line of it crosses between the CPUs each time.
/// The small counters are stored as Int32 so that a slot is two 64-byte lines (`URingCore`
/// allocates the array 64-byte aligned), and a CQE's accounting touches only the first; the
/// pacing and termination times live in `URingSlotCold`.
struct URingSlot {
    // Line 1: everything `absorb` reads and writes for a CQE.
    var generation: UInt32 = 0
    var state: URingSlotState = .free
    var result: DMAResultCode = .noError
    /// Latency injection: hold the first chunk until terminate or `debugReleaseStalls`.
    var stall = false
    /// On the engine's paced list (set when it reaches the kernel side; `paced` can change
    /// afterwards, when `debugReleaseStalls` clears `stall`).
    var onPacedList = false
    var flags: DMAPrepFlags = []
    var cookie = DMACookie(0)
    /// How many chunks (SQEs) the transfer takes; at most `URingUserData.maxChunks`.
    @Int32Backed var chunkCount = 0
    /// Chunks handed to the kernel so far.
    @Int32Backed var chunksIssued = 0
    /// SQEs of this slot in the kernel (no CQE yet).
    @Int32Backed var outstanding = 0
    /// Scatter-gather: the chunks are the pieces in `URingCore.pieces` at
    /// `index * pieceCapacity`, one READ each (0 = a flat copy in `chunkBytes` chunks).
    @Int32Backed var pieceCount = 0
    var destination: UnsafeMutableRawPointer? = nil
    var length = 0
    /// One SQE reads at most this many bytes (the configured burst, or the injected chunk).
    var chunkBytes = 0
    var bytesDone = 0
    // Line 2: what prep, flush and delivery add.
    /// The source's offset in the pool file.
    var sourceOffset = 0
    /// Latency injection: wait this long before each chunk (the engine feeds the chunks).
    var delay: Int64 = 0
    var fault: DMAFault? = nil
    /// Scatter-gather: runs of pieces contiguous in the pool file (`URingCore.runs`).
    @Int32Backed var runCount = 0
    /// One closure slot, not `DMACallback`'s two: delivery moves it out with one
    /// release, not a copy and two.
    var callback = DMAPackedCallback()
    /// Pads the stride to 128 bytes, so that no slot straddles a line of its neighbour.
    private var padding: UInt64 = 0

    /// Needs pacing: fed chunk by chunk by the engine thread instead of submitted whole.
    var paced: Bool { delay > 0 || stall }
}

/// An `Int` stored in 32 bits: a slot's counters fit (chunks are at most
/// `URingUserData.maxChunks`), and the slot stays two cache lines.
@propertyWrapper
struct Int32Backed {
    private var value: Int32
    init(wrappedValue: Int) { value = Int32(wrappedValue) }
    var wrappedValue: Int {
        get { Int(value) }
        set { value = Int32(newValue) }
    }
}

/// What pacing and termination keep per slot, beside the slots (`URingCore.slotCold`), so
/// that `URingSlot` stays two cache lines. Guarded by the channel lock.
struct URingSlotCold {
    /// When the next paced chunk may go (0 = not yet scheduled).
    var nextDue: UInt64 = 0
    /// The terminate that made this slot a zombie.
    var zombieEpoch: UInt64 = 0
}

/// The 64-bit `user_data` of an SQE: slot index (24 bits), chunk (16 bits), slot generation
/// (20 bits) and a kind (4 bits), as NIO's `URingUserData` packs its fields. The generation
/// lets the reaper reject a CQE that does not belong to the slot's current use.
enum URingUserData {
    enum Kind: UInt64 {
        /// An IORING_OP_READ of one chunk of a descriptor.
        case data = 0
        /// An IORING_OP_NOP standing in for a transfer with an injected fault.
        case fault = 1
        /// The engine's doorbell: an IORING_OP_READ of its eventfd.
        case doorbell = 2
        /// An IORING_OP_ASYNC_CANCEL issued by terminate.
        case cancel = 3
        /// The engine's last IORING_OP_ASYNC_CANCEL, for its own doorbell read, at exit.
        case exitCancel = 4
    }

    static let maxSlots = 1 << 24
    static let maxChunks = (1 << 16) - 1
    static let generationMask: UInt64 = 0xF_FFFF

    @inline(__always)
    static func make(_ kind: Kind, slot: UInt32 = 0, chunk: Int = 0, generation: UInt32 = 0) -> UInt64 {
        UInt64(slot) | (UInt64(chunk) << 24) | ((UInt64(generation) & generationMask) << 40) | (kind.rawValue << 60)
    }

    @inline(__always) static func kind(_ ud: UInt64) -> UInt64 { ud >> 60 }
    @inline(__always) static func slot(_ ud: UInt64) -> Int { Int(ud & 0xFF_FFFF) }
    @inline(__always) static func chunk(_ ud: UInt64) -> Int { Int((ud >> 24) & 0xFFFF) }
    @inline(__always) static func generation(_ ud: UInt64) -> UInt64 { (ud >> 40) & generationMask }
}

/// Everything guarded by `URingLock` (`URingCore.lock`). It lives in raw memory, so that
/// accesses carry no dynamic exclusivity checks; only code holding the lock touches it.
struct URingState {
    /// Kernel: `chan->cookie` (used) and `chan->completed_cookie` (last), mirrored in
    /// `URingCore.published` after every change.
    var watermark = DMACookieWatermark()
    var freeCount = 0
    /// Positions in the FIFO (`URingCore.fifo`), which holds every submitted descriptor in
    /// cookie order: [head, kcursor) handed to the kernel (active or done), [kcursor,
    /// issuedEnd) issued but held back (paused, SQ full, or behind a paced descriptor),
    /// [issuedEnd, tail) submitted, not issued. Callbacks are delivered from `head`.
    var head = 0
    var kcursor = 0
    var issuedEnd = 0
    var tail = 0
    /// A paced descriptor in progress: nothing after it goes to the kernel until it is done,
    /// so slow transfers run in FIFO order like a real engine (-1 = none).
    var barrier: Int32 = -1
    /// Paced descriptors the engine feeds (`URingCore.paced`).
    var pacedCount = 0
    var paused = false
    /// Terminated slots whose SQEs have not all produced CQEs.
    var zombies = 0
    var terminateEpoch: UInt64 = 0
    /// The newest terminate that a synchronize has completed.
    var syncedEpoch: UInt64 = 0
    /// A terminate asked for an IORING_OP_ASYNC_CANCEL that the engine has not queued yet.
    var cancelToPrep = false
    /// Cancels asked for whose CQE has not arrived.
    var cancelsOutstanding = 0
    /// The doorbell read is in the kernel.
    var doorbellArmed = false
    var bytesInKernel = 0
    var config = DMAConfig()
    var failNextSubmits = 0
    var probe: DMAAccessProbe? = nil
    var hasProbe = false
    var released = false
}

/// Marks the thread as holding a backend lock while it holds `lock` or `sqLock`, so that a
/// blocking call made under them is refused (docs/contract.md A.1 (c)).
enum URingLockObserver: LockObserver {
    @inline(__always) static func acquired() { NonBlockingContext.lockAcquired() }
    @inline(__always) static func released() { NonBlockingContext.lockReleased() }
}

/// The same for the SQ lock; a type of its own so that its `Held` differs from the channel
/// lock's.
enum URingSQLockObserver: LockObserver {
    @inline(__always) static func acquired() { NonBlockingContext.lockAcquired() }
    @inline(__always) static func released() { NonBlockingContext.lockReleased() }
}

/// The channel lock and the SQ lock: Platform's adaptive mutex, since the critical sections
/// are a few field updates. Code that needs one held takes its `Held` (`Held`, `SQHeld`).
typealias URingLock = ChannelMutex<URingLockObserver>
typealias Held = URingLock.Held
typealias URingSQLock = ChannelMutex<URingSQLockObserver>
typealias SQHeld = URingSQLock.Held

/// One callback taken from the FIFO by the engine, invoked with no lock held.
struct URingDelivery {
    var callback: DMAPackedCallback
    var cookie: DMACookie
    var result: DMAResult
}
