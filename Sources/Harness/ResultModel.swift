// dmabench — Harness
//
// The result document (docs/architecture.md, "Result files"; documented in Results/README.md). The key names are
// fixed: scripts and CI read them.
//
//     Results/
//       <host>/
//         <commit>/
//           <name>.json        one ResultDocument
//           <name>-*.png|svg   plots (Scripts/plot.py)

import Platform

public struct ResultDocument: Codable, Sendable {
    public static let currentSchemaVersion = 1

    public var schemaVersion: Int
    public var context: ResultContext
    public var points: [ResultPoint]

    public init(context: ResultContext, points: [ResultPoint] = []) {
        schemaVersion = Self.currentSchemaVersion
        self.context = context
        self.points = points
    }
}

public struct Calibration: Codable, Sendable, Hashable {
    /// Single-core memcpy bandwidth by transfer size in bytes (keys are decimal strings).
    public var memcpyBytesPerSecond: [String: Double]
    /// Cache-line round trip between the submitter and engine CPUs, median, ns.
    public var roundTripNs: Double?

    public init(memcpyBytesPerSecond: [String: Double] = [:], roundTripNs: Double? = nil) {
        self.memcpyBytesPerSecond = memcpyBytesPerSecond
        self.roundTripNs = roundTripNs
    }

    /// The memcpy bandwidth for `size`, or the nearest smaller size measured.
    public func memcpy(forSize size: Int) -> Double? {
        if let v = memcpyBytesPerSecond[String(size)] { return v }
        let known = memcpyBytesPerSecond.compactMap { k, v in Int(k).map { ($0, v) } }.sorted { $0.0 < $1.0 }
        return known.last(where: { $0.0 <= size })?.1 ?? known.first?.1
    }
}

public struct SkippedBackend: Codable, Sendable, Hashable {
    public var backend: String
    public var reason: String
    public init(backend: String, reason: String) {
        self.backend = backend
        self.reason = reason
    }
}

/// One engine loaded from a shared object through the plugin ABI (docs/plugin-abi.md).
public struct PluginRecord: Codable, Sendable, Hashable {
    /// The backend name the engine registered.
    public var backend: String
    public var path: String
    public var abiVersion: UInt32
    /// SHA-256 of the shared object, so that two results name the same build or visibly do not.
    public var sha256: String
    public init(backend: String, path: String, abiVersion: UInt32, sha256: String) {
        self.backend = backend
        self.path = path
        self.abiVersion = abiVersion
        self.sha256 = sha256
    }
}

public struct ShardInfo: Codable, Sendable, Hashable {
    public var index: Int
    public var count: Int
    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }
}

public struct ResultContext: Codable, Sendable {
    public var date: String
    public var host: String
    public var cpu: String
    public var cores: Int
    public var kernel: String
    public var commit: String
    public var dirty: Bool
    public var governor: String?
    public var numaNodes: [Int]
    /// Per event: "ok", or "unsupported: <reason> (<ERRNO>)".
    public var counters: [String: String]
    public var commandLine: [String]
    public var toolVersion: String
    public var calibration: Calibration?
    public var skipped: [SkippedBackend]
    public var shard: ShardInfo?
    /// False when the run was interrupted (Ctrl-C) or a point failed: the points present are
    /// all valid, but the sweep is not complete.
    public var complete: Bool
    /// Why the run is incomplete, when it is.
    public var incompleteReason: String?
    /// The clock that stamped descriptors (`StampClock`), e.g. "tsc (2.596 GHz, …)" or
    /// "CLOCK_MONOTONIC (<why not the counter>)". nil in documents written before it existed.
    public var clock: String?
    /// The caches and how `--cache cold` evicted lines; nil in documents written before it.
    public var cache: CacheContext?
    /// What makes the machine noisy, read once at the start (`dmabench env --check` prints
    /// the same list with fixes); nil in documents written before it.
    public var machine: [SystemProperty]?
    /// When a point is flagged (`points[].environment`), and how many were.
    public var thresholds: TrustThresholds?
    public var flaggedPoints: Int?
    /// The engines loaded from C plugins (`plugin:PATH`): which file, which ABI, which build.
    /// nil when none was loaded.
    public var plugins: [PluginRecord]?
    /// `--callbacks`: where the run asked callbacks to run (`DMACallbackContext`'s raw
    /// value). nil: each backend's default (`dmabench list backends` says which).
    public var callbackContext: String?

