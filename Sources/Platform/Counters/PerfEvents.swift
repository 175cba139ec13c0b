// dmabench — Platform
//
// Event names → perf_event_attr through libpfm4, probing whether an event opens here, the
// reason text for each errno, and the PMU/event catalogue for `dmabench list events`.

#if os(Linux)
import CPerf
import Glibc
import Synchronization

/// Resolving, probing and listing perf events.
///
/// Names are the ones `perf` and libpfm4 use: `cycles`, `instructions`, `cache-misses`,
/// `task-clock`, `context-switches`, `node-loads`, modifiers such as `cycles:u`, and
/// PMU-specific names such as `amd64_fam19h_zen4::RETIRED_INSTRUCTIONS`. Preset names
/// (`default`, `software`, `numa`) expand to their lists.
public enum PerfEvents {
    // MARK: libpfm4

    /// pfm_initialize() runs once per process (swift_once makes it thread-safe).
    private static let initResult: Int32 = pfm_initialize()
    /// libpfm4 does not promise thread safety for its encoding calls; they go one at a time.
    private static let libraryLock = Mutex(())

    /// nil when libpfm4 initialised, or its error text. The corresponding call is `pfm_initialize()`.
    public static var libraryError: String? {
        initResult == PFM_SUCCESS ? nil : String(cString: pfm_strerror(initResult))
    }

    /// The libpfm4 version, e.g. "4.13" (pfm_get_version).
    public static var libraryVersion: String {
        let v = pfm_get_version()
        return "\(v >> 16).\(v & 0xffff)"
    }

    /// /proc/sys/kernel/perf_event_paranoid, or nil where it does not exist.
    public static var paranoidLevel: Int? { PerfPrivilege.current().paranoidLevel }

    // MARK: Resolving names

    /// Expands preset names (`default`, `software`, `numa`) in `names`, trims blanks and drops
    /// empty entries. Order is kept; an event named twice stays twice.
    public static func expandPresets(_ names: [String]) -> [String] {
        var out: [String] = []
        for raw in names {
            let name = raw.trimmingWhitespace()
            if name.isEmpty { continue }
            if let preset = CounterPreset(rawValue: name) { out += preset.eventNames } else { out.append(name) }
        }
        return out
    }

    /// Encodes each name (after preset expansion) into a `perf_event_attr`.
    ///
    /// Events are encoded for kernel and user mode where `privilege` allows kernel counting,
    /// and for user mode only (`exclude_kernel`) where it does not; a ":u"/":k" modifier in
    /// the name wins. Encoding succeeds for hardware events even where no PMU exists (libpfm4
    /// knows the CPU from CPUID); whether an event opens is `probe`'s business.
    /// The corresponding libpfm4 call is `pfm_get_os_event_encoding(name, plm,
    /// PFM_OS_PERF_EVENT_EXT, &arg)`.
    /// - Throws: `CounterError.unknownEvent` naming the first name libpfm4 does not know,
    ///   `.noEvents` for an empty list, `.libraryUnavailable` when libpfm4 did not initialise.
    public static func resolve(_ names: [String], privilege: PerfPrivilege = .current()) throws(CounterError) -> [CounterEventSpec] {
        let expanded = expandPresets(names)
        guard !expanded.isEmpty else { throw .noEvents }
        var specs: [CounterEventSpec] = []
        specs.reserveCapacity(expanded.count)
        for name in expanded {
            specs.append(try encode(name, privilegeLevelMask: privilege.defaultPrivilegeLevelMask).get())
        }
        return specs
    }

    /// Each name twice, as "name:u" (user mode) and "name:k" (kernel mode), after preset
    /// expansion, so that user and kernel counts are kept apart (docs/architecture.md, "Counters"). Names that
    /// already carry a u/k modifier make `resolve` throw.
    public static func splitUserKernel(_ names: [String]) -> [String] {
        expandPresets(names).flatMap { ["\($0):u", "\($0):k"] }
    }

