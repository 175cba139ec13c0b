// dmabench — Harness
//
// The context block of a result: facts about the machine, never environment variables,
// home paths, or host names beyond a host identifier the user can override (`--host-id`).

import Foundation
import Platform

public enum EnvironmentCapture {
    public static let toolVersion = "0.1.0"

    static func read(_ path: String) -> String? {
        try? String(contentsOfFile: path, encoding: .utf8)
    }

    /// The CPU model from /proc/cpuinfo.
    public static var cpuModel: String {
        guard let info = read("/proc/cpuinfo") else { return "unknown" }
        for line in info.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return "unknown"
    }

    /// The kernel release (uname -r).
    public static var kernel: String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: &u.release) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// The cpufreq governor of cpu0, if the machine exposes one.
    public static var governor: String? {
        read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A short, stable identifier for this machine: a hash of /etc/machine-id (so a hostname
    /// never leaks into a shared result), unless the user gives one.
    public static func hostID(override: String?) -> String {
        if let o = override, !o.isEmpty { return o }
        let id = read("/etc/machine-id")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in id.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return "host-" + String(String(h, radix: 16).prefix(8))
    }

    /// The source tree this binary was built in: the nearest directory above the executable
    /// that holds `.git` (a repository or a worktree), so that a binary built from another
    /// commit (Scripts/compare-commits.sh builds base and head in worktrees) reports its own
    /// commit, whatever the current directory. Nil when the binary was copied elsewhere.
    public static var buildTree: String? {
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        var dir = (exe as NSString).deletingLastPathComponent
        while dir.count > 1 {
            if FileManager.default.fileExists(atPath: dir + "/.git") { return dir }
            dir = (dir as NSString).deletingLastPathComponent
        }
        return nil
    }

    /// The git commit of the binary's source tree (else of the working directory), and
    /// whether that tree is dirty.
    public static func gitState() -> (commit: String, dirty: Bool) {
        if let tree = buildTree {
            let g = gitState(directory: tree)
            if g.commit != "unknown" { return g }
        }
        return gitState(directory: FileManager.default.currentDirectoryPath)
    }

    /// The git commit of `directory` and whether the tree is dirty.
    public static func gitState(directory: String) -> (commit: String, dirty: Bool) {
        func git(_ args: [String]) -> String? {
            guard let r = try? ChildProcess.run(["git", "-C", directory] + args), r.status == 0 else { return nil }
            return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard let commit = git(["rev-parse", "--short=12", "HEAD"]) else { return ("unknown", false) }
        let dirty = !(git(["status", "--porcelain", "--untracked-files=no"]) ?? "").isEmpty
        return (commit, dirty)
    }

    /// The NUMA nodes listed in sysfs.
    public static var numaNodes: [Int] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/sys/devices/system/node")) ?? []
        let nodes = entries.compactMap { e -> Int? in e.hasPrefix("node") ? Int(e.dropFirst(4)) : nil }.sorted()
        return nodes.isEmpty ? [0] : nodes
    }

    /// The command line as recorded: the user's home directory is written as "~", so that a
    /// shared result does not carry it.
    public static func sanitized(_ commandLine: [String]) -> [String] {
        guard let home = ProcessInfo.processInfo.environment["HOME"], home.count > 1 else { return commandLine }
        return commandLine.map { $0.replacingOccurrences(of: home, with: "~") }
    }

    public static func context(commandLine: [String], hostID: String?) -> ResultContext {
        let commandLine = sanitized(commandLine)
        let g = gitState()
        let f = ISO8601DateFormatter()
        return ResultContext(
            date: f.string(from: Date()), host: self.hostID(override: hostID), cpu: cpuModel, cores: CPU.onlineCount,
            kernel: kernel, commit: g.commit, dirty: g.dirty, governor: governor, numaNodes: numaNodes,
            commandLine: commandLine, toolVersion: toolVersion, clock: stampClockDescription)
    }

    /// The descriptor-stamp clock, with the reason when it is not the CPU counter.
    public static var stampClockDescription: String {
        let c = StampClock.shared
        if let why = StampClock.sharedFallbackReason { return "\(c) (\(why))" }
        return c.description
    }

    /// The caches from sysfs, and what `--cache cold` does with `method` on this machine.
    public static func cacheContext(method: CacheMethod) -> CacheContext {
        let levels = CacheControl.levels()
        let text: String
        switch method {
        case .flush:
            let how = CacheControl.instruction?.rawValue ?? "no flush instruction"
            text = "flush: \(how) of each slot's source and destination lines before its submit, and of both regions before each repetition"
        case .footprint:
            let llc = CacheControl.lastLevelBytes(levels).map { ByteSize.format($0) } ?? "unknown"
            text = "footprint: slots added until one lap covers \(CacheMethod.footprintMultiple)x the last-level cache (\(llc)); both regions flushed before each repetition"
        }
        return CacheContext(method: text, flushInstruction: CacheControl.instruction?.rawValue, lineSize: CacheControl.lineSize(), levels: levels)
    }
}
