// dmabench — Harness
//
// Output formats: a terminal table, CSV, and Google Benchmark's JSON shape (so that its
// compare.py reads our results unchanged). The JSON document itself is ResultIO's.

import Foundation

public enum OutputFormat: String, CaseIterable, Sendable {
    case table, json, csv, gbench
}

public enum Formats {
    static func fmt(_ v: Double?, _ digits: Int = 3) -> String {
        guard let v, v.isFinite else { return "-" }
        let a = abs(v)
        if a >= 1e9 { return String(format: "%.\(digits - 1)fG", v / 1e9) }
        if a >= 1e6 { return String(format: "%.\(digits - 1)fM", v / 1e6) }
        if a >= 1e4 { return String(format: "%.1fk", v / 1e3) }
        if a >= 100 { return String(format: "%.0f", v) }
        return String(format: "%.\(digits - 1)f", v)
    }

    static func ns(_ v: Double?) -> String {
        guard let v, v.isFinite else { return "-" }
        if v >= 1e9 { return String(format: "%.2fs", v / 1e9) }
        if v >= 1e6 { return String(format: "%.2fms", v / 1e6) }
        if v >= 1e4 { return String(format: "%.1fµs", v / 1e3) }
        return String(format: "%.0fns", v)
    }

    public static func params(_ p: ResultPoint) -> String {
        let q = p.parameters
        switch p.workload {
        case "terminate": return "size=\(ByteSize.format(q.size)) N=\(q.inFlight ?? 0)"
        case "cyclic":
            return "period=\(ByteSize.format(q.size)) P=\(q.periods ?? 0) " + q.paceLabel
                + ((q.periodWorkNs ?? 0) > 0 ? " work=\(ns(Double(q.periodWorkNs!)))" : "")
        case "latency": return "size=\(ByteSize.format(q.size)) depth=\(q.depth)" + (q.rate.map { " rate=\(fmt($0))/s" } ?? "") + q.modeSuffix
        default: return "size=\(ByteSize.format(q.size)) b=\(q.batch) d=\(q.depth)" + (q.channels > 1 ? " ch=\(q.channels)" : "") + q.modeSuffix
        }
    }

    /// How much of the counters a table shows.
    public enum CounterDetail: String, Sendable, CaseIterable {
        /// A few per-descriptor columns (CPU time, context switches; IPC and cache misses
        /// where a PMU counts them) and one footer line for the events that cannot be counted.
        case summary
        /// Every thread's every event, one block per point, as well.
        case full
    }

