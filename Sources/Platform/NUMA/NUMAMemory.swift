// dmabench — Platform
//
// Node-bound memory and its verification. Memory is bound with mbind(MPOL_BIND) on a
// fresh mapping, so the pages come from the node whichever thread touches them first;
// then move_pages(2) in query mode reports the node of every page.
//
// Why not numa_alloc_onnode(): on a node that does not exist it prints
// "mbind: Invalid argument" and still returns memory (docs/architecture.md, "libnuma: numa_alloc_onnode"). Here every node is
// checked against the topology first, and every error is thrown.

#if os(Linux)
import CNUMA
import Glibc

// MARK: System calls, wrapped once

/// mbind(2). Returns 0 or -errno.
@inline(never)
func sys_mbind(_ address: UnsafeMutableRawPointer, _ length: Int, _ mode: Int32, _ mask: [UInt], _ flags: UInt32) -> Int32 {
    // maxnode counts bits and the kernel reads maxnode - 1 of them: one more than the mask holds.
    let maxnode = UInt(mask.count * UInt.bitWidth + 1)
    let rc = mask.withUnsafeBufferPointer { mbind(address, UInt(length), mode, $0.baseAddress, maxnode, flags) }
    return rc == 0 ? 0 : -errno
}

/// move_pages(2) on the calling process with `nodes` nil: a query, no page moves.
/// Returns 0 or -errno; `status` gets the node of each page or -errno for it.
@inline(never)
func sys_move_pages_query(
    _ pages: UnsafeMutablePointer<UnsafeMutableRawPointer?>, _ count: Int, _ status: UnsafeMutablePointer<Int32>
) -> Int32 {
    let rc = move_pages(0, UInt(count), pages, nil, status, 0)
    return rc == 0 ? 0 : (rc < 0 ? -errno : -EIO)  // > 0: pages not migrated, impossible for a query
}

/// get_mempolicy(2) with MPOL_F_NODE | MPOL_F_ADDR: the node of the page at `address`
/// (faulting it in if needed). Returns the node or -errno.
@inline(never)
func sys_get_mempolicy_node(_ address: UnsafeRawPointer) -> Int32 {
    var node: Int32 = -1
    let rc = get_mempolicy(&node, nil, 0, UnsafeMutableRawPointer(mutating: address), UInt32(MPOL_F_NODE | MPOL_F_ADDR))
    return rc == 0 ? node : -errno
}

// MARK: Results

/// How many pages of a region are on one node.
public struct NUMAPageCount: Codable, Sendable, Hashable {
    public var node: Int
    public var pages: Int

    public init(node: Int, pages: Int) {
        self.node = node
        self.pages = pages
    }
}

/// Where the pages of a region are, as `move_pages(2)` reports them.
///
/// JSON form: `{"node": 0, "pages": 16, "pagesByNode": [{"node": 0, "pages": 16}],
/// "notResident": 0}`, so that a requested `{"node": 0}` is a sub-object of it.
public struct NUMAVerifiedMemory: Codable, Sendable, Hashable {
    /// The node that holds every page; nil when the pages are on several nodes or some are
    /// not resident.
    public var node: Int?
    /// Pages in the region.
    public var pages: Int
    /// Resident pages per node, ascending by node.
    public var pagesByNode: [NUMAPageCount]
    /// Pages that are not resident (never touched, swapped out) or could not be queried.
    public var notResident: Int

    public init(pages: Int, pagesByNode: [NUMAPageCount], notResident: Int) {
        self.pages = pages
        self.pagesByNode = pagesByNode.sorted { $0.node < $1.node }
        self.notResident = notResident
        self.node = (notResident == 0 && pagesByNode.count == 1) ? pagesByNode[0].node : nil
    }

    /// The pages on `node`.
    public func pages(onNode node: Int) -> Int { pagesByNode.first { $0.node == node }?.pages ?? 0 }
}

// MARK: Binding and queries on any region

/// NUMA operations on memory regions: bind, query, verify.
public enum NUMAMemory {
    /// Binds `[address, address + byteCount)` to `node` with `MPOL_BIND`. Pages touched
    /// afterwards come from `node` only (if the node runs out of memory the process is
    /// OOM-killed rather than given other memory); pages already present are moved there
    /// (`MPOL_MF_MOVE | MPOL_MF_STRICT`: it fails with EIO if one cannot move). `address`
    /// must be page-aligned. The node is checked against `topology` first.
    /// The corresponding kernel call is `mbind(2)`.
    public static func bind(
        _ address: UnsafeMutableRawPointer, byteCount: Int, toNode node: Int, topology: NUMATopology
    ) throws(NUMAError) {
        guard let n = topology.node(node) else { throw .noSuchNode(node, key: nil, available: topology.nodeIDs) }
        guard n.hasMemory else { throw .nodeHasNoMemory(node: node, key: "mbind", nodesWithMemory: topology.nodesWithMemory) }
        guard Int(bitPattern: address) % PageMemory.pageSize == 0 else {
            throw .system(SystemError("mbind(node \(node))", errno: EINVAL), hint: "the address is not page-aligned")
        }
        var mask = [UInt](repeating: 0, count: node / UInt.bitWidth + 1)
        mask[node / UInt.bitWidth] = 1 << UInt(node % UInt.bitWidth)
        let flags = UInt32(MPOL_MF_STRICT | MPOL_MF_MOVE)
        let rc = sys_mbind(address, PageMemory.roundUp(byteCount), Int32(MPOL_BIND), mask, flags)
        if rc != 0 {
            throw .system(SystemError("mbind(MPOL_BIND, node \(node))", errno: -rc), hint: hint(for: -rc, node: node))
        }
    }

