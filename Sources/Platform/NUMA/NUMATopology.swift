// dmabench — Platform
//
// NUMA topology: the nodes, the CPUs of each node, its memory and the distances, read
// from sysfs (/sys/devices/system/node), the same files libnuma and `numactl -H` read.

#if os(Linux)
import Glibc

/// The NUMA nodes of this machine.
///
/// Read it with `NUMATopology.current()`. It is a plain value (Codable, for the result
/// file's context), so tests and the matrix can also build one by hand.
public struct NUMATopology: Codable, Sendable, Hashable, CustomStringConvertible {
    /// One NUMA node.
    public struct Node: Codable, Sendable, Hashable, Identifiable {
        /// The node number, as the kernel and libnuma number it.
        public var id: Int
        /// The online CPUs of the node, ascending (sysfs `nodeN/cpulist`).
        public var cpus: [Int]
        /// The node's memory in bytes (`MemTotal` of `nodeN/meminfo`); 0 for a CPU-only
        /// node, nil when unknown.
        public var memoryBytes: Int?
        /// `distances[i]` is the distance to `nodes[i]` of the topology (sysfs `nodeN/distance`,
        /// the ACPI SLIT: 10 for the node itself). Empty when unknown.
        public var distances: [Int]

        public init(id: Int, cpus: [Int], memoryBytes: Int?, distances: [Int]) {
            self.id = id
            self.cpus = cpus
            self.memoryBytes = memoryBytes
            self.distances = distances
        }

        /// Whether threads can run on the node.
        public var hasCPUs: Bool { !cpus.isEmpty }
        /// Whether memory can be bound to the node (unknown size counts as yes).
        public var hasMemory: Bool { (memoryBytes ?? 1) > 0 }
    }

    /// The online nodes, ascending by id.
    public var nodes: [Node]
    /// Set when the topology was not read from sysfs (a kernel without NUMA support): says
    /// what was assumed instead.
    public var note: String?

    public init(nodes: [Node], note: String? = nil) {
        self.nodes = nodes.sorted { $0.id < $1.id }
        self.note = note
    }

    /// The node ids, ascending.
    public var nodeIDs: [Int] { nodes.map(\.id) }
    /// Every CPU of every node, ascending.
    public var cpus: [Int] { nodes.flatMap(\.cpus).sorted() }
    /// The nodes that have CPUs (where threads can be placed).
    public var nodesWithCPUs: [Int] { nodes.filter(\.hasCPUs).map(\.id) }
    /// The nodes that have memory (where buffers can be bound).
    public var nodesWithMemory: [Int] { nodes.filter(\.hasMemory).map(\.id) }

    /// The node with this id, or nil.
    public func node(_ id: Int) -> Node? { nodes.first { $0.id == id } }

    /// The node a CPU belongs to, or nil for a CPU this topology does not list.
    /// The corresponding libnuma call is `numa_node_of_cpu()`.
    public func node(ofCPU cpu: Int) -> Int? { nodes.first { $0.cpus.contains(cpu) }?.id }

    /// The CPUs of a node: what threads placed on the node are pinned to, and what the
    /// io_uring backend gives `io_uring_register_iowq_aff()` for an engine placed there.
    /// The corresponding libnuma call is `numa_node_to_cpus()`.
    public func cpus(ofNode id: Int) throws(NUMAError) -> [Int] {
        guard let node = node(id) else { throw .noSuchNode(id, key: nil, available: nodeIDs) }
        return node.cpus
    }

    /// The distance between two nodes (10 = local), or nil when unknown.
    /// The corresponding libnuma call is `numa_distance()`.
    public func distance(from a: Int, to b: Int) -> Int? {
        guard let from = node(a), let index = nodes.firstIndex(where: { $0.id == b }),
              index < from.distances.count else { return nil }
        return from.distances[index]
    }

    // MARK: Reading

    /// The topology of this machine, from sysfs. On a kernel without NUMA support (no
    /// /sys/devices/system/node) it is one node 0 with every online CPU and all memory,
    /// and `note` says so. Reads sysfs on every call (a few small files).
    public static func current() -> NUMATopology {
        do throws(NUMAError) {
            return try read(sysfsRoot: "/sys")
        } catch {
            return singleNodeFallback(reason: error.description)
        }
    }

