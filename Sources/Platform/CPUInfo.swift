// dmabench — Platform
//
// /proc/cpuinfo, parsed in one place: the fields of the first CPU listed (the text up to the
// first blank line). The stamp clock, the system-state report and the result's CPU
// description all read it.

/// The first CPU's fields in a /proc/cpuinfo text.
public enum CPUInfo {
    /// The text of /proc/cpuinfo, or nil when it cannot be read.
    public static func read() -> String? {
        #if os(Linux)
        return readSmallFile("/proc/cpuinfo")
        #else
        return nil
        #endif
    }

    /// The value of `key` for the first CPU listed, or nil.
    public static func field(_ key: String, in cpuinfo: String) -> String? {
        for line in cpuinfo.split(separator: "\n", omittingEmptySubsequences: false) {
            if trimmed(line).isEmpty { break }
            guard let colon = line.firstIndex(of: ":"), trimmed(line[..<colon]) == key else { continue }
            return String(trimmed(line[line.index(after: colon)...]))
        }
        return nil
    }

    /// `s` without leading and trailing blanks (procfs pads the keys with tabs).
    static func trimmed(_ s: Substring) -> Substring {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        var t = s.drop(while: isBlank)
        while let last = t.last, isBlank(last) { t = t.dropLast() }
        return t
    }

    /// The first CPU's x86 `flags` (empty when there are none, as on arm64).
    public static func flags(in cpuinfo: String) -> Set<String> {
        Set((field("flags", in: cpuinfo) ?? "").split(separator: " ").map(String.init))
    }
}