    /// The terminal summary: one row per throughput, latency and cyclic point, terminate
    /// points folded into one row per backend, counters as a few columns, and footers that
    /// say each thing once. A default sweep fits a terminal (about 60 lines of 120 columns);
    /// `table(_:)` (or `counters: .full`) is the whole picture.
    public static func summary(_ doc: ResultDocument, counters detail: CounterDetail = .summary) -> String {
        if detail == .full { return table(doc) }
        let rows = doc.points.filter { $0.workload != "terminate" && $0.workload != "cyclic" }
        let baseline = rows.contains { $0.metrics.speedupOverCPU != nil }
        let polled = rows.contains { $0.metrics.polledVsCallback != nil }
        let cold = rows.contains { $0.metrics.coldVsHot != nil }
        let cpuTime = rows.contains { perDescriptor($0, "task-clock") != nil }
        let switches = rows.contains { perDescriptor($0, "context-switches") != nil }
        let ipc = rows.contains { Self.ipc($0) != nil }
        let misses = rows.contains { perDescriptor($0, "cache-misses") != nil }
        var out = ""
        if !rows.isEmpty {
            var head = ["backend", "workload", "parameters", "desc/s", "bytes/s"]
            if baseline { head.append("vs cpu") }
            if polled { head.append("vs cb") }
            if cold { head.append("vs hot") }
            head += ["p50", "p99"]
            if cpuTime { head.append("cpu/desc") }
            if switches { head.append("cs/kdesc") }
            if ipc { head.append("IPC") }
            if misses { head.append("miss/desc") }
            head.append("errors")
            var table: [[String]] = [head]
            for p in rows {
                let m = p.metrics
                var r = [(p.environment?.interference == true ? "! " : "") + p.backend, p.workload, shortParams(p)]
                if let d = m.descriptorsPerSecond {
                    let ci = d.median > 0 ? 100 * max(d.median - d.ciLow, d.ciHigh - d.median) / d.median : 0
                    r.append(fmt(d.median) + String(format: "±%.0f%%", ci))
                } else { r.append("-") }
                r.append(fmt(m.bytesPerSecond?.median))
                if baseline {
                    r.append(p.backend == ResultDocument.baselineBackend ? "1 (base)" : m.speedupOverCPU.map { String(format: "%.2fx", $0) } ?? "-")
                }
                if polled { r.append(m.polledVsCallback.map { String(format: "%.2fx", $0) } ?? "-") }
                if cold { r.append(m.coldVsHot.map { String(format: "%.2fx", $0) } ?? "-") }
                r += [ns(m.latencyNs?.p50), ns(m.latencyNs?.p99)]
                if cpuTime { r.append(ns(perDescriptor(p, "task-clock"))) }
                if switches { r.append(perDescriptor(p, "context-switches").map { String(format: "%.2f", $0 * 1000) } ?? "-") }
                if ipc { r.append(Self.ipc(p).map { String(format: "%.2f", $0) } ?? "-") }
                if misses { r.append(perDescriptor(p, "cache-misses").map { String(format: "%.2f", $0) } ?? "-") }
                r.append("\(m.errors ?? 0)")
                table.append(r)
            }
            out += render(table)
        }
        // Terminate points: terminateSync by descriptors in flight, one row per backend.
        let term = doc.points.filter { $0.workload == "terminate" }
        if !term.isEmpty {
            let ns_ = Array(Set(term.compactMap { $0.parameters.inFlight })).sorted()
            var t: [[String]] = [["terminateSync", "size"] + ns_.map { "N=\($0)" } + ["seed race", "errors"]]
            var order: [String] = []
            for p in term where !order.contains(p.backend) { order.append(p.backend) }
            for b in order {
                let pts = term.filter { $0.backend == b }
                let flagged = pts.contains { $0.environment?.interference == true }
                var r = [(flagged ? "! " : "") + b, ByteSize.format(pts[0].parameters.size)]
                for n in ns_ { r.append(ns(pts.first { $0.parameters.inFlight == n }?.metrics.terminateSyncNs?.median)) }
                let seeds = pts.compactMap { $0.metrics.seedRaceNs?.median }
                r.append(seeds.isEmpty ? "-" : ns(Statistics.median(seeds)))
                r.append("\(pts.reduce(0) { $0 + ($1.metrics.errors ?? 0) })")
                t.append(r)
            }
            out += "\n" + render(t)
        }
        // Cyclic streams.
        let cyc = doc.points.filter { $0.metrics.cyclic != nil }
        if !cyc.isEmpty {
            var t: [[String]] = [["cyclic", "stream", "period p50", "p99", "cb/period", "xruns", "pace", "stop cb", "stop client", "resume", "errors"]]
            for p in cyc {
                let c = p.metrics.cyclic!
                let q = p.parameters
                t.append([
                    (p.environment?.interference == true ? "! " : "") + p.backend,
                    "\(q.periods ?? 0)×\(ByteSize.format(q.size)) " + (q.pace.map { $0 == 0 ? "memory" : "\(fmt(Double($0)))B/s" } ?? ""),
                    ns(c.periodLatencyNs?.p50), ns(c.periodLatencyNs?.p99), String(format: "%.2f", c.coalescing), "\(c.overruns)",
                    c.paceRatio.map { String(format: "%.4fx", $0) } ?? fmt(c.achievedBytesPerSecond.median) + "B/s",
                    ns(c.stopFromCallbackNs.median), ns(c.stopFromClientNs.median), ns(c.resumeToNextByteNs.median), "\(p.metrics.errors ?? 0)",
                ])
            }
            out += "\n" + render(t)
        }
        out += footers(doc, compact: true).split(separator: "\n", omittingEmptySubsequences: false)
            .map { wrap(String($0), width: 120) }.joined(separator: "\n")
        return out
    }

