// dmabench — DMAEngineTests
//
// `DMASGPlan`: how two segment lists become the pieces a backend walks.

import DMAEngine
import Testing

@Suite("Scatter-gather plan")
struct ScatterGatherPlanTests {
    /// Plans `src` into `dst` over fake addresses (source segments at 1_000_000 + 10_000·k,
    /// destination segments at 2_000_000 + 10_000·k); returns (dst offset, src offset, length)
    /// per piece, relative to those bases, or nil.
    static func plan(_ dst: [Int], _ src: [Int], max: Int = 16) -> [(Int, Int, Int)]? {
        func segs(_ lens: [Int], _ base: Int) -> [DMASegment] {
            lens.enumerated().map { DMASegment(address: UnsafeRawPointer(bitPattern: base + 10_000 * $0.offset)!, length: $0.element) }
        }
        let d = segs(dst, 2_000_000), s = segs(src, 1_000_000)
        let out = UnsafeMutablePointer<DMASGPiece>.allocate(capacity: DMASGPlan.pieceCapacity(maxSegments: max))
        defer { out.deallocate() }
        let r = d.withUnsafeBufferPointer { dp in s.withUnsafeBufferPointer { sp in DMASGPlan.plan(destinations: dp, sources: sp, maxSegments: max, into: out) } }
        guard let r else { return nil }
        #expect(r.total == dst.reduce(0, +))
        return (0..<r.count).map {
            (Int(bitPattern: out[$0].destination) - 2_000_000, Int(bitPattern: out[$0].source) - 1_000_000, out[$0].length)
        }
    }

    @Test("3 × 1000 B into 1 × 3000 B: three pieces into consecutive destination bytes")
    func gather() throws {
        let p = try #require(Self.plan([3000], [1000, 1000, 1000]))
        #expect(p.map(\.0) == [0, 1000, 2000] && p.map(\.1) == [0, 10_000, 20_000] && p.map(\.2) == [1000, 1000, 1000])
    }

    @Test("1 × 4096 B into 4 × 1024 B: four pieces from consecutive source bytes")
    func scatter() throws {
        let p = try #require(Self.plan([1024, 1024, 1024, 1024], [4096]))
        #expect(p.map(\.0) == [0, 10_000, 20_000, 30_000] && p.map(\.1) == [0, 1024, 2048, 3072])
    }

    @Test("uneven lists split at every boundary of either side, at most s + d - 1 pieces")
    func uneven() throws {
        let p = try #require(Self.plan([1500, 1500], [7, 993, 2000]))
        // Boundaries: source at 7, 1000; destination at 1500.
        #expect(p.map(\.2) == [7, 993, 500, 1500])
        #expect(p.map(\.0) == [0, 7, 1000, 10_000])
        #expect(p.map(\.1) == [0, 10_000, 20_000, 20_500])
        #expect(p.count <= 2 + 3 - 1)
    }

    @Test("invalid lists: empty, unequal totals, zero-length segments, more than maxSegments")
    func invalid() {
        #expect(Self.plan([], [1]) == nil)
        #expect(Self.plan([1], []) == nil)
        #expect(Self.plan([100], [99]) == nil)
        #expect(Self.plan([0], [0]) == nil)
        #expect(Self.plan([1, 0, 1], [2]) == nil)
        #expect(Self.plan(Array(repeating: 1, count: 17), [17]) == nil)
        #expect(Self.plan(Array(repeating: 1, count: 16), [16]) != nil)
        #expect(Self.plan([4], [1, 1, 1, 1], max: 3) == nil)
    }
}
