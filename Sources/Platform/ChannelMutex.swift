// dmabench — Platform
//
// The backends' channel lock: one pthread mutex on a cache line of its own, taken only
// through `withLock`. Code that needs it held takes a `Held`, so "caller holds the lock" is
// a parameter type rather than a comment. Pthread and not `Synchronization.Mutex` for the
// reason given in LockedValue.swift (ThreadSanitizer sees pthread, not Mutex).

#if os(Linux)
import Glibc

/// What a lock reports when it is taken and dropped. The DMA backends pass one that marks
/// the thread as holding a spinlock-like lock, so that a blocking call made under it is
/// refused (DMAEngine's `NonBlockingContext`); Platform does not know that module.
public protocol LockObserver {
    static func acquired()
    static func released()
}

/// A lock that reports nothing.
public enum UnobservedLock: LockObserver {
    @inlinable public static func acquired() {}
    @inlinable public static func released() {}
}

/// The state a `ChannelMutex` guards lives where the backend puts it (raw memory that
/// lock-free readers also touch, laid out by cache line), not inside the lock: the lock
/// hands out a `Held` proof instead of an `inout State`, so that no two Swift accesses to
/// that memory overlap.
public struct ChannelMutex<Observer: LockObserver>: @unchecked Sendable {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>

    /// `adaptive`: PTHREAD_MUTEX_ADAPTIVE_NP, which spins briefly before it sleeps, as
    /// virt-dma's spinlock never sleeps; a default mutex parked at the first contention and
    /// roughly halved the locked backend's throughput (docs/measurement-notes.md,
    /// "ChannelLock.init: an adaptive mutex").
    public init(adaptive: Bool = true) {
        // A 128-byte line of its own: waiters spin reading the lock word, so anything that
        // shared its line would be pulled away from the CPU that writes it.
        mutex = UnsafeMutableRawPointer.allocate(byteCount: Self.lineBytes, alignment: Self.lineBytes)
            .bindMemory(to: pthread_mutex_t.self, capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        var attr = pthread_mutexattr_t()
        pthread_mutexattr_init(&attr)
        if adaptive { pthread_mutexattr_settype(&attr, Self.adaptiveKind) }
        pthread_mutex_init(mutex, &attr)
        pthread_mutexattr_destroy(&attr)
    }

    /// PTHREAD_MUTEX_ADAPTIVE_NP (glibc; pthread.h declares it only under _GNU_SOURCE, which
    /// Swift's Glibc module is built without).
    static var adaptiveKind: Int32 { 3 }
    static var lineBytes: Int { 128 }

    /// Frees the mutex; the owner calls it once, when no thread can reach the lock.
    public func destroy() {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        UnsafeMutableRawPointer(mutex).deallocate()
    }

    /// Runs `body` with the lock held; `body` passes the `Held` on to what needs the lock.
    @inlinable @inline(__always)
    public func withLock<R, E: Error>(_ body: (borrowing Held) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        Observer.acquired()
        defer {
            Observer.released()
            pthread_mutex_unlock(mutex)
        }
        return try body(Held(mutex))
    }

    /// Proof that the caller holds the lock: only `withLock` makes one, and it cannot
    /// outlive the call (it is noncopyable and lent, never given).
    public struct Held: ~Copyable {
        @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>

        @inlinable init(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) { self.mutex = mutex }

        /// Drops the lock around `body` and takes it back: for a wait, or a call that takes
        /// another lock first in the lock order, in the middle of a locked section.
        @inlinable @inline(__always)
        public func whileUnlocked<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
            Observer.released()
            pthread_mutex_unlock(mutex)
            defer {
                pthread_mutex_lock(mutex)
                Observer.acquired()
            }
            return try body()
        }
    }
}
#endif
