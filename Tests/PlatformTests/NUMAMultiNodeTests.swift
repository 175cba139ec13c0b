// dmabench — PlatformTests
//
// Placement across nodes. These need 2+ NUMA nodes: on a one-node machine they are
// skipped with a reason; Scripts/test-numa.sh runs them in 2- and 4-node qemu guests.

import Foundation
import Platform
import Testing

@Suite(.enabled(if: NUMATestSupport.multiNode, NUMATestSupport.multiNodeReason))
struct NUMAMultiNodeTests {
    let topology = NUMATopology.current()

    @Test func everyNodeBindsThreadsAndMemory() throws {
        let topology = topology
        for node in topology.nodes where node.hasCPUs && node.hasMemory {
            let result = try NUMATestSupport.onFreshThread {
                Result { () throws(NUMAError) -> (NUMAVerifiedThread, NUMAVerifiedMemory) in
                    let thread = try NUMABinding.bindCurrentThread(.engine, to: .node(node.id), topology: topology)
                    let buffer = try NUMABuffer(byteCount: 1 << 20, node: node.id, topology: topology)
                    return (thread, try buffer.verify())
                }
            }
            let (thread, memory) = try result.get()
            #expect(thread.node == node.id)
            #expect(thread.allowedCPUs == node.cpus)
            #expect(memory.node == node.id)
            #expect(memory.pages == (1 << 20) / PageMemory.pageSize)
        }
    }

    @Test func boundMemoryBeatsFirstTouchFromAnotherNode() throws {
        let topology = topology
        let nodes = topology.nodeIDs
        let (home, far) = (nodes.first!, nodes.last!)
        // A thread on `home` touches memory bound to `far`: the pages are on `far`.
        let result = try NUMATestSupport.onFreshThread {
            Result { () throws(NUMAError) -> NUMAVerifiedMemory in
                try NUMABinding.bindCurrentThread(.submitter, to: .node(home), topology: topology)
                let buffer = try NUMABuffer(byteCount: 512 << 10, node: far, topology: topology, label: "dst")
                return try buffer.verify()
            }
        }
        #expect(try result.get().node == far)
    }

    @Test func unboundMemoryFollowsTheTouchingThread() throws {
        let topology = topology
        for node in topology.nodes where node.hasCPUs && node.hasMemory {
            let result = try NUMATestSupport.onFreshThread {
                Result { () throws(NUMAError) -> NUMAVerifiedMemory in
                    try NUMABinding.bindCurrentThread(.submitter, to: .node(node.id), topology: topology)
                    return try NUMABuffer(byteCount: 256 << 10, node: nil, topology: topology).verify()
                }
            }
            #expect(try result.get().node == node.id, "first touch from node \(node.id)")
        }
    }

    @Test func misplacedMemoryIsReportedWithItsNode() throws {
        let nodes = topology.nodeIDs
        let buffer = try NUMABuffer(byteCount: 8 * PageMemory.pageSize, node: nodes[1], topology: topology, label: "src")
        #expect(NUMATestSupport.message {
            _ = try NUMAMemory.verify(buffer.baseAddress, byteCount: buffer.byteCount, node: nodes[0], label: "src")
        } == "src: 8 of 8 pages are not on node \(nodes[0]) (8 on node \(nodes[1]))")
    }

    @Test func threadOnAnotherNodeIsVerifiedByID() throws {
        let topology = topology
        let last = topology.nodes.last { $0.hasCPUs }!
        let started = ParkingEvent()
        let release = ParkingEvent()
        let thread = try OSThread(name: "numa-far") {
            _ = try? NUMABinding.bindCurrentThread(.engine, to: .node(last.id), topology: topology)
            started.signal()
            release.wait(spinNanoseconds: 0)
        }
        started.wait(spinNanoseconds: 0)
        defer {
            release.signal()
            thread.join()
        }
        let verified = try NUMABinding.verifyThread(id: thread.threadID, role: .engine, expected: .node(last.id), topology: topology)
        #expect(verified.node == last.id)
        let first = topology.nodes.first { $0.hasCPUs && $0.id != last.id }!
        #expect(throws: NUMAError.self) {
            try NUMABinding.verifyThread(id: thread.threadID, role: .engine, expected: .node(first.id), topology: topology)
        }
    }

    @Test func matrixCoversEveryNodeCombination() {
        let n = topology.nodes.count
        let cells = NUMAPlacement.matrixCells(of: topology)
        #expect(cells.count == n * n * n * n)
        #expect(Set(cells.compactMap(\.dst)) == Set(topology.nodeIDs))
        #expect(Set(cells.compactMap(\.engine)) == Set(topology.nodeIDs.map { NUMAThreadTarget.node($0) }))
    }

    @Test func validationAcceptsEveryNodeAndNamesThemAll() throws {
        let ids = topology.nodeIDs
        for id in ids { try NUMAPlacement(parsing: "submitter=\(id),engine=node\(id),src=\(id),dst=\(id)").validate(against: topology) }
        let missing = ids.max()! + 1
        #expect(NUMATestSupport.message { try NUMAPlacement(parsing: "src=\(missing)").validate(against: topology) }
            == "src: node \(missing) does not exist; this machine has nodes \(ids.count == ids.max()! + 1 ? "0-\(ids.max()!)" : "\(ids)")")
    }
}
