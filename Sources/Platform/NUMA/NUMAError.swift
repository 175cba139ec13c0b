// dmabench — Platform
//
// NUMA errors. Each renders as one line that names the problem and the valid choices
// (docs/architecture.md, "NUMA placement" and "Command line"); the command line turns the placement errors into exit status 64.

#if os(Linux)

/// An error from NUMA topology reading, placement parsing and validation, binding, or
/// verification.
public enum NUMAError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The placement string is not `KEY=VALUE[,KEY=VALUE...]`; the text says what is wrong.
    case malformedPlacement(String)
    /// A placement key other than submitter, engine, executor, src, dst.
    case unknownPlacementKey(String)
    /// The same key given twice.
    case duplicatePlacementKey(String)
    /// A value that is not `N`, `nodeN`, `cpuN` or `any` (or `cpuN` for a memory key).
    case invalidPlacementValue(key: String, value: String, reason: String)
    /// A node that does not exist. `key` is the placement key that named it, if any.
    case noSuchNode(Int, key: String?, available: [Int])
    /// A CPU that does not exist (or is offline).
    case noSuchCPU(Int, key: String?, available: [Int])
    /// A thread placed on a node that has no CPUs (a memory-only node).
    case nodeHasNoCPUs(node: Int, key: String, nodesWithCPUs: [Int])
    /// Memory placed on a node that has no memory (a CPU-only node).
    case nodeHasNoMemory(node: Int, key: String, nodesWithMemory: [Int])
    /// More dedicated CPUs asked of a node than it has.
    case notEnoughCPUs(node: Int, cpus: [Int], needed: Int, roles: [String])
    /// One CPU asked for by several threads where each needs its own.
    case cpuRequestedTwice(cpu: Int, roles: [String])
    /// A thread that runs, or may run, outside the CPUs it was placed on.
    case threadMisplaced(role: String, requested: String, verified: NUMAVerifiedThread)
    /// Memory with pages that are not on the node it was bound to.
    case memoryMisplaced(label: String, requestedNode: Int, verified: NUMAVerifiedMemory)
    /// A requested target with no verification recorded for it.
    case notVerified(key: String, requested: String)
    /// The NUMA topology could not be read.
    case topologyUnavailable(String)
    /// A system call failed; `hint` explains the likely cause (privilege, kernel support).
    case system(SystemError, hint: String?)

    public var description: String {
        switch self {
        case .malformedPlacement(let text):
            return "malformed placement: \(text); expected KEY=VALUE[,KEY=VALUE...] with keys \(NUMAPlacement.keyList)"
        case .unknownPlacementKey(let key):
            return "unknown placement key '\(key)'; valid keys: \(NUMAPlacement.keyList)"
        case .duplicatePlacementKey(let key):
            return "placement key '\(key)' is given twice; give each of \(NUMAPlacement.keyList) at most once"
        case .invalidPlacementValue(let key, let value, let reason):
            return "placement \(key)=\(value): \(reason)"
        case .noSuchNode(let node, let key, let available):
            return "\(prefix(key))node \(node) does not exist; this machine has \(NUMAList.describe(available, singular: "node", plural: "nodes"))"
        case .noSuchCPU(let cpu, let key, let available):
            return "\(prefix(key))cpu \(cpu) does not exist; this machine has \(NUMAList.describe(available, singular: "cpu", plural: "cpus"))"
        case .nodeHasNoCPUs(let node, let key, let nodes):
            return "\(prefix(key))node \(node) has no cpus, so no thread can run there; nodes with cpus: \(NUMAList.format(nodes))"
        case .nodeHasNoMemory(let node, let key, let nodes):
            return "\(prefix(key))node \(node) has no memory; nodes with memory: \(NUMAList.format(nodes))"
        case .notEnoughCPUs(let node, let cpus, let needed, let roles):
            return "node \(node) has \(cpus.count) \(cpus.count == 1 ? "cpu" : "cpus") (\(NUMAList.format(cpus))) but the placement needs \(needed) dedicated cpus there (\(roles.joined(separator: ", "))); place some threads on another node or share cpus"
        case .cpuRequestedTwice(let cpu, let roles):
            return "cpu \(cpu) is requested by \(roles.joined(separator: " and ")), but each thread needs its own cpu; choose distinct cpus or place the threads on a node"
        case .threadMisplaced(let role, let requested, let v):
            let node = v.node.map { "node \($0)" } ?? "no known node"
            return "\(role) thread \(v.threadID) was placed on \(requested) but runs on cpu \(v.cpu) (\(node)) with allowed cpus \(NUMAList.format(v.allowedCPUs))"
        case .memoryMisplaced(let label, let requested, let v):
            let elsewhere = v.pagesByNode.filter { $0.node != requested }
                .map { "\($0.pages) on node \($0.node)" }
            var parts = elsewhere
            if v.notResident > 0 { parts.append("\(v.notResident) not resident") }
            return "\(label): \(v.pages - v.pages(onNode: requested)) of \(v.pages) pages are not on node \(requested) (\(parts.joined(separator: ", ")))"
        case .notVerified(let key, let requested):
            return "placement \(key)=\(requested) was requested but never verified"
        case .topologyUnavailable(let text):
            return "NUMA topology unavailable: \(text)"
        case .system(let error, let hint):
            if let hint { return "\(error); \(hint)" }
            return "\(error)"
        }
    }

    private func prefix(_ key: String?) -> String { key.map { "\($0): " } ?? "" }
}

/// Lists of CPU or node numbers in the kernel's cpulist form ("0-3,8,10-11").
enum NUMAList {
    /// Parses a kernel list ("0-3,8"); nil when malformed. An empty (or blank) string is `[]`.
    static func parse(_ text: String) -> [Int]? {
        var result: [Int] = []
        let trimmed = text.filter { !$0.isWhitespace }
        if trimmed.isEmpty { return [] }
        for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
            switch bounds.count {
            case 1:
                guard let n = Int(bounds[0]), n >= 0 else { return nil }
                result.append(n)
            case 2:
                guard let a = Int(bounds[0]), let b = Int(bounds[1]), a >= 0, a <= b, b - a < 1 << 20 else { return nil }
                result.append(contentsOf: a...b)
            default:
                return nil
            }
        }
        return Array(Set(result)).sorted()
    }

    /// Formats numbers as a kernel list: [0,1,2,3,8] → "0-3,8"; [] → "none".
    static func format(_ numbers: [Int]) -> String {
        let sorted = Array(Set(numbers)).sorted()
        guard var start = sorted.first else { return "none" }
        var parts: [String] = []
        var end = start
        for n in sorted.dropFirst() {
            if n == end + 1 { end = n; continue }
            parts.append(start == end ? "\(start)" : "\(start)-\(end)")
            start = n
            end = n
        }
        parts.append(start == end ? "\(start)" : "\(start)-\(end)")
        return parts.joined(separator: ",")
    }

    /// "node 0" / "nodes 0-3" / "no nodes".
    static func describe(_ numbers: [Int], singular: String, plural: String) -> String {
        switch Set(numbers).count {
        case 0: return "no \(plural)"
        case 1: return "\(singular) \(format(numbers))"
        default: return "\(plural) \(format(numbers))"
        }
    }
}
#endif