    /// `line` broken at spaces into lines of at most `width` columns, the continuation
    /// lines indented by two.
    static func wrap(_ line: String, width: Int) -> String {
        guard line.count > width else { return line }
        var lines: [String] = []
        var current = ""
        for word in line.split(separator: " ", omittingEmptySubsequences: false) {
            let indent = lines.isEmpty ? "" : "  "
            if !current.isEmpty && indent.count + current.count + 1 + word.count > width {
                lines.append(indent + current)
                current = String(word)
            } else {
                current = current.isEmpty ? String(word) : current + " " + word
            }
        }
        if !current.isEmpty { lines.append((lines.isEmpty ? "" : "  ") + current) }
        return lines.joined(separator: "\n")
    }

    /// The parameters without what the workload implies (a latency point's batch, the
    /// default modes).
    static func shortParams(_ p: ResultPoint) -> String {
        let q = p.parameters
        if p.workload == "latency" { return "\(ByteSize.format(q.size)) d=\(q.depth)" + (q.rate.map { " \(fmt($0))/s" } ?? "") + q.modeSuffix }
        return "\(ByteSize.format(q.size)) b=\(q.batch) d=\(q.depth)" + (q.channels > 1 ? " ch=\(q.channels)" : "") + q.modeSuffix
    }

    /// An event per descriptor, summed over the point's threads (not the CPU-wide entries).
    static func perDescriptor(_ p: ResultPoint, _ event: String) -> Double? {
        guard let c = p.counters else { return nil }
        var sum = 0.0, any = false
        for (role, events) in c where !role.hasSuffix("-cpu") {
            if let v = events[event]?.perDescriptor { sum += v; any = true }
        }
        return any ? sum : nil
    }

    static func ipc(_ p: ResultPoint) -> Double? {
        guard let i = perDescriptor(p, "instructions"), let c = perDescriptor(p, "cycles"), c > 0 else { return nil }
        return i / c
    }

