// dmabench — Platform
//
// A NUMA placement for one run (docs/architecture.md, "NUMA placement"): where the submitter, engine and executor
// threads run (a node or one CPU) and where the source and destination memory live (a
// node). Parsed from `--placement`, validated against the topology, enumerated by
// `--numa-matrix`.

#if os(Linux)

/// A thread of a run that can be placed.
public enum NUMAThreadRole: String, Codable, Sendable, Hashable, CaseIterable {
    /// The client thread that prepares, submits and issues descriptors.
    case submitter
    /// The backend's engine thread (or, for io_uring, where its io-wq workers may run).
    case engine
    /// The backend's callback executor thread.
    case executor
}

/// A memory region of a run that can be placed.
public enum NUMAMemoryRole: String, Codable, Sendable, Hashable, CaseIterable {
    /// The source buffer.
    case src
    /// The destination buffer.
    case dst
}

/// Where a thread runs: any CPU of a node, or exactly one CPU.
///
/// Text form: `node0` (or a plain `0`) for a node, `cpu3` for a CPU. JSON form:
/// `{"node": 0}` or `{"cpu": 3}`, so that a requested placement is a sub-object of the
/// verified one (`NUMAVerifiedThread` has both `node` and `cpu`).
public enum NUMAThreadTarget: Hashable, Sendable, Codable, CustomStringConvertible {
    case node(Int)
    case cpu(Int)

    public var description: String {
        switch self {
        case .node(let n): return "node\(n)"
        case .cpu(let c): return "cpu\(c)"
        }
    }

    /// The CPUs a thread with this target is pinned to.
    public func cpus(in topology: NUMATopology) throws(NUMAError) -> [Int] {
        switch self {
        case .node(let n): return try topology.cpus(ofNode: n)
        case .cpu(let c):
            guard topology.node(ofCPU: c) != nil else { throw .noSuchCPU(c, key: nil, available: topology.cpus) }
            return [c]
        }
    }

    /// The node of the target (the node of the CPU for `.cpu`), or nil for an unknown CPU.
    public func node(in topology: NUMATopology) -> Int? {
        switch self {
        case .node(let n): return n
        case .cpu(let c): return topology.node(ofCPU: c)
        }
    }

    private enum CodingKeys: String, CodingKey { case node, cpu }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let n = try c.decodeIfPresent(Int.self, forKey: .node) {
            self = .node(n)
        } else if let cpu = try c.decodeIfPresent(Int.self, forKey: .cpu) {
            self = .cpu(cpu)
        } else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "expected {\"node\": N} or {\"cpu\": N}"))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .node(let n): try c.encode(n, forKey: .node)
        case .cpu(let cpu): try c.encode(cpu, forKey: .cpu)
        }
    }
}

/// A placement: a target for each thread and a node for each buffer. nil means "not
/// placed": the thread is not pinned, the memory gets the default policy (first touch).
///
/// Text form (the `--placement` option): comma-separated `KEY=VALUE` with keys
/// `submitter`, `engine`, `executor`, `src`, `dst`; a thread value is `N` or `nodeN` (a
/// node), `cpuN` (one CPU) or `any`; a memory value is `N`, `nodeN` or `any`. A key left
/// out is `any`, except `executor`, which follows `engine` when left out. Example:
/// `submitter=node0,engine=cpu3,src=0,dst=1`.
///
/// JSON form: `{"submitter": {"node": 0}, "engine": {"cpu": 3}, "executor": {"cpu": 3},
/// "src": {"node": 0}, "dst": {"node": 1}}`, keys that are not placed left out.
public struct NUMAPlacement: Hashable, Sendable, Codable, CustomStringConvertible {
    public var submitter: NUMAThreadTarget?
    public var engine: NUMAThreadTarget?
    public var executor: NUMAThreadTarget?
    /// The node of the source buffer.
    public var src: Int?
    /// The node of the destination buffer.
    public var dst: Int?

    /// A placement whose executor follows the engine.
    public init(submitter: NUMAThreadTarget? = nil, engine: NUMAThreadTarget? = nil, src: Int? = nil, dst: Int? = nil) {
        self.init(submitter: submitter, engine: engine, executor: engine, src: src, dst: dst)
    }

    /// A placement with every target given.
    public init(
        submitter: NUMAThreadTarget?, engine: NUMAThreadTarget?, executor: NUMAThreadTarget?, src: Int?, dst: Int?
    ) {
        self.submitter = submitter
        self.engine = engine
        self.executor = executor
        self.src = src
        self.dst = dst
    }

    /// The placement keys, in order.
    public static let keys: [String] = NUMAThreadRole.allCases.map(\.rawValue) + NUMAMemoryRole.allCases.map(\.rawValue)
    static var keyList: String { keys.joined(separator: ", ") }

    /// The target of a thread.
    public func target(for role: NUMAThreadRole) -> NUMAThreadTarget? {
        switch role {
        case .submitter: return submitter
        case .engine: return engine
        case .executor: return executor
        }
    }

