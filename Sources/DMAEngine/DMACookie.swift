// dmabench — DMAEngine
//
// Cookies and the completion watermark (CONTRACT.md A.4, A.4a).

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
