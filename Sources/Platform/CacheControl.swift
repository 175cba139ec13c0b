// dmabench — Platform
//
// The data caches: their sizes (sysfs) and evicting a range from all of them (clflushopt,
// clflush or dc civac through CLinuxShims), for the workloads' `--cache cold`.

import CLinuxShims

#if os(Linux)
import Glibc
#endif

public enum CacheControl {
    /// The instruction that evicts a line from every cache level.
    public enum FlushInstruction: String, Sendable, Codable {
        case clflushopt, clflush
        case dcCivac = "dc civac"
    }

    /// What this CPU has (cpuid on x86), or nil when it has none.
    public static let instruction: FlushInstruction? = {
        switch cls_flush_instruction() {
        case 2: return .clflushopt
        case 1: return .clflush
        case 3: return .dcCivac
        default: return nil
        }
    }()

    /// Writes back and evicts every line of `[p, p + count)` and fences; returns the lines
    /// flushed (0 when there is no instruction).
    @inline(__always)
    public static func flush(_ p: UnsafeRawPointer, count: Int) -> Int {
        Int(cls_flush_range(p, count, cls_flush_instruction_code))
    }

    /// `instruction`'s code for the shim, read once: the flush runs per descriptor.
    static let cls_flush_instruction_code: Int32 = cls_flush_instruction()

    /// One cache of CPU 0, as sysfs describes it.
    public struct Level: Codable, Sendable, Hashable {
        public var level: Int
        /// "Data", "Instruction" or "Unified".
        public var type: String
        public var sizeBytes: Int
        /// The CPUs that share it (`shared_cpu_list`).
        public var sharedWith: String
        public init(level: Int, type: String, sizeBytes: Int, sharedWith: String) {
            self.level = level
            self.type = type
            self.sizeBytes = sizeBytes
            self.sharedWith = sharedWith
        }
    }

    /// CPU 0's caches from /sys/devices/system/cpu/cpu0/cache/index*/ (empty where sysfs
    /// does not say).
    public static let levelsRoot = "/sys/devices/system/cpu/cpu0/cache"

    public static func levels(root: String = levelsRoot) -> [Level] {
        var out: [Level] = []
        for i in 0..<16 {
            let dir = "\(root)/index\(i)"
            guard let level = text("\(dir)/level").flatMap({ Int($0) }), let type = text("\(dir)/type"),
                let size = text("\(dir)/size").flatMap(parseSize)
            else { continue }
            out.append(Level(level: level, type: type, sizeBytes: size, sharedWith: text("\(dir)/shared_cpu_list") ?? ""))
        }
        return out
    }

    /// The coherency line size of CPU 0's first cache, from sysfs.
    public static func lineSize(root: String = "/sys/devices/system/cpu/cpu0/cache") -> Int? {
        text("\(root)/index0/coherency_line_size").flatMap { Int($0) }
    }

    /// CPU 0's last-level cache, read once (the slot layout asks for it per point).
    public static let lastLevel: Int? = lastLevelBytes(levels())

    /// The size of the largest data or unified cache, or nil when sysfs has none.
    public static func lastLevelBytes(_ levels: [Level]) -> Int? {
        levels.filter { $0.type != "Instruction" }.max(by: { $0.level < $1.level })?.sizeBytes
    }

    static func text(_ path: String) -> String? { readSmallFile(path)?.trimmingWhitespace() }

    /// sysfs sizes: "32K", "8192K", "1M", or bytes.
    public static func parseSize(_ s: String) -> Int? {
        guard let last = s.last else { return nil }
        let scale: Int
        switch last {
        case "K", "k": scale = 1 << 10
        case "M", "m": scale = 1 << 20
        case "G", "g": scale = 1 << 30
        default: return Int(s)
        }
        return Int(s.dropLast()).map { $0 * scale }
    }
}
