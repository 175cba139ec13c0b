// dmabench — Harness
//
// Runs a sweep: for each point, make the channel(s), warm up, measure the repetitions, and
// record the point. After every point the caller gets the document so far (it writes it
// atomically), so an interrupted sweep keeps every completed point.

import DMAEngine
import Foundation
import Histogram
import Platform
import Synchronization

/// Counters around a measured phase (docs/architecture.md, "Counters"). The command line supplies one built on
/// Platform's perf-event wrapper; the harness only says when phases start and end.
public protocol PhaseCounters: AnyObject {
    /// Starts counting the given threads (role → Linux thread id).
    func begin(threads: [String: Int32])
    /// Stops counting (the phase is over); values are read later by `end`.
    func stop()
    /// Stops counting if still running and returns the values per role and event,
    /// normalised per descriptor.
    func end(descriptors: Int) -> [String: [String: CounterValue]]
}

/// The global stop flag, set by SIGINT.
public enum StopFlag {
    private static let flag = Atomic<Bool>(false)
    public static var isSet: Bool { flag.load(ordering: .relaxed) }
    public static func set() { flag.store(true, ordering: .relaxed) }
    public static func reset() { flag.store(false, ordering: .relaxed) }
}

public struct RunnerEvent: Sendable {
    public var index: Int
    public var total: Int
    public var point: PointSpec
    /// Set when the sweep runs several placements (the NUMA matrix).
    public var placement: PointPlacement?
    public var repetition: Int
    public var repetitions: Int
    public var etaSeconds: Double?
}

public final class Runner {
    public let plan: SweepPlan
    public let factories: [String: ChannelFactory]
    /// The placements to run every point at: one, or every cell of the NUMA matrix.
    public let placements: [PointPlacement]
    public let topology: NUMATopology
    public var counters: PhaseCounters?
    public var calibration: Calibration?
    /// When a point is flagged for interference.
    public var thresholds = TrustThresholds.standard
    /// Re-measure the cross-CPU round trip before and after each point (a few ms each).
    public var watchRoundTrip = true
    /// Progress (stderr in the CLI).
    public var onProgress: ((RunnerEvent) -> Void)?
    /// Called with each finished point.
    public var onPoint: ((ResultPoint) -> Void)?
    /// Called when a backend is skipped.
    public var onSkip: ((SkippedBackend) -> Void)?

    public init(
        plan: SweepPlan, factories: [ChannelFactory], placements: [PointPlacement] = [.default],
        topology: NUMATopology = .current()
    ) {
        self.plan = plan
        var f: [String: ChannelFactory] = [:]
        for x in factories { f[x.name] = x }
        self.factories = f
        self.placements = placements
        self.topology = topology
    }

    public struct Outcome {
        public var points: [ResultPoint]
        public var skipped: [SkippedBackend]
        public var interrupted: Bool
        public var failure: String?
    }

