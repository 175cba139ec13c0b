// dmabench — DMAEngine
//
// The period clock of a cyclic transfer: the engine counts each period it completes and
// stamps when it ended, so that a client measures how late its period callback ran
// (docs/contract.md A.2, "Cyclic streams and their pace").

import Synchronization

/// Periods completed by a channel's running cyclic transfer, with the end time of the most
/// recent ones. Written by the engine only; read by anyone (NB-safe, lock-free).
///
/// The stamps use `CLOCK_MONOTONIC` nanoseconds, the clock of the harness. Each of the last
/// `capacity` periods keeps its stamp in one word (period index in the top 24 bits, the time
/// in the low 40 bits), so a reader never sees an index with another period's time.
public final class DMAPeriodClock: @unchecked Sendable {
    /// Periods whose stamps are kept.
    public static let capacity = 256
    private static let timeBits: UInt64 = 40
    private static let timeMask: UInt64 = (1 << 40) - 1
    private static let indexMask: UInt64 = (1 << 24) - 1

    private let words: UnsafeMutablePointer<Atomic<UInt64>>
    private let counter: UnsafeMutablePointer<Atomic<UInt64>>
    /// The cookie of the transfer the counts belong to (0: none yet).
    private let streamCookie: UnsafeMutablePointer<Atomic<Int32>>

    public init() {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: (Self.capacity + 16) * 8, alignment: 128)
        counter = raw.bindMemory(to: Atomic<UInt64>.self, capacity: 1)
        counter.initialize(to: Atomic(0))
        streamCookie = (raw + 8).bindMemory(to: Atomic<Int32>.self, capacity: 1)
        streamCookie.initialize(to: Atomic(0))
        // The stamps start on the next 128-byte line: the counter is read far more often.
        words = (raw + 128).bindMemory(to: Atomic<UInt64>.self, capacity: Self.capacity)
        for k in 0..<Self.capacity { (words + k).initialize(to: Atomic(UInt64.max)) }
    }

    deinit { UnsafeMutableRawPointer(counter).deallocate() }

    // MARK: Engine side

    /// The cyclic transfer `cookie` starts: its periods count from 0. Engine thread only.
    public func restart(cookie: DMACookie) {
        for k in 0..<Self.capacity { words[k].store(.max, ordering: .relaxed) }
        // Ordering: release; pairs with the acquire load in `completedPeriods`.
        counter.pointee.store(0, ordering: .releasing)
        // Ordering: release; pairs with the acquire load in `stream`: a reader that sees the
        // new cookie sees the counter restarted.
        streamCookie.pointee.store(cookie.rawValue, ordering: .releasing)
    }

    /// The cookie of the cyclic transfer the counts belong to (the latest one started), so a
    /// client does not read a previous stream's periods as its own.
    public var stream: DMACookie {
        // Ordering: acquire; pairs with the release store in `restart(cookie:)`.
        DMACookie(streamCookie.pointee.load(ordering: .acquiring))
    }

    /// The engine finished a period at `now` (monotonic ns). Engine thread only.
    @inline(__always)
    public func periodEnded(at now: UInt64) {
        // Ordering: relaxed; only the engine writes the counter.
        let k = counter.pointee.load(ordering: .relaxed)
        let word = (k & Self.indexMask) << Self.timeBits | (now & Self.timeMask)
        words[Int(k % UInt64(Self.capacity))].store(word, ordering: .relaxed)
        // Ordering: release; pairs with the acquire load in `completedPeriods`: a reader that
        // sees period k counted also sees its stamp.
        counter.pointee.store(k &+ 1, ordering: .releasing)
    }

    // MARK: Reader side

    /// Periods completed since the transfer started.
    @inline(__always)
    public var completedPeriods: UInt64 {
        // Ordering: acquire; pairs with the release store in `periodEnded(at:)`.
        counter.pointee.load(ordering: .acquiring)
    }

    /// When period `k` (0-based) ended, in monotonic ns, or nil when its stamp has been
    /// overwritten (more than `capacity` periods ago) or it has not ended. `now` is the
    /// reader's clock, which places the 40-bit stamp (18 minutes) in time.
    @inline(__always)
    public func end(ofPeriod k: UInt64, now: UInt64) -> UInt64? {
        // Ordering: relaxed; the caller read `completedPeriods` (acquire) past k first.
        let w = words[Int(k % UInt64(Self.capacity))].load(ordering: .relaxed)
        guard w != .max, w >> Self.timeBits == k & Self.indexMask else { return nil }
        let stamp = w & Self.timeMask
        let back = ((now & Self.timeMask) &- stamp) & Self.timeMask
        return now &- back
    }
}
