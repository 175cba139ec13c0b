// dmabench — PlatformTests
//
// Event names → perf_event_attr (libpfm4), presets, unknown names, privilege rules and
// reason texts. Nothing here opens a hardware event.

#if os(Linux)
import Glibc
import Platform
import Testing

/// A privileged and an unprivileged view of a paranoid=2 machine, for encoding tests.
private let capable = PerfPrivilege(paranoidLevel: 2, effectiveUserID: 0, hasCapPerfmon: true, hasCapSysAdmin: true)
private let unprivileged = PerfPrivilege(paranoidLevel: 2, effectiveUserID: 1000, hasCapPerfmon: false, hasCapSysAdmin: false)

@Suite("Counter event encoding")
struct CounterEncodingTests {
    struct Expected: Sendable, CustomTestStringConvertible {
        var name: String
        var type: UInt32
        var config: UInt64
        var testDescription: String { name }
    }

    // perf_event ABI: PERF_TYPE_HARDWARE 0 (PERF_COUNT_HW_CPU_CYCLES 0, INSTRUCTIONS 1,
    // CACHE_MISSES 3, BRANCH_MISSES 5), PERF_TYPE_SOFTWARE 1 (TASK_CLOCK 1, PAGE_FAULTS 2,
    // CONTEXT_SWITCHES 3, CPU_MIGRATIONS 4), PERF_TYPE_HW_CACHE 3 (NODE 6 | READ 0 << 8 |
    // ACCESS 0 << 16, MISS 1 << 16).
    static let expected: [Expected] = [
        .init(name: "cycles", type: 0, config: 0),
        .init(name: "instructions", type: 0, config: 1),
        .init(name: "cache-misses", type: 0, config: 3),
        .init(name: "branch-misses", type: 0, config: 5),
        .init(name: "task-clock", type: 1, config: 1),
        .init(name: "page-faults", type: 1, config: 2),
        .init(name: "context-switches", type: 1, config: 3),
        .init(name: "cpu-migrations", type: 1, config: 4),
        .init(name: "node-loads", type: 3, config: 0x6),
        .init(name: "node-load-misses", type: 3, config: 0x10006),
        .init(name: "perf::PERF_COUNT_SW_TASK_CLOCK", type: 1, config: 1),
        .init(name: "PERF_COUNT_HW_INSTRUCTIONS", type: 0, config: 1),
    ]

    @Test("perf and libpfm4 names encode to the kernel's type and config", arguments: expected)
    func encodesName(_ e: Expected) throws {
        let specs = try PerfEvents.resolve([e.name], privilege: capable)
        #expect(specs.count == 1)
        let spec = try #require(specs.first)
        #expect(spec.name == e.name)
        #expect(spec.type == e.type)
        #expect(spec.config == e.config)
        #expect(spec.isSoftware == (e.type == 1))
        #expect(!spec.canonicalName.isEmpty)
    }

    @Test("kernel mode is counted when allowed and excluded when not")
    func privilegeLevelMask() throws {
        let full = try PerfEvents.resolve(["cycles", "task-clock"], privilege: capable)
        #expect(full.allSatisfy { !$0.excludesKernel && !$0.excludesUser })
        let userOnly = try PerfEvents.resolve(["cycles", "task-clock"], privilege: unprivileged)
        #expect(userOnly.allSatisfy { $0.excludesKernel && !$0.excludesUser })
        // A modifier in the name wins over the default.
        let explicit = try PerfEvents.resolve(["instructions:u", "instructions:k"], privilege: capable)
        #expect(explicit[0].excludesKernel && !explicit[0].excludesUser)
        #expect(!explicit[1].excludesKernel && explicit[1].excludesUser)
    }