    /// The notes under a table: flagged points, verification failures, counters that cannot
    /// be counted here, skipped backends, an incomplete run. `compact`: one line each where
    /// the full table lists every point.
    static func footers(_ doc: ResultDocument, compact: Bool) -> String {
        var out = ""
        let flagged = doc.points.filter { $0.environment?.interference == true }
        if !flagged.isEmpty {
            out += "\n! \(flagged.count) of \(doc.points.count) points flagged for interference (thresholds: background CPU or steal over \(Int((doc.context.thresholds?.backgroundCPU ?? 0.05) * 100))% of the window, repetitions' CV over \(Int((doc.context.thresholds?.cv ?? 0.1) * 100))%, round trip drift over \(String(format: "%.1f", doc.context.thresholds?.roundTripDrift ?? 2))x)"
            if compact {
                var kinds: [String: Int] = [:]
                for p in flagged {
                    for r in p.environment?.reasons ?? [] {
                        let k = r.hasPrefix("background") ? "background CPU" : r.hasPrefix("steal") ? "steal" : r.hasPrefix("repetitions") ? "variation" : r.contains("round trip") ? "round-trip drift" : "other"
                        kinds[k, default: 0] += 1
                    }
                }
                out += ": " + kinds.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
                    + "; each point's reasons in points[].environment.reasons\n"
            } else {
                out += ":\n"
                for p in flagged { out += "  \(p.backend) \(p.workload) \(params(p)): \((p.environment?.reasons ?? []).joined(separator: "; "))\n" }
            }
        }
        // Corruption is never just a number in a column: name the points and the first bytes.
        for p in doc.points {
            guard let v = p.metrics.verification, v.mismatches > 0 else { continue }
            out += "\nVERIFICATION FAILED: \(p.backend) \(p.workload) \(params(p)): \(v.srcMismatch) source, \(v.dstMismatch) destination and \(v.guardOverwritten) guard bytes wrong in \(v.checked) descriptors checked\n"
            for line in v.first.prefix(3) { out += "  \(line)\n" }
        }
        if compact {
            // Events that cannot be counted here: once, with their reasons.
            var byReason: [String: [String]] = [:]
            for (name, why) in doc.context.counters where why != "ok" { byReason[why, default: []].append(name) }
            for (why, names) in byReason.sorted(by: { $0.key < $1.key }) {
                out += "\ncounters not counted here: \(names.sorted().joined(separator: ", ")) (\(why))"
            }
            if !byReason.isEmpty { out += "\n" }
        }
        if !doc.context.skipped.isEmpty {
            out += "\n"
            if compact {
                var byReason: [String: [String]] = [:]
                var order: [String] = []
                for s in doc.context.skipped {
                    if byReason[s.reason] == nil { order.append(s.reason) }
                    byReason[s.reason, default: []].append(s.backend)
                }
                for r in order { out += "skipped \(byReason[r]!.joined(separator: ", ")): \(r)\n" }
            } else {
                for s in doc.context.skipped { out += "skipped \(s.backend): \(s.reason)\n" }
            }
        }
        if !doc.context.complete {
            out += "\nINCOMPLETE: \(doc.context.incompleteReason ?? "interrupted"); \(doc.points.count) points kept\n"
        }
        return out
    }

