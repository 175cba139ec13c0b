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

    /// The CPU as recorded: the model name from /proc/cpuinfo, with its signature and copy
    /// features (`cpuDescription(cpuinfo:)`).
    public static var cpuModel: String { cpuDescription(cpuinfo: CPUInfo.read() ?? "") }

    /// The flags that decide which `memcpy` glibc picks and how fast it is.
    static let copyFeatures = ["avx2", "avx512f", "erms", "fsrm"]

    /// "AMD EPYC (family 25, model 1, stepping 1; avx2 erms fsrm)" from the first CPU of
    /// `cpuinfo`. A virtual machine often shows a generic model name ("AMD EPYC") on
    /// different hardware from one boot to the next, so the signature and the copy features
    /// tell the machines apart. Without them (non-x86), the model name alone.
    public static func cpuDescription(cpuinfo: String) -> String {
        let name = CPUInfo.field("model name", in: cpuinfo) ?? "unknown"
        guard let sig = cpuSignature(cpuinfo: cpuinfo) else { return name }
        let features = copyFeatures.filter(CPUInfo.flags(in: cpuinfo).contains)
        return "\(name) (\(sig)" + (features.isEmpty ? "" : "; " + features.joined(separator: " ")) + ")"
    }

    /// "family 25, model 1, stepping 1" (x86 `cpu family`, `model`, `stepping`), or nil.
    public static func cpuSignature(cpuinfo: String) -> String? {
        guard let f = CPUInfo.field("cpu family", in: cpuinfo), let m = CPUInfo.field("model", in: cpuinfo) else { return nil }
        return "family \(f), model \(m)" + (CPUInfo.field("stepping", in: cpuinfo).map { ", stepping \($0)" } ?? "")
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

    /// A short, stable identifier for this machine, unless the user gives one: a hash of
    /// /etc/machine-id (so a hostname never leaks into a shared result) and the CPU signature.
    /// A cloned VM image keeps its machine-id on whatever hardware it boots, and results from
    /// two CPU generations must not land in one `Results/<host>/` series.
    public static func hostID(override: String?) -> String {
        if let o = override, !o.isEmpty { return o }
        let id = read("/etc/machine-id")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
        return hostID(machineID: id, cpuSignature: cpuSignature(cpuinfo: CPUInfo.read() ?? ""))
    }

    /// "host-" and 8 hex digits of an FNV-1a hash of the machine-id and the CPU signature.
    public static func hostID(machineID: String, cpuSignature: String?) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in (machineID + (cpuSignature.map { "\n" + $0 } ?? "")).utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
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
