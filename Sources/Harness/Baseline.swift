// dmabench — Harness
//
// The cpu baseline: every point's speed-up over the `cpu` backend at the same workload,
// parameters and placement, as DPDK's dma-perf sets DMA_MEM_COPY beside CPU_MEM_COPY; and
// the same ratio between the modes of one point (polled over callback, cold over hot).

extension ResultDocument {
    /// The registry name of the baseline backend.
    public static let baselineBackend = "cpu"

    /// Sets `metrics.speedupOverCPU` on every point that has a `cpu` counterpart in this
    /// document (same workload, parameters and requested placement): descriptors/s over the
    /// cpu's for throughput, the cpu's p50 latency over this one's for latency (above 1:
    /// faster than the CPU). Terminate points and the cpu's own points get none.
    public mutating func annotateSpeedupOverCPU() {
        struct Key: Hashable {
            var workload: String
            var parameters: PointParameters
            var placement: PlacementRecord.Cell
        }
        var baseline: [Key: PointMetrics] = [:]
        for p in points where p.backend == Self.baselineBackend {
            baseline[Key(workload: p.workload, parameters: p.parameters, placement: p.placement.requested)] = p.metrics
        }
        guard !baseline.isEmpty else { return }
        for i in points.indices where points[i].backend != Self.baselineBackend {
            let p = points[i]
            guard let b = baseline[Key(workload: p.workload, parameters: p.parameters, placement: p.placement.requested)] else { continue }
            points[i].metrics.speedupOverCPU = Self.speedup(p.workload, of: p.metrics, over: b)
        }
    }

    /// Sets `polledVsCallback` on every polled point and `coldVsHot` on every cold point that
    /// has its counterpart in this document (the same backend, workload, parameters and
    /// requested placement with callbacks, or with hot caches), as the same ratio as
    /// `speedupOverCPU`.
    public mutating func annotateModeRatios() {
        struct Key: Hashable {
            var backend: String
            var workload: String
            var parameters: PointParameters
            var placement: PlacementRecord.Cell
        }
        var byKey: [Key: PointMetrics] = [:]
        for p in points {
            byKey[Key(backend: p.backend, workload: p.workload, parameters: p.parameters, placement: p.placement.requested)] = p.metrics
        }
        for i in points.indices {
            let p = points[i]
            func counterpart(_ q: PointParameters) -> PointMetrics? {
                byKey[Key(backend: p.backend, workload: p.workload, parameters: q, placement: p.placement.requested)]
            }
            if p.parameters.completion == .polled, let b = counterpart(p.parameters.with(completion: .callback)) {
                points[i].metrics.polledVsCallback = Self.speedup(p.workload, of: p.metrics, over: b)
            }
            if p.parameters.cache == .cold, let b = counterpart(p.parameters.with(cache: .hot)) {
                points[i].metrics.coldVsHot = Self.speedup(p.workload, of: p.metrics, over: b)
            }
        }
    }

    static func speedup(_ workload: String, of m: PointMetrics, over b: PointMetrics) -> Double? {
        switch workload {
        case "latency":
            guard let mine = m.latencyNs?.p50, let cpu = b.latencyNs?.p50, mine > 0 else { return nil }
            return cpu / mine
        case "terminate":
            return nil
        default:
            guard let mine = m.descriptorsPerSecond?.median, let cpu = b.descriptorsPerSecond?.median, cpu > 0 else { return nil }
            return mine / cpu
        }
    }
}