    /// A plain-text table, one row per point, with every column and every counter.
    public static func table(_ doc: ResultDocument) -> String {
        let baseline = doc.points.contains { $0.metrics.speedupOverCPU != nil }
        let polled = doc.points.contains { $0.metrics.polledVsCallback != nil }
        let cold = doc.points.contains { $0.metrics.coldVsHot != nil }
        var head = ["backend", "workload", "parameters", "desc/s", "±95%", "bytes/s"]
        if baseline { head.append("vs cpu") }
        // The mode columns: this polled point over its callback twin, this cold one over hot.
        if polled { head.append("vs cb") }
        if cold { head.append("vs hot") }
        let cyclic = doc.points.contains { $0.metrics.cyclic != nil }
        head += ["submit ns", "p50", "p99", "p99.9", "max", "terminate"]
        // Cyclic points: their period latency fills p50…max, their stop and pause costs
        // the terminate column, and this column the stream's shape.
        if cyclic { head.append("cyclic") }
        head.append("errors")
        var rows: [[String]] = [head]
        for p in doc.points {
            let m = p.metrics
            // "!" marks a point flagged for interference; the footnote gives the reasons.
            var r = [(p.environment?.interference == true ? "! " : "") + p.backend, p.workload, params(p)]
            if let d = m.descriptorsPerSecond {
                r.append(fmt(d.median))
                r.append(d.median > 0 ? String(format: "%.0f%%", 100 * max(d.median - d.ciLow, d.ciHigh - d.median) / d.median) : "-")
            } else { r += ["-", "-"] }
            r.append(fmt(m.bytesPerSecond?.median))
            if baseline {
                let isBase = p.backend == ResultDocument.baselineBackend && p.workload != "terminate"
                r.append(isBase ? "1 (base)" : m.speedupOverCPU.map { String(format: "%.2fx", $0) } ?? "-")
            }
            if polled { r.append(m.polledVsCallback.map { String(format: "%.2fx", $0) } ?? "-") }
            if cold { r.append(m.coldVsHot.map { String(format: "%.2fx", $0) } ?? "-") }
            r.append(m.submitNsPerDescriptor.map { String(format: "%.1f", $0.median) } ?? "-")
            if let l = m.latencyNs ?? m.cyclic?.periodLatencyNs {
                r += [ns(l.p50), ns(l.p99), ns(l.p999), ns(l.max)]
            } else { r += ["-", "-", "-", "-"] }
            if let ts = m.terminateSyncNs {
                r.append("sync \(ns(ts.median)) async \(ns(m.terminateAsyncNs?.median)) +sync \(ns(m.synchronizeNs?.median)) seed \(ns(m.seedRaceNs?.median)) done/aborted \(m.completed ?? 0)/\(m.aborted ?? 0)")
            } else if let c = m.cyclic {
                r.append("stop cb \(ns(c.stopFromCallbackNs.median)) client \(ns(c.stopFromClientNs.median)) pause \(ns(c.pauseNs.median)) resume \(ns(c.resumeToNextByteNs.median))")
            } else { r.append("-") }
            if cyclic {
                if let c = m.cyclic {
                    let pace = c.paceRatio.map { String(format: " pace %.2fx", $0) } ?? " \(fmt(c.achievedBytesPerSecond.median))B/s"
                    r.append(String(format: "%d periods, %.2f cb/period, %d xruns", c.periods, c.coalescing, c.overruns) + pace)
                } else { r.append("-") }
            }
            r.append("\(m.errors ?? 0)")
            rows.append(r)
        }
        var out = render(rows)
        // Counters, one block per point that has them.
        for p in doc.points {
            guard let c = p.counters, !c.isEmpty else { continue }
            out += "\ncounters per descriptor: \(p.backend) \(p.workload) \(params(p))\n"
            var crow: [[String]] = [["thread", "event", "per descriptor", "scaling", "note"]]
            for role in c.keys.sorted() {
                for ev in c[role]!.keys.sorted() {
                    let v = c[role]![ev]!
                    if let u = v.unsupported {
                        crow.append([role, ev, "-", "-", "unsupported: \(u)"])
                    } else {
                        crow.append([role, ev, fmt(v.perDescriptor), v.scaling.map { String(format: "%.2f", $0) } ?? "-", ""])
                    }
                }
            }
            out += render(crow)
        }
        out += footers(doc, compact: false)
        return out
    }

