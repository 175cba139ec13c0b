// dmabench — PlatformTests
//
// What the trust signals read: /proc/stat's per-CPU lines, this process's threads, and the
// machine settings, each with a value or the reason it is missing.

import Platform
import Testing

@Suite("System state")
struct SystemStateTests {
    @Test("per-CPU time: busy is user+nice+system+irq+softirq, idle is idle+iowait, steal apart; the total line is skipped")
    func parsesProcStat() {
        let text = """
            cpu  2623099 7350 282935 1372839 100865 0 6049 16594 0 0
            cpu0 10 1 100 1000 5 2 3 7 0 0
            cpu1 20 2 200 2000 6 4 6 9 0 0
            intr 123
            """
        let t = SystemState.cpuTimes(stat: text)
        #expect(t.count == 2)
        #expect(t[0] == SystemState.CPUTime(busy: 10 + 1 + 100 + 2 + 3, idle: 1005, steal: 7))
        #expect(t[1]?.steal == 9 && t[1]?.idle == 2006)
    }

    @Test("the live /proc/stat lists every online CPU, and this thread has a run time that grows")
    func liveCounters() {
        #expect(SystemState.cpuTimes().count == CPU.onlineCount)
        let me = CPU.currentThreadID
        let a = SystemState.ownThreads()[me]?.runNanoseconds ?? 0
        var x = 0.0
        for i in 0..<3_000_000 { x += Double(i).squareRoot() }
        let b = SystemState.ownThreads()[me]?.runNanoseconds ?? 0
        #expect(x > 0 && b > a, "own run time \(a) -> \(b)")
    }

    @Test("every machine setting has a value or says why it has none")
    func propertiesSayWhy() {
        let props = SystemState.properties()
        let names = props.map(\.name)
        for n in ["cpufreq governor", "boost/turbo", "SMT", "isolcpus", "nohz_full", "clock source", "transparent huge pages",
                  "perf_event_paranoid", "load average", "virtual machine"] {
            #expect(names.contains(n), "\(n) missing")
        }
        for p in props {
            #expect((p.value == nil) != (p.unavailable == nil), "\(p.name): exactly one of value and unavailable")
            if let why = p.unavailable { #expect(why.contains("/") || why.contains("unknown"), "\(p.name): \(why)") }
            if p.ok == false { #expect(p.recommended != nil && p.fix != nil, "\(p.name) is off but has no fix") }
        }
    }
}
