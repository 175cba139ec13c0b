// dmabench — DMAEngineTestSupport
//
// Scenario 34, the dmatest soak (docs/contract.md appendix C), and the dmatest summary line
// (C.4) that it and `dmabench conformance` print.

#if os(Linux)
import DMAEngine
import Platform
import Synchronization

/// One dmatest summary line (docs/contract.md C.4): tests, failures, iops, KB/s and the return
/// code, per thread. The corresponding kernel output is dmatest's
/// `"%s: summary %u tests, %u failures %llu.%02u iops %llu KB/s (%d)"`.
public struct DMATestSummary: Sendable, Hashable, CustomStringConvertible {
    /// The thread's name, as dmatest prints `current->comm` (e.g. "dma0chan0-copy0").
    public var thread: String
    public var tests: Int
    public var failures: Int
    /// Transfers per second, excluding the time spent filling and comparing buffers.
    public var iops: Double
    /// Kilobytes (1024 bytes) per second, excluding fill and compare time.
    public var kilobytesPerSecond: Double
    /// 0, or a negative errno (dmatest's `ret`).
    public var result: Int32

    public init(thread: String, tests: Int, failures: Int, iops: Double, kilobytesPerSecond: Double, result: Int32) {
        self.thread = thread
        self.tests = tests
        self.failures = failures
        self.iops = iops
        self.kilobytesPerSecond = kilobytesPerSecond
        self.result = result
    }

    /// Builds a summary from counts and the measured time (fill and compare excluded).
    public init(thread: String, tests: Int, failures: Int, bytes: Int, nanoseconds: UInt64, result: Int32) {
        let seconds = max(Double(nanoseconds), 1) / 1e9
        self.init(
            thread: thread, tests: tests, failures: failures, iops: Double(tests) / seconds,
            kilobytesPerSecond: Double(bytes) / 1024 / seconds, result: result)
    }

    /// The line, formatted as dmatest does: two decimals of iops, whole KB/s.
    public var line: String {
        let hundredths = Int((iops * 100).rounded())
        let frac = hundredths % 100
        return "\(thread): summary \(tests) tests, \(failures) failures \(hundredths / 100).\(frac < 10 ? "0" : "")\(frac) iops \(Int(kilobytesPerSecond.rounded(.down))) KB/s (\(result))"
    }

    public var description: String { line }
}

