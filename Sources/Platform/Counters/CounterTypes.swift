// dmabench — Platform
//
// Counter vocabulary shared by the perf_event_open(2) wrappers: event specs, availability,
// targets, readings, presets and errors (docs/architecture.md, "Counters").

#if os(Linux)
import CPerf

/// Whether an event can be counted here, for the target it was tried on.
///
/// An event that cannot be opened is reported with the errno the kernel returned and a
/// one-line reason, never as a zero (docs/architecture.md, "Counters"). `errno` is nil when the reason is not a
/// kernel error (for example an event that would count nothing by construction).
public enum CounterAvailability: Sendable, Hashable, CustomStringConvertible {
    case ok
    case unsupported(errno: Int32?, reason: String)

    public var isOK: Bool {
        if case .ok = self { return true }
        return false
    }

    /// "ok", or the reason, e.g. "unsupported: no PMU on this machine (ENOENT)".
    public var description: String {
        switch self {
        case .ok: return "ok"
        case .unsupported(_, let reason): return reason
        }
    }
}

/// One event, encoded by libpfm4 into a `perf_event_attr`.
///
/// Make specs with `PerfEvents.resolve(_:)`. The corresponding libpfm4 call is
/// `pfm_get_os_event_encoding(name, plm, PFM_OS_PERF_EVENT_EXT, &arg)`.
public struct CounterEventSpec: Sendable, CustomStringConvertible {
    /// The name as it was asked for ("cycles", "perf::PAGE-FAULTS", "instructions:u").
    public let name: String
    /// libpfm4's fully qualified name ("perf::PERF_COUNT_HW_CPU_CYCLES:u=1:k=0:...").
    public let canonicalName: String
    /// The encoded attribute. Only `PerfCounterSession` and `PerfEvents.probe` open it.
    internal let attr: perf_event_attr
    /// The CPU libpfm4 says the event must be programmed on (uncore events), or nil.
    public let requiredCPU: Int32?
    /// Extra perf_event_open flags libpfm4 asks for.
    internal let openFlags: UInt

    internal init(name: String, canonicalName: String, attr: perf_event_attr, requiredCPU: Int32?, openFlags: UInt) {
        self.name = name
        self.canonicalName = canonicalName
        self.attr = attr
        self.requiredCPU = requiredCPU
        self.openFlags = openFlags
    }

    /// `perf_event_attr.type` (0 hardware, 1 software, 2 tracepoint, 3 hardware cache, 4 raw,
    /// or a dynamic PMU type from /sys/bus/event_source/devices/*/type).
    public var type: UInt32 { attr.type }
    /// `perf_event_attr.config`.
    public var config: UInt64 { attr.config }
    /// `perf_event_attr.config1` (extra encoding, e.g. offcore response masks).
    public var config1: UInt64 { attr.config1 }
    /// `perf_event_attr.config2`.
    public var config2: UInt64 { attr.config2 }
    /// `perf_event_attr.exclude_kernel`: kernel-mode counts are left out.
    public var excludesKernel: Bool { attr.exclude_kernel != 0 }
    /// `perf_event_attr.exclude_user`: user-mode counts are left out.
    public var excludesUser: Bool { attr.exclude_user != 0 }
    /// `perf_event_attr.exclude_hv`.
    public var excludesHypervisor: Bool { attr.exclude_hv != 0 }

    /// A software event: counted by the kernel itself, available without a PMU, never
    /// multiplexed. The corresponding C constant is `PERF_TYPE_SOFTWARE`.
    public var isSoftware: Bool { attr.type == PerfConstants.typeSoftware }

    /// Software events that only ever happen in kernel mode (context-switches,
    /// cpu-migrations, cgroup-switches): with `exclude_kernel` set they count 0, always.
    public var isKernelOnlySoftwareEvent: Bool {
        isSoftware && PerfConstants.kernelOnlySoftwareConfigs.contains(attr.config)
    }

    public var description: String {
        "\(name) (type \(type) config 0x\(String(config, radix: 16))\(excludesKernel ? " :u" : "")\(excludesUser ? " :k" : ""))"
    }
}

/// What a counter session counts.
public enum CounterTarget: Sendable, Hashable, CustomStringConvertible {
    /// One Linux thread, by tid (`CPU.currentThreadID`, `OSThread.threadID`). With
    /// `inherit`, threads it creates after the session opens are counted too and summed in:
    /// the kernel copies the counters into each child at clone time and folds the child's
    /// counts back in when it exits. io-wq workers and an SQPOLL thread are children of the
    /// task that set up or submits to the ring, so open an inheriting session on that thread
    /// *before* the ring creates them; workers that already exist are not counted (use
    /// `.cpu` for those). The corresponding call is
    /// `perf_event_open(attr, tid, -1, group_fd, flags)` with `attr.inherit`.
    case thread(id: Int32, inherit: Bool = false)
    /// Everything that runs on one CPU, whatever the thread (io-wq workers, softirqs).
    /// Needs CAP_PERFMON or perf_event_paranoid <= 0. The corresponding call is
    /// `perf_event_open(attr, -1, cpu, group_fd, flags)`.
    case cpu(Int)

    /// The calling thread.
    public static var currentThread: CounterTarget { .thread(id: CPU.currentThreadID) }

    var pid: Int32 {
        switch self {
        case .thread(let id, _): return id
        case .cpu: return -1
        }
    }

    var cpu: Int32 {
        switch self {
        case .thread: return -1
        case .cpu(let c): return Int32(c)
        }
    }