    /// Runs every point. Errors in one point end the sweep with `failure` set; the points
    /// measured so far are kept.
    public func run() -> Outcome {
        let points = plan.points()
        var out = Outcome(points: [], skipped: [], interrupted: false, failure: nil)
        var skippedNames = Set<String>()
        for name in Set(points.map(\.backend)).sorted() {
            if let why = factories[name]?.unavailableReason() {
                let s = SkippedBackend(backend: name, reason: why)
                out.skipped.append(s)
                skippedNames.insert(name)
                onSkip?(s)
            }
        }
        if capabilitySkips == nil {
            do {
                for s in try preflight() {
                    out.skipped.append(s)
                    onSkip?(s)
                }
            } catch {
                out.failure = "\(error)"
                return out
            }
        }
        let caps = capabilitySkips ?? [:]
        let filtered = points.filter { p in
            if skippedNames.contains(p.backend) { return false }
            if let c = caps[p.backend] {
                if c.skipsSG && p.parameters.sge != nil { return false }
                if c.skipsCyclic && p.workload == .cyclic { return false }
            }
            return true
        }
        var runnable: [(PointSpec, PointPlacement)] = []
        for cell in placements { for p in filtered { runnable.append((p, cell)) } }
        let start = MonotonicClock.now()
        for (i, (p, cell)) in runnable.enumerated() {
            if StopFlag.isSet {
                out.interrupted = true
                break
            }
            let elapsed = Double(MonotonicClock.now() - start) / 1e9
            let eta = i == 0 ? nil : elapsed / Double(i) * Double(runnable.count - i)
            onProgress?(RunnerEvent(index: i + 1, total: runnable.count, point: p, placement: placements.count > 1 ? cell : nil, repetition: 0, repetitions: plan.repetitions, etaSeconds: eta))
            do {
                let before = roundTrip(cell)
                guard var point = try measure(p, placement: cell, index: i + 1, total: runnable.count, eta: eta) else {
                    out.interrupted = true
                    break
                }
                if var env = point.environment {
                    // The point's channels are released by now, so no engine thread spins on
                    // the CPUs the round trip uses.
                    env.roundTripNs = [before, roundTrip(cell)].compactMap { $0 }
                    let all = env.roundTripNs + [calibration?.roundTripNs].compactMap { $0 }
                    if let lo = all.min(), let hi = all.max(), lo > 0, all.count > 1 { env.roundTripDrift = hi / lo }
                    env.judge(thresholds, reference: calibration?.roundTripNs)
                    point.environment = env
                }
                out.points.append(point)
                onPoint?(point)
            } catch {
                out.failure = "\(p)\(placements.count > 1 ? " at \(cell.request)" : ""): \(error)"
                break
            }
        }
        return out
    }

    /// The cross-CPU round trip between the submitter's and the engine's CPUs, briefly; nil
    /// without two distinct CPUs.
    func roundTrip(_ placement: PointPlacement) -> Double? {
        guard watchRoundTrip, CPU.onlineCount > 1, let a = placement.submitterCPU(topology: topology),
            let b = placement.engineCPU(topology: topology), a != b
        else { return nil }
        return Calibrator.roundTrip(cpuA: a, cpuB: b, trips: 1_000, trials: 5, budgetNanoseconds: 20_000_000, best: true)
    }

    /// The CPUs whose time a point's interference is measured on: the placed threads' CPUs,
    /// or every online CPU when a thread is not pinned.
    func watchedCPUs(_ placement: PointPlacement) -> [Int] {
        let cpus = [placement.submitterCPU(topology: topology), placement.engineCPU(topology: topology)]
        if cpus.contains(where: { $0 == nil }) { return Array(0..<CPU.onlineCount) }
        var set = Set(cpus.compactMap { $0 })
        if let e = placement.executorCPU(topology: topology) { set.insert(e) }
        return set.sorted()
    }

    func options(for p: PointSpec, placement: PointPlacement) -> DMAChannelOptions {
        if p.workload == .cyclic {
            // The period callbacks on an executor thread of their own, as a DMA controller's
            // period interrupt runs its tasklet: the engine streams on while a callback runs,
            // so a slow one overruns periods instead of holding the stream back.
            var o = DMAChannelOptions(
                poolSize: 64, engineCPU: placement.engineCPU(topology: topology),
                executorCPU: placement.executorCPU(topology: topology),
                coherentPoolBytes: max(1 << 20, 4 * p.parameters.size * (p.parameters.periods ?? 4)))
            o.callbackContext = .executorThread
            o.requestedCallbackContext = .executorThread
            return o
        }
        let need = max(p.parameters.depth * 2, (p.parameters.inFlight ?? 0) + 256, 1024)
        // Both regions of the slot ring, doubled for the allocator's rounding (cold caches by
        // footprint use more slots than the depth asks for).
        let ring = ClosedLoopClient.layout(workloadSpec(p), lastLevelCache: CacheControl.lastLevel)
        var o = DMAChannelOptions(
            poolSize: need, engineCPU: placement.engineCPU(topology: topology),
            executorCPU: placement.executorCPU(topology: topology),
            coherentPoolBytes: max(64 << 20, 4 * p.parameters.size * max(64, p.parameters.depth), 4 * ring.slots * ring.stride))
        if let c = plan.callbackContext {
            o.callbackContext = c
            o.requestedCallbackContext = c
        }
        return o
    }


