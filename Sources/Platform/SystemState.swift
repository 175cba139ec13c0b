// dmabench — Platform
//
// What makes a machine noisy, read from procfs and sysfs: per-CPU time (/proc/stat), this
// process's threads' run time and involuntary switches (/proc/self/task), and the settings
// pyperf's `system show` lists (frequency, boost, SMT, isolation, clock source, THP, perf
// paranoia, load, virtualization). Every read says why when it fails.

#if os(Linux)
import Glibc

/// One setting of the machine: its value or why it could not be read, and what stable
/// measurement wants.
public struct SystemProperty: Codable, Sendable, Hashable {
    public var name: String
    public var value: String?
    /// Why `value` is missing: "<path>: <errno text>".
    public var unavailable: String?
    /// What it should be for stable measurement; nil where any value will do.
    public var recommended: String?
    /// False when the value is known and differs from `recommended`.
    public var ok: Bool?
    /// The command that would fix it (for `dmabench env --check`).
    public var fix: String?

    public init(name: String, value: String? = nil, unavailable: String? = nil, recommended: String? = nil, ok: Bool? = nil, fix: String? = nil) {
        self.name = name
        self.value = value
        self.unavailable = unavailable
        self.recommended = recommended
        self.ok = ok
        self.fix = fix
    }
}

public enum SystemState {
    /// `/proc/stat`'s unit (USER_HZ).
    public static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// Reads a small file, trimmed, or the reason it could not be read.
    public static func read(_ path: String) -> Result<String, SystemError> {
        errno = 0
        guard let text = readSmallFile(path) else { return .failure(SystemError(path, errno: errno == 0 ? ENOENT : errno)) }
        return .success(text.trimmingWhitespace())
    }

    // MARK: CPU time

    /// One CPU's line of /proc/stat, in ticks.
    public struct CPUTime: Sendable, Hashable {
        public var busy: UInt64
        public var idle: UInt64
        public var steal: UInt64
        public init(busy: UInt64 = 0, idle: UInt64 = 0, steal: UInt64 = 0) {
            self.busy = busy
            self.idle = idle
            self.steal = steal
        }
    }

    /// Every CPU's time from /proc/stat: busy is user + nice + system + irq + softirq (guest
    /// time is already inside user), idle is idle + iowait.
    public static func cpuTimes(stat text: String? = nil) -> [Int: CPUTime] {
        guard let text = text ?? readSmallFile("/proc/stat") else { return [:] }
        var out: [Int: CPUTime] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("cpu") && !line.hasPrefix("cpu ") {
            let f = line.split(separator: " ")
            guard f.count >= 9, let cpu = Int(f[0].dropFirst(3)) else { continue }
            let v = f[1...].map { UInt64($0) ?? 0 }
            out[cpu] = CPUTime(busy: v[0] + v[1] + v[2] + v[5] + v[6], idle: v[3] + v[4], steal: v[7])
        }
        return out
    }

    /// This process's threads: run time in ns (`schedstat`, exact where the kernel has it,
    /// else utime + stime in ticks) and involuntary context switches, by thread id.
    public struct ThreadTime: Sendable, Hashable {
        public var runNanoseconds: UInt64
        public var involuntarySwitches: UInt64
        public init(runNanoseconds: UInt64, involuntarySwitches: UInt64) {
            self.runNanoseconds = runNanoseconds
            self.involuntarySwitches = involuntarySwitches
        }
    }

