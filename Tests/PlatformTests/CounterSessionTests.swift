// dmabench — PlatformTests
//
// PerfCounterSession on software events (they work everywhere), on this thread and on
// another one; hardware events are reported per event where there is no PMU and counted
// where there is one.

#if os(Linux)
import Glibc
import Platform
import Testing

/// A short busy window for one thread: about `spinMilliseconds` of CPU time, `pages` fresh
/// pages touched (one page fault each), and `sleeps` 1 ms sleeps (one voluntary context
/// switch each). Returns the thread CPU time it used, in nanoseconds.
@inline(never)
func busyWindow(spinMilliseconds: UInt64 = 20, pages: Int = 64, sleeps: Int = 3) -> UInt64 {
    let cpu0 = MonotonicClock.threadCPUTime()
    let bytes = pages * PageMemory.pageSize
    if let p = try? PageMemory.map(byteCount: bytes) {
        for i in 0..<pages { p.storeBytes(of: UInt8(truncatingIfNeeded: i), toByteOffset: i * PageMemory.pageSize, as: UInt8.self) }
        PageMemory.unmap(p, byteCount: bytes)
    }
    for _ in 0..<sleeps { MonotonicClock.sleep(nanoseconds: 1_000_000) }
    var x: UInt64 = 1
    while MonotonicClock.threadCPUTime() - cpu0 < spinMilliseconds * 1_000_000 {
        for _ in 0..<1000 { x = x &* 6364136223846793005 &+ 1442695040888963407 }
    }
    withExtendedLifetime(x) {}
    return MonotonicClock.threadCPUTime() - cpu0
}

private func value(_ readings: [CounterReading], _ name: String) -> CounterReading? {
    readings.first { $0.name == name }
}

/// Kernel-mode counting is allowed here (root, CAP_PERFMON, or perf_event_paranoid <= 1).
/// Without it, context-switches and cpu-migrations must be reported as not permitted and the
/// other events carry a "user mode only" note.
let kernelCountingAllowed = PerfPrivilege.current().mayCountKernel

/// True when `r` is a kernel-only event correctly refused for lack of privilege.
func isRefusedKernelOnlyEvent(_ r: CounterReading) -> Bool {
    guard !kernelCountingAllowed, ["context-switches", "cpu-migrations"].contains(r.name) else { return false }
    return !r.isCounted && r.availability.description.hasPrefix("not permitted: \(r.name) happens only in kernel mode")
}

