// dmabench — Harness
//
// The peers' workload variants (docs/measurement-notes.md, "The peers' workloads"):
// dmatest's random offsets and lengths, polled completion, and cold caches.

/// Where each descriptor copies within its slot.
public enum OffsetMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// Every descriptor copies the whole `size` bytes from offset 0 (the anchors' workload).
    case fixed
    /// dmatest's default: a random length in `[alignment, size]` from a random aligned source
    /// offset to a random aligned destination offset, within the slot.
    case random
}

/// How the client learns that a descriptor completed.
public enum CompletionMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// Prepared with `.interrupt`; the callback counts the completion.
    case callback
    /// Prepared without `.interrupt` (rule K6); the client polls `status(of:)` on its
    /// oldest outstanding cookie, as DPDK's `rte_dma_completed` loop and dmatest's `polled` do.
    case polled
}

/// The cache state of the source and destination lines when a descriptor is submitted.
public enum CacheMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// Lines stay wherever the previous lap left them.
    case hot
    /// Lines are evicted before the measured window and again before each slot is reused
    /// (`CacheMethod`).
    case cold
}

/// How `--cache cold` makes the lines cold.
public enum CacheMethod: String, Sendable, Hashable, Codable, CaseIterable {
    /// clflushopt (clflush where the CPU lacks it; dc civac on arm64) of the slot's source
    /// and destination lines before each submit into it. The flush runs on the client
    /// thread inside the measured window; its cost is reported (`cacheFlushNsPerDescriptor`).
    case flush
    /// Enough slots that one lap touches at least `footprintMultiple` times the last-level
    /// cache, so a slot's lines are evicted by the time it is reused; nothing runs per
    /// descriptor, but the hardware decides what stays.
    case footprint

    /// One lap of the slot ring covers this many times the last-level cache.
    public static let footprintMultiple = 4
}

/// How a descriptor of a slot was laid out: written by the client at submit, read by the
/// verifier (the callback, or the client when polling) after completion.
struct SlotCopy {
    var srcOffset: Int32
    var dstOffset: Int32
    var length: Int32
    /// The destination slot was filled with the guard byte before this descriptor, so the
    /// bytes around the copy can be checked (sampled descriptors only).
    var guarded: Bool
}

/// dmatest's random generator role: xorshift64* (cheap, reproducible from a seed).
struct XorShift64 {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    @inline(__always)
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

/// dmatest's `dmatest_verify`, by kind: a source byte changed, a copied byte wrong, a
/// destination byte outside the copy overwritten. Bytes are counted, as dmatest counts them.
public struct VerificationSummary: Codable, Sendable, Hashable {
    /// One descriptor in this many was checked whole (guards included); every slot's last
    /// copy is also checked at the end of each repetition, without guards.
    public var sampleEvery: Int
    /// Descriptors checked.
    public var checked: Int
    public var srcMismatch: Int
    public var dstMismatch: Int
    public var guardOverwritten: Int
    /// The first mismatches, as dmatest logs them, with their offsets.
    public var first: [String]

    public init(sampleEvery: Int, checked: Int = 0, srcMismatch: Int = 0, dstMismatch: Int = 0, guardOverwritten: Int = 0, first: [String] = []) {
        self.sampleEvery = sampleEvery
        self.checked = checked
        self.srcMismatch = srcMismatch
        self.dstMismatch = dstMismatch
        self.guardOverwritten = guardOverwritten
        self.first = first
    }

    public var mismatches: Int { srcMismatch + dstMismatch + guardOverwritten }

    public mutating func add(_ o: VerificationSummary) {
        checked += o.checked
        srcMismatch += o.srcMismatch
        dstMismatch += o.dstMismatch
        guardOverwritten += o.guardOverwritten
        for f in o.first where first.count < VerifierState.maxRecords { first.append(f) }
    }
}

/// The verifier's counters, in the callback state: written by whichever thread verifies
/// (callbacks of a channel never overlap, K3; the client reads them after acquiring
/// `completed`).
struct VerifierState {
    static let maxRecords = 8
    static let guardByte: UInt8 = 0xA5
    static let sourceFill: UInt8 = 0x5A

    enum Kind: UInt8 { case src, dst, guardBefore, guardAfter }

    struct Record {
        var descriptor: Int
        var slot: Int
        var kind: Kind
        var offset: Int
        var expected: UInt8
        var got: UInt8
    }

