// dmabench — Harness
//
// Trust signals (docs/architecture.md, "Trust signals"): how quiet the machine was while a
// point was measured, and whether the point should be trusted. The CPU time of the watched
// CPUs not spent by dmabench's own threads is interference, as is steal; so is a cross-CPU
// round trip that moved (this VM switches between a fast and a slow mode within minutes),
// and repetitions that disagree.

import Platform

/// When a point is flagged.
public struct TrustThresholds: Codable, Sendable, Hashable {
    /// Background CPU time on the watched CPUs, as a fraction of their time in the window.
    public var backgroundCPU: Double
    /// Steal time, the same way.
    public var steal: Double
    /// Coefficient of variation of the repetitions' descriptors/s (throughput points).
    public var cv: Double
    /// Largest over smallest round trip of the point and of the run's calibration.
    public var roundTripDrift: Double

    public init(backgroundCPU: Double = 0.05, steal: Double = 0.05, cv: Double = 0.10, roundTripDrift: Double = 2.0) {
        self.backgroundCPU = backgroundCPU
        self.steal = steal
        self.cv = cv
        self.roundTripDrift = roundTripDrift
    }

    public static let standard = TrustThresholds()
}

/// How quiet the machine was while one point was measured.
public struct PointEnvironment: Codable, Sendable, Hashable {
    /// The CPUs watched: the point's submitter, engine and executor CPUs, or every online CPU
    /// when the threads are not pinned.
    public var cpus: [Int]
    /// From the first repetition's start to the last one's end.
    public var windowSeconds: Double
    /// The watched CPUs' busy time not spent by this process's threads, as a fraction of
    /// their time in the window (0...1). Nil where /proc/stat could not be read.
    public var backgroundCPU: Double?
    /// The watched CPUs' steal time, as a fraction of their time in the window.
    public var steal: Double?
    /// How finely this window resolves `backgroundCPU` and `steal`: /proc/stat counts in
    /// ticks (10 ms here), so each fraction is uncertain by two ticks over the window. A
    /// point is flagged only when a fraction exceeds its threshold by more than this, so a
    /// terminate point's window of a few ms can never be flagged for it.
    public var resolution: Double?
    /// Involuntary context switches of the measured threads (submitter, engine, executor).
    public var involuntarySwitches: Int?
    /// The cross-CPU round trip before and after the point's repetitions, ns.
    public var roundTripNs: [Double]
    /// Largest over smallest of `roundTripNs` and the run's calibration round trip.
    public var roundTripDrift: Double?
    /// Coefficient of variation of the repetitions' descriptors/s (throughput only).
    public var cv: Double?
    public var interference: Bool
    /// Why the point is flagged, one line each.
    public var reasons: [String]

    public init(
        cpus: [Int], windowSeconds: Double, backgroundCPU: Double? = nil, steal: Double? = nil, resolution: Double? = nil,
        involuntarySwitches: Int? = nil,
        roundTripNs: [Double] = [], roundTripDrift: Double? = nil, cv: Double? = nil, interference: Bool = false, reasons: [String] = []
    ) {
        self.cpus = cpus
        self.windowSeconds = windowSeconds
        self.backgroundCPU = backgroundCPU
        self.steal = steal
        self.resolution = resolution
        self.involuntarySwitches = involuntarySwitches
        self.roundTripNs = roundTripNs
        self.roundTripDrift = roundTripDrift
        self.cv = cv
        self.interference = interference
        self.reasons = reasons
    }

    /// Sets `interference` and `reasons` from the measured values; `reference` is the run's
    /// calibration round trip, which `roundTripDrift` includes.
    public mutating func judge(_ t: TrustThresholds, reference: Double? = nil) {
        var r: [String] = []
        func pct(_ v: Double) -> String { "\(Int((v * 100).rounded()))%" }
        let res = resolution ?? 0
        if let b = backgroundCPU, b > t.backgroundCPU + res {
            r.append("background CPU \(pct(b)) of the window on cpu \(cpus.map(String.init).joined(separator: ",")) (threshold \(pct(t.backgroundCPU)), resolution \(pct(res)))")
        }
        if let s = steal, s > t.steal + res { r.append("steal \(pct(s)) of the window (threshold \(pct(t.steal)), resolution \(pct(res)))") }
        if let c = cv, c > t.cv { r.append("repetitions vary: coefficient of variation \(pct(c)) (threshold \(pct(t.cv)))") }
        if let d = roundTripDrift, d > t.roundTripDrift {
            let list = roundTripNs.map { "\(Int($0.rounded())) ns" }.joined(separator: " and ")
            let from = reference.map { " (run's calibration \(Int($0.rounded())) ns; this point \(list)" } ?? " (this point \(list)"
            r.append("cross-CPU round trip drifted \(String(format: "%.1f", d))x\(from); threshold \(String(format: "%.1f", t.roundTripDrift))x)")
        }
        reasons = r
        interference = !r.isEmpty
    }
}

/// A snapshot of the watched CPUs and this process's threads.
public struct InterferenceSnapshot: Sendable {
    public var time: UInt64
    public var cpus: [Int: SystemState.CPUTime]
    public var threads: [Int32: SystemState.ThreadTime]

    public static func take() -> InterferenceSnapshot {
        InterferenceSnapshot(time: MonotonicClock.now(), cpus: SystemState.cpuTimes(), threads: SystemState.ownThreads())
    }

    /// What happened on `watched` between `start` and `end`; `measured` are the threads
    /// whose involuntary switches count.
    public static func environment(
        from start: InterferenceSnapshot, to end: InterferenceSnapshot, watched: [Int], measured: [Int32]
    ) -> PointEnvironment {
        let window = Double(end.time &- start.time) / 1e9
        var env = PointEnvironment(cpus: watched, windowSeconds: window)
        let tick = 1e9 / SystemState.ticksPerSecond
        var busy = 0.0, steal = 0.0, known = 0
        for c in watched {
            guard let a = start.cpus[c], let b = end.cpus[c] else { continue }
            busy += Double(b.busy &- a.busy) * tick
            steal += Double(b.steal &- a.steal) * tick
            known += 1
        }
        if known > 0, window > 0 {
            var own = 0.0
            // A thread born during the point (io_uring's io-wq workers, iou-wrk-*, start on
            // the first punted request) counts whole: all its run time lies in the window.
            for (tid, b) in end.threads {
                own += Double(b.runNanoseconds &- (start.threads[tid]?.runNanoseconds ?? 0))
            }
            let capacity = window * 1e9 * Double(known)
            // /proc/stat counts in ticks (10 ms here) and own time in ns: a point's few
            // ticks of rounding stay well under the threshold only over the whole point.
            env.backgroundCPU = min(1, max(0, busy - own) / capacity)
            env.steal = min(1, steal / capacity)
            env.resolution = 2 * tick / (window * 1e9)
        }
        var inv: UInt64 = 0
        var any = false
        for tid in measured {
            if let a = start.threads[tid], let b = end.threads[tid] {
                inv &+= b.involuntarySwitches &- a.involuntarySwitches
                any = true
            }
        }
        if any { env.involuntarySwitches = Int(inv) }
        return env
    }
}
