// dmabench — Platform
//
// A value behind a pthread mutex, the one locked-value type of the project (sources and
// tests). Why not `Synchronization.Mutex`: on Linux its lock and
// unlock live in the prebuilt Synchronization library, which ThreadSanitizer does not
// instrument, so TSan reports every access it protects as a data race. A pthread mutex is
// intercepted by TSan and gives it the happens-before edges it needs.

#if os(Linux)
import Glibc
#endif

public final class LockedValue<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the mutex held (pthread_mutex_lock / pthread_mutex_unlock).
    @inline(__always)
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
