// dmabench — DMAEngine
//
// The non-blocking-context marker: the userspace form of the kernel's atomic context
// (docs/contract.md A.1). A thread is in a non-blocking context when it runs a completion
// callback, when it is inside a `withNonBlockingContext` region, or when it holds an internal
// backend lock. Blocking calls (`synchronize`, `terminateSync`, `release`) check it first and
// return `.illegalContext` instead of deadlocking.

import CDMAContext

public enum NonBlockingContext {
    /// True when the calling thread is in a non-blocking context.
    @inlinable
    public static var isActive: Bool { cdma_nbc_depth() > 0 || cdma_lock_depth() > 0 }

    /// Runs `body` with the calling thread marked non-blocking. Models real-time threads,
    /// signal handlers, or code holding a lock that a callback also takes.
    @inlinable
    public static func withNonBlockingContext<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        cdma_nbc_enter()
        defer { cdma_nbc_exit() }
        return try body()
    }

    /// Runs a completion callback: the same marker as `withNonBlockingContext`. Backends call
    /// callbacks through `DMACallback.invoke`, which uses this.
    @inlinable
    public static func withCallbackContext<R>(_ body: () -> R) -> R {
        cdma_nbc_enter()
        defer { cdma_nbc_exit() }
        return body()
    }

    /// Backends call this around their internal lock (rule A.1 (c)), so that a blocking call
    /// made while the lock is held is refused, and so that tests can assert that no backend
    /// lock is held while a callback runs (scenario 12).
    @inlinable
    public static func lockAcquired() { cdma_lock_enter() }
    @inlinable
    public static func lockReleased() { cdma_lock_exit() }

    /// True when the calling thread holds an internal backend lock.
    @inlinable
    public static var holdsBackendLock: Bool { cdma_lock_depth() > 0 }

    /// The check every blocking operation makes before any effect (rule A.10).
    @inlinable
    public static func checkBlockingAllowed() throws(DMAError) {
        if isActive { throw .illegalContext }
    }
}

/// Runs `body` with the calling thread marked non-blocking (docs/contract.md A.1 (b)).
@inlinable
public func withNonBlockingContext<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
    try NonBlockingContext.withNonBlockingContext(body)
}