    /// What a throughput or latency point asks of the client.
    func workloadSpec(_ p: PointSpec) -> WorkloadSpec {
        var spec = WorkloadSpec(
            size: p.parameters.size, batch: p.parameters.batch, depth: p.parameters.depth,
            durationNanoseconds: plan.durationNanoseconds,
            warmupDescriptors: plan.quick ? 2_000 : 20_000, verify: plan.verify, recordLatency: true,
            rate: p.workload == .latency ? p.parameters.rate : nil, faultEvery: plan.faultEvery,
            latencySampleEvery: p.workload == .throughput ? Self.throughputLatencySampleEvery : 1)
        spec.offsets = p.parameters.offsets ?? .fixed
        spec.alignment = p.parameters.alignment ?? 1
        spec.completion = p.parameters.completion ?? .callback
        spec.cache = p.parameters.cache ?? .hot
        spec.cacheMethod = plan.cacheMethod
        spec.sge = p.parameters.sge.flatMap(SGShape.init(parsing:))
        return spec
    }

    /// What a cyclic point asks of the stream.
    func cyclicSpec(_ p: PointSpec) -> CyclicSpec {
        var s = CyclicSpec(
            periodBytes: p.parameters.size, periods: p.parameters.periods ?? 4, pace: p.parameters.pace ?? 0,
            durationNanoseconds: plan.durationNanoseconds)
        s.periodWorkNanoseconds = p.parameters.periodWorkNs ?? 0
        s.verify = plan.verify
        return s
    }

    /// Which points each backend cannot run, by capability (scatter-gather, cyclic), found
    /// by opening one channel of each backend the plan uses (`preflight`).
    var capabilitySkips: [String: (skipsSG: Bool, skipsCyclic: Bool)]?

    /// Opens one channel per backend whose points need a capability, and records which of
    /// its points to skip (visibly, with the reason) and which requests it cannot meet.
    /// Throws `PreflightError` for a request no skip can honour (more segments than a
    /// backend's `maxSegments`): that is bad input, not a missing feature.
    public func preflight() throws -> [SkippedBackend] {
        var out: [SkippedBackend] = []
        var skips: [String: (Bool, Bool)] = [:]
        let points = plan.points()
        let maxSegments = points.compactMap { $0.parameters.sge.flatMap(SGShape.init(parsing:)) }
            .map { max($0.sources, $0.destinations) }.max()
        let wantsCyclic = points.contains { $0.workload == .cyclic }
        guard maxSegments != nil || wantsCyclic else {
            capabilitySkips = [:]
            return []
        }
        for name in Set(points.map(\.backend)).sorted() {
            guard let f = factories[name], f.unavailableReason() == nil else { continue }
            var o = DMAChannelOptions(poolSize: 64, coherentPoolBytes: 1 << 20)
            o.spinNanoseconds = 0
            let caps: DMACapabilities
            let stamps: Bool
            do {
                let ch = try f.make(o)
                caps = ch.capabilities
                stamps = ch.periodClock != nil
                try? ch.release()
            } catch {
                throw PreflightError(description: "cannot open a \(name) channel to read its capabilities: \(error)")
            }
            var sg = false, cyc = false
            if let need = maxSegments, points.contains(where: { $0.backend == name && $0.parameters.sge != nil }) {
                if !caps.memcpySG {
                    sg = true
                    out.append(SkippedBackend(backend: name, reason: "scatter-gather points: memcpySG is false (no prepareMemcpySG)"))
                } else if need > caps.maxSegments {
                    throw PreflightError(description: "--sge asks for \(need) segments per list; backend \(name) takes at most \(caps.maxSegments) (maxSegments)")
                }
            }
            if wantsCyclic && points.contains(where: { $0.backend == name && $0.workload == .cyclic }) && (!caps.cyclic || !stamps) {
                cyc = true
                out.append(SkippedBackend(
                    backend: name,
                    reason: caps.cyclic
                        ? "cyclic points: the backend stamps no period ends (periodClock is nil), so period latency cannot be measured"
                        : "cyclic points: cyclic is false (DMA_CYCLIC not in the capability mask)"))
            }
            skips[name] = (sg, cyc)
        }
        capabilitySkips = skips.mapValues { (skipsSG: $0.0, skipsCyclic: $0.1) }
        return out
    }

