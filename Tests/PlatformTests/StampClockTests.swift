// dmabench — PlatformTests
//
// The descriptor-stamp clock: the fixed-point conversion, and agreement of the shared clock
// (the TSC where usable) with CLOCK_MONOTONIC over an interval. No timing targets: the
// checks are of arithmetic and of two clocks measuring the same interval.

import Platform
import Testing

@Suite("StampClock")
struct StampClockTests {
    @Test func monotonicConversionIsTheIdentity() {
        let c = StampClock.monotonic
        #expect(!c.usesCounter)
        for v: UInt64 in [0, 1, 999, 1_000_000_007, 1 << 40, UInt64.max >> 1] {
            #expect(c.nanoseconds(v) == v)
        }
        #expect(c.ticks(nanoseconds: 1234) == 1234)
    }

    @Test func sharedClockAgreesWithClockMonotonic() {
        let c = StampClock.shared
        // Either the counter, or CLOCK_MONOTONIC with a stated reason.
        #expect(c.usesCounter == (StampClock.sharedFallbackReason == nil))
        #expect(c.nanosecondsPerTick > 0)
        let t0 = c.now()
        let m0 = MonotonicClock.now()
        MonotonicClock.sleep(nanoseconds: 30_000_000)
        let t1 = c.now()
        let m1 = MonotonicClock.now()
        let viaStamp = Double(c.nanoseconds(t1 &- t0))
        let viaMonotonic = Double(m1 &- m0)
        // The two read the same interval up to the reads' own spacing (a few µs at worst on
        // a loaded machine) and the calibration error (parts per million).
        #expect(abs(viaStamp - viaMonotonic) < 0.001 * viaMonotonic + 50_000, "\(viaStamp) vs \(viaMonotonic) ns")
        // Round trip through ticks.
        let ticks = c.ticks(nanoseconds: 1_000_000)
        let back = Double(c.nanoseconds(UInt64(ticks)))
        #expect(abs(back - 1_000_000) <= 2)
    }
}