    public static func ownThreads() -> [Int32: ThreadTime] {
        var out: [Int32: ThreadTime] = [:]
        guard let dir = opendir("/proc/self/task") else { return out }
        defer { closedir(dir) }
        while let e = readdir(dir) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard let tid = Int32(name) else { continue }
            out[tid] = threadTime(tid)
        }
        return out
    }

    static func threadTime(_ tid: Int32) -> ThreadTime {
        var run: UInt64 = 0
        if let s = readSmallFile("/proc/self/task/\(tid)/schedstat"), let ns = s.split(separator: " ").first.flatMap({ UInt64($0) }) {
            run = ns
        } else if let s = readSmallFile("/proc/self/task/\(tid)/stat"), let close = s.lastIndex(of: ")") {
            // Fields 14 and 15 (utime, stime) are at 11 and 12 after the state field.
            let f = s[s.index(after: close)...].split(separator: " ")
            if f.count > 12, let u = UInt64(f[11]), let k = UInt64(f[12]) {
                run = UInt64(Double(u + k) / ticksPerSecond * 1e9)
            }
        }
        var inv: UInt64 = 0
        if let s = readSmallFile("/proc/self/task/\(tid)/status") {
            for line in s.split(separator: "\n") where line.hasPrefix("nonvoluntary_ctxt_switches:") {
                inv = UInt64(line.split(separator: ":")[1].trimmingWhitespace()) ?? 0
            }
        }
        return ThreadTime(runNanoseconds: run, involuntarySwitches: inv)
    }

    // MARK: Changes `dmabench env --check --apply` may make

    /// One sysfs write that makes measurement steadier, with the write that undoes it.
    public struct Change: Sendable, Hashable {
        public var path: String
        public var from: String
        public var to: String
        public var undo: String { "echo \(from) | sudo tee \(path)" }
    }

    /// The safe changes: every CPU's governor to `performance` (where the driver offers
    /// it), and boost off. Nothing else (SMT, isolation, THP) is changed: those need a reboot
    /// or affect the whole machine's users.
    public static func safeChanges() -> [Change] {
        var out: [Change] = []
        for cpu in 0..<CPU.onlineCount {
            let dir = "/sys/devices/system/cpu/cpu\(cpu)/cpufreq"
            guard case .success(let g) = read("\(dir)/scaling_governor"), g != "performance",
                case .success(let avail) = read("\(dir)/scaling_available_governors"),
                avail.split(separator: " ").contains("performance")
            else { continue }
            out.append(Change(path: "\(dir)/scaling_governor", from: g, to: "performance"))
        }
        if let c = boostControl(), case .success(let v) = read(c.path) {
            let off = c.oneMeansOff ? "1" : "0"
            if v != off { out.append(Change(path: c.path, from: v, to: off)) }
        }
        return out
    }

    /// Writes `value` to a sysfs file.
    public static func write(_ value: String, to path: String) throws(SystemError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError(path, errno: errno) }
        defer { close(fd) }
        let n = value.withCString { Glibc.write(fd, $0, strlen($0)) }
        if n < 0 { throw SystemError(path, errno: errno) }
    }

    // MARK: Settings

    /// Every setting, in a fixed order.
    public static func properties() -> [SystemProperty] {
        [cpufreqDriver(), governor(), boost(), smt(), isolated(), nohzFull(), clockSource(), transparentHugePages(),
         perfParanoid(), loadAverage(), virtualization()]
    }

    static let cpufreq = "/sys/devices/system/cpu/cpu0/cpufreq"

    static func property(
        _ name: String, _ path: String, recommended: String? = nil, fix: String? = nil, transform: (String) -> String = { $0 },
        isOK: ((String) -> Bool)? = nil
    ) -> SystemProperty {
        switch read(path) {
        case .success(let raw):
            let v = transform(raw)
            return SystemProperty(name: name, value: v, recommended: recommended, ok: isOK.map { $0(v) }, fix: fix)
        case .failure(let e):
            return SystemProperty(name: name, unavailable: e.description, recommended: recommended, fix: nil)
        }
    }

    static func cpufreqDriver() -> SystemProperty {
        property("cpufreq driver", "\(cpufreq)/scaling_driver")
    }

    static func governor() -> SystemProperty {
        property(
            "cpufreq governor", "\(cpufreq)/scaling_governor", recommended: "performance",
            fix: "echo performance | sudo tee /sys/devices/system/cpu/cpu*/cpufreq/scaling_governor (or: dmabench env --check --apply)",
            isOK: { $0 == "performance" })
    }

    /// The path that turns boost on or off, and whether writing 1 there turns it off.
    public static func boostControl() -> (path: String, oneMeansOff: Bool)? {
        if case .success = read("/sys/devices/system/cpu/intel_pstate/no_turbo") { return ("/sys/devices/system/cpu/intel_pstate/no_turbo", true) }
        if case .success = read("/sys/devices/system/cpu/cpufreq/boost") { return ("/sys/devices/system/cpu/cpufreq/boost", false) }
        return nil
    }

    static func boost() -> SystemProperty {
        guard let c = boostControl() else {
            let why = read("/sys/devices/system/cpu/cpufreq/boost")
            if case .failure(let e) = why {
                return SystemProperty(name: "boost/turbo", unavailable: "no intel_pstate/no_turbo, and \(e.description)", recommended: "off")
            }
            return SystemProperty(name: "boost/turbo", unavailable: "unknown", recommended: "off")
        }
        return property(
            "boost/turbo", c.path, recommended: "off",
            fix: "echo \(c.oneMeansOff ? 1 : 0) | sudo tee \(c.path) (or: dmabench env --check --apply)",
            transform: { v in (v == "1") != c.oneMeansOff ? "on" : "off" }, isOK: { $0 == "off" })
    }

    static func smt() -> SystemProperty {
        property(
            "SMT", "/sys/devices/system/cpu/smt/active", recommended: "off, or the measured CPUs' siblings idle",
            fix: "echo off | sudo tee /sys/devices/system/cpu/smt/control", transform: { $0 == "1" ? "on" : "off" },
            isOK: { $0 == "off" })
    }

    static func isolated() -> SystemProperty {
        property(
            "isolcpus", "/sys/devices/system/cpu/isolated", recommended: "the measured CPUs",
            fix: "boot with isolcpus=<cpus> on the kernel command line", transform: { $0.isEmpty ? "none" : $0 })
    }

    static func nohzFull() -> SystemProperty {
        property(
            "nohz_full", "/sys/devices/system/cpu/nohz_full", recommended: "the measured CPUs",
            fix: "boot with nohz_full=<cpus> on the kernel command line",
            transform: { $0.isEmpty || $0 == "(null)" ? "none" : $0 })
    }

    static func clockSource() -> SystemProperty {
        property(
            "clock source", "/sys/devices/system/clocksource/clocksource0/current_clocksource", recommended: "tsc",
            fix: "echo tsc | sudo tee /sys/devices/system/clocksource/clocksource0/current_clocksource", isOK: { $0 == "tsc" })
    }

    static func transparentHugePages() -> SystemProperty {
        property(
            "transparent huge pages", "/sys/kernel/mm/transparent_hugepage/enabled", recommended: "madvise or never",
            fix: "echo madvise | sudo tee /sys/kernel/mm/transparent_hugepage/enabled",
            transform: { v in
                // "always [madvise] never": the bracketed word is the setting.
                guard let a = v.firstIndex(of: "["), let b = v.firstIndex(of: "]"), a < b else { return v }
                return String(v[v.index(after: a)..<b])
            }, isOK: { $0 != "always" })
    }

    static func perfParanoid() -> SystemProperty {
        property(
            "perf_event_paranoid", "/proc/sys/kernel/perf_event_paranoid", recommended: "0 or less (the engine CPU counted whole)",
            fix: "sudo sysctl kernel.perf_event_paranoid=0", isOK: { (Int($0) ?? 3) <= 0 })
    }

    static func loadAverage() -> SystemProperty {
        let cores = Double(CPU.onlineCount)
        return property(
            "load average", "/proc/loadavg", recommended: "below 0.1 per CPU (nothing else running)",
            fix: "stop other work on this machine", transform: { $0.split(separator: " ").prefix(3).joined(separator: " ") },
            isOK: { (Double($0.split(separator: " ").first ?? "") ?? 0) < 0.1 * cores })
    }

    static func virtualization() -> SystemProperty {
        guard let info = readSmallFile("/proc/cpuinfo") else {
            return SystemProperty(name: "virtual machine", unavailable: SystemError("/proc/cpuinfo", errno: errno).description)
        }
        let flagged = CPUInfo.flags(in: info).contains("hypervisor")
        var detail: [String] = []
        if flagged { detail.append("cpuinfo hypervisor flag") }
        if case .success(let v) = read("/sys/class/dmi/id/sys_vendor"), !v.isEmpty { detail.append("DMI vendor \(v)") }
        if case .success(let p) = read("/sys/class/dmi/id/product_name"), !p.isEmpty { detail.append("DMI product \(p)") }
        let value = (flagged ? "yes" : "no") + (detail.isEmpty ? "" : " (\(detail.joined(separator: "; ")))")
        return SystemProperty(
            name: "virtual machine", value: value, recommended: "no (a guest shares its host's CPUs and caches)", ok: !flagged,
            fix: flagged ? "measure on bare metal for final figures" : nil)
    }
}
#endif
