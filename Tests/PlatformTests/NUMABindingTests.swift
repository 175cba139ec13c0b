// dmabench — PlatformTests
//
// Binding threads and memory to a node and verifying it, on any machine (node 0 exists
// everywhere). Every pinning happens on a fresh OSThread, never on a test-runner thread.

import Foundation
import Platform
import Testing

@Suite struct NUMABindingTests {
    let topology = NUMATopology.current()
    var firstNode: NUMATopology.Node { topology.nodes.first { $0.hasCPUs && $0.hasMemory }! }

    @Test func bindThreadToNodeAndVerify() throws {
        let topology = topology
        let node = firstNode
        let result = try NUMATestSupport.onFreshThread {
            Result { () throws(NUMAError) in try NUMABinding.bindCurrentThread(.submitter, to: .node(node.id), topology: topology) }
        }
        let verified = try result.get()
        #expect(verified.node == node.id)
        #expect(node.cpus.contains(verified.cpu))
        #expect(verified.allowedCPUs == node.cpus)
        #expect(verified.threadID != CPU.currentThreadID)
    }

    @Test func bindThreadToOneCPUAndVerify() throws {
        let topology = topology
        let cpu = try #require(firstNode.cpus.last)
        let verified = try NUMATestSupport.onFreshThread {
            Result { () throws(NUMAError) in try NUMAPlacement(engine: .cpu(cpu)).bindCurrentThread(as: .engine, topology: topology) }
        }.get()
        #expect(verified.cpu == cpu)
        #expect(verified.allowedCPUs == [cpu])
        #expect(verified.node == topology.node(ofCPU: cpu))
    }

    @Test func unplacedThreadIsObservedNotPinned() throws {
        let topology = topology
        let (before, verified) = try NUMATestSupport.onFreshThread {
            let before = CPU.currentAffinity()
            return (before, Result { () throws(NUMAError) in try NUMABinding.bindCurrentThread(.executor, to: nil, topology: topology) })
        }
        let v = try verified.get()
        #expect(v.allowedCPUs == before)
        #expect(v.node == topology.node(ofCPU: v.cpu))
    }