    func memoryPlacer(_ placement: PointPlacement) -> MemoryPlacer {
        MemoryPlacer(topology: topology, srcNode: placement.request.src, dstNode: placement.request.dst)
    }

    /// Binds the calling (submitter) thread.
    func bindSubmitter(_ placement: PointPlacement) throws -> NUMAVerifiedThread {
        do {
            let target: NUMAThreadTarget? = placement.request.submitter.map { t in
                if case .node = t, let c = placement.submitterCPU(topology: topology), placement.isDefault { return .cpu(c) }
                return t
            }
            return try NUMABinding.bindCurrentThread(.submitter, to: target, topology: topology)
        } catch {
            throw PlacementError(description: "\(error)")
        }
    }

    /// Verifies every thread and buffer against the request; a mismatch throws.
    func verifiedPlacement(
        channel: any DMAChannel, placement: PointPlacement, submitter: NUMAVerifiedThread, memory: VerifiedMemory
    ) throws -> PlacementRecord {
        let req = placement.requestedCell
        var details = NUMAVerifiedPlacement(submitter: submitter, src: memory.src, dst: memory.dst)
        func threadText(_ v: NUMAVerifiedThread?, _ target: NUMAThreadTarget?) -> String? {
            guard let v else { return nil }
            if case .node = target { return v.node.map { "node\($0)" } ?? "cpu\(v.cpu)" }
            return "cpu\(v.cpu)"
        }
        // Engine and executor: the backend pins them from the channel options; check where
        // they really are. A thread that has not run since it pinned itself reports the CPU
        // it last ran on, which the pinning already moved it to.
        let engineCPU = placement.engineCPU(topology: topology)
        let executorCPU = placement.executorCPU(topology: topology)
        do {
            if let tid = channel.threadIDs[.engine] {
                details.engine = try NUMABinding.verifyThread(
                    id: tid, role: .engine, expected: engineCPU.map { .cpu($0) }, topology: topology)
            }
            if let tid = channel.threadIDs[.executor] {
                details.executor = try NUMABinding.verifyThread(
                    id: tid, role: .executor, expected: executorCPU.map { .cpu($0) }, topology: topology)
            }
        } catch {
            throw PlacementError(description: "\(error)")
        }
        let ver = PlacementRecord.Cell(
            submitter: threadText(submitter, placement.request.submitter),
            engine: threadText(details.engine, placement.request.engine) ?? (placement.request.engine == nil ? nil : "none"),
            src: memory.src?.node, dst: memory.dst?.node)
        return PlacementRecord(requested: req, verified: ver, details: details)
    }

