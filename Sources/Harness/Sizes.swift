// dmabench — Harness
//
// Parsing of sizes ("64", "4K", "64K", "1M") and formatting for tables.

public enum ByteSize {
    /// The largest transfer the harness accepts (1 GiB).
    public static let maximum = 1 << 30

    /// Parses "64", "4K", "4k", "4KiB", "1M", "1G". Returns nil for anything else.
    public static func parse(_ text: String) -> Int? {
        var t = Substring(text.trimmingWhitespace())
        guard !t.isEmpty else { return nil }
        var mult = 1
        if t.hasSuffix("iB") || t.hasSuffix("ib") { t = t.dropLast(2) } else if t.hasSuffix("B") || t.hasSuffix("b") { t = t.dropLast(1) }
        if let last = t.last {
            switch last {
            case "K", "k": mult = 1 << 10; t = t.dropLast()
            case "M", "m": mult = 1 << 20; t = t.dropLast()
            case "G", "g": mult = 1 << 30; t = t.dropLast()
            default: break
            }
        }
        guard !t.isEmpty, t.allSatisfy({ $0.isASCII && $0.isNumber }), let v = Int(t) else { return nil }
        let (r, o) = v.multipliedReportingOverflow(by: mult)
        return o ? nil : r
    }

    /// "64", "4K", "64K", "1M" when exact, else bytes.
    public static func format(_ n: Int) -> String {
        if n >= 1 << 30 && n % (1 << 30) == 0 { return "\(n >> 30)G" }
        if n >= 1 << 20 && n % (1 << 20) == 0 { return "\(n >> 20)M" }
        if n >= 1 << 10 && n % (1 << 10) == 0 { return "\(n >> 10)K" }
        return "\(n)"
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