    public init(
        date: String, host: String, cpu: String, cores: Int, kernel: String, commit: String, dirty: Bool,
        governor: String?, numaNodes: [Int], counters: [String: String] = [:], commandLine: [String],
        toolVersion: String, calibration: Calibration? = nil, skipped: [SkippedBackend] = [], shard: ShardInfo? = nil,
        complete: Bool = true, incompleteReason: String? = nil, clock: String? = nil
    ) {
        self.clock = clock
        self.date = date
        self.host = host
        self.cpu = cpu
        self.cores = cores
        self.kernel = kernel
        self.commit = commit
        self.dirty = dirty
        self.governor = governor
        self.numaNodes = numaNodes
        self.counters = counters
        self.commandLine = commandLine
        self.toolVersion = toolVersion
        self.calibration = calibration
        self.skipped = skipped
        self.shard = shard
        self.complete = complete
        self.incompleteReason = incompleteReason
    }
}

public struct PointParameters: Codable, Sendable, Hashable {
    public var size: Int
    public var batch: Int
    public var depth: Int
    public var channels: Int
    /// Offered rate in descriptors/s for open-loop latency; nil = closed loop.
    public var rate: Double?
    /// Descriptors in flight when terminating (terminate workload only).
    public var inFlight: Int?
    /// Throughput and latency points: where each descriptor copies (`--offsets`), with the
    /// alignment of random offsets, how completions were detected, and the cache state. Nil
    /// on terminate points, and in files written before these existed (read: fixed,
    /// callback, hot).
    public var offsets: OffsetMode?
    public var alignment: Int?
    public var completion: CompletionMode?
    public var cache: CacheMode?
    /// Scatter-gather points: source and destination segments per descriptor, "S:D".
    public var sge: String?
    /// Cyclic points: periods in the buffer (`size` is the period), the pace in bytes per
    /// second (0: memory speed), and the busy work per period callback in nanoseconds.
    public var periods: Int?
    public var pace: Int?
    public var periodWorkNs: Int?

    public init(
        size: Int, batch: Int, depth: Int, channels: Int, rate: Double? = nil, inFlight: Int? = nil,
        offsets: OffsetMode? = nil, alignment: Int? = nil, completion: CompletionMode? = nil, cache: CacheMode? = nil,
        sge: String? = nil, periods: Int? = nil, pace: Int? = nil, periodWorkNs: Int? = nil
    ) {
        self.sge = sge
        self.periods = periods
        self.pace = pace
        self.periodWorkNs = periodWorkNs
        self.size = size
        self.batch = batch
        self.depth = depth
        self.channels = channels
        self.rate = rate
        self.inFlight = inFlight
        self.offsets = offsets
        self.alignment = alignment
        self.completion = completion
        self.cache = cache
    }

    /// The same point in another mode (the counterpart a mode comparison divides by).
    public func with(completion: CompletionMode? = nil, cache: CacheMode? = nil) -> PointParameters {
        var p = self
        if let completion { p.completion = completion }
        if let cache { p.cache = cache }
        return p
    }

    // Encode nil as JSON null, so every key is always present.
    enum CodingKeys: String, CodingKey {
        case size, batch, depth, channels, rate, inFlight, offsets, alignment, completion, cache, sge, periods, pace, periodWorkNs
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(size, forKey: .size)
        try c.encode(batch, forKey: .batch)
        try c.encode(depth, forKey: .depth)
        try c.encode(channels, forKey: .channels)
        try c.encode(rate, forKey: .rate)
        try c.encode(inFlight, forKey: .inFlight)
        try c.encode(offsets, forKey: .offsets)
        try c.encode(alignment, forKey: .alignment)
        try c.encode(completion, forKey: .completion)
        try c.encode(cache, forKey: .cache)
        try c.encode(sge, forKey: .sge)
        try c.encode(periods, forKey: .periods)
        try c.encode(pace, forKey: .pace)
        try c.encode(periodWorkNs, forKey: .periodWorkNs)
    }
}