    var inherit: Bool {
        if case .thread(_, true) = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .thread(let id, let inherit): return inherit ? "thread \(id) and its new children" : "thread \(id)"
        case .cpu(let c): return "cpu \(c)"
        }
    }
}

/// One event's value over a window (between `start()` and `stop()` or `read()`).
public struct CounterReading: Sendable, Hashable, CustomStringConvertible {
    /// The event name as asked for.
    public var name: String
    /// `.ok`, or why the event could not be opened (then every value below is nil).
    public var availability: CounterAvailability
    /// The count while the event was on a counter.
    public var raw: UInt64?
    /// `raw × scaling`: the estimate for the whole window.
    public var scaled: Double?
    /// `time_enabled / time_running` over the window: 1.0 when the event was counted the whole
    /// time, above 1 when it was multiplexed. Nil when it was never counted.
    public var scaling: Double?
    /// Nanoseconds the event was enabled in the window (`PERF_FORMAT_TOTAL_TIME_ENABLED`).
    public var timeEnabled: UInt64
    /// Nanoseconds it was on a counter (`PERF_FORMAT_TOTAL_TIME_RUNNING`).
    public var timeRunning: UInt64
    /// A remark that qualifies the value: "user mode only: ..." or "not counted: ...".
    public var note: String?

    public init(name: String, availability: CounterAvailability, raw: UInt64? = nil, scaled: Double? = nil,
                scaling: Double? = nil, timeEnabled: UInt64 = 0, timeRunning: UInt64 = 0, note: String? = nil) {
        self.name = name
        self.availability = availability
        self.raw = raw
        self.scaled = scaled
        self.scaling = scaling
        self.timeEnabled = timeEnabled
        self.timeRunning = timeRunning
        self.note = note
    }

    /// True when the reading carries a value.
    public var isCounted: Bool { scaled != nil }

    /// The scaled value divided by `operations` (descriptors), or nil when not counted or
    /// `operations` is 0.
    public func perOperation(_ operations: Int) -> Double? {
        guard let scaled, operations > 0 else { return nil }
        return scaled / Double(operations)
    }

    public var description: String {
        guard let raw, let scaled, let scaling else {
            return "\(name): \(availability.isOK ? (note ?? "not counted") : availability.description)"
        }
        let s = scaling == 1 ? "" : " (scaled ×\(scaling) from \(raw))"
        return "\(name): \(scaled)\(s)\(note.map { " [\($0)]" } ?? "")"
    }
}

/// Named event lists for `--events`.
public enum CounterPreset: String, Sendable, CaseIterable {
    /// Hardware cycles, instructions, cache-misses, branch-misses plus the software set.
    case `default`
    /// Software events only: they work without a PMU and in every VM.
    case software
    /// The default set plus node-loads and node-load-misses (reported per event as
    /// unsupported where the PMU does not provide them).
    case numa

    public static let hardwareNames = ["cycles", "instructions", "cache-misses", "branch-misses"]
    public static let softwareNames = ["task-clock", "context-switches", "cpu-migrations", "page-faults"]
    public static let numaNames = ["node-loads", "node-load-misses"]

    public var eventNames: [String] {
        switch self {
        case .default: return Self.hardwareNames + Self.softwareNames
        case .software: return Self.softwareNames
        case .numa: return Self.hardwareNames + Self.softwareNames + Self.numaNames
        }
    }
}

/// An error that stops event resolution; the CLI prints `description` and exits with 64.
public enum CounterError: Error, Sendable, Hashable, CustomStringConvertible {
    /// libpfm4 does not know the name.
    case unknownEvent(name: String, detail: String)
    /// The event list was empty.
    case noEvents
    /// libpfm4 could not initialise (`pfm_initialize`).
    case libraryUnavailable(detail: String)

    public var description: String {
        let presets = CounterPreset.allCases.map(\.rawValue).joined(separator: ", ")
        switch self {
        case .unknownEvent(let name, let detail):
            return "unknown counter event '\(name)' (libpfm4: \(detail)); use perf names such as "
                + "cycles, instructions, task-clock, context-switches, a PMU event as pmu::EVENT "
                + "(see `dmabench list events`), or a preset: \(presets)"
        case .noEvents:
            return "no counter events given; name events (cycles,task-clock,...) or a preset: \(presets)"
        case .libraryUnavailable(let detail):
            return "libpfm4 is unavailable (pfm_initialize: \(detail)); counters cannot be encoded"
        }
    }
}

/// perf_event ABI constants that are macros or enums in C.
enum PerfConstants {
    /// `PERF_TYPE_HARDWARE`, `PERF_TYPE_SOFTWARE`, `PERF_TYPE_TRACEPOINT`, `PERF_TYPE_HW_CACHE`, `PERF_TYPE_RAW`.
    static let typeHardware: UInt32 = 0
    static let typeSoftware: UInt32 = 1
    static let typeTracepoint: UInt32 = 2
    static let typeHardwareCache: UInt32 = 3
    static let typeRaw: UInt32 = 4
    /// `PERF_COUNT_SW_CONTEXT_SWITCHES`, `PERF_COUNT_SW_CPU_MIGRATIONS`, `PERF_COUNT_SW_CGROUP_SWITCHES`.
    static let kernelOnlySoftwareConfigs: Set<UInt64> = [3, 4, 11]
    /// `PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING | PERF_FORMAT_GROUP`.
    static let readFormatTotalTimeEnabled: UInt64 = 1 << 0
    static let readFormatTotalTimeRunning: UInt64 = 1 << 1
    static let readFormatGroup: UInt64 = 1 << 3
    /// `PERF_FLAG_FD_CLOEXEC`.
    static let flagFDCloexec: UInt = 1 << 3
}
#endif