    public static func render(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = [Int](repeating: 0, count: first.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        var out = ""
        for (n, r) in rows.enumerated() {
            out += r.enumerated().map { i, c in c.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingTrailingSpaces() + "\n"
            if n == 0 { out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n" }
        }
        return out
    }

    /// The NUMA matrix: one table per (backend, workload, parameters), rows submitter/engine
    /// node, columns source/destination node; throughput points show descriptors/s, latency
    /// points p50, terminate points terminateSync.
    public static func numaMatrix(_ doc: ResultDocument) -> String {
        var groups: [String: [ResultPoint]] = [:]
        var order: [String] = []
        for p in doc.points {
            let key = "\(p.backend) \(p.workload) \(params(p))"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(p)
        }
        func node(_ s: String?) -> String { s ?? "any" }
        func mem(_ n: Int?) -> String { n.map { "n\($0)" } ?? "any" }
        var out = ""
        for key in order {
            let pts = groups[key]!
            let rows = Array(Set(pts.map { "s=\(node($0.placement.requested.submitter)) e=\(node($0.placement.requested.engine))" })).sorted()
            let cols = Array(Set(pts.map { "src=\(mem($0.placement.requested.src)) dst=\(mem($0.placement.requested.dst))" })).sorted()
            var table: [[String]] = [["NUMA matrix: " + key] + cols]
            for r in rows {
                var line = [r]
                for c in cols {
                    let p = pts.first {
                        "s=\(node($0.placement.requested.submitter)) e=\(node($0.placement.requested.engine))" == r
                            && "src=\(mem($0.placement.requested.src)) dst=\(mem($0.placement.requested.dst))" == c
                    }
                    if let m = p?.metrics {
                        if let d = m.descriptorsPerSecond { line.append(fmt(d.median) + "/s") }
                        else if let l = m.latencyNs { line.append("p50 " + ns(l.p50)) }
                        else if let t = m.terminateSyncNs { line.append(ns(t.median)) }
                        else { line.append("-") }
                    } else {
                        line.append("-")
                    }
                }
                table.append(line)
            }
            out += "\n" + render(table)
        }
        return out
    }

    /// CSV: one row per point, medians only.
    public static func csv(_ doc: ResultDocument) -> String {
        var out = "backend,workload,size,batch,depth,channels,rate,inFlight,descriptorsPerSecond,bytesPerSecond,submitNsPerDescriptor,p50Ns,p90Ns,p99Ns,p999Ns,p9999Ns,maxNs,latencyCount,terminateSyncNs,terminateAsyncNs,synchronizeNs,seedRaceNs,completed,aborted,errors,speedupOverCPU,offsets,alignment,completion,cache,polledVsCallback,coldVsHot,verifiedDescriptors,srcMismatch,dstMismatch,guardOverwritten,cacheFlushNsPerDescriptor,interference,backgroundCPU,steal,involuntarySwitches,roundTripDrift,cv,sge,periods,pace,periodWorkNs,periodP50Ns,periodP99Ns,periodMaxNs,periodCallbacks,periodsElapsed,coalescing,overruns,achievedBytesPerSecond,paceRatio,pauseNs,resumeToNextByteNs,stopFromCallbackNs,stopFromClientNs\n"
        func d(_ v: Double?) -> String { v.map { String($0) } ?? "" }
        func i(_ v: Int?) -> String { v.map { String($0) } ?? "" }
        for p in doc.points {
            let m = p.metrics, q = p.parameters, l = m.latencyNs
            let cols: [String] = [
                p.backend, p.workload, "\(q.size)", "\(q.batch)", "\(q.depth)", "\(q.channels)", d(q.rate), i(q.inFlight),
                d(m.descriptorsPerSecond?.median), d(m.bytesPerSecond?.median), d(m.submitNsPerDescriptor?.median),
                d(l?.p50), d(l?.p90), d(l?.p99), d(l?.p999), d(l?.p9999), d(l?.max), i(l?.count),
                d(m.terminateSyncNs?.median), d(m.terminateAsyncNs?.median), d(m.synchronizeNs?.median), d(m.seedRaceNs?.median),
                i(m.completed), i(m.aborted), i(m.errors), d(m.speedupOverCPU),
                q.offsets?.rawValue ?? "", i(q.alignment), q.completion?.rawValue ?? "", q.cache?.rawValue ?? "",
                d(m.polledVsCallback), d(m.coldVsHot), i(m.verification?.checked), i(m.verification?.srcMismatch),
                i(m.verification?.dstMismatch), i(m.verification?.guardOverwritten), d(m.cacheFlushNsPerDescriptor),
                p.environment.map { $0.interference ? "true" : "false" } ?? "", d(p.environment?.backgroundCPU), d(p.environment?.steal),
                i(p.environment?.involuntarySwitches), d(p.environment?.roundTripDrift), d(p.environment?.cv),
                q.sge ?? "", i(q.periods), i(q.pace), i(q.periodWorkNs),
                d(m.cyclic?.periodLatencyNs?.p50), d(m.cyclic?.periodLatencyNs?.p99), d(m.cyclic?.periodLatencyNs?.max),
                i(m.cyclic?.callbacks), i(m.cyclic?.periods), d(m.cyclic?.coalescing), i(m.cyclic?.overruns),
                d(m.cyclic?.achievedBytesPerSecond.median), d(m.cyclic?.paceRatio), d(m.cyclic?.pauseNs.median),
                d(m.cyclic?.resumeToNextByteNs.median), d(m.cyclic?.stopFromCallbackNs.median), d(m.cyclic?.stopFromClientNs.median),
            ]
            out += cols.joined(separator: ",") + "\n"
        }
        return out
    }

    /// Google Benchmark's JSON shape: one "iteration" run per repetition and a "median"
    /// aggregate per point; time is ns per descriptor (throughput) or ns (latency p50,
    /// terminateSync).
    public static func gbench(_ doc: ResultDocument) throws -> Data {
        var benchmarks: [[String: Any]] = []
        for p in doc.points {
            let q = p.parameters
            let sge = q.sge.flatMap(SGShape.init(parsing:)).map { "/src_sge:\($0.sources)/dst_sge:\($0.destinations)" } ?? ""
            let stream = q.periods.map { "/periods:\($0)/pace:\(q.pace ?? 0)" + ((q.periodWorkNs ?? 0) > 0 ? "/work_ns:\(q.periodWorkNs!)" : "") } ?? ""
            let name = "\(p.backend)/\(p.workload)/size:\(p.parameters.size)/batch:\(p.parameters.batch)/depth:\(p.parameters.depth)" + sge + stream
                + (p.parameters.inFlight.map { "/inflight:\($0)" } ?? "") + (p.parameters.rate.map { "/rate:\(Int($0))" } ?? "")
                + (p.parameters.offsets == .random ? "/offsets:random/alignment:\(p.parameters.alignment ?? 1)" : "")
                + (p.parameters.completion == .polled ? "/completion:polled" : "") + (p.parameters.cache == .cold ? "/cache:cold" : "")
            var times: [Double] = []
            var median: Double?
            var items: Double?
            if let d = p.metrics.descriptorsPerSecond {
                times = d.samples.map { $0 > 0 ? 1e9 / $0 : 0 }
                median = d.median > 0 ? 1e9 / d.median : nil
                items = d.median
            } else if let t = p.metrics.terminateSyncNs {
                times = t.samples
                median = t.median
            } else if let l = p.metrics.latencyNs {
                times = [l.p50]
                median = l.p50
            } else if let l = p.metrics.cyclic?.periodLatencyNs {
                // Cyclic: the period latency's median (the stream's other figures are counters).
                times = [l.p50]
                median = l.p50
            }
            for (i, t) in times.enumerated() {
                benchmarks.append([
                    "name": name, "run_name": name, "run_type": "iteration", "repetitions": times.count, "repetition_index": i,
                    "threads": p.parameters.channels, "iterations": 1, "real_time": t, "cpu_time": t, "time_unit": "ns",
                ])
            }
            if let median {
                var agg: [String: Any] = [
                    "name": name + "_median", "run_name": name, "run_type": "aggregate", "aggregate_name": "median",
                    "repetitions": times.count, "threads": p.parameters.channels, "iterations": times.count,
                    "real_time": median, "cpu_time": median, "time_unit": "ns",
                ]
                if let items { agg["items_per_second"] = items }
                if let c = p.metrics.cyclic {
                    agg["overruns"] = c.overruns
                    agg["coalescing"] = c.coalescing
                    agg["period_p99_ns"] = c.periodLatencyNs?.p99 ?? 0
                    agg["stop_from_callback_ns"] = c.stopFromCallbackNs.median
                }
                benchmarks.append(agg)
            }
        }
        let c = doc.context
        let context: [String: Any] = [
            "date": c.date, "host_name": c.host, "executable": "dmabench", "num_cpus": c.cores, "mhz_per_cpu": 0,
            "cpu_scaling_enabled": c.governor != nil, "library_build_type": "release", "caches": [] as [Any],
            "load_avg": [] as [Any], "dmabench_commit": c.commit, "dmabench_kernel": c.kernel, "dmabench_cpu": c.cpu,
        ]
        return try JSONSerialization.data(withJSONObject: ["context": context, "benchmarks": benchmarks], options: [.prettyPrinted, .sortedKeys])
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