    func measure(_ p: PointSpec, placement: PointPlacement, index: Int, total: Int, eta: Double?) throws -> ResultPoint? {
        guard let factory = factories[p.backend] else { throw WorkloadError("unknown backend \(p.backend)") }
        let reps = plan.repetitions
        let submitter = try bindSubmitter(placement)
        switch p.workload {
        case .throughput, .latency:
            let spec = workloadSpec(p)
            let nch = max(1, p.parameters.channels)
            var channels: [any DMAChannel] = []
            var clients: [ClosedLoopClient] = []
            defer { for c in channels { try? c.release() } }
            for _ in 0..<nch {
                let ch = try factory.make(options(for: p, placement: placement))
                channels.append(ch)
                clients.append(try ClosedLoopClient(channel: ch, spec: spec, memory: memoryPlacer(placement)))
            }
            let placementRecord = try verifiedPlacement(
                channel: channels[0], placement: placement, submitter: submitter, memory: clients[0].verifiedMemory)
            let watchStart = InterferenceSnapshot.take()
            var dps: [Double] = [], bps: [Double] = [], sub: [Double] = [], flush: [Double] = []
            var verification: VerificationSummary?
            var errors = 0
            var totalDescriptors = 0
            var countersOut: [String: [String: CounterValue]]?
            for r in 0..<reps {
                if StopFlag.isSet { return nil }
                onProgress?(RunnerEvent(index: index, total: total, point: p, placement: nil, repetition: r + 1, repetitions: reps, etaSeconds: eta))
                var counted = false
                if r == reps - 1, let counters {
                    let threads = Self.countedThreads(channels[0])
                    clients[0].onMeasureStart = { counters.begin(threads: threads); counted = true }
                    clients[0].onMeasureEnd = { counters.stop() }
                }
                let samples = try runClients(clients)
                clients[0].onMeasureStart = nil
                clients[0].onMeasureEnd = nil
                if counted, let counters {
                    countersOut = counters.end(descriptors: samples[0].descriptors)
                }
                let d = samples.reduce(0.0) { $0 + $1.descriptorsPerSecond }
                dps.append(d)
                // Random offsets copy less than `size`: bytes are the descriptors' mean length.
                bps.append(samples.reduce(0.0) { $0 + $1.descriptorsPerSecond * $1.meanLength })
                if let f = samples[0].flushNanosecondsPerDescriptor { flush.append(f) }
                for v in samples.compactMap(\.verification) {
                    if verification == nil { verification = VerificationSummary(sampleEvery: v.sampleEvery) }
                    verification!.add(v)
                }
                let s0 = samples[0]
                sub.append(s0.descriptors == 0 ? 0 : Double(s0.submitNanoseconds) / Double(s0.descriptors))
                errors += samples.reduce(0) { $0 + $1.errors + $1.verifyFailures }
                totalDescriptors += samples.reduce(0) { $0 + $1.descriptors }
            }
            var env = InterferenceSnapshot.environment(
                from: watchStart, to: .take(), watched: watchedCPUs(placement),
                measured: [CPU.currentThreadID] + channels.flatMap { $0.threadIDs.values })
            if p.workload == .throughput, dps.count > 1 { env.cv = Statistics.coefficientOfVariation(dps) }
            var m = PointMetrics()
            if p.workload == .throughput {
                m.descriptorsPerSecond = MetricSummary(samples: dps)
                m.bytesPerSecond = MetricSummary(samples: bps)
                m.submitNsPerDescriptor = MetricSummary(samples: sub)
            }
            var hist = clients[0].histogram.pointee
            for c in clients.dropFirst() { hist.add(c.histogram.pointee) }
            m.latencyNs = Self.latencySummary(hist)
            if spec.latencySampleEvery > 1 { m.latencyNs?.sampleEvery = spec.latencySampleEvery }
            m.errors = errors
            m.verification = verification
            if !flush.isEmpty { m.cacheFlushNsPerDescriptor = Statistics.median(flush) }
            var eff = Efficiency()
            if let cal = calibration {
                if p.workload == .throughput, let bw = cal.memcpy(forSize: p.parameters.size), bw > 0 {
                    eff.vsMemcpy = (m.bytesPerSecond?.median ?? 0) / bw
                }
                if let rt = cal.roundTripNs, rt > 0, let l = m.latencyNs { eff.vsRoundTrip = l.p50 / rt }
            }
            m.efficiency = eff
            _ = totalDescriptors
            var point = ResultPoint(
                backend: p.backend, workload: p.workload.rawValue, parameters: p.parameters, placement: placementRecord,
                metrics: m, counters: countersOut)
            point.environment = env
            return point

        case .cyclic:
            let spec = cyclicSpec(p)
            let ch = try factory.make(options(for: p, placement: placement))
            defer { try? ch.release() }
            let client = try CyclicClient(channel: ch, spec: spec, memory: memoryPlacer(placement))
            let placementRecord = try verifiedPlacement(
                channel: ch, placement: placement, submitter: submitter, memory: client.verifiedMemory)
            let watchStart = InterferenceSnapshot.take()
            var samples: [CyclicSample] = []
            var countersOut: [String: [String: CounterValue]]?
            for r in 0..<reps {
                if StopFlag.isSet { return nil }
                onProgress?(RunnerEvent(index: index, total: total, point: p, placement: nil, repetition: r + 1, repetitions: reps, etaSeconds: eta))
                var counted = false
                if r == reps - 1, let counters {
                    let threads = Self.countedThreads(ch)
                    client.onMeasureStart = { counters.begin(threads: threads); counted = true }
                    client.onMeasureEnd = { counters.stop() }
                }
                let s = try client.run(shouldStop: { StopFlag.isSet })
                client.onMeasureStart = nil
                client.onMeasureEnd = nil
                // Normalised per period.
                if counted, let counters { countersOut = counters.end(descriptors: max(1, s.periods)) }
                samples.append(s)
            }
            let c = CyclicMetrics(
                periodLatencyNs: Self.latencySummary(client.histogram), periods: samples.reduce(0) { $0 + $1.periods },
                callbacks: samples.reduce(0) { $0 + $1.callbacks }, overruns: samples.reduce(0) { $0 + $1.overruns },
                unstamped: samples.reduce(0) { $0 + $1.unstamped }, paceBytesPerSecond: spec.pace,
                achievedBytesPerSecond: MetricSummary(samples: samples.map(\.achievedPace)),
                pauseNs: MetricSummary(samples: samples.map(\.pauseNanoseconds)),
                resumeToNextByteNs: MetricSummary(samples: samples.map(\.resumeToNextByteNanoseconds)),
                stopFromCallbackNs: MetricSummary(samples: samples.map(\.stopFromCallbackNanoseconds)),
                stopFromClientNs: MetricSummary(samples: samples.map(\.stopFromClientNanoseconds)),
                callbackContext: (ch.threadIDs[.executor] != nil
                    ? DMACallbackContext.executorThread : ch.pollThreshold != .max ? .clientPoll : .engineThread).rawValue,
                burstBytes: spec.burstBytes, windowSeconds: Double(spec.windowNanoseconds) / 1e9,
                mismatchedBytes: samples.reduce(0) { $0 + $1.mismatchedBytes })
            var m = PointMetrics()
            m.cyclic = c
            m.errors = samples.reduce(0) { $0 + ($1.mismatchedBytes > 0 ? 1 : 0) }
            var point = ResultPoint(
                backend: p.backend, workload: p.workload.rawValue, parameters: p.parameters, placement: placementRecord,
                metrics: m, counters: countersOut)
            point.environment = InterferenceSnapshot.environment(
                from: watchStart, to: .take(), watched: watchedCPUs(placement),
                measured: [CPU.currentThreadID] + Array(ch.threadIDs.values))
            return point

        case .terminate:
            let n = p.parameters.inFlight ?? 0
            let ch = try factory.make(options(for: p, placement: placement))
            defer { try? ch.release() }
            let runner = try TerminateRunner(channel: ch, size: p.parameters.size, maxInFlight: max(1, n), memory: memoryPlacer(placement))
            let placementRecord = try verifiedPlacement(
                channel: ch, placement: placement, submitter: submitter, memory: runner.verifiedMemory)
            let watchStart = InterferenceSnapshot.take()
            var ts: [Double] = [], ta: [Double] = [], sy: [Double] = [], seed: [Double] = []
            var completed: [Double] = [], aborted: [Double] = []
            var countersOut: [String: [String: CounterValue]]?
            for r in 0..<reps {
                if StopFlag.isSet { return nil }
                onProgress?(RunnerEvent(index: index, total: total, point: p, placement: nil, repetition: r + 1, repetitions: reps, etaSeconds: eta))
                if r == reps - 1 {
                    counters?.begin(threads: Self.countedThreads(ch))
                }
                let s = try runner.measure(inFlight: n, seedRaceIterations: plan.quick ? 10 : 50)
                // Normalised per descriptor in flight at terminate (two fills per repetition).
                if r == reps - 1, let counters { countersOut = counters.end(descriptors: max(1, 2 * n)) }
                ts.append(s.terminateSyncNs)
                ta.append(s.terminateAsyncNs)
                sy.append(s.synchronizeNs)
                seed.append(s.seedRaceNs)
                completed.append(Double(s.completed))
                aborted.append(Double(s.aborted))
            }
            var m = PointMetrics()
            m.terminateSyncNs = MetricSummary(samples: ts)
            m.terminateAsyncNs = MetricSummary(samples: ta)
            m.synchronizeNs = MetricSummary(samples: sy)
            m.seedRaceNs = MetricSummary(samples: seed)
            // Per repetition (median): of the N descriptors in flight at terminateSync, how many
            // completed with a callback and how many were aborted.
            m.completed = Int(Statistics.median(completed))
            m.aborted = Int(Statistics.median(aborted))
            m.errors = 0
            var point = ResultPoint(
                backend: p.backend, workload: p.workload.rawValue, parameters: p.parameters, placement: placementRecord,
                metrics: m, counters: countersOut)
            point.environment = InterferenceSnapshot.environment(
                from: watchStart, to: .take(), watched: watchedCPUs(placement),
                measured: [CPU.currentThreadID] + Array(ch.threadIDs.values))
            return point
        }
    }

