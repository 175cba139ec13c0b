// dmabench — DMAEngine
//
// Scatter-gather copies (docs/contract.md A.2, "Scatter-gather"): the segment type a client
// passes to `prepareMemcpySG`, and the plan every backend turns two segment lists into.

/// One contiguous piece of a scatter-gather list: the analogue of one `struct scatterlist`
/// entry (`sg_dma_address`, `sg_dma_len`), or of DPDK's `struct rte_dma_sge`.
public struct DMASegment: Hashable, @unchecked Sendable {
    public var address: UnsafeRawPointer
    public var length: Int

    @inlinable
    public init(address: UnsafeRawPointer, length: Int) {
        self.address = address
        self.length = length
    }

    @inlinable
    public init(_ buffer: UnsafeMutableRawPointer, length: Int) {
        self.address = UnsafeRawPointer(buffer)
        self.length = length
    }
}

/// One step of a scatter-gather walk: a run of bytes that lies inside one source segment
/// and one destination segment. Two lists of `s` and `d` segments give at most `s + d - 1`
/// pieces; copying the pieces in order is copying the lists.
public struct DMASGPiece: Hashable, @unchecked Sendable {
    public var destination: UnsafeMutableRawPointer
    public var source: UnsafeRawPointer
    public var length: Int

    @inlinable
    public init(destination: UnsafeMutableRawPointer, source: UnsafeRawPointer, length: Int) {
        self.destination = destination
        self.source = source
        self.length = length
    }
}

public enum DMASGPlan {
    /// The most pieces two lists of at most `maxSegments` segments each can give.
    @inlinable
    public static func pieceCapacity(maxSegments: Int) -> Int { max(1, 2 * maxSegments - 1) }

    /// Merges `destinations` and `sources` into pieces written to `pieces` (room for
    /// `pieceCapacity(maxSegments:)`). Returns the piece count and the total length, or nil
    /// when the lists are not a valid copy: empty, longer than `maxSegments`, a segment of
    /// length < 1, or unequal totals (rte_dma_copy_sg's rule). Allocates nothing.
    @inlinable
    public static func plan(
        destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, maxSegments: Int,
        into pieces: UnsafeMutablePointer<DMASGPiece>
    ) -> (count: Int, total: Int)? {
        guard !destinations.isEmpty, !sources.isEmpty,
            destinations.count <= maxSegments, sources.count <= maxSegments
        else { return nil }
        var dTotal = 0, sTotal = 0
        for d in destinations {
            guard d.length > 0 else { return nil }
            dTotal += d.length
        }
        for s in sources {
            guard s.length > 0 else { return nil }
            sTotal += s.length
        }
        guard dTotal == sTotal else { return nil }
        var di = 0, si = 0, dOff = 0, sOff = 0, n = 0
        while di < destinations.count && si < sources.count {
            let d = destinations[di], s = sources[si]
            let len = min(d.length - dOff, s.length - sOff)
            pieces[n] = DMASGPiece(
                destination: UnsafeMutableRawPointer(mutating: d.address + dOff), source: s.address + sOff, length: len)
            n += 1
            dOff += len
            sOff += len
            if dOff == d.length { di += 1; dOff = 0 }
            if sOff == s.length { si += 1; sOff = 0 }
        }
        return (n, dTotal)
    }
}