extension Scenarios {
    static func dmatestSoak(_ ctx: ScenarioContext) throws {
        let threads = 4
        let bufSize = 16 * 1024  // dmatest test_buf_size
        let align = 1 << 3  // dmatest alignment=3
        let iterations = ctx.config.soakIterations
        let duration = ctx.config.soakDuration
        let rig = try ctx.makeRig()
        var buffers: [(GuardedBuffer, GuardedBuffer)] = []
        for _ in 0..<threads {
            buffers.append((try rig.allocator.allocate(bufSize, label: "soak source"), try rig.allocator.allocate(bufSize, label: "soak destination")))
        }
        let summaries = LockedValue<[DMATestSummary]>([])
        let timeouts = Atomic<Int>(0)
        let seeds = (0..<threads).map { _ in ctx.rng.next() }
        let timeoutNs = Int64(3_000_000_000)  // dmatest timeout = 3000 ms
        let handDriven = ctx.subject.isHandDriven
        ctx.phase("dmatest soak: \(threads) threads × \(duration.map { "\($0) s" } ?? "\(iterations) iterations")")
        let buffersCopy = buffers
        ctx.onThreads(threads, name: "dmatest") { k in
            var rng = ConformanceRandom(seed: seeds[k])
            let (src, dst) = buffersCopy[k]
            let done = ParkingEvent()
            let result = LockedValue<DMAResult?>(nil)
            var tests = 0, failures = 0, bytes = 0, ret: Int32 = 0
            var measured: UInt64 = 0
            let start = MonotonicClock.now()
            var reported = 0
            while true {
                if let duration {
                    if Double(MonotonicClock.now() &- start) / 1e9 >= duration { break }
                } else if tests >= iterations {
                    break
                }
                if ctx.abandoned.load(ordering: .relaxed) { break }
                // Random length and offsets, aligned (dmatest: dmatest_random, alignment).
                let len = max(align, Int.random(in: 1...bufSize, using: &rng) / align * align)
                let srcOff = Int.random(in: 0...(bufSize - len), using: &rng) / align * align
                let dstOff = Int.random(in: 0...(bufSize - len), using: &rng) / align * align
                DMATestPattern.fillSource(src.bytes, region: srcOff..<(srcOff + len))
                DMATestPattern.fillDestination(dst.bytes, region: dstOff..<(dstOff + len))
                tests += 1
                let t0 = MonotonicClock.now()
                guard let d = rig.channel.prepareMemcpy(to: dst.base + dstOff, from: UnsafeRawPointer(src.base + srcOff), length: len, flags: .default) else {
                    failures += 1
                    if reported < 3 { ctx.fail("dmatest thread \(k), test \(tests): prep error"); reported += 1 }
                    continue
                }
                result.withLock { $0 = nil }
                let cb = DMACallback.result { c in
                    result.withLock { $0 = c.result }
                    done.signal()
                }
                if (try? rig.channel.setCallback(cb, for: d)) == nil {
                    failures += 1
                    continue
                }
                let cookie = rig.channel.submit(d)
                guard cookie.isValid else {
                    failures += 1
                    if reported < 3 { ctx.fail("dmatest thread \(k), test \(tests): submit error \(cookie)"); reported += 1 }
                    continue
                }
                rig.channel.issuePending()
                var completed: Bool
                if handDriven {
                    let limit = MonotonicClock.now() &+ UInt64(timeoutNs)
                    repeat {
                        ctx.drive(rig)
                        completed = done.wait(spinNanoseconds: 0, timeoutNanoseconds: 1_000_000)
                    } while !completed && MonotonicClock.now() < limit
                } else {
                    completed = done.wait(spinNanoseconds: 20_000, timeoutNanoseconds: timeoutNs)
                }
                measured &+= MonotonicClock.now() &- t0
                ctx.tick()
                if !completed {
                    failures += 1
                    timeouts.add(1, ordering: .relaxed)
                    ret = -110  // -ETIMEDOUT
                    ctx.fail("dmatest thread \(k), test \(tests): test timed out (cookie \(cookie))")
                    break
                }
                let st = rig.channel.status(of: cookie).0
                if st != .complete && !(rig.caps.completionNoOrder && st == .outOfOrder) {
                    failures += 1
                    if reported < 3 { ctx.fail("dmatest thread \(k), test \(tests): completion busy status \(st)"); reported += 1 }
                    continue
                }
                if let r = result.withLock({ $0 }), r.code != .noError {
                    failures += 1
                    if reported < 3 { ctx.fail("dmatest thread \(k), test \(tests): result \(r.code)"); reported += 1 }
                    continue
                }
                let mismatches = DMATestPattern.verifyCopy(
                    source: src.readOnlyBytes, sourceOffset: srcOff, destination: dst.readOnlyBytes,
                    destinationOffset: dstOff, length: len)
                if !mismatches.isEmpty {
                    failures += 1
                    if reported < 3 {
                        ctx.fail("dmatest thread \(k), test \(tests): data error (len \(len), src_off \(srcOff), dst_off \(dstOff)): " + mismatches.prefix(4).joined(separator: "; "))
                        reported += 1
                    }
                    continue
                }
                bytes += len
            }
            ctx.addBytes(bytes)
            let s = DMATestSummary(
                thread: "\(rig.channel.backendName)-copy\(k)", tests: tests, failures: failures, bytes: bytes,
                nanoseconds: measured, result: ret)
            summaries.withLock { $0.append(s) }
        }
        let all = summaries.withLock { $0 }.sorted { $0.thread < $1.thread }
        for s in all {
            ctx.note(s.line)
            if s.failures > 0 { ctx.fail("dmatest soak: \(s.line)") }
        }
        ctx.expectEqual(timeouts.load(ordering: .relaxed), 0, "dmatest soak timeouts")
        ctx.iterationsRun(all.reduce(0) { $0 + $1.tests })
    }
}
#endif
