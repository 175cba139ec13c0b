// dmabench — Platform
//
// Counting a set of events on one thread (or CPU) over a window: perf_event_open groups,
// read with PERF_FORMAT_GROUP | TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING, scaled.

#if os(Linux)
import CPerf
import Glibc
import Synchronization

/// The most events a session puts into one group.
public struct CounterGroupLimits: Sendable, Hashable {
    /// Software events: nil (no limit) by default; they are never multiplexed.
    public var software: Int?
    /// Hardware events: by default the generic counter count of libpfm4's default core PMU,
    /// nil (no limit, the kernel refuses groups that cannot fit) when that is unknown. On
    /// x86 the fixed counters (cycles, instructions) come on top, and the NMI watchdog may
    /// hold one generic counter; a group that then never fits reads "not counted".
    public var hardware: Int?

    public init(software: Int? = nil, hardware: Int?) {
        precondition((software ?? 1) >= 1 && (hardware ?? 1) >= 1, "a group holds at least one event")
        self.software = software
        self.hardware = hardware
    }

    public static var `default`: CounterGroupLimits {
        CounterGroupLimits(software: nil, hardware: PerfEvents.defaultPMUGenericCounters)
    }
}

/// What happened to one requested event when a session opened.
public struct CounterEventStatus: Sendable, CustomStringConvertible {
    /// The event as resolved.
    public let spec: CounterEventSpec
    /// `.ok` when it is counted, otherwise why not.
    public let availability: CounterAvailability
    /// The group it was opened in (index into the session's groups), or nil.
    public let group: Int?
    /// A qualification that applies to every value, e.g. "user mode only: ...".
    public let note: String?

    public var name: String { spec.name }
    public var description: String { "\(name): \(availability)\(note.map { " [\($0)]" } ?? "")" }
}

/// Counts events on one target (a thread, or a CPU) over windows that the caller marks with
/// `start()` and `stop()`: once per phase, never per descriptor.
///
/// Opening (in `init`): each event is first opened on its own for the target
/// (`PerfEvents.probe`), so that each failing event gets its own errno and reason. The events
/// that opened are then put into groups: one group for software events, and hardware groups
/// whose leader is always an event that opened. A hardware group holds at most
/// `groupLimits.hardware` events; when the kernel refuses to add an event to a group (EINVAL
/// or ENOSPC: the group would no longer fit on the PMU, or it mixes PMUs) the event starts a
/// new group. An event that cannot open at all is reported, and the session goes on
/// without it.
///
/// Multiplexing and scaling. The kernel schedules a group onto the PMU as a whole or not at
/// all. With more hardware groups than the PMU has counters, it rotates them (every
/// perf_event_mux_interval_ms, 4 ms by default), and each group's `time_running` falls below
/// its `time_enabled`. `read()` reports, per event, the raw count, the scaling factor
/// `time_enabled / time_running` of its group over the window, and `raw × scaling`. Because
/// the members of one group are counted over exactly the same time slices, ratios inside a
/// group (instructions per cycle) are exact, and only the extrapolation to the whole window
/// is an estimate. Software events are never multiplexed (scaling 1). A group that never got
/// onto the PMU in the window (`time_running == 0`) has no value; it is reported as "not
/// counted", never as 0.
/// How to check it on a machine with a PMU: open cycles, instructions and eight more hardware
/// events (more than the PMU's counters) on a thread running a fixed loop; their scaling
/// factors must be above 1, and the scaled cycles and instructions must agree within a few
/// per cent with a session that counts only cycles and instructions over the same loop.
///
/// Windows. `start()` takes a baseline (counts and times, read while disabled) and enables
/// every group; `stop()` disables them and takes the end snapshot; `read()` returns
/// end − baseline (or now − baseline while running). Counters are never reset, so
/// `time_enabled` and `time_running` stay consistent across windows.
///
/// Privileges. Events are encoded for user and kernel mode where `PerfPrivilege` allows it,
/// for user mode only otherwise (perf_event_paranoid 2 without CAP_PERFMON); such events carry
/// the note "user mode only: ...". Kernel-only software events (context-switches,
/// cpu-migrations) are then reported as not permitted instead of counting a silent 0.
///
/// Threading. All methods may be called from any thread (the counted thread need not be the
/// caller); calls are serialised by an internal lock. The file descriptors are closed by
/// `close()` or on deinit.
/// The corresponding kernel calls are `perf_event_open(2)`, `ioctl(PERF_EVENT_IOC_ENABLE /
/// PERF_EVENT_IOC_DISABLE)` and `read(2)` on each group leader.
public final class PerfCounterSession: Sendable {
    /// What is counted.
    public let target: CounterTarget
    /// The privilege facts the session was opened under.
    public let privilege: PerfPrivilege
    /// One status per requested event, in request order.
    public let events: [CounterEventStatus]
    /// The number of groups opened.
    public var groupCount: Int { groups.count }

