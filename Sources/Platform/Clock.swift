// dmabench — Platform
//
// Clocks. The harness clock is CLOCK_MONOTONIC through the vDSO (about 24 ns here).

#if os(Linux)
import Glibc

public enum MonotonicClock {
    /// Nanoseconds on CLOCK_MONOTONIC.
    @inline(__always)
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// CPU time of the calling thread, in nanoseconds (CLOCK_THREAD_CPUTIME_ID).
    @inline(__always)
    public static func threadCPUTime() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// CPU time of the whole process, in nanoseconds (CLOCK_PROCESS_CPUTIME_ID).
    public static func processCPUTime() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Sleeps for `nanoseconds` (restarted on EINTR).
    public static func sleep(nanoseconds: Int64) {
        guard nanoseconds > 0 else { return }
        var req = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        var rem = timespec()
        while nanosleep(&req, &rem) != 0 && errno == EINTR { req = rem }
    }
}
#endif