    /// Probes each spec on its own for `target` (see `probe`), in order.
    public static func probeAll(_ specs: [CounterEventSpec], target: CounterTarget = .currentThread,
                                privilege: PerfPrivilege = .current()) -> [(spec: CounterEventSpec, availability: CounterAvailability)] {
        specs.map { ($0, probe($0, target: target, privilege: privilege)) }
    }

    /// Encodes one name with an explicit libpfm4 privilege-level mask (`PFM_PLM0` = 0x1
    /// kernel, `PFM_PLM3` = 0x8 user).
    public static func encode(_ name: String, privilegeLevelMask: Int32) -> Result<CounterEventSpec, CounterError> {
        if let error = libraryError { return .failure(.libraryUnavailable(detail: error)) }
        return libraryLock.withLock { _ -> Result<CounterEventSpec, CounterError> in
            var attr = perf_event_attr()
            attr.size = UInt32(MemoryLayout<perf_event_attr>.size)
            var fstr: UnsafeMutablePointer<CChar>? = nil
            var arg = pfm_perf_encode_arg_t()
            arg.size = MemoryLayout<pfm_perf_encode_arg_t>.size
            let rc = withUnsafeMutablePointer(to: &attr) { attrPtr in
                withUnsafeMutablePointer(to: &fstr) { fstrPtr in
                    arg.attr = attrPtr
                    arg.fstr = fstrPtr
                    return withUnsafeMutablePointer(to: &arg) {
                        pfm_get_os_event_encoding(name, privilegeLevelMask, PFM_OS_PERF_EVENT_EXT, $0)
                    }
                }
            }
            defer { free(fstr) }
            guard rc == PFM_SUCCESS else {
                return .failure(.unknownEvent(name: name, detail: String(cString: pfm_strerror(rc))))
            }
            attr.size = UInt32(MemoryLayout<perf_event_attr>.size)
            let canonical = fstr.map { String(cString: $0) } ?? name
            return .success(CounterEventSpec(
                name: name, canonicalName: canonical, attr: attr,
                requiredCPU: arg.cpu >= 0 ? arg.cpu : nil, openFlags: UInt(max(0, arg.flags))))
        }
    }

    // MARK: Probing

    /// The attribute to open `spec` with, as a group leader (disabled until `start()`) or a
    /// member (follows its leader).
    static func openAttr(_ spec: CounterEventSpec, target: CounterTarget, leader: Bool) -> perf_event_attr {
        var a = spec.attr
        a.size = UInt32(MemoryLayout<perf_event_attr>.size)
        a.disabled = leader ? 1 : 0
        a.inherit = target.inherit ? 1 : 0
        a.read_format = PerfConstants.readFormatGroup | PerfConstants.readFormatTotalTimeEnabled
            | PerfConstants.readFormatTotalTimeRunning
        return a
    }

    /// Reasons that need no syscall: an event that would count nothing by construction, or
    /// one that cannot be opened for this kind of target.
    static func structuralProblem(_ spec: CounterEventSpec, target: CounterTarget, privilege: PerfPrivilege) -> CounterAvailability? {
        if spec.isKernelOnlySoftwareEvent && spec.excludesKernel {
            if privilege.mayCountKernel {
                return .unsupported(errno: nil, reason: "unsupported: \(spec.name) happens only in kernel mode and would count 0 with kernel mode excluded (drop the :u)")
            }
            return .unsupported(errno: nil, reason: "not permitted: \(spec.name) happens only in kernel mode and would count 0 (\(privilege.paranoidText) without CAP_PERFMON allows user mode only; needs CAP_PERFMON or perf_event_paranoid <= 1)")
        }
        if let cpu = spec.requiredCPU, case .thread = target {
            return .unsupported(errno: nil, reason: "unsupported per thread: \(spec.name) is a socket-level (uncore) event; count it on a CPU (cpu \(cpu))")
        }
        return nil
    }