    var checked = 0
    var srcBytes = 0
    var dstBytes = 0
    var guardBytes = 0
    /// Descriptors with at least one mismatch (counted in the point's `errors`).
    var badDescriptors = 0
    var records: UnsafeMutablePointer<Record>
    var recordCount = 0

    init() {
        records = .allocate(capacity: Self.maxRecords)
    }

    func free() { records.deallocate() }

    mutating func reset() {
        checked = 0
        srcBytes = 0
        dstBytes = 0
        guardBytes = 0
        badDescriptors = 0
        recordCount = 0
    }

    /// The summary so far; its text follows dmatest's log lines.
    func summary(sampleEvery: Int) -> VerificationSummary {
        var first: [String] = []
        for i in 0..<recordCount {
            let r = records[i]
            let what: String
            switch r.kind {
            case .src: what = "srcbuf[0x\(String(r.offset, radix: 16))] overwritten"
            case .dst: what = "dstbuf[0x\(String(r.offset, radix: 16))] mismatch"
            case .guardBefore: what = "dstbuf[0x\(String(r.offset, radix: 16))] overwritten before the copy"
            case .guardAfter: what = "dstbuf[0x\(String(r.offset, radix: 16))] overwritten after the copy"
            }
            first.append("descriptor \(r.descriptor) slot \(r.slot): \(what)! Expected \(hex(r.expected)), got \(hex(r.got))")
        }
        return VerificationSummary(sampleEvery: sampleEvery, checked: checked, srcMismatch: srcBytes, dstMismatch: dstBytes, guardOverwritten: guardBytes, first: first)
    }

    private func hex(_ b: UInt8) -> String {
        let s = String(b, radix: 16)
        return s.count == 1 ? "0x0" + s : "0x" + s
    }

    @inline(__always)
    mutating func note(_ kind: Kind, descriptor: Int, slot: Int, offset: Int, expected: UInt8, got: UInt8) {
        switch kind {
        case .src: srcBytes &+= 1
        case .dst: dstBytes &+= 1
        case .guardBefore, .guardAfter: guardBytes &+= 1
        }
        if recordCount < Self.maxRecords {
            records[recordCount] = Record(descriptor: descriptor, slot: slot, kind: kind, offset: offset, expected: expected, got: got)
            recordCount &+= 1
        }
    }

    /// Checks descriptor `n`'s copy in `slot`: the source slot still holds its pattern, the
    /// copied range matches, and (when the slot was guarded) the destination bytes before and
    /// after the copy still hold the guard byte. `stride` bytes of each slot are checked.
    /// Returns true when everything matched.
    mutating func verify(
        descriptor n: Int, slot: Int, copy: SlotCopy, src: UnsafeRawPointer, dst: UnsafeRawPointer, stride: Int, size: Int
    ) -> Bool {
        checked &+= 1
        let before = srcBytes &+ dstBytes &+ guardBytes
        let s = (src + slot * stride).assumingMemoryBound(to: UInt8.self)
        let d = (dst + slot * stride).assumingMemoryBound(to: UInt8.self)
        // The source: the pattern over `size`, the fill byte after it.
        for i in 0..<stride {
            let want = i < size ? Pattern.byte(slot: slot, index: i) : Self.sourceFill
            if s[i] != want { note(.src, descriptor: n, slot: slot, offset: i, expected: want, got: s[i]) }
        }
        let so = Int(copy.srcOffset), dof = Int(copy.dstOffset), len = Int(copy.length)
        if memcmp(d + dof, s + so, len) != 0 {
            for i in 0..<len where d[dof + i] != s[so + i] {
                note(.dst, descriptor: n, slot: slot, offset: dof + i, expected: s[so + i], got: d[dof + i])
            }
        }
        if copy.guarded {
            for i in 0..<dof where d[i] != Self.guardByte {
                note(.guardBefore, descriptor: n, slot: slot, offset: i, expected: Self.guardByte, got: d[i])
            }
            for i in (dof + len)..<stride where d[i] != Self.guardByte {
                note(.guardAfter, descriptor: n, slot: slot, offset: i, expected: Self.guardByte, got: d[i])
            }
        }
        let ok = srcBytes &+ dstBytes &+ guardBytes == before
        if !ok { badDescriptors &+= 1 }
        return ok
    }
}

#if canImport(Glibc)
import Glibc
#endif
