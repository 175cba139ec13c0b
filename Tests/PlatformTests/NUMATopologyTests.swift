// dmabench — PlatformTests
//
// NUMATopology: this machine's topology against sysfs and `numactl -H`, and reading,
// rendering and encoding on fake sysfs trees.

import Foundation
import Platform
import Testing

@Suite struct NUMATopologyTests {
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/sys/devices/system/node/online"), "kernel without NUMA sysfs"))
    func currentMatchesSysfs() throws {
        let topology = NUMATopology.current()
        let online = try #require(NUMATestSupport.readFile("/sys/devices/system/node/online"), "this kernel has NUMA sysfs")
        #expect(topology.note == nil)
        #expect(topology.nodeIDs == NUMATestSupport.parseList(online))
        let onlineCPUs = Set(NUMATestSupport.parseList(NUMATestSupport.readFile("/sys/devices/system/cpu/online") ?? ""))
        for node in topology.nodes {
            let dir = "/sys/devices/system/node/node\(node.id)"
            let cpus = NUMATestSupport.parseList(NUMATestSupport.readFile(dir + "/cpulist") ?? "").filter(onlineCPUs.contains)
            #expect(node.cpus == cpus, "node \(node.id)")
            let distances = (NUMATestSupport.readFile(dir + "/distance") ?? "").split(separator: " ").compactMap {
                Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            #expect(node.distances == distances, "node \(node.id)")
            #expect(topology.distance(from: node.id, to: node.id) == 10)
            #expect((node.memoryBytes ?? 0) > 0, "node \(node.id) has memory")
        }
        // Every online CPU is on exactly one node.
        #expect(topology.cpus == onlineCPUs.sorted())
        #expect(Set(topology.cpus).count == topology.cpus.count)
        #expect(topology.cpus.count == CPU.onlineCount)
    }

    @Test(.enabled(if: NUMATestSupport.hasNumactl, "numactl is not installed"))
    func currentMatchesNumactl() throws {
        let output = try #require(NUMATestSupport.run(NUMATestSupport.numactlPath, ["--hardware"]))
        let topology = NUMATopology.current()
        var nodeCount: Int?
        var cpus: [Int: [Int]] = [:]
        var sizeMB: [Int: Int] = [:]
        var distanceRows: [Int: [Int]] = [:]
        var inDistances = false
        for line in output.split(separator: "\n").map(String.init) {
            let words = line.split(separator: " ").map(String.init)
            if line.hasPrefix("available:") {
                nodeCount = Int(words[1])
            } else if line.hasPrefix("node distances:") {
                inDistances = true
            } else if inDistances, words.first?.hasSuffix(":") == true, let n = Int(words[0].dropLast()) {
                distanceRows[n] = words.dropFirst().compactMap { Int($0) }
            } else if words.count >= 3, words[0] == "node", let n = Int(words[1]) {
                if words[2] == "cpus:" { cpus[n] = words.dropFirst(3).compactMap { Int($0) } }
                if words[2] == "size:" { sizeMB[n] = Int(words[3]) }
            }
        }
        #expect(nodeCount == topology.nodes.count)
        #expect(cpus.keys.sorted() == topology.nodeIDs)
        for node in topology.nodes {
            #expect(cpus[node.id] == node.cpus, "node \(node.id) cpus")
            #expect(sizeMB[node.id] == node.memoryBytes.map { $0 >> 20 }, "node \(node.id) size")
            #expect(distanceRows[node.id] == node.distances, "node \(node.id) distances")
        }
    }

    @Test func currentNodeOfEveryCPU() {
        let topology = NUMATopology.current()
        for node in topology.nodes {
            for cpu in node.cpus { #expect(topology.node(ofCPU: cpu) == node.id) }
            #expect(throws: Never.self) { try topology.cpus(ofNode: node.id) }
        }
        #expect(topology.node(ofCPU: 100_000) == nil)
    }

    @Test func missingNodeNamesTheNodesThatExist() {
        let topology = NUMATestSupport.oneNodeTwoCPUs
        #expect(throws: NUMAError.noSuchNode(1, key: nil, available: [0])) { try topology.cpus(ofNode: 1) }
        do {
            _ = try topology.cpus(ofNode: 1)
        } catch {
            #expect(error.description == "node 1 does not exist; this machine has node 0")
        }
    }

    @Test func readsFakeSysfsWithSparseAndMemorylessNodes() throws {
        // Nodes 0, 1 and 3 online (2 is absent); node 3 has memory but no cpus; cpu 5 is offline.
        let root = try NUMATestSupport.fakeSysfs(
            online: "0-1,3", cpuOnline: "0-4,6-7",
            nodes: [
                (0, "0-3", 2 * 1024 * 1024, "10 21 31"),
                (1, "4-7", 0, "21 10 31"),
                (3, "", 512 * 1024, "31 31 10"),
            ]
        )
        defer { try? FileManager.default.removeItem(atPath: root) }
        let topology = try NUMATopology.read(sysfsRoot: root)
        #expect(topology.nodeIDs == [0, 1, 3])
        #expect(topology.node(0)?.cpus == [0, 1, 2, 3])
        #expect(topology.node(1)?.cpus == [4, 6, 7])  // cpu 5 is offline
        #expect(topology.node(3)?.cpus == [])
        #expect(topology.node(0)?.memoryBytes == 2 << 30)
        #expect(topology.node(1)?.memoryBytes == 0)
        #expect(topology.nodesWithCPUs == [0, 1])
        #expect(topology.nodesWithMemory == [0, 3])
        #expect(topology.distance(from: 0, to: 3) == 31)
        #expect(topology.distance(from: 1, to: 0) == 21)
        #expect(topology.distance(from: 0, to: 2) == nil)
        #expect(topology.rendered() == """
            3 NUMA nodes (0-1,3), 7 cpus
            node 0: cpus 0-3, memory 2048 MiB
            node 1: cpus 4,6-7, no memory
            node 3: no cpus, memory 512 MiB
            distances:
              node    0    1    3
                 0   10   21   31
                 1   21   10   31
                 3   31   31   10
            """)
    }

    @Test func fakeSysfsWithoutMeminfoOrDistances() throws {
        let root = try NUMATestSupport.fakeSysfs(online: "0", cpuOnline: nil, nodes: [(0, "0-1", nil, nil)])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let topology = try NUMATopology.read(sysfsRoot: root)
        #expect(topology.nodes == [NUMATopology.Node(id: 0, cpus: [0, 1], memoryBytes: nil, distances: [])])
        #expect(topology.node(0)?.hasMemory == true)
        #expect(topology.rendered().hasSuffix("node 0: cpus 0-1, memory unknown\ndistances: unknown"))
    }

    @Test func unreadableOrMalformedSysfsThrows() throws {
        #expect {
            try NUMATopology.read(sysfsRoot: "/nonexistent-sysfs")
        } throws: { error in
            "\(error)".contains("cannot read /nonexistent-sysfs/devices/system/node/online")
        }
        let root = try NUMATestSupport.fakeSysfs(online: "0-x", cpuOnline: nil, nodes: [])
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect {
            try NUMATopology.read(sysfsRoot: root)
        } throws: { error in
            "\(error)".contains("online is malformed: '0-x'")
        }
    }

    @Test func codableRoundTrip() throws {
        let topology = NUMATopology.current()
        let decoded = try JSONDecoder().decode(NUMATopology.self, from: JSONEncoder().encode(topology))
        #expect(decoded == topology)
        let json = try #require(NUMATestSupport.jsonObject(NUMATestSupport.synthetic(nodes: 2)) as? [String: Any])
        let nodes = try #require(json["nodes"] as? [[String: Any]])
        #expect(nodes.count == 2)
        #expect(nodes[1]["id"] as? Int == 1)
        #expect(nodes[1]["cpus"] as? [Int] == [1])
        #expect(nodes[1]["distances"] as? [Int] == [20, 10])
        #expect(nodes[1]["memoryBytes"] as? Int == 1 << 30)
    }

    @Test func renderedCurrentNamesEveryNode() {
        let topology = NUMATopology.current()
        let text = topology.rendered()
        let count = topology.nodes.count
        #expect(text.hasPrefix("\(count) NUMA \(count == 1 ? "node" : "nodes")"))
        for node in topology.nodes { #expect(text.contains("node \(node.id): cpus ")) }
        #expect(text.contains("distances:\n"))
        #expect(topology.description == text)
    }
}
