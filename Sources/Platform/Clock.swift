// dmabench — Platform
//
// Clocks. `MonotonicClock` is CLOCK_MONOTONIC through the vDSO; the measured loops stamp
// descriptors with `StampClock`, the cheaper timestamp counter where the kernel itself
// trusts it, converted to nanoseconds with a calibrated factor (docs/measurement-notes.md,
// "MonotonicClock and StampClock: what a clock read costs").

#if os(Linux)
import CLinuxShims
import Glibc

/// The clock that stamps descriptors in the measured loops (submit time, callback start).
///
/// On x86-64 it is the TSC, read with a plain `rdtsc`, when the CPU says the TSC is invariant
/// (`constant_tsc` and `nonstop_tsc` in /proc/cpuinfo) and the kernel's clocksource is `tsc`
/// (so the kernel has checked that the CPUs' counters agree: CLOCK_MONOTONIC is then the same
/// counter, scaled); on arm64 it is the generic timer (`cntvct_el0`). Elsewhere, or with
/// `DMABENCH_CLOCK=monotonic`, it is CLOCK_MONOTONIC. A stamp is in ticks; `nanoseconds(_:)`
/// converts a difference. `rdtsc` is not serializing, so a stamp may move by a few tens of
/// cycles relative to its neighbours (as in Google Benchmark's cycle clock).
///
/// A trivial value (no references), so the measured loops copy it for free.
@frozen
public struct StampClock: Sendable, CustomStringConvertible {
    /// True: ticks of the CPU counter. False: CLOCK_MONOTONIC nanoseconds.
    public let usesCounter: Bool
    public let nanosecondsPerTick: Double
    /// nanosecondsPerTick in 32.32 fixed point: a conversion is one multiply and a shift.
    public let multiplier: UInt64

    /// The process-wide clock, calibrated once (about 20 ms) on first use.
    public static var shared: StampClock { resolved.clock }
    /// Why `shared` is CLOCK_MONOTONIC rather than the counter (nil when it is the counter).
    public static var sharedFallbackReason: String? { resolved.reason }
    private static let resolved = StampClock.make()

    /// CLOCK_MONOTONIC, in nanoseconds (tests, and the fallback).
    public static let monotonic = StampClock(usesCounter: false, nanosecondsPerTick: 1)

    init(usesCounter: Bool, nanosecondsPerTick: Double) {
        self.usesCounter = usesCounter
        self.nanosecondsPerTick = nanosecondsPerTick
        multiplier = UInt64((nanosecondsPerTick * 4_294_967_296).rounded())
    }

    @inlinable @inline(__always)
    public func now() -> UInt64 { usesCounter ? cls_read_tsc() : MonotonicClock.now() }

    /// A tick difference in nanoseconds.
    @inlinable @inline(__always)
    public func nanoseconds(_ ticks: UInt64) -> UInt64 {
        // (ticks × multiplier) >> 32 in 128 bits (exact for CLOCK_MONOTONIC, multiplier 2^32).
        let (high, low) = ticks.multipliedFullWidth(by: multiplier)
        return high << 32 | low >> 32
    }

    /// A nanosecond interval in ticks.
    @inlinable @inline(__always)
    public func ticks(nanoseconds ns: Double) -> Double { usesCounter ? ns / nanosecondsPerTick : ns }

    public var description: String {
        if usesCounter {
            #if arch(x86_64)
            let name = "tsc"
            #else
            let name = "cntvct"
            #endif
            let ghz = 1 / nanosecondsPerTick
            return "\(name) (\((ghz * 1000).rounded() / 1000) GHz, calibrated against CLOCK_MONOTONIC)"
        }
        return "CLOCK_MONOTONIC"
    }

    static func make() -> (clock: StampClock, reason: String?) {
        if let v = getenv("DMABENCH_CLOCK").map({ String(cString: $0) }), v == "monotonic" {
            return (.monotonic, "DMABENCH_CLOCK=monotonic")
        }
        if let reason = counterUnusableReason() { return (.monotonic, reason) }
        return (StampClock(usesCounter: true, nanosecondsPerTick: calibrate()), nil)
    }

    static func counterUnusableReason() -> String? {
        #if arch(x86_64)
        guard let cpuinfo = CPUInfo.read() else { return "/proc/cpuinfo unreadable" }
        let set = CPUInfo.flags(in: cpuinfo)
        guard !set.isEmpty else { return "no flags in /proc/cpuinfo" }
        for f in ["constant_tsc", "nonstop_tsc"] where !set.contains(f) { return "the TSC is not invariant (no \(f))" }
        let source = readSmallFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .map { String($0.filter { !$0.isWhitespace }) } ?? "unknown"
        guard source == "tsc" else { return "the kernel's clocksource is \(source), not tsc" }
        return nil
        #elseif arch(arm64)
        return nil
        #else
        return "no cycle counter on this architecture"
        #endif
    }

    /// Ticks per nanosecond from two (counter, CLOCK_MONOTONIC) pairs 20 ms apart; each pair
    /// is the tightest of several reads (monotonic, counter, monotonic).
    static func calibrate() -> Double {
        func pair() -> (tick: Double, ns: Double) {
            var best: (tick: Double, ns: Double, width: UInt64) = (0, 0, .max)
            for _ in 0..<16 {
                let a = MonotonicClock.now()
                let t = cls_read_tsc()
                let b = MonotonicClock.now()
                if b - a < best.width { best = (Double(t), Double(a) + Double(b - a) / 2, b - a) }
            }
            return (best.tick, best.ns)
        }
        let p0 = pair()
        MonotonicClock.sleep(nanoseconds: 20_000_000)
        let p1 = pair()
        let perTick = (p1.ns - p0.ns) / (p1.tick - p0.tick)
        return perTick.isFinite && perTick > 0 ? perTick : 1
    }
}

public enum MonotonicClock {
    /// Nanoseconds on CLOCK_MONOTONIC.
    @inlinable @inline(__always)
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