    /// Runs one client per channel: the first on this thread, the others on their own.
    func runClients(_ clients: [ClosedLoopClient]) throws -> [WorkloadSample] {
        if clients.count == 1 { return [try clients[0].run(shouldStop: { StopFlag.isSet })] }
        final class Slot: @unchecked Sendable {
            var sample: WorkloadSample?
            var error: String?
        }
        let slots = clients.map { _ in Slot() }
        var threads: [OSThread] = []
        for i in 1..<clients.count {
            let c = clients[i]
            let s = slots[i]
            nonisolated(unsafe) let client = c
            threads.append(try OSThread(name: "dmabench-sub\(i)") {
                do { s.sample = try client.run(shouldStop: { StopFlag.isSet }) } catch { s.error = "\(error)" }
            })
        }
        slots[0].sample = try clients[0].run(shouldStop: { StopFlag.isSet })
        for t in threads { t.join() }
        if let e = slots.compactMap(\.error).first { throw WorkloadError(e) }
        return slots.map { $0.sample! }
    }

    /// The threads a point's counters cover, by role: this (submitter) thread and the
    /// channel's own.
    static func countedThreads(_ ch: any DMAChannel) -> [String: Int32] {
        var threads = ["submitter": CPU.currentThreadID]
        for (role, tid) in ch.threadIDs { threads[role.rawValue] = tid }
        return threads
    }