    /// The node of a buffer.
    public func node(for role: NUMAMemoryRole) -> Int? {
        switch role {
        case .src: return src
        case .dst: return dst
        }
    }

    /// The CPUs a thread is pinned to (all CPUs of its node, or its one CPU); nil when the
    /// thread is not placed. For `.engine` this is the io-wq affinity of the uring backend.
    public func cpus(for role: NUMAThreadRole, in topology: NUMATopology) throws(NUMAError) -> [Int]? {
        guard let target = target(for: role) else { return nil }
        do throws(NUMAError) {
            return try target.cpus(in: topology)
        } catch {
            throw error.withKey(role.rawValue)
        }
    }

    /// `submitter=node0,engine=cpu3,executor=cpu3,src=node0,dst=any`; parses back to an equal value.
    public var description: String {
        func text(_ t: NUMAThreadTarget?) -> String { t?.description ?? "any" }
        func text(_ n: Int?) -> String { n.map { "node\($0)" } ?? "any" }
        return "submitter=\(text(submitter)),engine=\(text(engine)),executor=\(text(executor)),src=\(text(src)),dst=\(text(dst))"
    }

    // MARK: Parsing

    /// Parses the text form (see the type's documentation). Checks syntax only; call
    /// `validate(against:)` to check the nodes and CPUs against a topology.
    public init(parsing text: String) throws(NUMAError) {
        let trimmed = text.filter { !$0.isWhitespace }.lowercased()
        guard !trimmed.isEmpty else { throw .malformedPlacement("empty placement") }
        var seen: Set<String> = []
        var threads: [NUMAThreadRole: NUMAThreadTarget?] = [:]
        var memory: [NUMAMemoryRole: Int?] = [:]
        for item in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2, !pair[0].isEmpty else {
                throw .malformedPlacement(item.isEmpty ? "empty item in '\(text)'" : "'\(item)' is not KEY=VALUE")
            }
            let key = String(pair[0])
            let value = String(pair[1])
            guard Self.keys.contains(key) else { throw .unknownPlacementKey(key) }
            guard seen.insert(key).inserted else { throw .duplicatePlacementKey(key) }
            if let role = NUMAThreadRole(rawValue: key) {
                threads[role] = try Self.parseThreadValue(key: key, value: value)
            } else if let role = NUMAMemoryRole(rawValue: key) {
                memory[role] = try Self.parseMemoryValue(key: key, value: value)
            }
        }
        let engine = threads[.engine] ?? nil
        self.init(
            submitter: threads[.submitter] ?? nil,
            engine: engine,
            executor: threads[.executor] ?? engine,
            src: memory[.src] ?? nil,
            dst: memory[.dst] ?? nil
        )
    }

    private static func parseThreadValue(key: String, value: String) throws(NUMAError) -> NUMAThreadTarget? {
        if value == "any" { return nil }
        if let n = number(value) ?? number(value, prefix: "node") { return .node(n) }
        if let c = number(value, prefix: "cpu") { return .cpu(c) }
        throw .invalidPlacementValue(key: key, value: value, reason: "expected a node (N or nodeN), a cpu (cpuN) or any")
    }

    private static func parseMemoryValue(key: String, value: String) throws(NUMAError) -> Int? {
        if value == "any" { return nil }
        if let n = number(value) ?? number(value, prefix: "node") { return n }
        if number(value, prefix: "cpu") != nil {
            throw .invalidPlacementValue(key: key, value: value, reason: "memory is placed on a node (N or nodeN), not on a cpu")
        }
        throw .invalidPlacementValue(key: key, value: value, reason: "expected a node (N or nodeN) or any")
    }

    /// A non-negative decimal number after `prefix`, at most 6 digits.
    private static func number(_ text: String, prefix: String = "") -> Int? {
        guard text.hasPrefix(prefix) else { return nil }
        let digits = text.dropFirst(prefix.count)
        guard !digits.isEmpty, digits.count <= 6, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(digits)
    }

    // MARK: Validation

    /// Checks every target against the topology: each node exists, thread nodes have CPUs,
    /// memory nodes have memory, each CPU exists. The first problem is thrown, naming the
    /// key and the valid choices ("src: node 1 does not exist; this machine has node 0").
    public func validate(against topology: NUMATopology) throws(NUMAError) {
        for role in NUMAThreadRole.allCases {
            guard let target = target(for: role) else { continue }
            let key = role.rawValue
            switch target {
            case .node(let n):
                guard let node = topology.node(n) else { throw .noSuchNode(n, key: key, available: topology.nodeIDs) }
                guard node.hasCPUs else { throw .nodeHasNoCPUs(node: n, key: key, nodesWithCPUs: topology.nodesWithCPUs) }
            case .cpu(let c):
                guard topology.node(ofCPU: c) != nil else { throw .noSuchCPU(c, key: key, available: topology.cpus) }
            }
        }
        for role in NUMAMemoryRole.allCases {
            guard let n = node(for: role) else { continue }
            let key = role.rawValue
            guard let node = topology.node(n) else { throw .noSuchNode(n, key: key, available: topology.nodeIDs) }
            guard node.hasMemory else { throw .nodeHasNoMemory(node: n, key: key, nodesWithMemory: topology.nodesWithMemory) }
        }
    }

    /// Gives each placed thread a CPU of its own: a thread placed on a CPU gets that CPU, a
    /// thread placed on a node gets the lowest CPU of the node that no other thread has.
    /// `counts` says how many threads of each role there are (for example several engine
    /// threads for several channels); roles not listed count one, roles that are not placed
    /// get no CPUs. Throws `.notEnoughCPUs` when a node has fewer CPUs than the threads
    /// placed on it ("node 0 has 2 cpus (0-1) but the placement needs 3 dedicated cpus
    /// there (submitter, engine, executor)"), and `.cpuRequestedTwice` when two threads
    /// name the same CPU.
    public func dedicatedCPUs(
        in topology: NUMATopology, counts: [NUMAThreadRole: Int] = [:]
    ) throws(NUMAError) -> [NUMAThreadRole: [Int]] {
        try validate(against: topology)
        var result: [NUMAThreadRole: [Int]] = [:]
        var owner: [Int: String] = [:]
        // Threads placed on one CPU first: they have no choice.
        for role in NUMAThreadRole.allCases {
            guard case .cpu(let c)? = target(for: role) else { continue }
            let count = counts[role] ?? 1
            guard count > 0 else { continue }
            if let other = owner[c] { throw .cpuRequestedTwice(cpu: c, roles: [other, role.rawValue]) }
            if count > 1 { throw .cpuRequestedTwice(cpu: c, roles: ["\(count) \(role.rawValue) threads"]) }
            owner[c] = role.rawValue
            result[role] = [c]
        }
        // Then threads placed on a node, in role order, from the node's free CPUs.
        for role in NUMAThreadRole.allCases {
            guard case .node(let n)? = target(for: role) else { continue }
            let count = counts[role] ?? 1
            guard count > 0 else { continue }
            let cpus = topology.node(n)?.cpus ?? []
            let free = cpus.filter { owner[$0] == nil }
            guard free.count >= count else {
                // Name every thread that wants a CPU of this node.
                var roles: [String] = []
                var needed = 0
                for r in NUMAThreadRole.allCases {
                    let k = counts[r] ?? 1
                    guard k > 0, let t = target(for: r), t.node(in: topology) == n else { continue }
                    roles.append(k == 1 ? r.rawValue : "\(k) \(r.rawValue)")
                    needed += k
                }
                throw .notEnoughCPUs(node: n, cpus: cpus, needed: needed, roles: roles)
            }
            let chosen = Array(free.prefix(count))
            for c in chosen { owner[c] = role.rawValue }
            result[role] = chosen
        }
        return result
    }

    // MARK: Matrix

    /// Every cell of `--numa-matrix`: submitter node × engine node × src node × dst node,
    /// threads over the nodes with CPUs, memory over the nodes with memory, the executor
    /// with the engine. The source node varies fastest. One node gives one cell, two nodes
    /// 16, four nodes 256.
    public static func matrixCells(of topology: NUMATopology) -> [NUMAPlacement] {
        let threadNodes = topology.nodesWithCPUs
        let memoryNodes = topology.nodesWithMemory
        var cells: [NUMAPlacement] = []
        cells.reserveCapacity(threadNodes.count * threadNodes.count * memoryNodes.count * memoryNodes.count)
        for s in threadNodes {
            for e in threadNodes {
                for d in memoryNodes {
                    for src in memoryNodes {
                        cells.append(NUMAPlacement(submitter: .node(s), engine: .node(e), src: src, dst: d))
                    }
                }
            }
        }
        return cells
    }

    // MARK: Codable

    private enum CodingKeys: String, CodingKey { case submitter, engine, executor, src, dst }
    private struct MemoryTarget: Codable { var node: Int }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            submitter: try c.decodeIfPresent(NUMAThreadTarget.self, forKey: .submitter),
            engine: try c.decodeIfPresent(NUMAThreadTarget.self, forKey: .engine),
            executor: try c.decodeIfPresent(NUMAThreadTarget.self, forKey: .executor),
            src: try c.decodeIfPresent(MemoryTarget.self, forKey: .src)?.node,
            dst: try c.decodeIfPresent(MemoryTarget.self, forKey: .dst)?.node
        )
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(submitter, forKey: .submitter)
        try c.encodeIfPresent(engine, forKey: .engine)
        try c.encodeIfPresent(executor, forKey: .executor)
        try c.encodeIfPresent(src.map(MemoryTarget.init), forKey: .src)
        try c.encodeIfPresent(dst.map(MemoryTarget.init), forKey: .dst)
    }
}

extension NUMAError {
    /// The same error, naming the placement key.
    func withKey(_ key: String) -> NUMAError {
        switch self {
        case .noSuchNode(let n, nil, let available): return .noSuchNode(n, key: key, available: available)
        case .noSuchCPU(let c, nil, let available): return .noSuchCPU(c, key: key, available: available)
        default: return self
        }
    }
}
#endif
