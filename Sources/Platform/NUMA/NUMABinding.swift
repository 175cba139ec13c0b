// dmabench — Platform
//
// Thread placement and its verification: pin a thread to a node's CPUs or to one CPU,
// then check where it runs and where it may run.

#if os(Linux)
import Glibc

/// Where a thread was seen to run.
///
/// JSON form: `{"threadID": 1234, "cpu": 1, "node": 0, "allowedCPUs": [0, 1]}`, so that a
/// requested `{"node": 0}` or `{"cpu": 1}` is a sub-object of it.
public struct NUMAVerifiedThread: Codable, Sendable, Hashable {
    /// The Linux thread id.
    public var threadID: Int32
    /// The CPU the thread ran on when it was checked (sched_getcpu(3), or field 39 of
    /// /proc/self/task/TID/stat for another thread).
    public var cpu: Int
    /// The node of that CPU; nil when the topology does not list it.
    public var node: Int?
    /// The CPUs the thread may run on (its affinity mask).
    public var allowedCPUs: [Int]

    public init(threadID: Int32, cpu: Int, node: Int?, allowedCPUs: [Int]) {
        self.threadID = threadID
        self.cpu = cpu
        self.node = node
        self.allowedCPUs = allowedCPUs
    }

    /// Whether the thread runs on, and may only run on, the CPUs of `target`.
    public func satisfies(_ target: NUMAThreadTarget, in topology: NUMATopology) -> Bool {
        guard let cpus = try? target.cpus(in: topology), !allowedCPUs.isEmpty else { return false }
        let allowed = Set(cpus)
        return allowed.contains(cpu) && allowedCPUs.allSatisfy(allowed.contains)
    }
}

/// Pinning threads to a placement and checking where they run.
public enum NUMABinding {
    /// Pins the calling thread to the CPUs of `target` (all CPUs of a node, or one CPU),
    /// then verifies it: it runs on one of them and may run on no other. With `target`
    /// nil the thread is left as it is and only observed.
    /// The corresponding kernel call is `sched_setaffinity(2)` (through
    /// `pthread_setaffinity_np(3)`), which moves the caller before it returns.
    @discardableResult
    public static func bindCurrentThread(
        _ role: NUMAThreadRole, to target: NUMAThreadTarget?, topology: NUMATopology
    ) throws(NUMAError) -> NUMAVerifiedThread {
        if let target {
            let cpus: [Int]
            do throws(NUMAError) {
                cpus = try target.cpus(in: topology)
            } catch {
                throw error.withKey(role.rawValue)
            }
            guard !cpus.isEmpty else {
                throw .nodeHasNoCPUs(node: target.node(in: topology) ?? -1, key: role.rawValue, nodesWithCPUs: topology.nodesWithCPUs)
            }
            do throws(SystemError) {
                try CPU.pinCurrentThread(to: cpus)
            } catch {
                let allowed = processAllowedCPUs().map(NUMAList.format) ?? "unknown"
                throw .system(
                    error,
                    hint: "cannot pin the \(role.rawValue) thread to \(target) (cpus \(NUMAList.format(cpus))); this process may run on cpus \(allowed) (cpuset or taskset)"
                )
            }
        }
        return try verifyCurrentThread(role, expected: target, topology: topology)
    }

    /// Observes the calling thread and, if `expected` is given, checks it: it runs on one
    /// of the target's CPUs and may run on no other. A mismatch is an error.
    /// The corresponding calls are `sched_getcpu(3)` and `sched_getaffinity(2)`.
    public static func verifyCurrentThread(
        _ role: NUMAThreadRole, expected: NUMAThreadTarget?, topology: NUMATopology
    ) throws(NUMAError) -> NUMAVerifiedThread {
        let cpu = CPU.current
        let observed = NUMAVerifiedThread(
            threadID: CPU.currentThreadID, cpu: cpu, node: topology.node(ofCPU: cpu), allowedCPUs: CPU.currentAffinity()
        )
        return try check(observed, role: role, expected: expected, topology: topology)
    }

    /// Observes another thread of this process by its Linux thread id (`OSThread.threadID`)
    /// and, if `expected` is given, checks it. Reads `/proc/self/task/TID/stat` (the CPU it
    /// last ran on) and `/proc/self/task/TID/status` (`Cpus_allowed_list`); no privilege is
    /// needed for threads of our own process. A thread that sleeps reports the CPU it last
    /// ran on.
    public static func verifyThread(
        id threadID: Int32, role: NUMAThreadRole, expected: NUMAThreadTarget?, topology: NUMATopology
    ) throws(NUMAError) -> NUMAVerifiedThread {
        let dir = "/proc/self/task/\(threadID)"
        guard let stat = NUMASysFile.read(dir + "/stat"), let status = NUMASysFile.read(dir + "/status") else {
            throw .system(SystemError("open(\(dir)/stat)", errno: ESRCH), hint: "thread \(threadID) is not a live thread of this process")
        }
        // Fields after the command name "(...)": field 3 is the state, field 39 the processor.
        guard let close = stat.lastIndex(of: ")") else {
            throw .system(SystemError("read(\(dir)/stat)", errno: EIO), hint: "unexpected format")
        }
        let fields = stat[stat.index(after: close)...].split(whereSeparator: \.isWhitespace)
        guard fields.count > 36, let cpu = Int(fields[36]) else {
            throw .system(SystemError("read(\(dir)/stat)", errno: EIO), hint: "no processor field")
        }
        let allowed = cpusAllowed(inStatus: status) ?? []
        let observed = NUMAVerifiedThread(threadID: threadID, cpu: cpu, node: topology.node(ofCPU: cpu), allowedCPUs: allowed)
        return try check(observed, role: role, expected: expected, topology: topology)
    }

