// dmabench — DMAEngine
//
// Typed errors of the channel protocol (docs/contract.md A.2, A.10).

/// An error returned by a channel operation.
public enum DMAError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A blocking call (`synchronize`, `terminateSync`, `release`) was made in a
    /// non-blocking context: from a completion callback or a `withNonBlockingContext` region.
    case illegalContext
    /// The backend does not support the operation (kernel: `-ENOSYS`/`-EOPNOTSUPP`).
    case notSupported
    /// The operation is not allowed on this descriptor (kernel: `-EPERM`).
    case notPermitted
    /// The descriptor is in flight (kernel: `-EBUSY`).
    case busy
    /// `resume()` on a channel that is not paused.
    case notPaused
    /// The channel was released; every operation now fails.
    case released
    /// The descriptor handle is stale or belongs to another channel.
    case invalidHandle
    /// The descriptor pool is exhausted.
    case noResources
    /// A wait ran out of time.
    case timedOut
    /// The backend cannot run on this machine; the reason says why (for example
    /// "io_uring is disabled: /proc/sys/kernel/io_uring_disabled = 2").
    case unavailable(String)
    /// An argument is out of range; the text names it.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .illegalContext: return "illegal in a non-blocking context"
        case .notSupported: return "not supported by this backend"
        case .notPermitted: return "not permitted"
        case .busy: return "descriptor is in flight"
        case .notPaused: return "channel is not paused"
        case .released: return "channel was released"
        case .invalidHandle: return "invalid descriptor handle"
        case .noResources: return "descriptor pool exhausted"
        case .timedOut: return "timed out"
        case .unavailable(let why): return "unavailable: \(why)"
        case .invalidArgument(let what): return "invalid argument: \(what)"
        }
    }
}
