// dmabench — DMAEngineTests
//
// Cookies (docs/contract.md A.4) and the completion watermark (A.4a), against the kernel's
// `dma_cookie_assign()` and `dma_async_is_complete()`.

import DMAEngine
import Testing

struct CookieTests {
    @Test func freshWatermarkIsOneOneAndFirstCookieIsTwo() {
        var w = DMACookieWatermark()
        #expect(w.used == .initial && w.last == .initial)
        #expect(w.assign() == DMACookie(2))
        #expect(w.assign() == DMACookie(3))
        #expect(w.used == DMACookie(3))
    }

    @Test func nextWrapsFromMaxToOneNeverZeroOrNegative() {
        #expect(DMACookie(.max).next == DMACookie(1))
        #expect(DMACookie(.max - 1).next == DMACookie(.max))
        #expect(DMACookie(1).next == DMACookie(2))
        // Out-of-range values (an error cookie in `used`) still yield a valid cookie.
        #expect(DMACookie(0).next == DMACookie(1))
        #expect(DMACookie(-5).next == DMACookie(1))
        var w = DMACookieWatermark(used: DMACookie(.max - 2), last: DMACookie(.max - 2))
        let cookies = (0..<5).map { _ in w.assign().rawValue }
        #expect(cookies == [.max - 1, .max, 1, 2, 3])
        #expect(cookies.allSatisfy { $0 >= 1 })
    }

    @Test func validityAndFailureCookies() {
        #expect(DMACookie(1).isValid)
        #expect(!DMACookie(0).isValid)
        #expect(!DMACookie(-1).isValid)
        #expect(DMACookie.failure(16).rawValue == -16)
        #expect(DMACookie.failure(-16).rawValue == -16)
        #expect(DMACookie.failure(0).rawValue < 0)
    }

    @Test(arguments: [
        // (last, used, cookie, complete) — A.4a examples.
        (Int32(1), Int32(1), Int32(1), true), (1, 1, 2, true), (1, 1, 5000, true),  // never handed out → COMPLETE [K]
        (5, 10, 5, true), (5, 10, 4, true), (5, 10, 6, false), (5, 10, 10, false), (5, 10, 11, true),
        // Wrapped window: last = .max, used = 3 (scenario 4).
        (Int32.max, 3, 1, false), (Int32.max, 3, 3, false), (Int32.max, 3, Int32.max, true),
        (Int32.max, 3, 100, true), (Int32.max, 3, 4, true),
        // Wrapped window: last = .max - 1, used = 2.
        (Int32.max - 1, 2, Int32.max, false), (Int32.max - 1, 2, Int32.max - 1, true), (Int32.max - 1, 2, 2, false),
        (Int32.max - 1, 2, 3, true),
    ])
    func watermarkFormula(last: Int32, used: Int32, cookie: Int32, complete: Bool) {
        let w = DMACookieWatermark(used: DMACookie(used), last: DMACookie(last))
        #expect(w.isComplete(DMACookie(cookie)) == complete)
        #expect(DMACookieWatermark.isComplete(DMACookie(cookie), last: DMACookie(last), used: DMACookie(used)) == complete)
    }

    @Test func watermarkFormulaMatchesTheKernelDefinition() {
        // The kernel's dma_async_is_complete, written out independently.
        func kernel(_ c: Int32, _ last: Int32, _ used: Int32) -> Bool {
            if last <= used { return c <= last || c > used }
            return c <= last && c > used
        }
        var rng = SystemRandomNumberGenerator()
        var mismatches = 0
        for _ in 0..<10_000 {
            let l = Int32.random(in: 1...Int32.max, using: &rng)
            let u = Bool.random(using: &rng) ? Int32.random(in: 1...Int32.max, using: &rng) : l &+ Int32.random(in: -8...8, using: &rng)
            let c = Bool.random(using: &rng) ? Int32.random(in: 1...Int32.max, using: &rng) : u &+ Int32.random(in: -8...8, using: &rng)
            if DMACookieWatermark.isComplete(DMACookie(c), last: DMACookie(l), used: DMACookie(u)) != kernel(c, l, u) {
                mismatches += 1
            }
        }
        #expect(mismatches == 0)
    }

    @Test(arguments: [
        (Int32(1), Int32(1)), (2, 1), (.max, 1), (1, .max), (.max, .max), (-1, 7), (0, -5), (Int32.min, Int32.max),
    ])
    func packedRoundTrip(used: Int32, last: Int32) {
        let w = DMACookieWatermark(used: DMACookie(used), last: DMACookie(last))
        let p = w.packed
        #expect(UInt32(truncatingIfNeeded: p >> 32) == UInt32(bitPattern: used))
        #expect(UInt32(truncatingIfNeeded: p) == UInt32(bitPattern: last))
        #expect(DMACookieWatermark(packed: p) == w)
    }
}
