// dmabench — PlatformTests
//
// NUMAPlacement: parsing, validation against a topology (errors name the valid choices),
// dedicated CPUs, the matrix, and the JSON shape the result files use.

import Foundation
import Platform
import Testing

@Suite struct NUMAPlacementTests {
    private func message(_ body: () throws -> Void) -> String? { NUMATestSupport.message(body) }

    // MARK: Parsing

    @Test func parsesNodesCPUsAndAny() throws {
        let p = try NUMAPlacement(parsing: "submitter=0,engine=node1,src=0,dst=1")
        #expect(p == NUMAPlacement(submitter: .node(0), engine: .node(1), executor: .node(1), src: 0, dst: 1))
        #expect(p.executor == .node(1), "executor follows engine when left out")

        let q = try NUMAPlacement(parsing: "submitter=cpu3,engine=cpu1,executor=node0,src=any")
        #expect(q == NUMAPlacement(submitter: .cpu(3), engine: .cpu(1), executor: .node(0), src: nil, dst: nil))

        let r = try NUMAPlacement(parsing: " Submitter = NODE2 , engine=any , dst=node7 ")
        #expect(r == NUMAPlacement(submitter: .node(2), engine: nil, executor: nil, src: nil, dst: 7))

        let s = try NUMAPlacement(parsing: "engine=cpu2,executor=any")
        #expect(s.engine == .cpu(2))
        #expect(s.executor == nil, "an explicit executor=any does not follow the engine")
    }

    @Test func descriptionParsesBack() throws {
        let placements = [
            NUMAPlacement(submitter: .node(0), engine: .cpu(3), src: 0, dst: 1),
            NUMAPlacement(),
            NUMAPlacement(submitter: nil, engine: .node(1), executor: .cpu(0), src: 2, dst: nil),
        ]
        for p in placements {
            #expect(try NUMAPlacement(parsing: p.description) == p)
        }
        #expect(placements[0].description == "submitter=node0,engine=cpu3,executor=cpu3,src=node0,dst=node1")
        #expect(placements[1].description == "submitter=any,engine=any,executor=any,src=any,dst=any")
    }

    @Test(arguments: [
        ("", "malformed placement: empty placement; expected KEY=VALUE[,KEY=VALUE...] with keys submitter, engine, executor, src, dst"),
        ("submitter", "malformed placement: 'submitter' is not KEY=VALUE; expected KEY=VALUE[,KEY=VALUE...] with keys submitter, engine, executor, src, dst"),
        ("src=0,,dst=0", "malformed placement: empty item in 'src=0,,dst=0'; expected KEY=VALUE[,KEY=VALUE...] with keys submitter, engine, executor, src, dst"),
        ("=0", "malformed placement: '=0' is not KEY=VALUE; expected KEY=VALUE[,KEY=VALUE...] with keys submitter, engine, executor, src, dst"),
        ("memory=0", "unknown placement key 'memory'; valid keys: submitter, engine, executor, src, dst"),
        ("src=0,src=1", "placement key 'src' is given twice; give each of submitter, engine, executor, src, dst at most once"),
        ("src=cpu1", "placement src=cpu1: memory is placed on a node (N or nodeN), not on a cpu"),
        ("dst=near", "placement dst=near: expected a node (N or nodeN) or any"),
        ("engine=fast", "placement engine=fast: expected a node (N or nodeN), a cpu (cpuN) or any"),
        ("engine=-1", "placement engine=-1: expected a node (N or nodeN), a cpu (cpuN) or any"),
        ("engine=cpu", "placement engine=cpu: expected a node (N or nodeN), a cpu (cpuN) or any"),
        ("submitter=99999999999999999999", "placement submitter=99999999999999999999: expected a node (N or nodeN), a cpu (cpuN) or any"),
        ("submitter=", "placement submitter=: expected a node (N or nodeN), a cpu (cpuN) or any"),
    ])
    func malformedPlacementsAreOneLineErrors(input: String, expected: String) {
        let text = message { _ = try NUMAPlacement(parsing: input) }
        #expect(text == expected)
        #expect(text?.contains("\n") == false)
    }

    // MARK: Validation