    /// The CPUs the process may use (`Cpus_allowed_list` of /proc/self/status: the main
    /// thread's affinity within the cpuset), nil if unreadable.
    public static func processAllowedCPUs() -> [Int]? {
        NUMASysFile.read("/proc/self/status").flatMap(cpusAllowed(inStatus:))
    }

    static func cpusAllowed(inStatus status: String) -> [Int]? {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) else {
            return nil
        }
        return NUMAList.parse(String(line.dropFirst("Cpus_allowed_list:".count)))
    }

    private static func check(
        _ observed: NUMAVerifiedThread, role: NUMAThreadRole, expected: NUMAThreadTarget?, topology: NUMATopology
    ) throws(NUMAError) -> NUMAVerifiedThread {
        guard let expected else { return observed }
        guard observed.satisfies(expected, in: topology) else {
            throw .threadMisplaced(role: role.rawValue, requested: expected.description, verified: observed)
        }
        return observed
    }
}

extension NUMAPlacement {
    /// Pins the calling thread as `role` of this placement and verifies it (see
    /// `NUMABinding.bindCurrentThread`).
    @discardableResult
    public func bindCurrentThread(as role: NUMAThreadRole, topology: NUMATopology) throws(NUMAError) -> NUMAVerifiedThread {
        try NUMABinding.bindCurrentThread(role, to: target(for: role), topology: topology)
    }

    /// Maps a buffer for `role` on this placement's node for it (default policy when not
    /// placed), first-touched by the calling thread.
    public func makeBuffer(
        for role: NUMAMemoryRole, byteCount: Int, topology: NUMATopology
    ) throws(NUMAError) -> NUMABuffer {
        try NUMABuffer(byteCount: byteCount, node: node(for: role), topology: topology, label: role.rawValue)
    }
}

/// A placement as verified: where each thread was seen to run and where each buffer's
/// pages are. The harness fills it as it binds threads and buffers, then calls
/// `check(against:topology:)`; the result file stores it next to the requested placement
/// (`placement.requested` / `placement.verified`, docs/architecture.md, "Result files"). Every field of a
/// requested target (`{"node": 0}`, `{"cpu": 3}`) equals the same field here when the
/// placement holds.
public struct NUMAVerifiedPlacement: Codable, Sendable, Hashable {
    public var submitter: NUMAVerifiedThread?
    public var engine: NUMAVerifiedThread?
    public var executor: NUMAVerifiedThread?
    public var src: NUMAVerifiedMemory?
    public var dst: NUMAVerifiedMemory?

    public init(
        submitter: NUMAVerifiedThread? = nil, engine: NUMAVerifiedThread? = nil, executor: NUMAVerifiedThread? = nil,
        src: NUMAVerifiedMemory? = nil, dst: NUMAVerifiedMemory? = nil
    ) {
        self.submitter = submitter
        self.engine = engine
        self.executor = executor
        self.src = src
        self.dst = dst
    }

    public subscript(role: NUMAThreadRole) -> NUMAVerifiedThread? {
        get {
            switch role {
            case .submitter: return submitter
            case .engine: return engine
            case .executor: return executor
            }
        }
        set {
            switch role {
            case .submitter: submitter = newValue
            case .engine: engine = newValue
            case .executor: executor = newValue
            }
        }
    }

    public subscript(role: NUMAMemoryRole) -> NUMAVerifiedMemory? {
        get { role == .src ? src : dst }
        set { if role == .src { src = newValue } else { dst = newValue } }
    }

    /// Checks every placed target of `requested`: each thread runs on and may only run on
    /// its target's CPUs, each buffer has every page on its node. A target that was
    /// requested but not verified is an error too (the harness forgot a check).
    public func check(against requested: NUMAPlacement, topology: NUMATopology) throws(NUMAError) {
        for role in NUMAThreadRole.allCases {
            guard let target = requested.target(for: role) else { continue }
            guard let seen = self[role] else {
                throw .notVerified(key: role.rawValue, requested: target.description)
            }
            guard seen.satisfies(target, in: topology) else {
                throw .threadMisplaced(role: role.rawValue, requested: target.description, verified: seen)
            }
        }
        for role in NUMAMemoryRole.allCases {
            guard let node = requested.node(for: role) else { continue }
            guard let seen = self[role] else {
                throw .notVerified(key: role.rawValue, requested: "node\(node)")
            }
            guard seen.node == node else { throw .memoryMisplaced(label: role.rawValue, requestedNode: node, verified: seen) }
        }
    }
}
#endif
