// dmabench — Harness
//
// A sweep: every backend × workload × size × batch × depth × channel count asked for,
// split into shards (`--shard i/n`) for scale-out.

import DMAEngine

/// How the harness makes a channel of one backend. The command line fills these in from the
/// backend registry; the harness never names a concrete backend (docs/architecture.md, "Modules and their dependencies").
public struct ChannelFactory: Sendable {
    public var name: String
    public var make: @Sendable (DMAChannelOptions) throws -> any DMAChannel
    /// Nil when the backend can run here; otherwise why not (the run skips it visibly).
    public var unavailableReason: @Sendable () -> String?

    public init(
        name: String, unavailableReason: @escaping @Sendable () -> String? = { nil },
        make: @escaping @Sendable (DMAChannelOptions) throws -> any DMAChannel
    ) {
        self.name = name
        self.make = make
        self.unavailableReason = unavailableReason
    }
}

public enum WorkloadKind: String, Sendable, CaseIterable, Codable {
    case throughput, latency, terminate, cyclic
}

/// One point of a sweep.
public struct PointSpec: Sendable, Hashable, CustomStringConvertible {
    public var backend: String
    public var workload: WorkloadKind
    public var parameters: PointParameters

    public var description: String {
        let p = parameters
        switch workload {
        case .terminate:
            return "\(backend) terminate size=\(ByteSize.format(p.size)) inFlight=\(p.inFlight ?? 0)"
        case .latency:
            let mode = p.rate.map { "rate=\(Int($0))/s" } ?? "closed"
            return "\(backend) latency size=\(ByteSize.format(p.size)) depth=\(p.depth) \(mode)" + p.modeSuffix
        case .cyclic:
            return "\(backend) cyclic period=\(ByteSize.format(p.size)) periods=\(p.periods ?? 0) " + p.paceLabel
                + (p.periodWorkNs.map { $0 > 0 ? " work=\($0)ns" : "" } ?? "")
        case .throughput:
            return "\(backend) throughput size=\(ByteSize.format(p.size)) batch=\(p.batch) depth=\(p.depth) channels=\(p.channels)" + p.modeSuffix
        }
    }
}

extension PointParameters {
    /// The modes that differ from the defaults (fixed, callback, hot), for one-line labels:
    /// e.g. " random/8 polled cold".
    public var modeSuffix: String {
        var s = ""
        if offsets == .random { s += " random/\(alignment ?? 1)" }
        if completion == .polled { s += " polled" }
        if cache == .cold { s += " cold" }
        if let sge { s += " sge=\(sge)" }
        return s
    }

    /// "pace=384000B/s" or "pace=memory".
    public var paceLabel: String {
        guard let pace else { return "" }
        return pace == 0 ? "pace=memory" : "pace=\(pace)B/s"
    }
}

public struct SweepPlan: Sendable {
    public var backends: [String]
    public var workloads: [WorkloadKind]
    public var sizes: [Int]
    public var batches: [Int]
    public var depths: [Int]
    /// Depths for the latency workload (default: the same as `depths`).
    public var latencyDepths: [Int]?
    public var channels: [Int]
    /// Open-loop rate for the latency workload (nil = closed loop).
    public var rate: Double?
    /// In-flight counts for the terminate workload.
    public var inFlightCounts: [Int]
    public var repetitions: Int
    public var durationNanoseconds: UInt64
    public var verify: Bool
    public var quick: Bool
    public var shard: ShardInfo?
    /// Inject a read fault into every N-th descriptor of throughput and latency points.
    public var faultEvery: Int?
    /// The peers' variants of throughput and latency points (`WorkloadSpec`): one offset
    /// mode, and every completion mode and cache state listed.
    public var offsets: OffsetMode = .fixed
    public var alignment: Int = 1
    public var completions: [CompletionMode] = [.callback]
    public var caches: [CacheMode] = [.hot]
    public var cacheMethod: CacheMethod = .footprint
    /// Where callbacks run (`--callbacks`): nil leaves each backend's registry default.
    /// Cyclic streams always use an executor thread (`Runner.options`).
    public var callbackContext: DMACallbackContext?
    /// Scatter-gather shapes of throughput and latency points (nil: flat copies).
    public var sges: [SGShape?] = [nil]
    /// Cyclic points: period sizes, periods per buffer, paces (0: memory speed), and the
    /// busy work per period callback.
    public var cyclicSizes: [Int] = [SweepPlan.audioPeriodBytes]
    public var periods: Int = 4
    public var paces: [Int] = [SweepPlan.audioPace, 0]
    public var periodWorkNs: Int = 0