    @Test func missingNodeOnThisMachineNamesNodeZero() throws {
        // The build machine's shape (one node 0, cpus 0-1), whatever machine runs the test.
        let topology = NUMATestSupport.oneNodeTwoCPUs
        let p = try NUMAPlacement(parsing: "submitter=0,engine=0,src=1,dst=0")
        #expect(message { try p.validate(against: topology) } == "src: node 1 does not exist; this machine has node 0")
        #expect(message { try NUMAPlacement(parsing: "engine=node3").validate(against: topology) }
            == "engine: node 3 does not exist; this machine has node 0")
        #expect(message { try NUMAPlacement(parsing: "submitter=cpu5").validate(against: topology) }
            == "submitter: cpu 5 does not exist; this machine has cpus 0-1")
        #expect(message { try NUMAPlacement(parsing: "submitter=0,engine=cpu1,src=0,dst=0").validate(against: topology) } == nil)
        let four = NUMATestSupport.synthetic(nodes: 4)
        #expect(message { try NUMAPlacement(parsing: "dst=7").validate(against: four) }
            == "dst: node 7 does not exist; this machine has nodes 0-3")
    }

    @Test func missingNodeOnTheCurrentMachine() throws {
        let topology = NUMATopology.current()
        let missing = (topology.nodeIDs.max() ?? 0) + 1
        let p = try NUMAPlacement(parsing: "src=\(missing)")
        let text = try #require(message { try p.validate(against: topology) })
        #expect(text.hasPrefix("src: node \(missing) does not exist; this machine has node"))
        // The list after "has node " / "has nodes " is exactly the nodes that exist.
        let list = try #require(text.split(separator: " ").last.map(String.init))
        #expect(NUMATestSupport.parseList(list) == topology.nodeIDs)
        if topology.nodes.count == 1 { #expect(text.hasSuffix("this machine has node \(topology.nodeIDs[0])")) }
        // Every node that exists validates.
        for id in topology.nodesWithMemory {
            #expect(message { try NUMAPlacement(parsing: "src=\(id),dst=\(id)").validate(against: topology) } == nil)
        }
        for id in topology.nodesWithCPUs {
            #expect(message { try NUMAPlacement(parsing: "submitter=\(id),engine=\(id)").validate(against: topology) } == nil)
        }
    }

    @Test func nodesWithoutCPUsOrMemory() {
        let topology = NUMATopology(nodes: [
            .init(id: 0, cpus: [0, 1], memoryBytes: 1 << 30, distances: [10, 20, 20]),
            .init(id: 1, cpus: [], memoryBytes: 1 << 30, distances: [20, 10, 20]),
            .init(id: 2, cpus: [2], memoryBytes: 0, distances: [20, 20, 10]),
        ])
        #expect(message { try NUMAPlacement(engine: .node(1)).validate(against: topology) }
            == "engine: node 1 has no cpus, so no thread can run there; nodes with cpus: 0,2")
        #expect(message { try NUMAPlacement(dst: 2).validate(against: topology) }
            == "dst: node 2 has no memory; nodes with memory: 0-1")
        #expect(message { try NUMAPlacement(submitter: .node(2), engine: .cpu(0), src: 1, dst: 0).validate(against: topology) } == nil)
        // The matrix leaves them out: threads on 0 and 2, memory on 0 and 1.
        let cells = NUMAPlacement.matrixCells(of: topology)
        #expect(cells.count == 16)
        #expect(Set(cells.compactMap(\.submitter)) == [.node(0), .node(2)])
        #expect(Set(cells.compactMap(\.src)) == [0, 1])
    }

    // MARK: CPUs

    @Test func cpusForEachRole() throws {
        let topology = NUMATestSupport.synthetic(nodes: 2, cpusPerNode: 2)
        let p = try NUMAPlacement(parsing: "submitter=cpu3,engine=node1,src=0")
        #expect(try p.cpus(for: .submitter, in: topology) == [3])
        #expect(try p.cpus(for: .engine, in: topology) == [2, 3], "the io-wq affinity of an engine on node 1")
        #expect(try p.cpus(for: .executor, in: topology) == [2, 3])
        let unplaced = try NUMAPlacement(parsing: "src=0")
        #expect(try unplaced.cpus(for: .engine, in: topology) == nil)
        #expect(message { _ = try NUMAPlacement(engine: .node(5)).cpus(for: .engine, in: topology) }
            == "engine: node 5 does not exist; this machine has nodes 0-1")
    }

    @Test func moreDedicatedCPUsThanTheNodeHasIsAClearError() throws {
        let topology = NUMATestSupport.oneNodeTwoCPUs
        let all = try NUMAPlacement(parsing: "submitter=0,engine=0,src=0,dst=0")
        #expect(message { _ = try all.dedicatedCPUs(in: topology) }
            == "node 0 has 2 cpus (0-1) but the placement needs 3 dedicated cpus there (submitter, engine, executor); place some threads on another node or share cpus")
        let two = try NUMAPlacement(parsing: "submitter=0,engine=0,executor=any")
        #expect(try two.dedicatedCPUs(in: topology) == [.submitter: [0], .engine: [1]])
        let pinned = try NUMAPlacement(parsing: "submitter=node0,engine=cpu0,executor=any")
        #expect(try pinned.dedicatedCPUs(in: topology) == [.submitter: [1], .engine: [0]])
        let clash = try NUMAPlacement(parsing: "submitter=cpu1,engine=cpu1,executor=any")
        #expect(message { _ = try clash.dedicatedCPUs(in: topology) }
            == "cpu 1 is requested by submitter and engine, but each thread needs its own cpu; choose distinct cpus or place the threads on a node")
        // Several engine threads (one per channel).
        let four = NUMATestSupport.synthetic(nodes: 2, cpusPerNode: 4)
        let channels = try NUMAPlacement(parsing: "submitter=0,engine=1,executor=0")
        #expect(try channels.dedicatedCPUs(in: four, counts: [.engine: 4]) == [.submitter: [0], .engine: [4, 5, 6, 7], .executor: [1]])
        #expect(message { _ = try channels.dedicatedCPUs(in: four, counts: [.engine: 5]) }
            == "node 1 has 4 cpus (4-7) but the placement needs 5 dedicated cpus there (5 engine); place some threads on another node or share cpus")
        // Validation comes first.
        #expect(message { _ = try NUMAPlacement(parsing: "src=3").dedicatedCPUs(in: topology) }
            == "src: node 3 does not exist; this machine has node 0")
    }

    // MARK: Matrix

    @Test(arguments: [1, 2, 3, 4])
    func matrixHasOneCellPerCombination(nodes: Int) throws {
        let topology = NUMATestSupport.synthetic(nodes: nodes)
        let cells = NUMAPlacement.matrixCells(of: topology)
        #expect(cells.count == nodes * nodes * nodes * nodes)
        #expect(Set(cells).count == cells.count)
        for cell in cells {
            try cell.validate(against: topology)
            #expect(cell.executor == cell.engine)
            #expect(cell.submitter != nil && cell.engine != nil && cell.src != nil && cell.dst != nil)
        }
        if nodes == 1 {
            #expect(cells == [NUMAPlacement(submitter: .node(0), engine: .node(0), src: 0, dst: 0)])
        }
    }

    @Test func matrixOfTheCurrentMachine() {
        let topology = NUMATopology.current()
        let cells = NUMAPlacement.matrixCells(of: topology)
        let t = topology.nodesWithCPUs.count
        let m = topology.nodesWithMemory.count
        #expect(cells.count == t * t * m * m)
        if topology.nodes.count == 1 { #expect(cells.count == 1, "one node gives one cell") }
    }

    // MARK: JSON

    @Test func jsonShape() throws {
        let p = try NUMAPlacement(parsing: "submitter=node0,engine=cpu3,src=0")
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let json = String(decoding: try encoder.encode(p), as: UTF8.self)
        #expect(json == #"{"engine":{"cpu":3},"executor":{"cpu":3},"src":{"node":0},"submitter":{"node":0}}"#)
        #expect(try JSONDecoder().decode(NUMAPlacement.self, from: Data(json.utf8)) == p)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(NUMAPlacement.self, from: Data(#"{"engine":{"socket":1}}"#.utf8))
        }
    }
}