    /// The node of every page in the region, in page order: a node number, or -errno for a
    /// page that is not resident (-ENOENT) or cannot be queried. The region is widened to
    /// whole pages. Queries only the calling process, which needs no privilege.
    /// The corresponding kernel call is `move_pages(0, n, pages, NULL, status, 0)`.
    public static func pageNodes(_ address: UnsafeRawPointer, byteCount: Int) throws(NUMAError) -> [Int32] {
        let page = PageMemory.pageSize
        let start = Int(bitPattern: address) / page * page
        let end = Int(bitPattern: address) + max(byteCount, 1)
        let count = (end - start + page - 1) / page
        var result = [Int32](repeating: 0, count: count)
        let chunk = 1024
        var pages = [UnsafeMutableRawPointer?](repeating: nil, count: min(chunk, count))
        var done = 0
        while done < count {
            let n = min(chunk, count - done)
            for i in 0..<n { pages[i] = UnsafeMutableRawPointer(bitPattern: start + (done + i) * page) }
            let rc = pages.withUnsafeMutableBufferPointer { p in
                result.withUnsafeMutableBufferPointer { r in
                    sys_move_pages_query(p.baseAddress!, n, r.baseAddress! + done)
                }
            }
            if rc != 0 {
                throw .system(SystemError("move_pages(query, \(n) pages)", errno: -rc), hint: hint(for: -rc, node: nil))
            }
            done += n
        }
        return result
    }

    /// Counts the pages of the region per node (see `pageNodes`).
    public static func observe(_ address: UnsafeRawPointer, byteCount: Int) throws(NUMAError) -> NUMAVerifiedMemory {
        let nodes = try pageNodes(address, byteCount: byteCount)
        var perNode: [Int: Int] = [:]
        var notResident = 0
        for n in nodes {
            if n >= 0 { perNode[Int(n), default: 0] += 1 } else { notResident += 1 }
        }
        return NUMAVerifiedMemory(
            pages: nodes.count,
            pagesByNode: perNode.map { NUMAPageCount(node: $0.key, pages: $0.value) },
            notResident: notResident
        )
    }

    /// Checks that every page of the region is resident on `node` (touch it first). A
    /// page elsewhere, or not resident, is an error that names the count per node.
    public static func verify(
        _ address: UnsafeRawPointer, byteCount: Int, node: Int, label: String
    ) throws(NUMAError) -> NUMAVerifiedMemory {
        let verified = try observe(address, byteCount: byteCount)
        guard verified.node == node else { throw .memoryMisplaced(label: label, requestedNode: node, verified: verified) }
        return verified
    }

    /// The node of the page at `address`, faulting it in if it is not resident.
    /// The corresponding kernel call is `get_mempolicy(MPOL_F_NODE | MPOL_F_ADDR)`.
    public static func node(ofAddress address: UnsafeRawPointer) throws(NUMAError) -> Int {
        let rc = sys_get_mempolicy_node(address)
        if rc < 0 {
            throw .system(SystemError("get_mempolicy(MPOL_F_NODE|MPOL_F_ADDR)", errno: -rc), hint: hint(for: -rc, node: nil))
        }
        return Int(rc)
    }

    /// Checks that this process can bind and query its own memory: maps one page, binds
    /// it to the first node with memory, touches it, and queries it with `move_pages` and
    /// `get_mempolicy`. The harness calls it once and, when it throws, records the reason
    /// and skips the placed cells instead of failing each one.
    public static func checkSupport(topology: NUMATopology) throws(NUMAError) {
        guard let node = topology.nodesWithMemory.first else {
            throw .topologyUnavailable("no node has memory")
        }
        let buffer = try NUMABuffer(byteCount: 1, node: node, topology: topology, label: "probe")
        _ = try buffer.verify()
        let seen = try NUMAMemory.node(ofAddress: buffer.baseAddress)
        guard seen == node else {
            throw .memoryMisplaced(label: "probe", requestedNode: node, verified: try buffer.observe())
        }
    }