    /// Opens `spec` on its own for `target` to learn whether it works here, then closes it.
    /// The corresponding kernel call is `perf_event_open(attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC)`.
    public static func probe(_ spec: CounterEventSpec, target: CounterTarget = .currentThread,
                             privilege: PerfPrivilege = .current()) -> CounterAvailability {
        if let problem = structuralProblem(spec, target: target, privilege: privilege) { return problem }
        var attr = openAttr(spec, target: target, leader: true)
        let fd = sys_perf_event_open(&attr, pid: target.pid, cpu: target.cpu, groupFD: -1,
                                     flags: PerfConstants.flagFDCloexec | spec.openFlags)
        if fd >= 0 {
            sys_close(fd)
            return .ok
        }
        return .unsupported(errno: -fd, reason: reason(errno: -fd, spec: spec, target: target, privilege: privilege))
    }

    /// The one-line reason for a perf_event_open(2) failure, e.g.
    /// "unsupported: no PMU on this machine (ENOENT)" or
    /// "not permitted: perf_event_paranoid=3 (EACCES); needs CAP_PERFMON or perf_event_paranoid <= 2".
    public static func reason(errno e: Int32, spec: CounterEventSpec, target: CounterTarget, privilege: PerfPrivilege) -> String {
        let tag = "(\(Errno.name(e)))"
        switch e {
        case ENOENT:
            if spec.isSoftware { return "unsupported: this kernel does not know \(spec.name) \(tag)" }
            if spec.type != PerfConstants.typeTracepoint && !PerfProbe.hasHardwarePMU {
                return "unsupported: no PMU on this machine \(tag)"
            }
            return "unsupported: the PMU does not provide \(spec.name) \(tag)"
        case ENODEV:
            return "unsupported: the PMU of \(spec.name) is not on this CPU \(tag)"
        case EOPNOTSUPP:
            return "unsupported: the PMU cannot count \(spec.name) as encoded (mode exclusion or sampling) \(tag)"
        case EACCES, EPERM:
            let need: String
            if !privilege.mayOpen {
                need = "needs CAP_PERFMON or perf_event_paranoid <= 2"
            } else if case .cpu = target, !privilege.mayCountPerCPU {
                need = "per-CPU counting needs CAP_PERFMON or perf_event_paranoid <= 0"
            } else if !spec.excludesKernel && !privilege.mayCountKernel {
                need = "kernel-mode counting needs CAP_PERFMON or perf_event_paranoid <= 1"
            } else if case .thread(let id, _) = target {
                need = "thread \(id) is not traceable by this process (ptrace access)"
            } else {
                need = "needs CAP_PERFMON"
            }
            return "not permitted: \(privilege.paranoidText) \(tag); \(need)"
        case ESRCH:
            return "not counted: no such thread \(target.pid) \(tag)"
        case EINVAL:
            return "invalid: the kernel rejected the encoding of \(spec.name) (type \(spec.type) config 0x\(String(spec.config, radix: 16))) for \(target) \(tag)"
        case EMFILE, ENFILE:
            return "not opened: out of file descriptors \(tag)"
        case EBUSY:
            return "busy: another user holds the PMU exclusively \(tag)"
        case ENOSPC:
            return "unsupported: no hardware counter can hold \(spec.name) \(tag)"
        case ENOSYS:
            return "unsupported: this kernel has no perf_event_open \(tag)"
        case E2BIG:
            return "unsupported: the kernel rejects this perf_event_attr size \(tag)"
        default:
            return "failed: \(Errno.message(e)) \(tag)"
        }
    }

    // MARK: Catalogue