/// Checks the software readings of one busy window.
private func checkSoftwareReadings(_ readings: [CounterReading], cpuNanoseconds: UInt64, pages: Int, sleeps: Int) {
    for r in readings where !isRefusedKernelOnlyEvent(r) {
        #expect(r.availability == .ok, "\(r)")
        #expect(r.isCounted, "\(r)")
        #expect(r.scaling == 1.0, "software events are never multiplexed: \(r)")
        #expect(r.timeEnabled > 0 && r.timeRunning == r.timeEnabled, "\(r)")
        if !kernelCountingAllowed { #expect(r.note?.hasPrefix("user mode only") == true, "\(r)") }
    }
    guard let tc = value(readings, "task-clock")?.raw,
          let pf = value(readings, "page-faults")?.raw else {
        Issue.record("missing readings: \(readings)")
        return
    }
    // task-clock and CLOCK_THREAD_CPUTIME_ID measure the same CPU time; the counter window
    // is slightly wider than the clock's (it includes the clock reads and the sleeps' entry).
    #expect(tc >= cpuNanoseconds * 9 / 10, "task-clock \(tc) ns < thread CPU time \(cpuNanoseconds) ns")
    #expect(tc <= cpuNanoseconds * 2 + 5_000_000, "task-clock \(tc) ns ≫ thread CPU time \(cpuNanoseconds) ns")
    #expect(pf >= UInt64(pages), "each fresh page is a fault: \(pf) < \(pages): \(readings)")
    if kernelCountingAllowed {
        let cs = value(readings, "context-switches")?.raw ?? 0
        #expect(cs >= UInt64(sleeps), "each sleep is a context switch: \(cs) < \(sleeps)")
    }
}

@Suite("PerfCounterSession")
struct CounterSessionTests {
    static let softwareSet = ["task-clock", "context-switches", "page-faults"]

    @Test("counts task-clock, context-switches and page-faults on the current thread",
          .enabled(if: PerfProbe.softwareEventsWork, "perf_event_open(task-clock) fails here"))
    func currentThread() throws {
        let session = try PerfCounterSession(events: Self.softwareSet, target: .currentThread)
        #expect(session.events.allSatisfy { $0.availability == .ok || !kernelCountingAllowed }, "\(session.events)")
        #expect(session.groupCount == 1)
        let (cpu, readings) = session.measure { busyWindow() }
        checkSoftwareReadings(readings, cpuNanoseconds: cpu, pages: 64, sleeps: 3)
        // A stopped window reads the same twice.
        #expect(session.read() == readings)
    }

    @Test("counts another thread by tid",
          .enabled(if: PerfProbe.softwareEventsWork, "perf_event_open(task-clock) fails here"))
    func otherThread() throws {
        let go = ParkingEvent(), done = ParkingEvent(), exit = ParkingEvent()
        nonisolated(unsafe) var cpu: UInt64 = 0
        let worker = try OSThread(name: "counted") {
            go.wait(spinNanoseconds: 0)
            cpu = busyWindow()
            done.signal()
            exit.wait(spinNanoseconds: 0)
        }
        defer { exit.signal(); worker.join() }
        #expect(worker.threadID != 0 && worker.threadID != CPU.currentThreadID)
        let session = try PerfCounterSession(events: Self.softwareSet, target: .thread(id: worker.threadID))
        session.start()
        go.signal()
        done.wait(spinNanoseconds: 0)
        session.stop()
        // `cpu` was written before `done.signal()` (release) and read after `done.wait` (acquire).
        checkSoftwareReadings(session.read(), cpuNanoseconds: cpu, pages: 64, sleeps: 3)
    }

    @Test("inherit counts threads the target creates after opening",
          .enabled(if: PerfProbe.softwareEventsWork, "perf_event_open(task-clock) fails here"))
    func inheritCountsChildren() throws {
        let session = try PerfCounterSession(events: ["task-clock"], target: .thread(id: CPU.currentThreadID, inherit: true))
        #expect(session.events[0].availability == .ok, "\(session.events)")
        session.start()
        let childCPU = ParkingEvent()
        nonisolated(unsafe) var cpu: UInt64 = 0
        let child = try OSThread(name: "child") {
            cpu = busyWindow(spinMilliseconds: 30, pages: 0, sleeps: 0)
            childCPU.signal()
        }
        childCPU.wait(spinNanoseconds: 0)
        child.join()
        session.stop()
        let tc = try #require(session.read()[0].raw)
        // The parent only parked meanwhile, so the child's CPU time dominates the count.
        #expect(tc >= cpu * 9 / 10, "inherited task-clock \(tc) ns < child CPU time \(cpu) ns")
    }

    @Test("windows are separate: start again, count again",
          .enabled(if: PerfProbe.softwareEventsWork, "perf_event_open(task-clock) fails here"))
    func twoWindows() throws {
        let session = try PerfCounterSession(events: Self.softwareSet, target: .currentThread)
        let before = session.read()
        #expect(before.allSatisfy { !$0.isCounted }, "\(before)")
        #expect(before.filter { $0.availability.isOK }.allSatisfy { $0.note == "not counted: the session was not started" }, "\(before)")
        let (cpu1, first) = session.measure { busyWindow(spinMilliseconds: 10, pages: 32, sleeps: 2) }
        checkSoftwareReadings(first, cpuNanoseconds: cpu1, pages: 32, sleeps: 2)
        // Between windows: 128 page faults that no window may count.
        _ = busyWindow(spinMilliseconds: 0, pages: 128, sleeps: 0)
        let (cpu2, second) = session.measure { busyWindow(spinMilliseconds: 10, pages: 32, sleeps: 2) }
        checkSoftwareReadings(second, cpuNanoseconds: cpu2, pages: 32, sleeps: 2)
        // The second window includes neither the first nor the gap (members stop with their leader).
        let tc2 = try #require(value(second, "task-clock")?.raw)
        #expect(tc2 <= cpu2 * 2 + 5_000_000)
        let pf2 = try #require(value(second, "page-faults")?.raw)
        #expect(pf2 < 32 + 128, "page faults between windows were counted: \(pf2)")
        session.close()
        session.start()  // a no-op once closed
        #expect(session.read() == second)
    }

    @Test("hardware events without a PMU are reported per event with ENOENT; the rest is counted",
          .enabled(if: !PerfProbe.hasHardwarePMU, "this machine has a hardware PMU; the no-PMU path cannot be seen"))
    func hardwareUnsupported() throws {
        let session = try PerfCounterSession(events: ["default"], target: .currentThread)
        #expect(session.events.map(\.name) == CounterPreset.default.eventNames)
        let (_, readings) = session.measure { busyWindow(spinMilliseconds: 5, pages: 8, sleeps: 1) }
        #expect(readings.count == 8)
        for r in readings where CounterPreset.hardwareNames.contains(r.name) {
            #expect(r.availability == .unsupported(errno: ENOENT, reason: "unsupported: no PMU on this machine (ENOENT)"), "\(r)")
            #expect(r.raw == nil && r.scaled == nil && r.scaling == nil, "an unsupported event must carry no value: \(r)")
        }
        for r in readings where CounterPreset.softwareNames.contains(r.name) && !isRefusedKernelOnlyEvent(r) {
            #expect(r.availability == .ok && r.isCounted, "\(r)")
        }
        #expect(value(readings, "task-clock")?.raw ?? 0 > 0)
        #expect(session.availabilityByName["cycles"] == "unsupported: no PMU on this machine (ENOENT)")
        #expect(session.availabilityByName["task-clock"] == "ok")
        // The numa preset adds node-loads/node-load-misses, reported the same way.
        let numa = try PerfCounterSession(events: ["numa"], target: .currentThread)
        #expect(numa.events.filter { CounterPreset.numaNames.contains($0.name) }.allSatisfy {
            $0.availability == .unsupported(errno: ENOENT, reason: "unsupported: no PMU on this machine (ENOENT)")
        })
    }

    @Test("hardware events are counted where a PMU exists",
          .enabled(if: PerfProbe.hasHardwarePMU, "no hardware PMU on this machine: perf_event_open(cycles) fails with ENOENT"))
    func hardwareCounted() throws {
        let session = try PerfCounterSession(events: ["cycles", "instructions", "task-clock"], target: .currentThread)
        #expect(session.events.allSatisfy { $0.availability == .ok }, "\(session.events)")
        let (_, readings) = session.measure { busyWindow(spinMilliseconds: 10, pages: 0, sleeps: 0) }
        for r in readings {
            #expect(r.isCounted && (r.raw ?? 0) > 0, "\(r)")
            #expect((r.scaling ?? 0) >= 1.0, "\(r)")
        }
    }

    @Test("events spread over several groups read back in request order",
          .enabled(if: PerfProbe.softwareEventsWork, "perf_event_open(task-clock) fails here"))
    func severalGroups() throws {
        // Four events, at most two per group: two groups, each with its own leader, baseline
        // and times. (Software events are never multiplexed, so every scaling stays 1.)
        let names = ["page-faults", "task-clock", "cpu-clock", "minor-faults"]
        let specs = try PerfEvents.resolve(names)
        let session = PerfCounterSession(specs: specs, target: .currentThread,
                                         groupLimits: CounterGroupLimits(software: 2, hardware: nil))
        #expect(session.groupCount == 2)
        #expect(session.events.map(\.group) == [0, 0, 1, 1])
        let (cpu, readings) = session.measure { busyWindow(spinMilliseconds: 10, pages: 48, sleeps: 0) }
        #expect(readings.map(\.name) == names)
        for r in readings {
            #expect(r.isCounted && r.scaling == 1.0, "\(r)")
        }
        let pf = try #require(readings[0].raw), minflt = try #require(readings[3].raw)
        #expect(pf >= 48 && minflt >= 48, "\(readings)")
        let tc = try #require(readings[1].raw), clock = try #require(readings[2].raw)
        #expect(tc >= cpu * 9 / 10 && clock >= cpu * 9 / 10, "\(readings) vs thread CPU \(cpu) ns")
    }

    @Test("a thread that does not exist is reported per event (ESRCH), not thrown",
          .enabled(if: PerfProbe.softwareEventsWork, "perf_event_open(task-clock) fails here"))
    func missingThread() throws {
        let session = try PerfCounterSession(events: ["task-clock"], target: .thread(id: Int32.max - 7))
        #expect(session.events[0].availability == .unsupported(errno: ESRCH, reason: "not counted: no such thread \(Int32.max - 7) (ESRCH)"))
        #expect(session.groupCount == 0)
        session.start()
        session.stop()
        #expect(!session.read()[0].isCounted)
    }

    @Test("what the privileges forbid is reported per event with EACCES and what would allow it",
          .enabled(if: PerfProbe.softwareEventsWork, "perf_event_open(task-clock) fails here"),
          .disabled(if: PerfPrivilege.current().mayCountKernel, "this process may count kernel mode (root, CAP_PERFMON or perf_event_paranoid <= 1); run unprivileged to see the refusals"))
    func privilegeRefusals() throws {
        let privilege = PerfPrivilege.current()
        let explicitKernel = try PerfCounterSession(events: ["page-faults:k", "page-faults"], target: .currentThread)
        #expect(explicitKernel.events[0].availability == .unsupported(
            errno: EACCES,
            reason: "not permitted: \(privilege.paranoidText) (EACCES); kernel-mode counting needs CAP_PERFMON or perf_event_paranoid <= 1"))
        #expect(explicitKernel.events[1].availability == .ok)
        #expect(explicitKernel.events[1].note?.hasPrefix("user mode only: \(privilege.paranoidText) without CAP_PERFMON") == true)
        let perCPU = try PerfCounterSession(events: ["cpu-clock"], target: .cpu(0))
        #expect(perCPU.events[0].availability == .unsupported(
            errno: EACCES, reason: "not permitted: \(privilege.paranoidText) (EACCES); per-CPU counting needs CAP_PERFMON or perf_event_paranoid <= 0"))
    }

    @Test("counts a whole CPU where per-CPU counting is allowed",
          .enabled(if: PerfPrivilege.current().mayCountPerCPU, "per-CPU counting needs CAP_PERFMON or perf_event_paranoid <= 0"))
    func perCPU() throws {
        let session = try PerfCounterSession(events: ["cpu-clock"], target: .cpu(0))
        #expect(session.events[0].availability == .ok, "\(session.events)")
        let (_, readings) = session.measure { MonotonicClock.sleep(nanoseconds: 5_000_000) }
        #expect(readings[0].isCounted && (readings[0].raw ?? 0) > 0, "\(readings)")
    }
}
#endif
