// dmabench — Harness
//
// Summary statistics: the median of repetitions with a distribution-free 95% confidence
// interval (order statistics of the binomial(n, 1/2) distribution), as docs/architecture.md, "Workloads" asks.

/// A metric measured once per repetition: its samples, median and 95% CI.
public struct MetricSummary: Codable, Sendable, Hashable {
    public var median: Double
    public var ciLow: Double
    public var ciHigh: Double
    public var samples: [Double]

    public init(samples: [Double]) {
        self.samples = samples
        let s = samples.sorted()
        median = Statistics.median(sortedValues: s)
        (ciLow, ciHigh) = Statistics.medianConfidenceInterval(sortedValues: s)
    }
}

public enum Statistics {
    public static func median(sortedValues s: [Double]) -> Double {
        guard !s.isEmpty else { return .nan }
        let n = s.count
        return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
    }

    public static func median(_ values: [Double]) -> Double { median(sortedValues: values.sorted()) }

    /// The 95% confidence interval of the median from order statistics: the widest ranks
    /// (j, k) with P(j ≤ B < k) ≥ 0.95 for B ~ Binomial(n, 1/2). With fewer than 6 samples
    /// no interval reaches 95%, so the range of the samples is returned (a conservative bound).
    public static func medianConfidenceInterval(sortedValues s: [Double]) -> (Double, Double) {
        let n = s.count
        guard n > 0 else { return (.nan, .nan) }
        guard n >= 6 else { return (s[0], s[n - 1]) }
        // cdf of Binomial(n, 0.5)
        var pmf = [Double](repeating: 0, count: n + 1)
        var logC = 0.0  // log C(n, i)
        for i in 0...n {
            if i > 0 { logC += log(Double(n - i + 1)) - log(Double(i)) }
            pmf[i] = exp(logC - Double(n) * log(2.0))
        }
        // Smallest j (0-based lower rank) such that P(B < j) <= 0.025.
        var cum = 0.0
        var j = 0
        while j < n {
            if cum + pmf[j] > 0.025 { break }
            cum += pmf[j]
            j += 1
        }
        let lo = max(0, j - 1)
        let hi = min(n - 1, n - j)
        return (s[lo], s[hi])
    }

    /// Standard deviation over mean (sample standard deviation); 0 for a zero mean.
    public static func coefficientOfVariation(_ v: [Double]) -> Double {
        guard v.count > 1 else { return 0 }
        let mean = v.reduce(0, +) / Double(v.count)
        guard mean != 0 else { return 0 }
        let variance = v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count - 1)
        return variance.squareRoot() / abs(mean)
    }
}

#if canImport(Glibc)
import Glibc
#endif