    @Test("presets expand in place; blanks are dropped")
    func presets() throws {
        #expect(PerfEvents.expandPresets(["default"]) == CounterPreset.hardwareNames + CounterPreset.softwareNames)
        #expect(PerfEvents.expandPresets([" software ", "", "LLC-load-misses"])
            == ["task-clock", "context-switches", "cpu-migrations", "page-faults", "LLC-load-misses"])
        let numa = try PerfEvents.resolve(["numa"], privilege: capable)
        #expect(numa.map(\.name) == CounterPreset.numa.eventNames)
        #expect(numa.map(\.name).suffix(2) == ["node-loads", "node-load-misses"])
    }

    @Test("user and kernel counts can be kept apart")
    func userKernelSplit() throws {
        #expect(PerfEvents.splitUserKernel(["cycles", "software"]).prefix(4) == ["cycles:u", "cycles:k", "task-clock:u", "task-clock:k"])
        let specs = try PerfEvents.resolve(PerfEvents.splitUserKernel(["cycles", "page-faults"]), privilege: capable)
        #expect(specs.map(\.excludesKernel) == [true, false, true, false])
        #expect(specs.map(\.excludesUser) == [false, true, false, true])
        // context-switches:u would count 0 whoever asks: reported, not counted.
        let cs = try #require(PerfEvents.resolve(["context-switches:u"], privilege: capable).first)
        let a = PerfEvents.probe(cs, target: .currentThread, privilege: capable)
        #expect(a == .unsupported(errno: nil, reason: "unsupported: context-switches:u happens only in kernel mode and would count 0 with kernel mode excluded (drop the :u)"))
    }

    @Test("an unknown name is an error that names it and the valid choices")
    func unknownName() {
        #expect(throws: CounterError.self) { try PerfEvents.resolve(["task-clock", "no-such-event"]) }
        do {
            _ = try PerfEvents.resolve(["task-clock", "no-such-event", "bogus2"])
            Issue.record("resolve accepted an unknown event")
        } catch {
            guard case .unknownEvent(let name, let detail) = error else {
                Issue.record("wrong error \(error)")
                return
            }
            #expect(name == "no-such-event")
            #expect(detail == "event not found")
            let text = error.description
            #expect(text.contains("'no-such-event'"))
            #expect(text.contains("task-clock") && text.contains("default, software, numa"))
            #expect(!text.contains("\n"))
        }
    }

    @Test("an empty list is an error")
    func emptyList() {
        #expect(throws: CounterError.noEvents) { try PerfEvents.resolve([" ", ""]) }
    }

    @Test("the privilege rules follow the kernel's perf_event_paranoid levels")
    func privilegeRules() {
        func p(_ level: Int?, cap: Bool = false) -> PerfPrivilege {
            PerfPrivilege(paranoidLevel: level, effectiveUserID: 1000, hasCapPerfmon: cap, hasCapSysAdmin: false)
        }
        #expect(p(-1).mayCountPerCPU && p(-1).mayCountKernel && p(-1).restrictions.isEmpty)
        #expect(p(0).mayCountPerCPU && p(0).mayCountKernel)
        #expect(!p(1).mayCountPerCPU && p(1).mayCountKernel)
        #expect(!p(2).mayCountPerCPU && !p(2).mayCountKernel && p(2).mayOpen)
        #expect(p(2).defaultPrivilegeLevelMask == 0x08)
        #expect(p(2).restrictions.count == 2)
        #expect(p(2).restrictions.allSatisfy { $0.contains("CAP_PERFMON") && $0.contains("perf_event_paranoid=2") })
        #expect(!p(3).mayOpen)
        #expect(p(3).restrictions == ["perf events: perf_event_paranoid=3 forbids perf_event_open for this user; needs CAP_PERFMON or perf_event_paranoid <= 2"])
        #expect(p(3, cap: true).mayOpen && p(3, cap: true).mayCountPerCPU && p(3, cap: true).restrictions.isEmpty)
        #expect(p(3, cap: true).defaultPrivilegeLevelMask == 0x09)
        #expect(!p(nil).perfEventsAvailable && !p(nil).mayOpen)
    }

    @Test("this process's privilege facts are read from procfs")
    func currentPrivilege() {
        let now = PerfPrivilege.current()
        #expect(now.paranoidLevel == PerfEvents.paranoidLevel)
        #expect(now.effectiveUserID == geteuid())
        if geteuid() == 0 { #expect(now.hasCapSysAdmin, "root without CAP_SYS_ADMIN in CapEff: \(now)") }
        #expect(now.description.contains("perf_event_paranoid="))
    }

    @Test("reasons name the errno and what would help")
    func reasonTexts() throws {
        let cycles = try #require(PerfEvents.resolve(["cycles"], privilege: unprivileged).first)
        let denied = PerfEvents.reason(errno: EACCES, spec: cycles, target: .thread(id: 1),
                                       privilege: PerfPrivilege(paranoidLevel: 3, effectiveUserID: 1000, hasCapPerfmon: false, hasCapSysAdmin: false))
        #expect(denied.hasPrefix("not permitted: perf_event_paranoid=3 (EACCES)"))
        #expect(denied.contains("CAP_PERFMON"))
        let perCPU = PerfEvents.reason(errno: EACCES, spec: cycles, target: .cpu(0), privilege: unprivileged)
        #expect(perCPU.contains("per-CPU counting needs CAP_PERFMON or perf_event_paranoid <= 0"))
        let kernel = try #require(PerfEvents.resolve(["cycles:k"], privilege: unprivileged).first)
        let kernelReason = PerfEvents.reason(errno: EACCES, spec: kernel, target: .thread(id: 1), privilege: unprivileged)
        #expect(kernelReason.contains("kernel-mode counting needs CAP_PERFMON or perf_event_paranoid <= 1"))
        let noEntry = PerfEvents.reason(errno: ENOENT, spec: cycles, target: .thread(id: 1), privilege: capable)
        if PerfProbe.hasHardwarePMU {
            #expect(noEntry == "unsupported: the PMU does not provide cycles (ENOENT)")
        } else {
            #expect(noEntry == "unsupported: no PMU on this machine (ENOENT)")
        }
        #expect(PerfEvents.reason(errno: ESRCH, spec: cycles, target: .thread(id: 77), privilege: capable)
            == "not counted: no such thread 77 (ESRCH)")
    }

    @Test("a kernel-only software event counted in user mode only is reported, not a silent 0")
    func kernelOnlyEventUnderParanoia() throws {
        let specs = try PerfEvents.resolve(["context-switches", "cpu-migrations", "page-faults"], privilege: unprivileged)
        let cs = PerfEvents.probe(specs[0], target: .currentThread, privilege: unprivileged)
        guard case .unsupported(let e, let reason) = cs else {
            Issue.record("context-switches:u probed as \(cs)")
            return
        }
        #expect(e == nil)
        #expect(reason.hasPrefix("not permitted: context-switches happens only in kernel mode"))
        #expect(reason.contains("perf_event_paranoid=2") && reason.contains("CAP_PERFMON"))
        #expect(!PerfEvents.probe(specs[1], target: .currentThread, privilege: unprivileged).isOK)
        // page-faults happen in user mode: counted.
        #expect(PerfEvents.probe(specs[2], target: .currentThread, privilege: unprivileged) == .ok)
    }

    @Test("the event catalogue lists the perf PMU with every event tested")
    func catalogue() throws {
        let pmus = try PerfEvents.listEvents()
        let perf = try #require(pmus.first { $0.name == "perf" }, "libpfm4 lists no 'perf' PMU: \(pmus.map(\.name))")
        #expect(perf.events.count > 10)
        let taskClock = try #require(perf.events.first { $0.name == "perf::PERF_COUNT_SW_TASK_CLOCK" })
        #expect(taskClock.availability == .ok && taskClock.testedDirectly)
        let cycles = try #require(perf.events.first { $0.name == "perf::PERF_COUNT_HW_CPU_CYCLES" })
        #expect(cycles.testedDirectly)
        #expect(cycles.availability?.isOK == PerfProbe.hasHardwarePMU)
        // The perf PMU is usable (its software events open), whatever the hardware.
        #expect(perf.availability == .ok)
        #expect(perf.events.filter { $0.availability == .ok }.count >= 8)
        // Every listed event either has a tested availability or says why it has none.
        for pmu in pmus {
            for e in pmu.events {
                #expect(e.availability != nil || e.note != nil, "\(e.name) has neither availability nor note")
            }
        }
    }
}
#endif