    private struct Group: Sendable {
        var leaderFD: Int32
        var fds: [Int32]
        /// Indices into `events`, in the order the values appear in a group read.
        var members: [Int]
        var isSoftware: Bool
    }

    private struct Snapshot: Sendable {
        var timeEnabled: UInt64
        var timeRunning: UInt64
        var values: [UInt64]
    }

    private struct State: ~Copyable {
        var closed = false
        var running = false
        var baseline: [Snapshot?]? = nil
        var end: [Snapshot?]? = nil
        /// Per group: errno of the last failed read, if any.
        var readErrors: [Int32?]
    }

    private let groups: [Group]
    private let state: Mutex<State>

    /// Resolves `names` (perf/libpfm4 names or presets) and opens them for `target`.
    /// - Throws: `CounterError` only for names libpfm4 does not know (or no names); events
    ///   that cannot be opened here are reported in `events`, never thrown.
    public convenience init(events names: [String], target: CounterTarget,
                            privilege: PerfPrivilege = .current()) throws(CounterError) {
        let specs = try PerfEvents.resolve(names, privilege: privilege)
        self.init(specs: specs, target: target, privilege: privilege)
    }

    /// Opens already resolved events for `target`. Never fails: events that do not open are
    /// reported in `events`.
    /// - Parameter groupLimits: the most events per group (see `CounterGroupLimits`).
    public init(specs: [CounterEventSpec], target: CounterTarget, privilege: PerfPrivilege = .current(),
                groupLimits: CounterGroupLimits = .default) {
        self.target = target
        self.privilege = privilege
        var statuses: [(availability: CounterAvailability, group: Int?)] = []
        var groups: [Group] = []
        var openSoftwareGroup: Int? = nil
        var openHardwareGroup: Int? = nil
        let flagsBase = PerfConstants.flagFDCloexec

        for (index, spec) in specs.enumerated() {
            let probed = PerfEvents.probe(spec, target: target, privilege: privilege)
            guard probed.isOK else {
                statuses.append((probed, nil))
                continue
            }
            // Try the group of its kind first.
            let current = spec.isSoftware ? openSoftwareGroup : openHardwareGroup
            let limit = spec.isSoftware ? groupLimits.software : groupLimits.hardware
            if let g = current, limit.map({ groups[g].fds.count < $0 }) ?? true {
                var attr = PerfEvents.openAttr(spec, target: target, leader: false)
                let fd = sys_perf_event_open(&attr, pid: target.pid, cpu: target.cpu, groupFD: groups[g].leaderFD,
                                             flags: flagsBase | spec.openFlags)
                if fd >= 0 {
                    groups[g].fds.append(fd)
                    groups[g].members.append(index)
                    statuses.append((.ok, g))
                    continue
                }
                let e = -fd
                if e != EINVAL && e != ENOSPC {
                    statuses.append((.unsupported(errno: e, reason: PerfEvents.reason(errno: e, spec: spec, target: target, privilege: privilege)), nil))
                    continue
                }
                // The group is full or cannot take this event: start a new one below.
            }
            var attr = PerfEvents.openAttr(spec, target: target, leader: true)
            let fd = sys_perf_event_open(&attr, pid: target.pid, cpu: target.cpu, groupFD: -1, flags: flagsBase | spec.openFlags)
            if fd < 0 {
                let e = -fd
                statuses.append((.unsupported(errno: e, reason: PerfEvents.reason(errno: e, spec: spec, target: target, privilege: privilege)), nil))
                continue
            }
            groups.append(Group(leaderFD: fd, fds: [fd], members: [index], isSoftware: spec.isSoftware))
            if spec.isSoftware { openSoftwareGroup = groups.count - 1 } else { openHardwareGroup = groups.count - 1 }
            statuses.append((.ok, groups.count - 1))
        }

        let userOnlyNote: String? = privilege.mayCountKernel ? nil
            : "user mode only: \(privilege.paranoidText) without CAP_PERFMON excludes kernel mode; needs CAP_PERFMON or perf_event_paranoid <= 1"
        self.events = zip(specs, statuses).map { spec, st in
            CounterEventStatus(spec: spec, availability: st.availability, group: st.group,
                               note: st.availability.isOK && spec.excludesKernel ? userOnlyNote : nil)
        }
        self.groups = groups
        self.state = Mutex(State(readErrors: Array(repeating: nil, count: groups.count)))
    }

    deinit {
        close()
    }

    /// Closes every event fd. Idempotent; later `start()`/`stop()` do nothing and `read()`
    /// returns the last window if it was stopped before closing.
    public func close() {
        state.withLock { s in
            guard !s.closed else { return }
            s.closed = true
            s.running = false
            for g in groups { for fd in g.fds.reversed() { sys_close(fd) } }
        }
    }

