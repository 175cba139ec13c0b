// dmabench — DMAEngine
//
// Cookies and the completion watermark (docs/contract.md A.4, A.4a).

import Synchronization

/// The handle that `submit(_:)` returns for one submission of a descriptor.
///
/// The corresponding kernel type is `dma_cookie_t` (an `s32`). Valid cookies are ≥ 1
/// (rule C1). A negative value is an error code: the descriptor was not queued.
public struct DMACookie: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32

    @inlinable
    public init(rawValue: Int32) { self.rawValue = rawValue }

    @inlinable
    public init(_ value: Int32) { self.rawValue = value }

    /// The cookie of a fresh channel's `used` and `last` counters (rule C3).
    public static let initial = DMACookie(1)

    /// The error cookie that a failed submit returns (kernel: a negative errno).
    public static func failure(_ errno: Int32) -> DMACookie { DMACookie(-abs(errno == 0 ? 5 : errno)) }

    /// True for a cookie that names a queued submission (≥ 1).
    @inlinable
    public var isValid: Bool { rawValue >= 1 }

    /// The cookie after this one: `used &+ 1`, wrapping `Int32.max` to 1 (rule C2).
    @inlinable
    public var next: DMACookie {
        let n = rawValue &+ 1
        return DMACookie(n < 1 ? 1 : n)
    }

    public var description: String { "\(rawValue)" }
}

/// The pair of counters `used` (last cookie handed out) and `last` (last cookie completed).
///
/// Both are packed in one 64-bit word so that a backend can publish and read them as one
/// consistent snapshot with a single atomic (rule S1). The corresponding kernel fields are
/// `chan->cookie` and `chan->completed_cookie`.
public struct DMACookieWatermark: Hashable, Sendable, CustomStringConvertible {
    public var used: DMACookie
    public var last: DMACookie

    @inlinable
    public init(used: DMACookie = .initial, last: DMACookie = .initial) {
        self.used = used
        self.last = last
    }

    /// The packed form: `used` in the high 32 bits, `last` in the low 32 bits.
    @inlinable
    public var packed: UInt64 {
        (UInt64(UInt32(bitPattern: used.rawValue)) << 32) | UInt64(UInt32(bitPattern: last.rawValue))
    }

    @inlinable
    public init(packed: UInt64) {
        used = DMACookie(Int32(bitPattern: UInt32(truncatingIfNeeded: packed >> 32)))
        last = DMACookie(Int32(bitPattern: UInt32(truncatingIfNeeded: packed)))
    }

    /// Assigns the next cookie (rule C2) and returns it.
    @inlinable
    public mutating func assign() -> DMACookie {
        used = used.next
        return used
    }

    /// Whether `cookie` reads COMPLETE under this watermark.
    ///
    /// The corresponding kernel function is `dma_async_is_complete()`:
    /// - if `last <= used`: complete iff `c <= last || c > used`;
    /// - otherwise (the window wraps): complete iff `c <= last && c > used`.
    @inlinable
    public func isComplete(_ cookie: DMACookie) -> Bool {
        Self.isComplete(cookie, last: last, used: used)
    }

    @inlinable
    public static func isComplete(_ cookie: DMACookie, last: DMACookie, used: DMACookie) -> Bool {
        let c = cookie.rawValue, l = last.rawValue, u = used.rawValue
        if l <= u {
            return c <= l || c > u
        } else {
            return c <= l && c > u
        }
    }

    public var description: String { "(used: \(used), last: \(last))" }
}

extension DMACookieWatermark {
    /// Loads (`used`, `last`) as one consistent pair (rule S1) from two 32-bit words (tickets,
    /// or cookies as bit patterns) published separately, each on a line of its own
    /// (submitters write `used`, the engine writes `last`, and neither should take the
    /// other's line). The ring and locked backends both use it. `used` is read before and
    /// after `last` until it reads the same twice: it only moves forward and cannot come back
    /// to the same value between two loads (that takes 2^31 or more submits), so the pair
    /// held at the moment `last` was read. A submit in between makes it read again (bounded
    /// by the submitters' progress). Backends publish `last` with a release store or CAS; the
    /// acquire load here pairs with it, so a COMPLETE answer sees the engine's writes.
    @inlinable @inline(__always)
    public static func loadSplit(
        used: UnsafeMutablePointer<Atomic<UInt32>>, last: UnsafeMutablePointer<Atomic<UInt32>>
    ) -> (used: UInt32, last: UInt32) {
        // Ordering: acquire; keeps the load of `last` after this one.
        var u = used.pointee.load(ordering: .acquiring)
        while true {
            // Ordering: acquire; pairs with the backend's release store or CAS of `last`, and
            // keeps the second load of `used` after it.
            let l = last.pointee.load(ordering: .acquiring)
            let u2 = used.pointee.load(ordering: .relaxed)
            if u2 == u { return (u, l) }
            u = u2
        }
    }
}