    @Test(.enabled(if: CPU.onlineCount >= 2, "needs 2+ cpus"))
    func threadOnTheWrongCPUIsAnError() throws {
        let topology = topology
        let cpus = topology.cpus
        let (a, b) = (cpus[0], cpus[1])
        let result = try NUMATestSupport.onFreshThread {
            Result { () throws(NUMAError) in
                try NUMABinding.bindCurrentThread(.engine, to: .cpu(a), topology: topology)
                return try NUMABinding.verifyCurrentThread(.engine, expected: .cpu(b), topology: topology)
            }
        }
        #expect {
            try result.get()
        } throws: { error in
            guard case .threadMisplaced(role: "engine", requested: "cpu\(b)", let seen)? = error as? NUMAError else { return false }
            return seen.cpu == a && seen.allowedCPUs == [a]
                && "\(error)".hasPrefix("engine thread \(seen.threadID) was placed on cpu\(b) but runs on cpu \(a)")
        }
    }

    @Test func verifyAnotherThreadByID() throws {
        let topology = topology
        let cpu = try #require(firstNode.cpus.first)
        let started = ParkingEvent()
        let release = ParkingEvent()
        let thread = try OSThread(name: "numa-verify", cpu: cpu) {
            started.signal()
            release.wait(spinNanoseconds: 0)
        }
        started.wait(spinNanoseconds: 0)
        defer {
            release.signal()
            thread.join()
        }
        #expect(thread.pinningError == nil)
        let verified = try NUMABinding.verifyThread(id: thread.threadID, role: .engine, expected: .cpu(cpu), topology: topology)
        #expect(verified.threadID == thread.threadID)
        #expect(verified.cpu == cpu)
        #expect(verified.allowedCPUs == [cpu])
        let node = try NUMABinding.verifyThread(id: thread.threadID, role: .engine, expected: .node(firstNode.id), topology: topology)
        #expect(node.node == firstNode.id)
        #expect {
            try NUMABinding.verifyThread(id: -5, role: .engine, expected: nil, topology: topology)
        } throws: { error in
            "\(error)".contains("thread -5 is not a live thread of this process")
        }
    }

    @Test func bindingToAMissingNodeOrCPUFailsBeforePinning() throws {
        let topology = topology
        let missing = (topology.nodeIDs.max() ?? 0) + 1
        let (before, after, result) = try NUMATestSupport.onFreshThread {
            let before = CPU.currentAffinity()
            let result = Result { () throws(NUMAError) in try NUMABinding.bindCurrentThread(.engine, to: .node(missing), topology: topology) }
            return (before, CPU.currentAffinity(), result)
        }
        #expect(throws: NUMAError.noSuchNode(missing, key: "engine", available: topology.nodeIDs)) { try result.get() }
        #expect(before == after)
        let badCPU = (topology.cpus.max() ?? 0) + 1
        let cpuResult = try NUMATestSupport.onFreshThread {
            Result { () throws(NUMAError) in try NUMABinding.bindCurrentThread(.submitter, to: .cpu(badCPU), topology: topology) }
        }
        #expect(throws: NUMAError.noSuchCPU(badCPU, key: "submitter", available: topology.cpus)) { try cpuResult.get() }
    }

    // MARK: Memory

    @Test func bufferBoundToNodeIsVerifiedPageByPage() throws {
        let node = firstNode.id
        let buffer = try NUMABuffer(byteCount: 1 << 20, node: node, topology: topology, label: "src")
        #expect(buffer.byteCount == 1 << 20)
        #expect(Int(bitPattern: buffer.baseAddress) % PageMemory.pageSize == 0)
        let verified = try buffer.verify()
        #expect(verified.node == node)
        #expect(verified.pages == (1 << 20) / PageMemory.pageSize)
        #expect(verified.pagesByNode == [NUMAPageCount(node: node, pages: verified.pages)])
        #expect(verified.notResident == 0)
        #expect(try NUMAMemory.node(ofAddress: buffer.baseAddress + 12345) == node)
        let pageNodes = try NUMAMemory.pageNodes(buffer.baseAddress + 100, byteCount: PageMemory.pageSize)
        #expect(pageNodes == [Int32(node), Int32(node)], "an unaligned range covers two pages")
    }

    @Test func bufferSizeRoundsUpToPages() throws {
        let buffer = try NUMABuffer(byteCount: 1, node: firstNode.id, topology: topology)
        #expect(buffer.byteCount == PageMemory.pageSize)
        #expect(try buffer.verify().pages == 1)
        #expect {
            _ = try NUMABuffer(byteCount: 0, node: nil, topology: topology)
        } throws: { error in
            "\(error)".contains("a buffer needs at least one byte")
        }
    }

    @Test func untouchedBufferIsNotResidentAndFailsVerification() throws {
        let buffer = try NUMABuffer(byteCount: 4 * PageMemory.pageSize, node: firstNode.id, topology: topology, label: "dst", firstTouch: false)
        let seen = try buffer.observe()
        #expect(seen.notResident == 4)
        #expect(seen.node == nil)
        #expect {
            try buffer.verify()
        } throws: { error in
            "\(error)" == "dst: 4 of 4 pages are not on node \(firstNode.id) (4 not resident)"
        }
        buffer.firstTouch(value: 0xA5)
        #expect(try buffer.verify().node == firstNode.id)
        #expect(buffer.bytes.allSatisfy { $0 == 0xA5 })
    }

    @Test func pagesOnAnotherNodeAreAnErrorNotAFootnote() throws {
        // Verify against a node the pages are not on: the check must fail and say where they are.
        let node = firstNode.id
        let other = topology.nodes.count > 1 ? topology.nodeIDs.first { $0 != node }! : node + 1
        let buffer = try NUMABuffer(byteCount: 4 * PageMemory.pageSize, node: node, topology: topology, label: "src")
        #expect {
            try NUMAMemory.verify(buffer.baseAddress, byteCount: buffer.byteCount, node: other, label: "src")
        } throws: { error in
            "\(error)" == "src: 4 of 4 pages are not on node \(other) (4 on node \(node))"
        }
    }

    @Test func bufferOnAMissingNodeIsRefusedNotMisplaced() throws {
        // numa_alloc_onnode() would print a warning and return memory anyway (docs/architecture.md, "libnuma: numa_alloc_onnode").
        let missing = (topology.nodeIDs.max() ?? 0) + 1
        #expect(throws: NUMAError.noSuchNode(missing, key: nil, available: topology.nodeIDs)) {
            _ = try NUMABuffer(byteCount: 4096, node: missing, topology: topology)
        }
        let p = try NUMAPlacement(parsing: "dst=\(missing)")
        #expect {
            _ = try p.makeBuffer(for: .dst, byteCount: 4096, topology: topology)
        } throws: { error in
            "\(error)".hasPrefix("node \(missing) does not exist; this machine has node")
        }
    }

    @Test func thisProcessCanBindAndQueryItsOwnMemory() throws {
        try NUMAMemory.checkSupport(topology: topology)
        // Root (as on the build machine and in the guests) has CAP_SYS_NICE; others need not.
        if getuid() == 0 { #expect(NUMAMemory.hasCapSysNice) }
    }

    @Test func unboundBufferLandsOnTheTouchingThreadsNode() throws {
        let topology = topology
        let node = firstNode
        let result = try NUMATestSupport.onFreshThread {
            Result { () throws(NUMAError) -> NUMAVerifiedMemory in
                try NUMABinding.bindCurrentThread(.submitter, to: .node(node.id), topology: topology)
                let buffer = try NUMABuffer(byteCount: 256 << 10, node: nil, topology: topology)
                return try buffer.verify()
            }
        }
        #expect(try result.get().node == node.id)
    }

    // MARK: Whole placement

    @Test func verifiedPlacementOfEveryMatrixCell() throws {
        // One cell here; 16 in a 2-node guest, 256 in a 4-node guest (Scripts/test-numa.sh).
        let topology = topology
        let cells = NUMAPlacement.matrixCells(of: topology)
        #expect(cells.count >= 1)
        for cell in cells {
            let outcome = try NUMATestSupport.onFreshThread {
                Result { () throws(NUMAError) -> NUMAVerifiedPlacement in
                    var verified = NUMAVerifiedPlacement()
                    // One thread plays every role in turn; the harness uses one thread each.
                    for role in [NUMAThreadRole.engine, .executor, .submitter] {
                        verified[role] = try cell.bindCurrentThread(as: role, topology: topology)
                    }
                    let src = try cell.makeBuffer(for: .src, byteCount: 64 << 10, topology: topology)
                    let dst = try cell.makeBuffer(for: .dst, byteCount: 64 << 10, topology: topology)
                    verified.src = try src.verify()
                    verified.dst = try dst.verify()
                    try verified.check(against: cell, topology: topology)
                    return verified
                }
            }
            let verified = try outcome.get()
            // The rule Scripts/test-numa.sh applies to result files.
            #expect(NUMATestSupport.requestedIsSubObject(
                requested: try NUMATestSupport.jsonObject(cell), verified: try NUMATestSupport.jsonObject(verified)
            ), "\(cell)")
            let decoded = try JSONDecoder().decode(NUMAVerifiedPlacement.self, from: JSONEncoder().encode(verified))
            #expect(decoded == verified)
        }
    }

    @Test func checkRejectsMissingAndWrongVerifications() throws {
        let topology = NUMATestSupport.synthetic(nodes: 2, cpusPerNode: 2)
        let requested = try NUMAPlacement(parsing: "submitter=0,engine=cpu3,src=0,dst=1")
        var verified = NUMAVerifiedPlacement(
            submitter: NUMAVerifiedThread(threadID: 1, cpu: 1, node: 0, allowedCPUs: [0, 1]),
            engine: NUMAVerifiedThread(threadID: 2, cpu: 3, node: 1, allowedCPUs: [3]),
            executor: NUMAVerifiedThread(threadID: 3, cpu: 3, node: 1, allowedCPUs: [3]),
            src: NUMAVerifiedMemory(pages: 4, pagesByNode: [NUMAPageCount(node: 0, pages: 4)], notResident: 0),
            dst: NUMAVerifiedMemory(pages: 4, pagesByNode: [NUMAPageCount(node: 1, pages: 4)], notResident: 0)
        )
        #expect(throws: Never.self) { try verified.check(against: requested, topology: topology) }
        #expect(NUMATestSupport.requestedIsSubObject(
            requested: try NUMATestSupport.jsonObject(requested), verified: try NUMATestSupport.jsonObject(verified)))

        var wrong = verified
        wrong.submitter?.allowedCPUs = [0, 1, 2]  // may run off node 0
        #expect(NUMATestSupport.message { try wrong.check(against: requested, topology: topology) }
            == "submitter thread 1 was placed on node0 but runs on cpu 1 (node 0) with allowed cpus 0-2")
        wrong = verified
        wrong.dst = NUMAVerifiedMemory(pages: 4, pagesByNode: [.init(node: 0, pages: 1), .init(node: 1, pages: 3)], notResident: 0)
        #expect(wrong.dst?.node == nil)
        #expect(NUMATestSupport.message { try wrong.check(against: requested, topology: topology) }
            == "dst: 1 of 4 pages are not on node 1 (1 on node 0)")
        wrong = verified
        wrong.executor = nil
        #expect(NUMATestSupport.message { try wrong.check(against: requested, topology: topology) }
            == "placement executor=cpu3 was requested but never verified")
        verified.engine?.cpu = 2
        #expect(!NUMATestSupport.requestedIsSubObject(
            requested: try NUMATestSupport.jsonObject(requested), verified: try NUMATestSupport.jsonObject(verified)))
    }

    @Test func numaErrorsAreOneLine() {
        let verified = NUMAVerifiedMemory(pages: 2, pagesByNode: [.init(node: 1, pages: 2)], notResident: 0)
        let errors: [NUMAError] = [
            .noSuchNode(3, key: "src", available: [0, 1]),
            .notEnoughCPUs(node: 0, cpus: [0], needed: 2, roles: ["submitter", "engine"]),
            .memoryMisplaced(label: "src", requestedNode: 0, verified: verified),
            .system(SystemError("move_pages", errno: EPERM), hint: "blocked"),
            .topologyUnavailable("x"),
        ]
        for error in errors {
            #expect(!error.description.contains("\n"))
            #expect(!error.description.isEmpty)
        }
        #expect(errors[0].description == "src: node 3 does not exist; this machine has nodes 0-1")
        #expect(errors[3].description.hasPrefix("move_pages: Operation not permitted (EPERM); blocked"))
    }
}
