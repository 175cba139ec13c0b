// dmabench — PlatformTests
//
// Helpers for the NUMA tests: synthetic topologies, fake sysfs trees, and running a body
// on a fresh thread (pinning must never touch the test runner's own threads).

import Foundation
import Glibc
import Platform
import Synchronization
import Testing

enum NUMATestSupport {
    /// The topology of the machine the tests run on (read once per test).
    static var current: NUMATopology { NUMATopology.current() }
    /// Whether this machine (or guest) has two or more NUMA nodes.
    static var multiNode: Bool { NUMATopology.current().nodes.count >= 2 }
    static let multiNodeReason: Comment = "needs 2+ NUMA nodes; run Scripts/test-numa.sh"

    /// `count` nodes of `cpusPerNode` CPUs each, 1 GiB each, distance 10 local / 20 remote.
    static func synthetic(nodes count: Int, cpusPerNode: Int = 1, ids: [Int]? = nil) -> NUMATopology {
        let ids = ids ?? Array(0..<count)
        return NUMATopology(nodes: ids.enumerated().map { index, id in
            NUMATopology.Node(
                id: id,
                cpus: Array(index * cpusPerNode..<(index + 1) * cpusPerNode),
                memoryBytes: 1 << 30,
                distances: ids.map { $0 == id ? 10 : 20 }
            )
        })
    }

    /// This build machine as the brief describes it: one node 0 with cpus 0-1.
    static let oneNodeTwoCPUs = synthetic(nodes: 1, cpusPerNode: 2)

    /// Runs `body` on a new OSThread and returns its result.
    static func onFreshThread<T: Sendable>(_ name: String = "numa-test", _ body: @escaping @Sendable () -> T) throws -> T {
        let box = ResultBox<T>()
        let thread = try OSThread(name: name) { box.set(body()) }
        thread.join()
        return box.get()!
    }

    final class ResultBox<T: Sendable>: Sendable {
        private let value = Mutex<T?>(nil)
        func set(_ v: T) { value.withLock { $0 = v } }
        func get() -> T? { value.withLock { $0 } }
    }

    /// A fake sysfs tree under a new temporary directory; returns the root.
    static func fakeSysfs(online: String, cpuOnline: String?, nodes: [(id: Int, cpulist: String, memKiB: Int?, distance: String?)]) throws -> String {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("numa-sysfs-\(UUID().uuidString)").path
        let nodeDir = root + "/devices/system/node"
        try FileManager.default.createDirectory(atPath: nodeDir, withIntermediateDirectories: true)
        try (online + "\n").write(toFile: nodeDir + "/online", atomically: true, encoding: .utf8)
        if let cpuOnline {
            try FileManager.default.createDirectory(atPath: root + "/devices/system/cpu", withIntermediateDirectories: true)
            try (cpuOnline + "\n").write(toFile: root + "/devices/system/cpu/online", atomically: true, encoding: .utf8)
        }
        for node in nodes {
            let dir = nodeDir + "/node\(node.id)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try (node.cpulist + "\n").write(toFile: dir + "/cpulist", atomically: true, encoding: .utf8)
            if let kib = node.memKiB {
                let meminfo = "Node \(node.id) MemTotal:       \(kib) kB\nNode \(node.id) MemFree:        \(kib / 2) kB\n"
                try meminfo.write(toFile: dir + "/meminfo", atomically: true, encoding: .utf8)
            }
            if let distance = node.distance {
                try (distance + "\n").write(toFile: dir + "/distance", atomically: true, encoding: .utf8)
            }
        }
        return root
    }

    /// The description of the NUMAError `body` throws; nil when it throws nothing.
    static func message(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as NUMAError {
            return error.description
        } catch {
            return "not a NUMAError: \(error)"
        }
    }

    /// The text of a file, nil if it cannot be read.
    static func readFile(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    /// A kernel list ("0-3,8") as numbers.
    static func parseList(_ text: String) -> [Int] {
        text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").flatMap { part -> [Int] in
            let b = part.split(separator: "-").compactMap { Int($0) }
            return b.count == 2 ? Array(b[0]...b[1]) : b
        }
    }

    /// Runs a program and returns its stdout, nil if it cannot run or fails. Uses
    /// posix_spawn directly: Foundation's Process hung in the qemu guest (its CFSocket
    /// wake-up pair could not be created there, and waitUntilExit never returned).
    static func run(_ path: String, _ arguments: [String]) -> String? {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return nil }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, nil, argv, environ)
        close(fds[1])
        guard rc == 0 else {
            close(fds[0])
            return nil
        }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n > 0 { output += chunk[0..<n]; continue }
            if n < 0 && errno == EINTR { continue }
            break
        }
        close(fds[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { return nil }  // exited with status 0
        return String(decoding: output, as: UTF8.self)
    }

    static let numactlPath = "/usr/bin/numactl"
    static var hasNumactl: Bool { FileManager.default.isExecutableFile(atPath: numactlPath) }

    /// JSON of a Codable value as a Foundation object.
    static func jsonObject<T: Encodable>(_ value: T) throws -> Any {
        try JSONSerialization.jsonObject(with: JSONEncoder().encode(value))
    }

    /// The rule Scripts/test-numa.sh applies to result files: every field of every
    /// requested target equals the same field of the verified one.
    static func requestedIsSubObject(requested: Any, verified: Any) -> Bool {
        guard let req = requested as? [String: Any], let ver = verified as? [String: Any] else { return false }
        for (key, target) in req {
            guard let target = target as? [String: Any], let seen = ver[key] as? [String: Any] else { return false }
            for (field, value) in target {
                guard let a = value as? Int, let b = seen[field] as? Int, a == b else { return false }
            }
        }
        return true
    }
}