    /// Every PMU libpfm4 detects here, with its events, each marked usable or not.
    ///
    /// Honesty rule: every event of the generic `perf` PMU (hardware, software and cache
    /// events) is encoded and test-opened on its own, for `target`. For a CPU-specific PMU,
    /// one representative event (the first that encodes with its default attributes) is
    /// test-opened, and the other events carry that result with `testedDirectly == false`:
    /// a PMU either exists for this process or not. Events that libpfm4 cannot encode
    /// without more attributes carry no availability and say so.
    /// The corresponding libpfm4 calls are `pfm_get_pmu_info`, `pfm_get_event_next` and
    /// `pfm_get_event_info`.
    public static func listEvents(target: CounterTarget = .currentThread,
                                  privilege: PerfPrivilege = .current()) throws(CounterError) -> [CounterPMUListing] {
        if let error = libraryError { throw .libraryUnavailable(detail: error) }
        // 1. Collect PMUs and event names under the library lock.
        struct RawPMU { var info: pfm_pmu_info_t; var name: String; var desc: String; var events: [(String, String)] }
        let raw: [RawPMU] = libraryLock.withLock { _ in
            var out: [RawPMU] = []
            for p in 0..<PFM_PMU_MAX.rawValue {
                var info = pfm_pmu_info_t()
                info.size = MemoryLayout<pfm_pmu_info_t>.size
                guard pfm_get_pmu_info(pfm_pmu_t(rawValue: p), &info) == PFM_SUCCESS, info.is_present != 0 else { continue }
                let name = info.name.map { String(cString: $0) } ?? "pmu\(p)"
                let desc = info.desc.map { String(cString: $0) } ?? ""
                var events: [(String, String)] = []
                var idx = info.first_event
                while idx != -1 {
                    var e = pfm_event_info_t()
                    e.size = MemoryLayout<pfm_event_info_t>.size
                    if pfm_get_event_info(idx, PFM_OS_PERF_EVENT_EXT, &e) == PFM_SUCCESS, let n = e.name {
                        events.append(("\(name)::\(String(cString: n))", e.desc.map { String(cString: $0) } ?? ""))
                    }
                    idx = pfm_get_event_next(idx)
                }
                out.append(RawPMU(info: info, name: name, desc: desc, events: events))
            }
            return out
        }
        // 2. Encode and test-open.
        let plm = privilege.defaultPrivilegeLevelMask
        var listings: [CounterPMUListing] = []
        for pmu in raw {
            let testEach = pmu.info.pmu == PFM_PMU_PERF_EVENT
            var events: [CounterEventListing] = []
            var representative: (name: String, availability: CounterAvailability)?
            var pending: [Int] = []
            for (name, desc) in pmu.events {
                switch encode(name, privilegeLevelMask: plm) {
                case .failure(let error):
                    var detail = "\(error)"
                    if case .unknownEvent(_, let d) = error { detail = d }
                    events.append(CounterEventListing(name: name, description: desc, availability: nil, testedDirectly: false,
                                                      note: "not tested: libpfm4 cannot encode it without more attributes (\(detail))"))
                case .success(let spec):
                    if testEach || representative == nil {
                        let a = probe(spec, target: target, privilege: privilege)
                        // For a PMU whose events are each tested, the PMU counts as usable
                        // when any of its events is: the representative is the first that opened.
                        if representative == nil || (testEach && a.isOK && !(representative?.availability.isOK ?? false)) {
                            representative = (name, a)
                        }
                        events.append(CounterEventListing(name: name, description: desc, availability: a, testedDirectly: true, note: nil))
                    } else {
                        pending.append(events.count)
                        events.append(CounterEventListing(name: name, description: desc, availability: nil, testedDirectly: false, note: nil))
                    }
                }
            }
            if let rep = representative {
                for i in pending {
                    events[i].availability = rep.availability
                    events[i].note = "as \(rep.name), tested for this PMU"
                }
            }
            let kind: CounterPMUListing.Kind
            switch pmu.info.type {
            case PFM_PMU_TYPE_CORE: kind = .core
            case PFM_PMU_TYPE_UNCORE: kind = .uncore
            case PFM_PMU_TYPE_OS_GENERIC: kind = .osGeneric
            default: kind = .unknown
            }
            listings.append(CounterPMUListing(
                name: pmu.name, description: pmu.desc, kind: kind, isDefault: pmu.info.is_dfl != 0,
                genericCounters: Int(pmu.info.num_cntrs), fixedCounters: Int(pmu.info.num_fixed_cntrs),
                representative: representative?.name, availability: representative?.availability, events: events))
        }
        return listings
    }

    /// The number of generic counters of libpfm4's default (core) PMU, or nil when none is
    /// detected. Used to size hardware groups.
    public static var defaultPMUGenericCounters: Int? { cachedDefaultPMUGenericCounters }

