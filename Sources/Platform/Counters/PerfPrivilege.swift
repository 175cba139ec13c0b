// dmabench — Platform
//
// What perf_event_open(2) lets this process count: perf_event_paranoid, the effective uid
// and the capabilities CAP_PERFMON / CAP_SYS_ADMIN (the kernel's perfmon_capable()).

#if os(Linux)
import Glibc

/// The privilege facts that decide what perf_event_open(2) allows, and what follows from them.
///
/// The kernel's rules (kernel/events/core.c, Documentation/admin-guide/perf-security.rst):
/// - perfmon_capable() (CAP_PERFMON, or CAP_SYS_ADMIN) lifts every restriction below;
/// - perf_event_paranoid >= 3 (a Debian/Android patch): no perf_event_open at all (EACCES);
/// - >= 2: user-mode counting only: an event without `exclude_kernel` fails with EACCES;
/// - >= 1: no per-CPU counting (pid = -1), only one's own threads;
/// - <= 0: per-CPU counting allowed; -1: no restrictions.
/// Counting another thread also needs ptrace read access to it; a thread of one's own
/// process always passes.
public struct PerfPrivilege: Sendable, Hashable, CustomStringConvertible {
    /// /proc/sys/kernel/perf_event_paranoid, or nil when the file does not exist (a kernel
    /// built without perf events).
    public var paranoidLevel: Int?
    /// geteuid(2).
    public var effectiveUserID: UInt32
    /// CAP_PERFMON (38) in the effective set (/proc/self/status CapEff).
    public var hasCapPerfmon: Bool
    /// CAP_SYS_ADMIN (21) in the effective set.
    public var hasCapSysAdmin: Bool

    public init(paranoidLevel: Int?, effectiveUserID: UInt32, hasCapPerfmon: Bool, hasCapSysAdmin: Bool) {
        self.paranoidLevel = paranoidLevel
        self.effectiveUserID = effectiveUserID
        self.hasCapPerfmon = hasCapPerfmon
        self.hasCapSysAdmin = hasCapSysAdmin
    }

    /// Reads the facts for this process now.
    public static func current() -> PerfPrivilege {
        let paranoid = readSmallFile("/proc/sys/kernel/perf_event_paranoid")
            .flatMap { Int($0.trimmingWhitespace()) }
        var capEff: UInt64 = 0
        if let status = readSmallFile("/proc/self/status") {
            for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
                capEff = UInt64(line.dropFirst("CapEff:".count).trimmingWhitespace(), radix: 16) ?? 0
            }
        }
        return PerfPrivilege(
            paranoidLevel: paranoid,
            effectiveUserID: geteuid(),
            hasCapPerfmon: capEff & (1 << 38) != 0,
            hasCapSysAdmin: capEff & (1 << 21) != 0)
    }

    /// The kernel's perfmon_capable().
    public var isPerfmonCapable: Bool { hasCapPerfmon || hasCapSysAdmin }
    /// perf_event_open(2) exists in this kernel.
    public var perfEventsAvailable: Bool { paranoidLevel != nil }
    /// perf_event_open(2) is allowed at all.
    public var mayOpen: Bool { perfEventsAvailable && (isPerfmonCapable || (paranoidLevel ?? 0) < 3) }
    /// Kernel-mode counts are allowed (otherwise events must set `exclude_kernel`).
    public var mayCountKernel: Bool { mayOpen && (isPerfmonCapable || (paranoidLevel ?? 0) <= 1) }
    /// Per-CPU counting (`CounterTarget.cpu`) is allowed.
    public var mayCountPerCPU: Bool { mayOpen && (isPerfmonCapable || (paranoidLevel ?? 0) <= 0) }

    /// The libpfm4 default privilege-level mask to encode with: `PFM_PLM0 | PFM_PLM3` (kernel
    /// and user) where kernel counting is allowed, `PFM_PLM3` (user only) otherwise. A
    /// modifier in the event name (":u", ":k") overrides it.
    public var defaultPrivilegeLevelMask: Int32 { mayCountKernel ? 0x01 | 0x08 : 0x08 }

    /// "perf_event_paranoid=2", or "no perf_event_paranoid".
    public var paranoidText: String {
        paranoidLevel.map { "perf_event_paranoid=\($0)" } ?? "no /proc/sys/kernel/perf_event_paranoid"
    }

    /// What is not allowed here and what would allow it, one line each; empty when nothing
    /// is restricted.
    public var restrictions: [String] {
        guard perfEventsAvailable else {
            return ["perf events: this kernel has no perf_event_open (no /proc/sys/kernel/perf_event_paranoid)"]
        }
        var lines: [String] = []
        if !mayOpen {
            lines.append("perf events: \(paranoidText) forbids perf_event_open for this user; needs CAP_PERFMON or perf_event_paranoid <= 2")
            return lines
        }
        if !mayCountKernel {
            lines.append("kernel-mode counts: excluded (\(paranoidText), no CAP_PERFMON); user mode only; context-switches and cpu-migrations cannot be counted; needs CAP_PERFMON or perf_event_paranoid <= 1")
        }
        if !mayCountPerCPU {
            lines.append("per-CPU counting (io-wq workers, other processes): not allowed (\(paranoidText), no CAP_PERFMON); needs CAP_PERFMON or perf_event_paranoid <= 0")
        }
        return lines
    }

    public var description: String {
        let caps = [hasCapPerfmon ? "CAP_PERFMON" : nil, hasCapSysAdmin ? "CAP_SYS_ADMIN" : nil].compactMap { $0 }
        return "\(paranoidText), euid \(effectiveUserID), capabilities: \(caps.isEmpty ? "none" : caps.joined(separator: ","))"
    }
}

/// Reads a small text file (procfs) whole, or nil.
func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes.append(contentsOf: chunk[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
#endif