    /// Whether this process has CAP_SYS_NICE in its effective set (bit 23 of `CapEff` in
    /// /proc/self/status). It is needed only to move another process's pages, which
    /// dmabench never does; some seccomp profiles also demand it for any NUMA memory call.
    public static var hasCapSysNice: Bool {
        guard let status = NUMASysFile.read("/proc/self/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let caps = UInt64(line.dropFirst("CapEff:".count).filter { !$0.isWhitespace }, radix: 16)
        else { return false }
        return caps & (1 << 23) != 0  // CAP_SYS_NICE
    }

    /// Why a NUMA memory call may have failed, for the error message.
    static func hint(for error: Int32, node: Int?) -> String? {
        switch error {
        case EPERM:
            let cap = hasCapSysNice ? "even though this process has CAP_SYS_NICE" : "and this process lacks CAP_SYS_NICE"
            return "the NUMA memory calls are blocked (\(cap)): a seccomp profile such as Docker's default allows mbind, "
                + "get_mempolicy, set_mempolicy and move_pages only with CAP_SYS_NICE (run with --cap-add SYS_NICE); "
                + "querying our own pages needs no privilege otherwise, only another process's would"
        case ENOSYS:
            return "the kernel has no NUMA support (CONFIG_NUMA is off)"
        case EINVAL where node != nil:
            let mems = NUMASysFile.read("/proc/self/status").flatMap { status in
                status.split(separator: "\n").first { $0.hasPrefix("Mems_allowed_list:") }
            }.map { String($0.dropFirst("Mems_allowed_list:".count)).numaTrimmedLine } ?? "unknown"
            return "node \(node!) may be outside this process's cpuset (memory nodes allowed: \(mems))"
        case EIO:
            return "pages already present could not be moved to the node"
        default:
            return nil
        }
    }
}

// MARK: An owned node-bound buffer

/// Page-aligned anonymous memory bound to a node (or left to the default policy), unmapped
/// when the value goes away. It hands out its base address: keep the buffer alive as long
/// as anything (a descriptor in flight) uses that memory.
///
///     let src = try NUMABuffer(byteCount: 1 << 20, node: 0, topology: topology, label: "src")
///     let verified = try src.verify()        // every page on node 0, or an error
public struct NUMABuffer: ~Copyable, @unchecked Sendable {
    /// The first byte; page-aligned.
    public let baseAddress: UnsafeMutableRawPointer
    /// The size in bytes: what was asked for, rounded up to whole pages.
    public let byteCount: Int
    /// The node the memory is bound to; nil for the default policy (first touch).
    public let node: Int?
    /// A name for messages ("src", "dst").
    public let label: String

    /// Maps `byteCount` bytes (rounded up to pages), binds them to `node` with
    /// `MPOL_BIND` (checked against `topology` first), and, if `firstTouch`, writes every
    /// page from the calling thread so that every page is resident. With `node` nil the
    /// memory keeps the default policy and first touch puts it on the calling thread's node.
    /// The corresponding kernel calls are `mmap(2)` and `mbind(2)`.
    public init(
        byteCount: Int, node: Int?, topology: NUMATopology, label: String = "buffer", firstTouch: Bool = true
    ) throws(NUMAError) {
        guard byteCount > 0 else {
            throw .system(SystemError("mmap(\(byteCount))", errno: EINVAL), hint: "a buffer needs at least one byte")
        }
        let length = PageMemory.roundUp(byteCount)
        let base: UnsafeMutableRawPointer
        do throws(SystemError) {
            base = try PageMemory.map(byteCount: length)
        } catch {
            throw .system(error, hint: nil)
        }
        if let node {
            do throws(NUMAError) {
                try NUMAMemory.bind(base, byteCount: length, toNode: node, topology: topology)
            } catch {
                PageMemory.unmap(base, byteCount: length)
                throw error
            }
        }
        self.baseAddress = base
        self.byteCount = length
        self.node = node
        self.label = label
        if firstTouch { self.firstTouch() }
    }

    /// The memory as bytes.
    public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: baseAddress, count: byteCount) }

    /// Writes `value` into every byte from the calling thread, so every page is resident
    /// (and, without a bound node, lands on this thread's node).
    public func firstTouch(value: UInt8 = 0) {
        memset(baseAddress, Int32(value), byteCount)
    }

    /// Where the pages are now (see `NUMAMemory.observe`).
    public func observe() throws(NUMAError) -> NUMAVerifiedMemory {
        try NUMAMemory.observe(baseAddress, byteCount: byteCount)
    }

    /// Checks that every page is resident on the bound node; for an unbound buffer, that
    /// every page is resident on one node. Touch the buffer first.
    public func verify() throws(NUMAError) -> NUMAVerifiedMemory {
        if let node { return try NUMAMemory.verify(baseAddress, byteCount: byteCount, node: node, label: label) }
        let verified = try observe()
        guard verified.node != nil else {
            let requested = verified.pagesByNode.max { $0.pages < $1.pages }?.node ?? 0
            throw .memoryMisplaced(label: label, requestedNode: requested, verified: verified)
        }
        return verified
    }

    deinit {
        PageMemory.unmap(baseAddress, byteCount: byteCount)
    }
}
#endif