    private static let cachedDefaultPMUGenericCounters: Int? = {
        guard libraryError == nil else { return nil }
        return libraryLock.withLock { _ -> Int? in
            for p in 0..<PFM_PMU_MAX.rawValue {
                var info = pfm_pmu_info_t()
                info.size = MemoryLayout<pfm_pmu_info_t>.size
                if pfm_get_pmu_info(pfm_pmu_t(rawValue: p), &info) == PFM_SUCCESS, info.is_present != 0,
                   info.is_dfl != 0, info.type == PFM_PMU_TYPE_CORE, info.num_cntrs > 0 {
                    return Int(info.num_cntrs)
                }
            }
            return nil
        }
    }()
}

/// One PMU in `PerfEvents.listEvents`.
public struct CounterPMUListing: Sendable {
    public enum Kind: String, Sendable { case core, uncore, osGeneric = "os-generic", unknown }
    /// libpfm4's PMU name ("perf", "amd64_fam19h_zen4").
    public var name: String
    public var description: String
    public var kind: Kind
    /// libpfm4's default PMU for unqualified names.
    public var isDefault: Bool
    public var genericCounters: Int
    public var fixedCounters: Int
    /// The event test-opened for this PMU (for the generic `perf` PMU, whose events are each
    /// tested: the first one that opened), and its result.
    public var representative: String?
    public var availability: CounterAvailability?
    public var events: [CounterEventListing]
}

/// One event in `PerfEvents.listEvents`.
public struct CounterEventListing: Sendable {
    /// Qualified name, "pmu::EVENT".
    public var name: String
    public var description: String
    /// nil when it was not tested (see `note`).
    public var availability: CounterAvailability?
    /// Opened on its own, rather than judged by its PMU's representative.
    public var testedDirectly: Bool
    public var note: String?
}

/// Cached facts about this machine's perf support, for tests and for `dmabench env`.
public enum PerfProbe {
    /// The errno from opening `cycles:u` (PERF_TYPE_HARDWARE, config 0, exclude_kernel) on
    /// the calling thread, or nil when it opened: the test for a hardware PMU, independent of
    /// libpfm4 and of kernel-mode privileges.
    public static let hardwareCyclesErrno: Int32? = {
        var attr = perf_event_attr()
        attr.size = UInt32(MemoryLayout<perf_event_attr>.size)
        attr.type = PerfConstants.typeHardware
        attr.config = 0
        attr.disabled = 1
        attr.exclude_kernel = 1
        attr.exclude_hv = 1
        let fd = sys_perf_event_open(&attr, pid: 0, cpu: -1, groupFD: -1, flags: PerfConstants.flagFDCloexec)
        if fd >= 0 { sys_close(fd); return nil }
        return -fd
    }()

    /// A hardware PMU counts for this process: `cycles:u` opens.
    public static var hasHardwarePMU: Bool { hardwareCyclesErrno == nil }

    /// The one-line reason there is no hardware PMU, or nil when there is one.
    public static var hardwarePMUReason: String? {
        guard let e = hardwareCyclesErrno else { return nil }
        switch e {
        case ENOENT, ENODEV, EOPNOTSUPP: return "no hardware PMU on this machine: perf_event_open(cycles) fails with \(Errno.name(e))"
        default: return "perf_event_open(cycles) fails: \(Errno.message(e)) (\(Errno.name(e)))"
        }
    }

    /// `task-clock` opens on the calling thread.
    public static let softwareEventsWork: Bool = {
        var attr = perf_event_attr()
        attr.size = UInt32(MemoryLayout<perf_event_attr>.size)
        attr.type = PerfConstants.typeSoftware
        attr.config = 1
        attr.disabled = 1
        attr.exclude_kernel = 1
        attr.exclude_hv = 1
        let fd = sys_perf_event_open(&attr, pid: 0, cpu: -1, groupFD: -1, flags: PerfConstants.flagFDCloexec)
        if fd >= 0 { sys_close(fd); return true }
        return false
    }()
}
#endif