    /// The default sweep's audio-like stream: 48 kHz × 2 channels × 4 bytes, periods of
    /// 1024 frames.
    public static let audioPace = 48_000 * 2 * 4
    public static let audioPeriodBytes = 1024 * 2 * 4

    public init(
        backends: [String], workloads: [WorkloadKind], sizes: [Int], batches: [Int], depths: [Int], channels: [Int] = [1],
        rate: Double? = nil, inFlightCounts: [Int] = [0, 1, 16, 256, 4096], repetitions: Int = 5,
        durationNanoseconds: UInt64 = 500_000_000, verify: Bool = true, quick: Bool = false, shard: ShardInfo? = nil
    ) {
        self.backends = backends
        self.workloads = workloads
        self.sizes = sizes
        self.batches = batches
        self.depths = depths
        self.channels = channels
        self.rate = rate
        self.inFlightCounts = inFlightCounts
        self.repetitions = repetitions
        self.durationNanoseconds = durationNanoseconds
        self.verify = verify
        self.quick = quick
        self.shard = shard
    }

    /// Every point, in run order, for this shard.
    public func points() -> [PointSpec] {
        var all: [PointSpec] = []
        for b in backends {
            for w in workloads {
                switch w {
                case .throughput:
                    for s in sizes {
                        for d in depths {
                            for bt in batches where bt <= d {
                                for c in channels {
                                    for m in modes(PointParameters(size: s, batch: bt, depth: d, channels: c)) {
                                        all.append(PointSpec(backend: b, workload: w, parameters: m))
                                    }
                                }
                            }
                        }
                    }
                case .latency:
                    for s in sizes {
                        for d in latencyDepths ?? depths {
                            for m in modes(PointParameters(size: s, batch: 1, depth: d, channels: 1, rate: rate)) {
                                all.append(PointSpec(backend: b, workload: w, parameters: m))
                            }
                        }
                    }
                case .cyclic:
                    for s in cyclicSizes {
                        for pace in paces {
                            all.append(PointSpec(backend: b, workload: w, parameters: PointParameters(
                                size: s, batch: 1, depth: periods, channels: 1, periods: periods, pace: pace,
                                periodWorkNs: periodWorkNs)))
                        }
                    }
                case .terminate:
                    let s = terminateSize
                    for n in inFlightCounts {
                        all.append(PointSpec(backend: b, workload: w, parameters: PointParameters(size: s, batch: 1, depth: max(1, n), channels: 1, inFlight: n)))
                    }
                }
            }
        }
        guard let shard, shard.count > 1 else { return all }
        return all.enumerated().filter { $0.offset % shard.count == shard.index }.map(\.element)
    }

    /// `p` in every completion mode and cache state of the plan, callback and hot first.
    func modes(_ p: PointParameters) -> [PointParameters] {
        var out: [PointParameters] = []
        for g in sges {
            for c in caches {
                for m in completions {
                    var q = p
                    q.offsets = offsets
                    q.alignment = offsets == .random ? alignment : nil
                    q.completion = m
                    q.cache = c
                    q.sge = g?.description
                    out.append(q)
                }
            }
        }
        return out
    }

    /// The transfer size of the terminate workload: the first size of at least 4 KiB, so that
    /// the engine is busy when terminate comes; otherwise the largest size asked for.
    public var terminateSize: Int {
        sizes.first(where: { $0 >= 4096 }) ?? sizes.max() ?? 4096
    }
}