/// Where the threads and the memory of a point ran: as asked, and as verified.
public struct PlacementRecord: Codable, Sendable, Hashable {
    /// Threads: "cpuN" or "nodeN"; memory: a node number.
    public struct Cell: Codable, Sendable, Hashable {
        public var submitter: String?
        public var engine: String?
        public var src: Int?
        public var dst: Int?
        public init(submitter: String? = nil, engine: String? = nil, src: Int? = nil, dst: Int? = nil) {
            self.submitter = submitter
            self.engine = engine
            self.src = src
            self.dst = dst
        }
    }
    public var requested: Cell
    public var verified: Cell
    /// Every thread's CPU, node and affinity, and every buffer's pages per node, as verified.
    public var details: NUMAVerifiedPlacement?
    public init(requested: Cell, verified: Cell, details: NUMAVerifiedPlacement? = nil) {
        self.requested = requested
        self.verified = verified
        self.details = details
    }
}

public struct LatencySummary: Codable, Sendable, Hashable {
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var p9999: Double
    public var max: Double
    public var count: Int
    /// HdrHistogram's percentile distribution (`.hgrm` text), values in ns.
    public var histogram: String
    /// One descriptor in this many was stamped (throughput points: 16); nil when every one
    /// was (latency points, and files written before sampling existed).
    public var sampleEvery: Int?

    public init(
        p50: Double, p90: Double, p99: Double, p999: Double, p9999: Double, max: Double, count: Int, histogram: String,
        sampleEvery: Int? = nil
    ) {
        self.sampleEvery = sampleEvery
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.p999 = p999
        self.p9999 = p9999
        self.max = max
        self.count = count
        self.histogram = histogram
    }
}

public struct Efficiency: Codable, Sendable, Hashable {
    /// bytes/s as a fraction of single-core memcpy at the same size.
    public var vsMemcpy: Double?
    /// p50 latency as a multiple of the cache-line round trip.
    public var vsRoundTrip: Double?
    public init(vsMemcpy: Double? = nil, vsRoundTrip: Double? = nil) {
        self.vsMemcpy = vsMemcpy
        self.vsRoundTrip = vsRoundTrip
    }
}

public struct PointMetrics: Codable, Sendable {
    public var descriptorsPerSecond: MetricSummary?
    public var bytesPerSecond: MetricSummary?
    public var submitNsPerDescriptor: MetricSummary?
    public var latencyNs: LatencySummary?
    public var terminateSyncNs: MetricSummary?
    public var terminateAsyncNs: MetricSummary?
    public var synchronizeNs: MetricSummary?
    public var seedRaceNs: MetricSummary?
    public var completed: Int?
    public var aborted: Int?
    /// Transfers that completed with an error result, plus verification failures.
    public var errors: Int?
    public var efficiency: Efficiency?
    /// This point's speed-up over the `cpu` backend at the same workload, parameters and
    /// placement (descriptors/s, or inverse p50 latency); nil where the run has no cpu point
    /// to compare with (`ResultDocument.annotateSpeedupOverCPU`).
    public var speedupOverCPU: Double?
    /// Polled points: this point over the same point with callbacks (descriptors/s, or
    /// inverse p50 latency); above 1, polling is faster (`annotateModeRatios`).
    public var polledVsCallback: Double?
    /// Cold points: this point over the same point with hot caches; below 1, cold costs.
    public var coldVsHot: Double?
    /// What verification checked and found, summed over the repetitions.
    public var verification: VerificationSummary?
    /// `--cache cold` by flushing: the client's time per descriptor spent flushing the slot
    /// before its submit (median over repetitions), inside the measured window.
    public var cacheFlushNsPerDescriptor: Double?
    /// Cyclic points only.
    public var cyclic: CyclicMetrics?

    public init() {}
}

