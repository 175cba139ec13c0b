// dmabench — Harness
//
// `--sge SRC:DST` (docs/measurement-notes.md, "Scatter-gather and cyclic streams"): each
// descriptor's bytes split into SRC source and DST destination segments, as DPDK's
// dma-perf `dma_src_sge`/`dma_dst_sge` do, laid out inside the descriptor's slot with a gap
// between segments, so no two segments are contiguous.

import DMAEngine

/// How many segments each side of a scatter-gather descriptor has.
public struct SGShape: Sendable, Hashable, Codable, CustomStringConvertible {
    public var sources: Int
    public var destinations: Int

    /// Bytes between two segments of a slot: one cache line, so that consecutive segments
    /// never share a line and a walk that runs past a segment lands on a guard byte.
    public static let gap = 64

    public init(sources: Int, destinations: Int) {
        self.sources = sources
        self.destinations = destinations
    }

    /// Parses `S:D`; nil when it is not two positive counts.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let s = Int(parts[0]), let d = Int(parts[1]), s >= 1, d >= 1 else { return nil }
        self.init(sources: s, destinations: d)
    }

    public var description: String { "\(sources):\(destinations)" }

    /// Segment `k` of `n` over `length` bytes: its offset in the slot and its length. The
    /// bytes are spread evenly (the first `length % n` segments one byte longer), each
    /// segment `gap` bytes after the end of the previous one.
    public static func segment(_ k: Int, of n: Int, length: Int) -> (offset: Int, length: Int) {
        let base = length / n, extra = length % n
        let len = base + (k < extra ? 1 : 0)
        let before = k * base + min(k, extra)
        return (before + k * gap, len)
    }

    /// The bytes one side of a slot spans.
    public static func span(_ n: Int, length: Int) -> Int { length + (n - 1) * gap }
}

/// The segment layout of one slot, as offsets from the slot's start; the same for every
/// slot. Preallocated once per client: the loop writes addresses into `scratch` and hands it
/// to `prepareMemcpySG`, so the submit path allocates nothing.
struct SGLayout {
    var sourceOffsets: [Int]
    var sourceLengths: [Int]
    var destinationOffsets: [Int]
    var destinationLengths: [Int]
    /// Room for the destination segments, then the source segments, of one descriptor.
    let scratch: UnsafeMutablePointer<DMASegment>

    init(_ shape: SGShape, size: Int) {
        func side(_ n: Int) -> ([Int], [Int]) {
            let segs = (0..<n).map { SGShape.segment($0, of: n, length: size) }
            return (segs.map(\.offset), segs.map(\.length))
        }
        (sourceOffsets, sourceLengths) = side(shape.sources)
        (destinationOffsets, destinationLengths) = side(shape.destinations)
        scratch = .allocate(capacity: shape.sources + shape.destinations)
        scratch.initialize(repeating: DMASegment(address: UnsafeRawPointer(bitPattern: 1)!, length: 0), count: shape.sources + shape.destinations)
    }

    func free() { scratch.deallocate() }

    var destinations: UnsafeBufferPointer<DMASegment> { UnsafeBufferPointer(start: scratch, count: destinationOffsets.count) }
    var sources: UnsafeBufferPointer<DMASegment> {
        UnsafeBufferPointer(start: scratch + destinationOffsets.count, count: sourceOffsets.count)
    }

    /// Writes the segments of the slot at `src`/`dst` into `scratch`.
    @inline(__always)
    func fill(src: UnsafeRawPointer, dst: UnsafeMutableRawPointer) {
        let nd = destinationOffsets.count
        for k in 0..<nd { scratch[k] = DMASegment(dst + destinationOffsets[k], length: destinationLengths[k]) }
        for k in 0..<sourceOffsets.count {
            scratch[nd + k] = DMASegment(address: src + sourceOffsets[k], length: sourceLengths[k])
        }
    }

    /// The slot offset of logical byte `i` (0..<size) on one side, or nil in a gap.
    static func logicalIndex(offset o: Int, offsets: [Int], lengths: [Int]) -> Int? {
        var before = 0
        for k in 0..<offsets.count {
            if o >= offsets[k] && o < offsets[k] + lengths[k] { return before + o - offsets[k] }
            before += lengths[k]
        }
        return nil
    }

    /// Fills one source slot: logical byte i of the stream at its segment position, the
    /// fill byte in the gaps.
    func fillSource(_ p: UnsafeMutableRawPointer, slot: Int, stride: Int) {
        let b = p.assumingMemoryBound(to: UInt8.self)
        for i in 0..<stride { b[i] = VerifierState.sourceFill }
        var logical = 0
        for k in 0..<sourceOffsets.count {
            for j in 0..<sourceLengths[k] { b[sourceOffsets[k] + j] = Pattern.byte(slot: slot, index: logical + j) }
            logical += sourceLengths[k]
        }
    }
}

extension VerifierState {
    /// `verify` for a scatter-gather slot: the source segments hold the pattern (the gaps the
    /// fill byte), each destination segment holds its part of the stream, and, when the slot
    /// was guarded, every destination byte outside the segments (gaps and tail) still holds
    /// the guard byte.
    mutating func verifySG(
        descriptor n: Int, slot: Int, guarded: Bool, layout: UnsafePointer<SGLayout>, src: UnsafeRawPointer,
        dst: UnsafeRawPointer, stride: Int
    ) -> Bool {
        checked &+= 1
        let before = srcBytes &+ dstBytes &+ guardBytes
        let s = (src + slot * stride).assumingMemoryBound(to: UInt8.self)
        let d = (dst + slot * stride).assumingMemoryBound(to: UInt8.self)
        let L = layout.pointee
        for i in 0..<stride {
            let want = SGLayout.logicalIndex(offset: i, offsets: L.sourceOffsets, lengths: L.sourceLengths)
                .map { Pattern.byte(slot: slot, index: $0) } ?? Self.sourceFill
            if s[i] != want { note(.src, descriptor: n, slot: slot, offset: i, expected: want, got: s[i]) }
        }
        var logical = 0
        var prevEnd = 0
        for k in 0..<L.destinationOffsets.count {
            let o = L.destinationOffsets[k]
            if guarded {
                for i in prevEnd..<o where d[i] != Self.guardByte {
                    note(prevEnd == 0 ? .guardBefore : .guardAfter, descriptor: n, slot: slot, offset: i, expected: Self.guardByte, got: d[i])
                }
            }
            for j in 0..<L.destinationLengths[k] {
                let want = Pattern.byte(slot: slot, index: logical + j)
                if d[o + j] != want { note(.dst, descriptor: n, slot: slot, offset: o + j, expected: want, got: d[o + j]) }
            }
            logical += L.destinationLengths[k]
            prevEnd = o + L.destinationLengths[k]
        }
        if guarded {
            for i in prevEnd..<stride where d[i] != Self.guardByte {
                note(.guardAfter, descriptor: n, slot: slot, offset: i, expected: Self.guardByte, got: d[i])
            }
        }
        let ok = srcBytes &+ dstBytes &+ guardBytes == before
        if !ok { badDescriptors &+= 1 }
        return ok
    }
}
