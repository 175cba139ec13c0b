// dmabench — Harness
//
// The physical limits, measured in the same process (docs/architecture.md, "Workloads"): single-core memcpy
// bandwidth per size, and the cache-line round trip between the two CPUs in use.

import Platform
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

public enum Calibrator {
    /// memcpy bandwidth (bytes/s) for `size`, hot buffers, median of `trials` windows of
    /// about `windowNanoseconds` each.
    public static func memcpyBandwidth(size: Int, trials: Int = 5, windowNanoseconds: UInt64 = 10_000_000) -> Double {
        let src = UnsafeMutableRawPointer.allocate(byteCount: max(size, 64), alignment: 4096)
        let dst = UnsafeMutableRawPointer.allocate(byteCount: max(size, 64), alignment: 4096)
        defer {
            src.deallocate()
            dst.deallocate()
        }
        memset(src, 0x5A, size)
        memset(dst, 0, size)
        var results: [Double] = []
        for _ in 0..<trials {
            var iterations = 0
            let t0 = MonotonicClock.now()
            var t1 = t0
            repeat {
                for _ in 0..<64 { memcpy(dst, src, size) }
                iterations += 64
                t1 = MonotonicClock.now()
            } while t1 - t0 < windowNanoseconds
            results.append(Double(iterations * size) * 1e9 / Double(t1 - t0))
        }
        return Statistics.median(results)
    }

    /// Median cache-line round trip (ns) between `cpuA` and `cpuB`: two threads bounce one
    /// line `trips` times; the median of `trials` windows' mean trip. It stops at
    /// `budgetNanoseconds` (with other work on those CPUs each trip can wait for a scheduler
    /// slice) and returns what it measured by then: the completed trials' median, or the mean
    /// of the trips done. `best` returns the fastest trial instead of the median: a mode
    /// check wants the path the line takes, not a trial the hypervisor preempted.
    public static func roundTrip(
        cpuA: Int?, cpuB: Int?, trips: Int = 20_000, trials: Int = 5, budgetNanoseconds: UInt64 = 200_000_000, best: Bool = false
    ) -> Double? {
        let line = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
        let flag = line.bindMemory(to: Atomic<Int>.self, capacity: 1)
        flag.initialize(to: Atomic(0))
        defer {
            flag.deinitialize(count: 1)
            line.deallocate()
        }
        let total = trips * trials
        let bits = UInt(bitPattern: flag)
        guard let peer = try? OSThread(name: "dmabench-pong", cpu: cpuB, {
            let f = UnsafeMutablePointer<Atomic<Int>>(bitPattern: bits)!
            var expect = 1
            var spins = 0
            while expect < 2 * total {
                // Ordering: acquire; pairs with the release store of the pinger.
                let v = f.pointee.load(ordering: .acquiring)
                if v < 0 { break }  // the pinger ran out of budget
                if v == expect {
                    // Ordering: release; pairs with the pinger's acquire load.
                    f.pointee.store(expect + 1, ordering: .releasing)
                    expect += 2
                    spins = 0
                } else {
                    spins += 1
                    if spins > 20_000 { sched_yield(); spins = 0 }
                    cpuRelax()
                }
            }
        }) else { return nil }
        if let cpuA { try? CPU.pinCurrentThread(to: cpuA) }
        var means: [Double] = []
        var value = 0
        let start = MonotonicClock.now()
        var outOfBudget = false
        var partial: Double?
        trialLoop: for _ in 0..<trials {
            let t0 = MonotonicClock.now()
            for trip in 0..<trips {
                if trip & 63 == 63, MonotonicClock.now() - start > budgetNanoseconds {
                    outOfBudget = true
                    partial = Double(MonotonicClock.now() - t0) / Double(trip)
                    break trialLoop
                }
                // Ordering: release; pairs with the pong thread's acquire load.
                flag.pointee.store(value + 1, ordering: .releasing)
                var spins = 0
                // Ordering: acquire; pairs with the pong thread's release store.
                while flag.pointee.load(ordering: .acquiring) != value + 2 {
                    spins += 1
                    if spins > 20_000 { sched_yield(); spins = 0 }
                    cpuRelax()
                }
                value += 2
            }
            means.append(Double(MonotonicClock.now() - t0) / Double(trips))
        }
        if outOfBudget {
            // Ordering: release; pairs with the pong thread's acquire load, which then stops.
            flag.pointee.store(-1, ordering: .releasing)
        }
        peer.join()
        if means.isEmpty { return partial }
        return best ? means.min() : Statistics.median(means)
    }

    /// Measures everything the efficiency figures need.
    public static func calibrate(sizes: [Int], submitterCPU: Int?, engineCPU: Int?, quick: Bool) -> Calibration {
        var c = Calibration()
        let window: UInt64 = quick ? 5_000_000 : 20_000_000
        for s in Set(sizes).sorted() {
            c.memcpyBytesPerSecond[String(s)] = memcpyBandwidth(size: s, trials: quick ? 3 : 5, windowNanoseconds: window)
        }
        // A round trip between two distinct CPUs only: on one CPU the two threads would take
        // turns at scheduler granularity, which measures nothing useful.
        if CPU.onlineCount > 1, let a = submitterCPU, let b = engineCPU, a != b {
            c.roundTripNs = roundTrip(cpuA: submitterCPU, cpuB: engineCPU, trips: quick ? 5_000 : 20_000, trials: quick ? 3 : 5)
        }
        return c
    }
}