    /// Throughput points stamp one descriptor in 16 for their latency figures, so that clock
    /// reads stay out of the measured loop; the latency workload stamps every descriptor
    /// (docs/measurement-notes.md, "workloadCallback and Runner.throughputLatencySampleEvery:
    /// stamping one descriptor in 16").
    static let throughputLatencySampleEvery = 16

    static func latencySummary(_ h: Histogram<UInt64>) -> LatencySummary? {
        guard h.totalCount > 0 else { return nil }
        var text = ""
        h.outputPercentileDistribution(to: &text, outputValueUnitScalingRatio: 1)
        return LatencySummary(
            p50: Double(h.valueAtPercentile(50)), p90: Double(h.valueAtPercentile(90)), p99: Double(h.valueAtPercentile(99)),
            p999: Double(h.valueAtPercentile(99.9)), p9999: Double(h.valueAtPercentile(99.99)), max: Double(h.max),
            count: Int(h.totalCount), histogram: text)
    }
}

/// Per-thread facts from /proc.
public enum ThreadInfo {
    /// The CPU a thread of this process last ran on (/proc/self/task/TID/stat, field 39).
    public static func lastCPU(threadID: Int32) -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/self/task/\(threadID)/stat", encoding: .utf8),
            let close = s.lastIndex(of: ")")
        else { return nil }
        let fields = s[s.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); field 39 is at index 36.
        guard fields.count > 36 else { return nil }
        return Int(fields[36])
    }
}

/// A request that the backends cannot meet (exit 64 on the command line).
public struct PreflightError: Error, CustomStringConvertible, Sendable {
    public var description: String
}
