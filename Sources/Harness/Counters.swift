// dmabench — Harness
//
// Counters per measured thread and per phase (docs/architecture.md, "Counters"), on Platform's perf-event
// wrapper. One session per role (submitter, engine, executor), opened when a phase begins,
// read when it ends, never per descriptor. Where privileges allow per-CPU counting, the
// engine's CPU is also counted as a whole ("engine-cpu"): that catches io_uring's io-wq
// workers and SQPOLL thread, which are kernel threads no per-thread session sees.

import Platform

public final class PerfPhaseCounters: PhaseCounters {
    public let specs: [CounterEventSpec]
    public let engineCPU: Int?
    let privilege: PerfPrivilege
    var sessions: [(role: String, session: PerfCounterSession)] = []
    var stopped = true

    /// Resolves the names once; an unknown name is a `CounterError` (exit 64 in the CLI).
    public init(events: [String], engineCPU: Int?) throws(CounterError) {
        privilege = PerfPrivilege.current()
        specs = try PerfEvents.resolve(events, privilege: privilege)
        self.engineCPU = engineCPU
    }

    /// Per event, "ok" or the reason it cannot be counted here, for the result's context.
    public func availability() -> [String: String] {
        var out: [String: String] = [:]
        for (spec, a) in PerfEvents.probeAll(specs, target: .currentThread, privilege: privilege) {
            out[spec.name] = a.isOK ? "ok" : "\(a)"
        }
        return out
    }

    /// What would need more privilege (CAP_PERFMON or a lower perf_event_paranoid).
    public var restrictions: [String] { privilege.restrictions }

    public func begin(threads: [String: Int32]) {
        sessions.removeAll()
        for role in threads.keys.sorted() {
            let tid = threads[role]!
            let s = PerfCounterSession(specs: specs, target: .thread(id: tid), privilege: privilege)
            sessions.append((role, s))
        }
        if let cpu = engineCPU, privilege.mayCountPerCPU {
            sessions.append(("engine-cpu", PerfCounterSession(specs: specs, target: .cpu(cpu), privilege: privilege)))
        }
        stopped = false
        for s in sessions { s.session.start() }
    }

    public func stop() {
        for s in sessions where !stopped { s.session.stop() }
        stopped = true
    }

    public func end(descriptors: Int) -> [String: [String: CounterValue]] {
        stop()
        var out: [String: [String: CounterValue]] = [:]
        for (role, session) in sessions {
            var values: [String: CounterValue] = [:]
            for r in session.read() {
                if r.isCounted, let scaled = r.scaled {
                    values[r.name] = CounterValue(perDescriptor: r.perOperation(descriptors), scaling: r.scaling, value: scaled)
                } else {
                    var why = r.availability.isOK ? (r.note ?? "not counted") : "\(r.availability)"
                    if why.hasPrefix("unsupported: ") { why.removeFirst("unsupported: ".count) }
                    values[r.name] = CounterValue(unsupported: why)
                }
            }
            out[role] = values
            session.close()
        }
        sessions.removeAll()
        return out
    }
}
