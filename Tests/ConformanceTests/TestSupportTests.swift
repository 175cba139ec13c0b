// dmabench — ConformanceTests
//
// The suite's own tools: dmatest patterns (docs/contract.md C.3), the summary line (C.4), and
// the guarded allocator with its access monitor. A detector that cannot detect is useless,
// so each check is shown to fire.

import DMAEngine
import DMAEngineEmbedded
import DMAEngineTestSupport
import Testing

struct DMATestPatternTests {
    @Test func correctCopyVerifiesAndEveryKindOfDamageIsReported() {
        let n = 256
        var src = [UInt8](repeating: 0, count: n), dst = [UInt8](repeating: 0, count: n)
        let (so, d0, len) = (10, 40, 100)
        src.withUnsafeMutableBytes { DMATestPattern.fillSource($0, region: so..<(so + len)) }
        dst.withUnsafeMutableBytes { DMATestPattern.fillDestination($0, region: d0..<(d0 + len)) }
        // Bits as in dmatest: source 0x80, copy 0x40, overwrite 0x20, inverted counter.
        #expect(src[0] == 0x80 | 0x1f)
        #expect(src[so] == 0x80 | 0x40 | UInt8(~so & 0x1f))
        #expect(dst[d0] == 0x20 | UInt8(~d0 & 0x1f))
        func verify() -> [String] {
            src.withUnsafeBytes { s in
                dst.withUnsafeBytes { d in
                    DMATestPattern.verifyCopy(source: s, sourceOffset: so, destination: d, destinationOffset: d0, length: len)
                }
            }
        }
        let uncopied = verify()
        #expect(uncopied.count == 33, "an uncopied region mismatches everywhere: 32 lines and a count")
        #expect(uncopied.last == "\(len - 32) more mismatches suppressed")
        for i in 0..<len { dst[d0 + i] = src[so + i] }
        #expect(verify().isEmpty)
        dst[d0 - 1] ^= 0x01
        #expect(verify().first?.contains("outside the region") == true)
        dst[d0 - 1] ^= 0x01
        dst.swapAt(d0, d0 + 1)
        #expect(verify().first?.contains("copied byte wrong") == true, "swapped bytes are caught by the counter")
        dst.swapAt(d0, d0 + 1)
        src[0] ^= 0x80
        #expect(verify().first?.contains("source changed") == true)
    }

    @Test func atMost32MismatchesThenASuppressedCount() {
        let n = 100
        let dst = [UInt8](repeating: 0xEE, count: n)
        let lines = dst.withUnsafeBytes { DMATestPattern.verifyUntouchedDestination($0, region: 0..<10) }
        #expect(lines.count == 33)
        #expect(lines.last == "\(n - 32) more mismatches suppressed")
    }

    @Test func memsetCheck() {
        var dst = [UInt8](repeating: 0, count: 64)
        dst.withUnsafeMutableBytes { DMATestPattern.fillDestination($0, region: 8..<40) }
        for i in 8..<40 { dst[i] = 0x5A }
        #expect(dst.withUnsafeBytes { DMATestPattern.verifyFill($0, region: 8..<40, value: 0x5A) }.isEmpty)
        dst[20] = 0
        #expect(dst.withUnsafeBytes { DMATestPattern.verifyFill($0, region: 8..<40, value: 0x5A) }.count == 1)
    }
}

struct DMATestSummaryTests {
    @Test func lineHasDmatestsFields() {
        let s = DMATestSummary(thread: "dma0chan0-copy0", tests: 2000, failures: 0, iops: 1571.333, kilobytesPerSecond: 12618.9, result: 0)
        #expect(s.line == "dma0chan0-copy0: summary 2000 tests, 0 failures 1571.33 iops 12618 KB/s (0)")
        let t = DMATestSummary(thread: "t", tests: 10, failures: 1, bytes: 10 * 1024, nanoseconds: 2_000_000_000, result: -110)
        #expect(t.line == "t: summary 10 tests, 1 failures 5.00 iops 5 KB/s (-110)")
        #expect(t.iops == 5 && t.kilobytesPerSecond == 5)
    }

    @Test func summaryOfResults() {
        let r = [
            ScenarioResult(number: 1, name: "a", outcome: .passed, iterations: 1, duration: 0, bytesCopied: 0, notes: []),
            ScenarioResult(number: 2, name: "b", outcome: .failed(["x"]), iterations: 1, duration: 0, bytesCopied: 0, notes: []),
            ScenarioResult(number: 3, name: "c", outcome: .skipped("why"), iterations: 0, duration: 0, bytesCopied: 0, notes: []),
        ]
        #expect(conformanceSummary(r) == "3 scenarios: 1 passed, 1 failed (2), 1 skipped (3)")
    }

    @Test func unknownScenarioNumberIsAOneLineFailure() {
        let r = runConformanceScenario(99, subject: Subjects.embedded)
        #expect(r.failures == ["no scenario 99; valid numbers are 1...38"])
        #expect(ConformanceScenario.all.map(\.number) == Array(1...38))
    }
}

struct GuardedAllocatorTests {
    @Test func freedBufferIsPoisonedAndAnEngineAccessIsReported() throws {
        let ch = EmbeddedChannel()
        let allocator = GuardedAllocator(channel: ch, protectOnFree: false, quarantineLimit: 2)
        let src = try allocator.allocate(4096, label: "source")
        let dst = try allocator.allocate(4096, label: "destination")
        #expect(Int(bitPattern: dst.base) % 4096 == 0, "page-aligned")
        allocator.free(dst)
        #expect(dst.isFreed)
        #expect(dst.readOnlyBytes.allSatisfy { $0 == DMATestPattern.poison })
        #expect(allocator.freedBuffer(overlapping: UInt(bitPattern: dst.base) + 100, count: 8) === dst)
        #expect(allocator.freedBuffer(overlapping: UInt(bitPattern: src.base), count: 8) == nil)
        // A late engine write: the copy lands in the quarantined buffer and finish() sees it.
        let d = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 16, flags: .default))
        _ = ch.submitAndIssue(d)
        ch.completeAll()
        let problems = allocator.finish()
        #expect(problems.count == 1)
        #expect(problems.first?.contains("written after it was freed") == true)
        try ch.release()
    }

    @Test func quarantineRecyclesBuffersOfTheSameSize() throws {
        let ch = EmbeddedChannel()
        let allocator = GuardedAllocator(channel: ch, protectOnFree: true, quarantineLimit: 2)
        var bases: Set<UInt> = []
        for _ in 0..<20 {
            let b = try allocator.allocate(8192)
            bases.insert(UInt(bitPattern: b.base))
            b.bytes[0] = 1
            allocator.free(b)
        }
        #expect(bases.count <= 3, "freed buffers are reused once the quarantine is full")
        #expect(allocator.finish().isEmpty)
        try ch.release()
    }
}