    /// Starts a window: takes the baseline and enables every group.
    ///
    /// Only the leader is toggled: members are opened enabled and count exactly while their
    /// leader is on the PMU. (Measured on kernel 6.18 here: after a DISABLE with
    /// PERF_IOC_FLAG_GROUP, an ENABLE with PERF_IOC_FLAG_GROUP leaves the members of a
    /// software group off, and they read 0 in every later window.)
    /// The corresponding kernel call is `ioctl(leader, PERF_EVENT_IOC_ENABLE, 0)`.
    public func start() {
        state.withLock { s in
            guard !s.closed else { return }
            s.baseline = snapshotAll(&s)
            s.end = nil
            for g in groups {
                let rc = sys_perf_ioc_enable(g.leaderFD, wholeGroup: false)
                assert(rc == 0, "PERF_EVENT_IOC_ENABLE on an open event fd failed: \(Errno.name(-rc))")
            }
            s.running = true
        }
    }

    /// Ends the window: disables every group and takes the end snapshot.
    /// The corresponding kernel call is `ioctl(leader, PERF_EVENT_IOC_DISABLE, 0)`.
    public func stop() {
        state.withLock { s in
            guard !s.closed, s.running else { return }
            for g in groups {
                let rc = sys_perf_ioc_disable(g.leaderFD, wholeGroup: false)
                assert(rc == 0, "PERF_EVENT_IOC_DISABLE on an open event fd failed: \(Errno.name(-rc))")
            }
            s.end = snapshotAll(&s)
            s.running = false
        }
    }

    /// The values of the current window (since `start()`, up to `stop()` or now), one per
    /// requested event in request order, unsupported events included with their reason.
    public func read() -> [CounterReading] {
        state.withLock { s in
            let end: [Snapshot?]?
            if s.running, !s.closed { end = snapshotAll(&s) } else { end = s.end }
            return events.enumerated().map { index, status in
                reading(for: index, status: status, baseline: s.baseline, end: end, readErrors: s.readErrors, closed: s.closed)
            }
        }
    }

    /// Runs `body` inside one window and returns its result with the readings.
    public func measure<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> (result: R, readings: [CounterReading]) {
        start()
        let result: R
        do { result = try body() } catch { stop(); throw error }
        stop()
        return (result, read())
    }

    /// Event name → "ok" or the reason, for the result file's `context.counters`.
    public var availabilityByName: [String: String] {
        var out: [String: String] = [:]
        for e in events { out[e.name] = e.availability.description }
        return out
    }

    // MARK: Internals

    private func snapshotAll(_ s: inout State) -> [Snapshot?] {
        groups.indices.map { i in
            let g = groups[i]
            let words = 3 + g.fds.count
            return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: words) { buf -> Snapshot? in
                let n = sys_perf_read(g.leaderFD, UnsafeMutableRawBufferPointer(buf))
                // Layout (PERF_FORMAT_GROUP | TOTAL_TIME_ENABLED | TOTAL_TIME_RUNNING):
                // u64 nr; u64 time_enabled; u64 time_running; u64 value[nr].
                guard n >= 3 * 8, buf[0] == UInt64(g.fds.count), n == words * 8 else {
                    s.readErrors[i] = n < 0 ? Int32(-n) : EIO
                    return nil
                }
                s.readErrors[i] = nil
                return Snapshot(timeEnabled: buf[1], timeRunning: buf[2], values: Array(buf[3..<words]))
            }
        }
    }

    private func reading(for index: Int, status: CounterEventStatus, baseline: [Snapshot?]?, end: [Snapshot?]?,
                         readErrors: [Int32?], closed: Bool) -> CounterReading {
        var r = CounterReading(name: status.name, availability: status.availability, note: status.note)
        guard status.availability.isOK, let g = status.group else { return r }
        guard let baseline, let end else {
            r.note = closed ? "not counted: the session was closed before a window was stopped"
                : "not counted: the session was not started"
            return r
        }
        guard let b = baseline[g], let e = end[g] else {
            let err = readErrors[g].map { "\(Errno.message($0)) (\(Errno.name($0)))" } ?? "unknown error"
            r.note = "not counted: reading the group failed: \(err)"
            return r
        }
        let slot = groups[g].members.firstIndex(of: index)!
        let raw = e.values[slot] &- b.values[slot]
        let enabled = e.timeEnabled &- b.timeEnabled
        let running = e.timeRunning &- b.timeRunning
        r.timeEnabled = enabled
        r.timeRunning = running
        guard running > 0 else {
            r.note = enabled == 0
                ? "not counted: the window was empty (time_enabled=0)"
                : "not counted: multiplexed out for the whole window (time_running=0 of \(enabled) ns)"
            return r
        }
        let scaling = running == enabled ? 1.0 : Double(enabled) / Double(running)
        r.raw = raw
        r.scaling = scaling
        r.scaled = Double(raw) * scaling
        return r
    }
}
#endif