/// What a cyclic point measured (docs/measurement-notes.md, "Scatter-gather and cyclic
/// streams"). Counts are sums over the repetitions' windows; timings are per repetition.
public struct CyclicMetrics: Codable, Sendable {
    /// From each period's end (stamped by the engine) to the start of the callback that
    /// reported it, in ns; a callback that covers several periods records each of them.
    public var periodLatencyNs: LatencySummary?
    /// Periods the engine completed in the windows, and period callbacks that ran.
    public var periods: Int
    public var callbacks: Int
    /// Callbacks per elapsed period (1: one per period; less when coalesced, rule K1).
    public var coalescing: Double
    /// Periods the engine started overwriting before their callback ran (xruns).
    public var overruns: Int
    /// Periods whose end stamp had been overwritten when their callback ran (no latency).
    public var unstamped: Int
    /// The requested pace (0: memory speed), and what the stream moved, bytes per second.
    public var paceBytesPerSecond: Int
    public var achievedBytesPerSecond: MetricSummary
    /// achieved / requested (nil at memory speed).
    public var paceRatio: Double?
    /// `pause()` call to return, and `resume()` call to the next byte moved, on a running stream.
    public var pauseNs: MetricSummary
    public var resumeToNextByteNs: MetricSummary
    /// STOP: terminateAsync from a period callback (timed from that call) followed by the
    /// client's synchronize; and terminateAsync + synchronize from the client.
    public var stopFromCallbackNs: MetricSummary
    public var stopFromClientNs: MetricSummary
    /// Which thread ran the period callbacks, the burst size, and each window's length.
    public var callbackContext: String
    public var burstBytes: Int
    public var windowSeconds: Double
    /// Destination bytes that differed from the source after the stream (all repetitions).
    public var mismatchedBytes: Int

    public init(
        periodLatencyNs: LatencySummary?, periods: Int, callbacks: Int, overruns: Int, unstamped: Int,
        paceBytesPerSecond: Int, achievedBytesPerSecond: MetricSummary, pauseNs: MetricSummary,
        resumeToNextByteNs: MetricSummary, stopFromCallbackNs: MetricSummary, stopFromClientNs: MetricSummary,
        callbackContext: String, burstBytes: Int, windowSeconds: Double, mismatchedBytes: Int
    ) {
        self.periodLatencyNs = periodLatencyNs
        self.periods = periods
        self.callbacks = callbacks
        self.coalescing = periods > 0 ? Double(callbacks) / Double(periods) : 0
        self.overruns = overruns
        self.unstamped = unstamped
        self.paceBytesPerSecond = paceBytesPerSecond
        self.achievedBytesPerSecond = achievedBytesPerSecond
        self.paceRatio = paceBytesPerSecond > 0 ? achievedBytesPerSecond.median / Double(paceBytesPerSecond) : nil
        self.pauseNs = pauseNs
        self.resumeToNextByteNs = resumeToNextByteNs
        self.stopFromCallbackNs = stopFromCallbackNs
        self.stopFromClientNs = stopFromClientNs
        self.callbackContext = callbackContext
        self.burstBytes = burstBytes
        self.windowSeconds = windowSeconds
        self.mismatchedBytes = mismatchedBytes
    }
}

/// One counter of one thread, per descriptor, or why it is missing.
public struct CounterValue: Codable, Sendable, Hashable {
    public var perDescriptor: Double?
    public var scaling: Double?
    public var value: Double?
    public var unsupported: String?

    public init(perDescriptor: Double? = nil, scaling: Double? = nil, value: Double? = nil, unsupported: String? = nil) {
        self.perDescriptor = perDescriptor
        self.scaling = scaling
        self.value = value
        self.unsupported = unsupported
    }
}

public struct ResultPoint: Codable, Sendable {
    public var backend: String
    public var workload: String
    public var parameters: PointParameters
    public var placement: PlacementRecord
    public var metrics: PointMetrics
    /// By thread role ("submitter", "engine", "executor"), then by event name.
    public var counters: [String: [String: CounterValue]]?
    /// How quiet the machine was while the point ran, and whether it is flagged.
    public var environment: PointEnvironment?

    public init(
        backend: String, workload: String, parameters: PointParameters, placement: PlacementRecord,
        metrics: PointMetrics, counters: [String: [String: CounterValue]]? = nil
    ) {
        self.backend = backend
        self.workload = workload
        self.parameters = parameters
        self.placement = placement
        self.metrics = metrics
        self.counters = counters
    }
}

/// The data caches of the machine, and the cold method of the run.
public struct CacheContext: Codable, Sendable, Hashable {
    /// `CacheMethod` of `--cache cold` ("flush" or "footprint"), with what it used.
    public var method: String
    /// clflushopt, clflush or "dc civac"; nil where the CPU has none.
    public var flushInstruction: String?
    public var lineSize: Int?
    public var levels: [CacheControl.Level]

    public init(method: String, flushInstruction: String?, lineSize: Int?, levels: [CacheControl.Level]) {
        self.method = method
        self.flushInstruction = flushInstruction
        self.lineSize = lineSize
        self.levels = levels
    }
}
