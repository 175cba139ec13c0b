// dmabench — command line: `dmabench run`
//
// With no arguments: a quick default sweep over every registered backend (about a minute
// here), a table on stdout, and a result file under Results/<host>/<commit>/.

import ArgumentParser
import DMABackends
import DMAEngine
import Foundation
import Harness
import Platform

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Measure throughput, latency and terminate cost over a sweep of backends and parameters."
    )

    @Option(help: "Backends, comma-separated, or 'all'; plugin:PATH[:NAME] loads an engine from a C shared object. See 'dmabench list backends'.")
    var backend: String = "all"

    @Option(help: "Workloads: throughput,latency,terminate,cyclic or 'all'.")
    var workload: String = "all"

    @Option(parsing: .unconditional, help: "Descriptor sizes, e.g. 64,4K,64K,1M.")
    var size: String?

    @Option(parsing: .unconditional, help: "issuePending every N submits; comma-separated list.")
    var batch: String?

    @Option(parsing: .unconditional, help: "Descriptors in flight at most; comma-separated list.")
    var depth: String?

    @Option(parsing: .unconditional, help: "Channels, each with its own submitter thread.")
    var channels: Int = 1

    @Option(parsing: .unconditional, help: "Open-loop offered rate for the latency workload, descriptors per second.")
    var rate: Double?

    @Option(help: "Placement: submitter=N|nodeN|cpuN,engine=...,executor=...,src=N,dst=N (nodes for memory; 'any' = not placed). See 'dmabench list topology'.")
    var placement: String?

    @Option(help: "Counter events (perf or libpfm4 names, or presets default, software, numa), or 'none'. Default: cycles,instructions,cache-misses,branch-misses,task-clock,context-switches,cpu-migrations,page-faults.")
    var events: String = "default"

    @Flag(name: .customLong("numa-matrix"), help: "Sweep every submitter node × engine node × source node × destination node.")
    var numaMatrix = false

    @Option(parsing: .unconditional, help: "Repetitions per point (median and 95% CI are reported).")
    var repetitions: Int?

    @Option(parsing: .unconditional, help: "Seconds measured per repetition.")
    var duration: Double?

    @Flag(name: .customLong("no-verify"), help: "Do not verify copied data (to measure peak).")
    var noVerify = false

    @Flag(help: "A short sweep: fewer repetitions and shorter windows.")
    var quick = false

    @Option(help: "Result file path (JSON document). Default: Results/<host>/<commit>/run-<time>.json.")
    var output: String?

    @Option(help: "Output format: table, json, csv or gbench.")
    var format: String = "table"

    @Option(name: .customLong("host-id"), help: "Host identifier recorded in the result (default: a hash of /etc/machine-id and the CPU signature).")
    var hostID: String?

    @Option(help: "Run shard i of n (0-based), e.g. 0/4, for scale-out; merge with Scripts/merge.py.")
    var shard: String?

    @Option(name: .customLong("inject-faults"), parsing: .unconditional, help: "Inject a read fault into every N-th descriptor (reliability check).")
    var injectFaults: Int?

    @Flag(inversion: .prefixedNo, help: "Draw plots next to the result file (Scripts/plot.py, needs matplotlib); on by default, --no-plot turns it off.")
    var plot = true

    @Flag(help: "Fail (exit 75, EX_TEMPFAIL) when any point is flagged for interference, after saving the result, so that CI can retry.")
    var strict = false

    @Option(help: "Where descriptors copy within their slot: fixed (the whole size at offset 0) or random (dmatest: a random length in [alignment, size] between random aligned offsets).")
    var offsets: String = "fixed"

    @Option(parsing: .unconditional, help: "With --offsets random: lengths and offsets are multiples of this many bytes, a power of two at most the smallest size (dmatest's alignment=k is --alignment 2^k). Default 1.")
    var alignment: Int?

    @Option(help: "How completions are detected: callback (prepared with .interrupt), polled (no .interrupt; the client polls status of its oldest cookie), or both, comma-separated.")
    var completion: String = "callback"

    @Option(help: "Cache state of source and destination at submit: hot, cold, or both, comma-separated.")
    var cache: String = "hot"

    @Option(name: .customLong("debug-overrun"), parsing: .unconditional, help: ArgumentHelp("Make every copy N bytes longer than asked (a deliberately broken backend, to see verification catch it).", visibility: .hidden))
    var debugOverrun: Int?

    @Option(name: .customLong("cache-method"), help: "How --cache cold evicts: footprint (default: enough slots that one lap covers 4x the last-level cache) or flush (clflushopt of each slot before its submit, on the client thread, inside the measured window).")
    var cacheMethod: String = "footprint"

    @Option(help: "Where completion callbacks run: default (each backend's own choice), executor (a thread of their own), engine (the engine thread), or client-poll (the engine, or the client when it polls with a batch in flight; ring only, others treat it as engine). Backends without the choice ignore it; cyclic streams always use an executor thread.")
    var callbacks: String = "default"

    @Option(help: "Counters in the table: summary (a few per-descriptor columns, unsupported events listed once) or full (every thread's every event, per point). The result file always has them all.")
    var counters: String = "summary"

    @Option(help: "Scatter-gather: split each descriptor into SRC source and DST destination segments (64-byte gaps between them), e.g. 4:1, 1:4, 8:8; a comma-separated list. Throughput and latency workloads.")
    var sge: String?

    @Option(parsing: .unconditional, help: "Cyclic workload: periods in the buffer (at least 2). --size gives the period size (default 8K). Default 4.")
    var periods: Int?

    @Option(parsing: .unconditional, help: "Cyclic workload: the peripheral's pace in bytes per second, 0 for memory speed; a comma-separated list. Default 384000,0 (48 kHz stereo 32-bit audio, and memory speed).")
    var pace: String?

    @Option(name: .customLong("period-work"), parsing: .unconditional, help: "Cyclic workload: busy work in each period callback, nanoseconds (a consumer's processing; a slow one overruns periods). Default 0.")
    var periodWork: Int?

    struct Validated {
        var plan: SweepPlan
        var placements: [PointPlacement]
        var topology: NUMATopology
        var counters: PerfPhaseCounters?
        var format: OutputFormat
        var output: String?
    }

    /// Turns the options into a plan, or a one-line usage error.
    func validated() throws(CLIError) -> Validated {
        let requested = backend == "all" ? [] : try BackendArguments.resolve(backend)
        let registry = BackendRegistry.names
        guard !registry.isEmpty else { throw .failure("no backend is registered in this build") }
        var backends: [String]
        if backend == "all" {
            backends = registry
        } else {
            backends = []
            for b in requested {
                guard registry.contains(b) else {
                    throw .usage("unknown backend '\(b)'; valid backends: \(registry.joined(separator: ", ")), all")
                }
                if !backends.contains(b) { backends.append(b) }
            }
        }
        var workloads: [WorkloadKind]
        if workload == "all" {
            workloads = WorkloadKind.allCases
        } else {
            workloads = []
            for w in ListParser.items(workload) {
                guard let k = WorkloadKind(rawValue: w) else {
                    throw .usage("unknown workload '\(w)'; valid workloads: throughput, latency, terminate, cyclic, all")
                }
                if !workloads.contains(k) { workloads.append(k) }
            }
        }
        guard Formats.CounterDetail(rawValue: counters) != nil else {
            throw .usage("unknown counters '\(counters)'; valid: summary, full")
        }
        guard let fmt = OutputFormat(rawValue: format) else {
            throw .usage("unknown format '\(format)'; valid formats: \(OutputFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let sizes = try size.map { s throws(CLIError) in try ListParser.sizes(s) } ?? (quick || isDefaultSweep ? [64, 4096] : [64, 4096, 65536])
        let batches = try batch.map { s throws(CLIError) in try ListParser.positiveInts(s, name: "batch", max: 1 << 20) } ?? [32]
        let depths = try depth.map { s throws(CLIError) in try ListParser.positiveInts(s, name: "depth", max: 1 << 16) } ?? [256]
        // Without --depth, latency is measured at depth 1 (one descriptor in flight) and
        // throughput at depth 256, as the anchors do.
        let latencyDepths: [Int]? = depth == nil ? [1] : nil
        if workloads.contains(.throughput), let minBatch = batches.min(), let maxDepth = depths.max(), minBatch > maxDepth {
            throw .usage("batch \(minBatch) is larger than every depth (\(depths.map(String.init).joined(separator: ","))): at most depth descriptors are in flight, so issuePending would never see a full batch")
        }
        guard channels >= 1, channels <= 64 else { throw .usage("invalid channels \(channels): must be from 1 to 64") }
        if let r = rate {
            guard r.isFinite, r > 0 else { throw .usage("invalid rate \(r): must be a positive number of descriptors per second") }
            guard workloads.contains(.latency) else { throw .usage("--rate applies to the latency workload; add --workload latency") }
        }
        let reps = repetitions ?? (quick || isDefaultSweep ? 3 : 5)
        guard reps >= 1, reps <= 1000 else { throw .usage("invalid repetitions \(reps): must be from 1 to 1000") }
        let seconds = duration ?? (quick || isDefaultSweep ? 0.2 : 0.5)
        guard seconds.isFinite, seconds > 0, seconds <= 3600 else { throw .usage("invalid duration \(seconds): must be more than 0 and at most 3600 seconds") }
        var shardInfo: ShardInfo?
        if let s = shard {
            let parts = s.split(separator: "/")
            guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, i >= 0, i < n else {
                throw .usage("invalid shard '\(s)': expected i/n with 0 <= i < n, e.g. 0/4")
            }
            shardInfo = ShardInfo(index: i, count: n)
        }
        let topology = NUMATopology.current()
        let placements = try parsePlacements(topology: topology)
        let place = placements[0]
        if let out = output {
            guard !out.isEmpty else { throw .usage("invalid output path: empty") }
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: out, isDirectory: &isDir), isDir.boolValue {
                throw .usage("output path \(out) is a directory; give a file name")
            }
        }
        var plan = SweepPlan(
            backends: backends, workloads: workloads, sizes: sizes, batches: batches, depths: depths, channels: [channels],
            rate: rate, repetitions: reps, durationNanoseconds: UInt64(seconds * 1e9), verify: !noVerify,
            quick: quick || isDefaultSweep, shard: shardInfo)
        plan.latencyDepths = latencyDepths
        var counters: PerfPhaseCounters?
        if events != "none" {
            let names = ListParser.items(events)
            if names.contains("") { throw .usage("invalid events '\(events)': an event name is empty") }
            do throws(CounterError) { counters = try PerfPhaseCounters(events: names, engineCPU: place.engineCPU(topology: topology)) } catch {
                throw .usage(error.description)
            }
        }
        if let f = injectFaults {
            guard f >= 1 else { throw .usage("invalid inject-faults \(f): must be at least 1 (a read fault every N-th descriptor)") }
            plan.faultEvery = f
        }
        try applyModes(to: &plan, sizes: sizes)
        try applyStreams(to: &plan, sizes: sizes)
        if let n = debugOverrun {
            guard n >= 1, n <= 64 else { throw .usage("invalid debug-overrun \(n): must be from 1 to 64 bytes") }
            guard plan.offsets == .random || plan.sges.contains(where: { $0 != nil }) else {
                throw .usage("--debug-overrun needs --offsets random or --sge: only they leave guard bytes after every copy")
            }
        }
        return Validated(plan: plan, placements: placements, topology: topology, counters: counters, format: fmt, output: output)
    }

    /// `--offsets`, `--alignment`, `--completion`, `--cache` and `--cache-method`.
    func applyModes(to plan: inout SweepPlan, sizes: [Int]) throws(CLIError) {
        func modes<M: RawRepresentable & CaseIterable>(_ text: String, name: String, _: M.Type) throws(CLIError) -> [M] where M.RawValue == String {
            var out: [M] = []
            for item in ListParser.items(text) {
                guard let m = M(rawValue: item) else {
                    throw .usage("unknown \(name) '\(item)'; valid: \(M.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                if !out.contains(where: { $0.rawValue == m.rawValue }) { out.append(m) }
            }
            return out
        }
        guard let o = OffsetMode(rawValue: offsets) else {
            throw .usage("unknown offsets '\(offsets)'; valid: fixed, random")
        }
        plan.offsets = o
        if let a = alignment {
            guard o == .random else { throw .usage("--alignment applies to --offsets random") }
            guard a >= 1, a & (a - 1) == 0 else {
                throw .usage("invalid alignment \(a): must be a power of two number of bytes (dmatest's alignment=k is --alignment \(1 << max(0, min(a, 20))) for k=\(max(0, min(a, 20))))")
            }
            if let smallest = sizes.min(), a > smallest {
                throw .usage("invalid alignment \(a): larger than size \(ByteSize.format(smallest)); a random length is a multiple of the alignment, from one alignment to the size")
            }
            plan.alignment = a
        }
        plan.completions = try modes(completion, name: "completion", CompletionMode.self)
        plan.caches = try modes(cache, name: "cache", CacheMode.self)
        guard let method = CacheMethod(rawValue: cacheMethod) else {
            throw .usage("unknown cache-method '\(cacheMethod)'; valid: flush, footprint")
        }
        plan.cacheMethod = method
        switch callbacks {
        case "default": plan.callbackContext = nil
        case "executor": plan.callbackContext = .executorThread
        case "engine": plan.callbackContext = .engineThread
        case "client-poll": plan.callbackContext = .clientPoll
        default: throw .usage("unknown callbacks '\(callbacks)'; valid: default, executor, engine, client-poll")
        }
        if plan.caches.contains(.cold) && method == .flush && CacheControl.instruction == nil {
            throw .usage("--cache cold with --cache-method flush needs a cache-flush instruction, and this CPU has none; use --cache-method footprint")
        }
        if plan.caches.contains(.cold) && method == .footprint && CacheControl.lastLevel == nil {
            throw .usage("--cache cold by footprint needs the last-level cache size, and \(CacheControl.levelsRoot) gives none here; use --cache-method flush")
        }
        if plan.completions.contains(.polled) && plan.faultEvery != nil {
            throw .usage("--inject-faults needs --completion callback: a polled client never sees a transfer's result (rule S4)")
        }
        let modal = o != .fixed || plan.completions != [.callback] || plan.caches != [.hot]
        if modal && !plan.workloads.contains(.throughput) && !plan.workloads.contains(.latency) {
            throw .usage("--offsets, --completion and --cache apply to the throughput and latency workloads; add one of them to --workload")
        }
    }

    /// `--sge`, `--periods`, `--pace` and `--period-work`.
    func applyStreams(to plan: inout SweepPlan, sizes: [Int]) throws(CLIError) {
        if let text = sge {
            var shapes: [SGShape?] = []
            for item in ListParser.items(text) {
                guard item.contains(":") else {
                    throw .usage("invalid sge '\(item)': expected SRC:DST segment counts, e.g. 4:1")
                }
                guard let g = SGShape(parsing: item), g.sources <= 1024, g.destinations <= 1024 else {
                    throw .usage("invalid sge '\(item)': segment counts must be from 1 to 1024, as SRC:DST, e.g. 4:1")
                }
                if !shapes.contains(g) { shapes.append(g) }
                if let smallest = sizes.min(), smallest < max(g.sources, g.destinations) {
                    throw .usage("invalid sge '\(item)': size \(ByteSize.format(smallest)) leaves less than one byte per segment")
                }
            }
            guard plan.workloads.contains(.throughput) || plan.workloads.contains(.latency) else {
                throw .usage("--sge applies to the throughput and latency workloads; add one of them to --workload")
            }
            if plan.offsets == .random {
                throw .usage("--sge splits fixed copies into segments; it cannot be combined with --offsets random")
            }
            plan.sges = shapes
        }
        let cyclic = plan.workloads.contains(.cyclic)
        if let p = periods {
            guard cyclic else { throw .usage("--periods applies to the cyclic workload; add --workload cyclic") }
            guard p >= 2, p <= DMAPeriodClock.capacity else {
                throw .usage("invalid periods \(p): must be from 2 to \(DMAPeriodClock.capacity) (one period is written while another is consumed)")
            }
            plan.periods = p
        }
        if let text = pace {
            guard cyclic else { throw .usage("--pace applies to the cyclic workload; add --workload cyclic") }
            var paces: [Int] = []
            for item in ListParser.items(text) {
                guard let v = Int(item), v >= 0 else {
                    throw .usage("invalid pace '\(item)': must be a whole number of bytes per second, 0 for memory speed")
                }
                if !paces.contains(v) { paces.append(v) }
            }
            plan.paces = paces
        }
        if let w = periodWork {
            guard cyclic else { throw .usage("--period-work applies to the cyclic workload; add --workload cyclic") }
            guard w >= 0, w <= 1_000_000_000 else { throw .usage("invalid period-work \(w): must be from 0 to 1000000000 ns") }
            plan.periodWorkNs = w
        }
        // Cyclic periods: the sizes asked for, else the audio period.
        if cyclic && size != nil { plan.cyclicSizes = sizes }
    }

    /// True when no option that shapes the sweep was given: the quick default sweep.
    var isDefaultSweep: Bool {
        backend == "all" && workload == "all" && size == nil && batch == nil && depth == nil && repetitions == nil && duration == nil
    }

    /// The placements to run: the default, the one asked for, or every matrix cell.
    func parsePlacements(topology: NUMATopology) throws(CLIError) -> [PointPlacement] {
        if numaMatrix {
            guard placement == nil else {
                throw .usage("--placement and --numa-matrix conflict: the matrix already sweeps every placement; give one of them")
            }
            // Every cell the topology allows: submitter and engine each need a CPU of their own.
            var cells: [PointPlacement] = []
            var excluded: [String] = []
            for c in NUMAPlacement.matrixCells(of: topology) {
                do throws(NUMAError) { cells.append(try PointPlacement(dedicated: c, topology: topology)) } catch {
                    excluded.append("\(c): \(error)")
                }
            }
            if !excluded.isEmpty {
                Console.note("numa matrix: \(excluded.count) of \(excluded.count + cells.count) cells need more CPUs than their node has and are not run; first: \(excluded[0])")
            }
            guard !cells.isEmpty else { throw .usage("no NUMA matrix cell fits this machine: \(excluded.first ?? "no cells")") }
            return cells
        }
        guard let text = placement else { return [.default] }
        do throws(NUMAError) {
            let p = try NUMAPlacement(parsing: text)
            return [try PointPlacement(dedicated: p, topology: topology)]
        } catch {
            throw .usage("invalid placement '\(text)': \(error)")
        }
    }

    func run() throws {
        let v = try validated()
        let overrun = debugOverrun ?? 0
        let factories = BackendRegistry.all.map { e in
            ChannelFactory(name: e.name, unavailableReason: e.unavailableReason) { o in
                let ch = try e.make(o)
                return overrun > 0 ? OverrunChannel(ch, overrun: overrun) : ch
            }
        }
        let runner = Runner(plan: v.plan, factories: factories, placements: v.placements, topology: v.topology)
        // Capabilities, before anything is measured: points a backend cannot run are skipped
        // with the reason; a request no backend can meet (more segments than maxSegments) is
        // bad input.
        let capabilitySkips: [SkippedBackend]
        do { capabilitySkips = try runner.preflight() } catch let e as PreflightError { throw CLIError.usage(e.description) }
        var context = EnvironmentCapture.context(commandLine: ["dmabench"] + Array(CommandLine.arguments.dropFirst()), hostID: hostID)
        context.shard = v.plan.shard
        let plugins = PluginBackends.engines.filter { v.plan.backends.contains($0.name) }
        if !plugins.isEmpty {
            context.plugins = plugins.map {
                PluginRecord(backend: $0.name, path: $0.path, abiVersion: $0.abiVersion, sha256: $0.sha256)
            }
        }
        context.cache = EnvironmentCapture.cacheContext(method: v.plan.cacheMethod)
        context.callbackContext = v.plan.callbackContext?.rawValue
        context.machine = SystemState.properties()
        context.thresholds = .standard
        context.flaggedPoints = 0

        let outputPath = v.output ?? defaultOutputPath(context: context, format: v.format)
        // Probe the output location before measuring anything.
        if let path = outputPath { try probeWritable(path) }
        for p in context.machine ?? [] where p.ok == false {
            Console.note("machine: \(p.name) is \(p.value ?? "?"); stable measurement wants \(p.recommended ?? "?") (dmabench env --check)")
        }

        Console.note("calibrating: memcpy bandwidth and cache-line round trip")
        let calibration = Calibrator.calibrate(
            sizes: v.plan.sizes, submitterCPU: v.placements[0].submitterCPU(topology: v.topology),
            engineCPU: v.placements[0].engineCPU(topology: v.topology), quick: v.plan.quick)
        context.calibration = calibration

        if let c = v.counters {
            context.counters = c.availability()
            for r in c.restrictions { Console.note("counters: \(r)") }
            for (name, why) in context.counters.sorted(by: { $0.key < $1.key }) where why != "ok" {
                Console.note("counter \(name): \(why)")
            }
        }
        var doc = ResultDocument(context: context)
        runner.calibration = calibration
        runner.counters = v.counters
        let total = v.plan.points().count
        let cells = v.placements.count
        Console.note("\(total * cells) points\(cells > 1 ? " (\(total) × \(cells) NUMA placements)" : ""), \(v.plan.repetitions) repetitions each")
        runner.onSkip = { s in
            Console.note("skipping backend \(s.backend): \(s.reason)")
            doc.context.skipped.append(s)
        }
        for s in capabilitySkips { runner.onSkip?(s) }
        let tty = Console.stderrIsTerminal
        runner.onProgress = { e in
            let eta = e.etaSeconds.map { String(format: " ETA %d:%02d", Int($0) / 60, Int($0) % 60) } ?? ""
            if e.repetition == 0 {
                if tty { FileHandle.standardError.write(Data("\n".utf8)) }
                let at = e.placement.map { " at \($0.request)" } ?? ""
                Console.note("[\(e.index)/\(e.total)] \(e.point)\(at)\(eta)", newline: !tty)
            } else if tty {
                Console.note("\r[\(e.index)/\(e.total)] \(e.point) rep \(e.repetition)/\(e.repetitions)\(eta)", newline: false, prefix: false)
            }
        }
        runner.onPoint = { p in
            doc.points.append(p)
            if let env = p.environment, env.interference {
                doc.context.flaggedPoints = (doc.context.flaggedPoints ?? 0) + 1
                Console.note("interference: \(p.backend) \(p.workload) \(Formats.params(p)): \(env.reasons.joined(separator: "; "))")
            }
            // As dmatest logs them: the first mismatches, with their offsets.
            if let v = p.metrics.verification, v.mismatches > 0 {
                Console.note("verification: \(v.srcMismatch) source, \(v.dstMismatch) destination, \(v.guardOverwritten) guard bytes wrong in \(v.checked) descriptors checked")
                for line in v.first { Console.note("  \(line)") }
            }
            // Keep every finished point on disk: an interrupted sweep loses nothing.
            if let path = outputPath {
                var partial = doc
                partial.context.complete = false
                partial.context.incompleteReason = "in progress"
                try? ResultIO.writeAtomically(ResultIO.encode(partial), to: path)
            }
        }
        installInterruptHandler()
        let outcome = runner.run()
        if outcome.interrupted {
            doc.context.complete = false
            doc.context.incompleteReason = "interrupted (SIGINT) after \(doc.points.count) of \(total) points"
        } else if let f = outcome.failure {
            doc.context.complete = false
            doc.context.incompleteReason = "failed: \(f)"
        } else {
            doc.context.complete = true
        }
        doc.annotateSpeedupOverCPU()
        doc.annotateModeRatios()
        if let path = outputPath {
            do { try ResultIO.writeAtomically(try ResultIO.encode(doc), to: path) } catch let e as ResultIOError {
                throw CLIError.io(e.description)
            }
        }
        switch v.format {
        case .table:
            print(Formats.summary(doc, counters: Formats.CounterDetail(rawValue: counters) ?? .summary), terminator: "")
            if v.placements.count > 1 { print(Formats.numaMatrix(doc), terminator: "") }
        case .csv:
            print(Formats.csv(doc), terminator: "")
        case .json:
            if v.output == nil { FileHandle.standardOutput.write(try ResultIO.encode(doc)); print() }
        case .gbench:
            let data = try Formats.gbench(doc)
            if let out = v.output {
                // The result file holds the JSON document; the gbench export goes beside it.
                let g = out.hasSuffix(".json") ? String(out.dropLast(5)) + ".gbench.json" : out + ".gbench.json"
                do { try ResultIO.writeAtomically(data, to: g) } catch { throw CLIError.io(error.description) }
                Console.note("Google Benchmark export: \(g)")
            } else {
                FileHandle.standardOutput.write(data)
                print()
            }
        }
        if let path = outputPath { Console.note("result: \(path)") }
        let flagged = doc.context.flaggedPoints ?? 0
        Console.note(
            flagged == 0
                ? "no point flagged for interference (points[].environment)"
                : "\(flagged) of \(doc.points.count) points flagged for interference (marked ! in the table; reasons in points[].environment.reasons)")
        if plot, let path = outputPath { runPlot(path) }
        if outcome.interrupted { throw CLIError(message: doc.context.incompleteReason!, status: 130) }
        if let f = outcome.failure { throw CLIError.failure(f) }
        if strict && flagged > 0 {
            throw CLIError(message: "--strict: \(flagged) point\(flagged == 1 ? "" : "s") flagged for interference; the result is saved, retry on a quieter machine", status: 75)
        }
    }

    func defaultOutputPath(context: ResultContext, format: OutputFormat) -> String? {
        if format == .json || format == .gbench { return nil }
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        return "Results/\(context.host)/\(context.commit)\(context.dirty ? "-dirty" : "")/run-\(f.string(from: Date())).json"
    }

    func probeWritable(_ path: String) throws(CLIError) {
        let dir = (path as NSString).deletingLastPathComponent
        let d = dir.isEmpty ? "." : dir
        do { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) } catch {
            // FileManager wraps the errno of mkdir(2) in a Cocoa error; report that errno.
            // (`as? NSError` does not match that value here; bridging through `any Error` does.)
            let posix = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? any Error).map { $0 as NSError }
            let e = posix?.domain == NSPOSIXErrorDomain ? Int32(posix!.code) : EIO
            throw .io("cannot create output directory \(d): \(Errno.message(e))")
        }
        if access(d, W_OK) != 0 { throw .io("cannot write to output directory \(d): \(Errno.message(errno))") }
    }

    /// `Scripts/<name>` of the package this executable was built in: the nearest folder
    /// above the executable's real path (`.build/<triple>/<configuration>/dmabench`) that has
    /// one, else the working directory's, so that plotting works from anywhere.
    static func script(_ name: String) -> String? {
        let fm = FileManager.default
        let exe = (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("Scripts/\(name)").path
            if fm.fileExists(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        return fm.fileExists(atPath: "Scripts/\(name)") ? "Scripts/\(name)" : nil
    }

    static func plotScript() -> String? { script("plot.py") }

    /// The plots beside the result (`Scripts/plot.py`), then the HTML report that inlines
    /// them (`Scripts/report.py`); each names what it wrote on stderr.
    func runPlot(_ resultPath: String) {
        let outDir = (resultPath as NSString).deletingLastPathComponent
        for (name, args, what) in [
            ("plot.py", [resultPath, "--out", outDir], "plotting"), ("report.py", [resultPath], "the HTML report"),
        ] {
            guard let script = Self.script(name) else {
                Console.note("\(what) unavailable: Scripts/\(name) was not found beside the executable or in the working directory")
                continue
            }
            do {
                let r = try ChildProcess.run(["python3", script] + args, captureStandardError: true)
                if !r.output.isEmpty { FileHandle.standardError.write(Data(r.output.utf8)) }
                if r.status != 0 { Console.note("\(what) failed (exit \(r.status)); the result file is intact") }
            } catch {
                Console.note("\(what) unavailable: \(error)")
            }
        }
    }
}

func installInterruptHandler() {
    signal(SIGINT) { _ in
        if StopFlag.isSet {
            // A second Ctrl-C: leave at once (the last point-by-point save is on disk).
            _exit(130)
        }
        StopFlag.set()
    }
}