    /// Reads the topology from a sysfs tree: `ROOT/devices/system/node/{online,nodeN/…}`
    /// and `ROOT/devices/system/cpu/online`. Tests point `sysfsRoot` at a fake tree.
    public static func read(sysfsRoot: String) throws(NUMAError) -> NUMATopology {
        let nodeDir = sysfsRoot + "/devices/system/node"
        guard let onlineText = NUMASysFile.read(nodeDir + "/online") else {
            throw .topologyUnavailable("cannot read \(nodeDir)/online (kernel without CONFIG_NUMA?)")
        }
        guard let online = NUMAList.parse(onlineText), !online.isEmpty else {
            throw .topologyUnavailable("\(nodeDir)/online is malformed: '\(onlineText.numaTrimmedLine)'")
        }
        let onlineCPUs = NUMASysFile.read(sysfsRoot + "/devices/system/cpu/online").flatMap(NUMAList.parse)
        var nodes: [Node] = []
        for id in online {
            let dir = "\(nodeDir)/node\(id)"
            guard let cpuText = NUMASysFile.read(dir + "/cpulist") else {
                throw .topologyUnavailable("cannot read \(dir)/cpulist")
            }
            guard var cpus = NUMAList.parse(cpuText) else {
                throw .topologyUnavailable("\(dir)/cpulist is malformed: '\(cpuText.numaTrimmedLine)'")
            }
            if let onlineCPUs { cpus = cpus.filter(onlineCPUs.contains) }
            let memory = NUMASysFile.read(dir + "/meminfo").flatMap(parseMemTotal)
            var distances: [Int] = []
            if let text = NUMASysFile.read(dir + "/distance") {
                let values = text.split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
                if values.count == online.count { distances = values }
            }
            nodes.append(Node(id: id, cpus: cpus, memoryBytes: memory, distances: distances))
        }
        return NUMATopology(nodes: nodes)
    }

    /// One node 0 with every online CPU and the machine's memory.
    static func singleNodeFallback(reason: String) -> NUMATopology {
        let cpus = NUMASysFile.read("/sys/devices/system/cpu/online").flatMap(NUMAList.parse)
            ?? Array(0..<max(1, CPU.onlineCount))
        let pages = sysconf(Int32(_SC_PHYS_PAGES))
        let memory = pages > 0 ? pages * PageMemory.pageSize : nil
        return NUMATopology(
            nodes: [Node(id: 0, cpus: cpus, memoryBytes: memory, distances: [10])],
            note: "treated as one node: \(reason)"
        )
    }

    /// "Node 0 MemTotal:        4548812 kB" → bytes.
    static func parseMemTotal(_ meminfo: String) -> Int? {
        for line in meminfo.split(separator: "\n") where line.contains("MemTotal:") {
            let fields = line.split(whereSeparator: \.isWhitespace)
            guard let index = fields.firstIndex(of: "MemTotal:"), index + 1 < fields.count,
                  let kib = Int(fields[index + 1]) else { return nil }
            return kib * 1024
        }
        return nil
    }

    // MARK: Rendering

    /// The text `dmabench list topology` prints, in the spirit of `numactl -H`:
    ///
    ///     2 NUMA nodes (0-1), 4 cpus
    ///     node 0: cpus 0-1, memory 1024 MiB
    ///     node 1: cpus 2-3, memory 1024 MiB
    ///     distances:
    ///       node    0    1
    ///          0   10   20
    ///          1   20   10
    public func rendered() -> String {
        var lines: [String] = []
        let count = nodes.count
        lines.append("\(count) NUMA \(count == 1 ? "node" : "nodes") (\(NUMAList.format(nodeIDs))), \(cpus.count) \(cpus.count == 1 ? "cpu" : "cpus")")
        if let note { lines.append("note: \(note)") }
        for node in nodes {
            let cpuText = node.cpus.isEmpty ? "no cpus" : "cpus \(NUMAList.format(node.cpus))"
            let memText: String
            switch node.memoryBytes {
            case nil: memText = "memory unknown"
            case 0?: memText = "no memory"
            case let bytes?: memText = "memory \(bytes / (1 << 20)) MiB"
            }
            lines.append("node \(node.id): \(cpuText), \(memText)")
        }
        if nodes.allSatisfy({ $0.distances.count == count }) {
            lines.append("distances:")
            func pad(_ s: String) -> String { String(repeating: " ", count: max(0, 5 - s.count)) + s }
            lines.append("  node" + nodes.map { pad("\($0.id)") }.joined())
            for node in nodes {
                lines.append("  " + pad("\(node.id)").dropFirst() + node.distances.map { pad("\($0)") }.joined())
            }
        } else {
            lines.append("distances: unknown")
        }
        return lines.joined(separator: "\n")
    }

    public var description: String { rendered() }
}

/// Small text files (sysfs, procfs), read whole with read(2).
enum NUMASysFile {
    static func read(_ path: String, limit: Int = 1 << 20) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension String {
    /// The first line, without surrounding whitespace (for messages).
    var numaTrimmedLine: String {
        let line = split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return String(line.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
#endif
