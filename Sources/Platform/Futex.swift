// dmabench — Platform
//
// A futex word and the spin-then-park pattern. Waking a halted vCPU costs far more than a
// cache-line hand-off, so waiters spin briefly before they sleep (docs/measurement-notes.md,
// "Futex and ParkingEvent: why waiters spin first").

#if os(Linux)
import CLinuxShims
import Glibc
import Synchronization

public enum Futex {
    /// FUTEX_WAIT: sleeps while `*word == expected`, up to `timeoutNanoseconds` (< 0: forever).
    /// Returns false on timeout. Spurious wake-ups return true; callers re-check their state.
    @discardableResult
    public static func wait(_ word: UnsafeMutablePointer<UInt32>, expected: UInt32, timeoutNanoseconds: Int64 = -1) -> Bool {
        let rc = cls_futex_wait(word, expected, timeoutNanoseconds)
        return rc != -ETIMEDOUT
    }

    /// FUTEX_WAKE: wakes up to `count` waiters. Returns how many were woken.
    @discardableResult
    public static func wake(_ word: UnsafeMutablePointer<UInt32>, count: Int32 = Int32.max) -> Int {
        Int(max(0, cls_futex_wake(word, count)))
    }

}

/// A CPU pause hint for spin loops.
@inlinable @inline(__always)
public func cpuRelax() { cls_cpu_relax() }

/// Prefetches the cache lines of `count` bytes at `p` for writing (a hint; see
/// `cls_prefetch_write`). For data another CPU wrote last, so that the transfer overlaps
/// other work instead of stalling a critical section.
@inlinable @inline(__always)
public func prefetchForWrite(_ p: UnsafeRawPointer, count: Int) {
    var off = 0
    while off < count {
        cls_prefetch_write(p + off)
        off &+= 64
    }
    cls_prefetch_write(p + (count &- 1))
}

/// A one-word event that a thread can wait on: spin first, then park on a futex.
///
/// The word lives in its own 128-byte line of raw storage (so it never shares a line with
/// hot data). `signal()` costs one atomic exchange, plus a futex wake only when a waiter is
/// parked.
public final class ParkingEvent: @unchecked Sendable {
    // state: 0 = not signalled, 1 = signalled, 2 = not signalled and a waiter is parked.
    private let storage: UnsafeMutableRawPointer
    private var state: UnsafeMutablePointer<Atomic<UInt32>> { storage.assumingMemoryBound(to: Atomic<UInt32>.self) }

    public init() {
        storage = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
        storage.bindMemory(to: Atomic<UInt32>.self, capacity: 1).initialize(to: Atomic(0))
    }

    deinit {
        state.deinitialize(count: 1)
        storage.deallocate()
    }

    /// Sets the event and wakes a parked waiter.
    @inline(__always)
    public func signal() {
        // Ordering: release; pairs with the acquire exchange in `wait`, so whatever the
        // signaller wrote before is visible to the waiter that consumes the event.
        let old = state.pointee.exchange(1, ordering: .acquiringAndReleasing)
        if old == 2 {
            Futex.wake(futexWord, count: 1)
        }
    }

    /// Waits until signalled (consuming the signal), spinning about `spinNanoseconds` before
    /// parking. Returns false if `timeoutNanoseconds` (≥ 0) passes first.
    @discardableResult
    public func wait(spinNanoseconds: Int64, timeoutNanoseconds: Int64 = -1) -> Bool {
        // Ordering: acquire; pairs with the release exchange in `signal`.
        if state.pointee.exchange(0, ordering: .acquiringAndReleasing) == 1 { return true }
        let start = MonotonicClock.now()
        if spinNanoseconds > 0 {
            var spins = 0
            while true {
                // Ordering: relaxed peek; the exchange below does the acquire.
                if state.pointee.load(ordering: .relaxed) == 1 {
                    if state.pointee.exchange(0, ordering: .acquiringAndReleasing) == 1 { return true }
                }
                cpuRelax()
                spins &+= 1
                if spins & 63 == 0 && Int64(MonotonicClock.now() &- start) > spinNanoseconds { break }
            }
        }
        while true {
            // Announce the parked waiter: 0 → 2. If it is 1 meanwhile, take it.
            // Ordering: acquire on success via exchange below; the CAS publishes "parked".
            let (exchanged, original) = state.pointee.compareExchange(
                expected: 0, desired: 2, ordering: .acquiringAndReleasing)
            if !exchanged && original == 1 {
                if state.pointee.exchange(0, ordering: .acquiringAndReleasing) == 1 { return true }
                continue
            }
            var remaining: Int64 = -1
            if timeoutNanoseconds >= 0 {
                let elapsed = Int64(MonotonicClock.now() &- start)
                if elapsed >= timeoutNanoseconds {
                    // Withdraw the parked mark (2 → 0); if signalled meanwhile, consume it.
                    let (_, o) = state.pointee.compareExchange(expected: 2, desired: 0, ordering: .acquiringAndReleasing)
                    if o == 1 { state.pointee.store(0, ordering: .releasing); return true }
                    return false
                }
                remaining = timeoutNanoseconds - elapsed
            }
            Futex.wait(futexWord, expected: 2, timeoutNanoseconds: remaining)
            // Ordering: acquire; pairs with the release exchange in `signal`.
            if state.pointee.load(ordering: .acquiring) == 1 {
                if state.pointee.exchange(0, ordering: .acquiringAndReleasing) == 1 { return true }
            }
        }
    }

    private var futexWord: UnsafeMutablePointer<UInt32> { storage.assumingMemoryBound(to: UInt32.self) }
}
#endif
