// dmabench — Harness
//
// Placement of one point (docs/architecture.md, "NUMA placement"): the submitter thread is bound here, the engine and
// executor threads through the channel options, the source and destination memory with
// mbind before first touch. After first touch everything is verified (move_pages for every
// page, /proc for every thread) and the verified placement goes into the result. A
// mismatch is an error, not a footnote.

import DMAEngine
import Platform

/// The requested placement of a point, and how to turn it into channel options.
public struct PointPlacement: Sendable, Hashable {
    public var request: NUMAPlacement
    /// True for the default placement (no --placement, no --numa-matrix): submitter on cpu0,
    /// engine on cpu1, memory left to the kernel's default policy.
    public var isDefault: Bool
    /// The CPU each placed thread gets (its own CPU: `NUMAPlacement.dedicatedCPUs`).
    var assigned: [NUMAThreadRole: Int] = [:]

    public init(request: NUMAPlacement, isDefault: Bool = false) {
        self.request = request
        self.isDefault = isDefault
    }

    /// A placement whose submitter and engine threads each get a CPU of their own. Throws
    /// when a node has fewer CPUs than the threads placed on it ("node 0 has 1 cpus (0) but
    /// the placement needs 2 dedicated cpus there (submitter, engine)"), or when two threads
    /// name the same CPU. The executor shares the engine's CPU unless placed elsewhere.
    public init(dedicated request: NUMAPlacement, topology: NUMATopology) throws(NUMAError) {
        self.request = request
        self.isDefault = false
        var counts: [NUMAThreadRole: Int] = [:]
        if request.executor == request.engine { counts[.executor] = 0 }
        let cpus = try request.dedicatedCPUs(in: topology, counts: counts)
        for (role, list) in cpus { if let c = list.first { assigned[role] = c } }
    }

    /// Submitter on cpu0 and engine on cpu1 when there are two CPUs or more (as the anchors do).
    public static var `default`: PointPlacement {
        let n = CPU.onlineCount
        return PointPlacement(
            request: NUMAPlacement(submitter: .cpu(0), engine: .cpu(n > 1 ? 1 : 0), executor: nil, src: nil, dst: nil),
            isDefault: true)
    }

    /// One CPU for a thread target: the CPU itself, or the first CPU of the node that is not
    /// `avoid` (so that submitter and engine get their own CPUs when the node has two).
    static func cpu(for target: NUMAThreadTarget?, avoid: Int?, topology: NUMATopology) -> Int? {
        guard let target else { return nil }
        switch target {
        case .cpu(let c): return c
        case .node:
            let cpus = (try? target.cpus(in: topology)) ?? []
            return cpus.first(where: { $0 != avoid }) ?? cpus.first
        }
    }

    public func submitterCPU(topology: NUMATopology) -> Int? {
        assigned[.submitter] ?? Self.cpu(for: request.submitter, avoid: nil, topology: topology)
    }

    public func engineCPU(topology: NUMATopology) -> Int? {
        assigned[.engine] ?? Self.cpu(for: request.engine, avoid: submitterCPU(topology: topology), topology: topology)
    }

    public func executorCPU(topology: NUMATopology) -> Int? {
        // The executor follows the engine unless asked otherwise; with the default placement
        // the backend chooses.
        if isDefault { return nil }
        if request.executor == request.engine { return engineCPU(topology: topology) }
        return assigned[.executor] ?? Self.cpu(for: request.executor, avoid: submitterCPU(topology: topology), topology: topology)
    }

    /// The requested placement in the result's vocabulary: "cpuN"/"nodeN" for threads, a
    /// node number for memory, null when not placed.
    public var requestedCell: PlacementRecord.Cell {
        PlacementRecord.Cell(
            submitter: request.submitter?.description, engine: request.engine?.description, src: request.src, dst: request.dst)
    }
}

public struct PlacementError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

/// Binds and verifies memory for a point.
public struct MemoryPlacer: Sendable {
    public var topology: NUMATopology
    public var srcNode: Int?
    public var dstNode: Int?

    public init(topology: NUMATopology, srcNode: Int?, dstNode: Int?) {
        self.topology = topology
        self.srcNode = srcNode
        self.dstNode = dstNode
    }

    /// Binds `buffer` to the node asked for its role, before the caller's first touch.
    public func bind(_ buffer: DMABuffer, role: NUMAMemoryRole) throws {
        guard let node = role == .src ? srcNode : dstNode else { return }
        do { try NUMAMemory.bind(buffer.base, byteCount: buffer.count, toNode: node, topology: topology) } catch {
            throw PlacementError(description: "\(role.rawValue): \(error)")
        }
    }

    /// After first touch: where every page of `buffer` is. Throws when a node was asked for
    /// and any page lies elsewhere.
    public func verify(_ buffer: DMABuffer, role: NUMAMemoryRole) throws -> NUMAVerifiedMemory {
        let label = role.rawValue
        do {
            if let node = role == .src ? srcNode : dstNode {
                return try NUMAMemory.verify(buffer.base, byteCount: buffer.count, node: node, label: label)
            }
            return try NUMAMemory.observe(buffer.base, byteCount: buffer.count)
        } catch {
            throw PlacementError(description: "\(error)")
        }
    }
}

/// What a workload reports about its memory after first touch.
public struct VerifiedMemory: Sendable {
    public var src: NUMAVerifiedMemory?
    public var dst: NUMAVerifiedMemory?
}
