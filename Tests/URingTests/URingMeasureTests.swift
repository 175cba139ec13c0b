// dmabench — URingTests
//
// A quick pool-backing and setup comparison, off by default (it is a measurement, not a
// test): DMABENCH_URING_MEASURE=1 swift test -c release --filter URingMeasure. It mirrors
// the anchor workload (docs/measurement-notes.md, "The anchor workload"): slots = depth, issuePending every `batch` submits,
// at most `depth` in flight, callbacks counted on the engine thread. Numbers from a shared,
// loaded machine are only comparable within one run.

import DMAEngine
import DMAEngineURing
import Glibc
import Platform
import Synchronization
import Testing

let measureEnabled = getenv("DMABENCH_URING_MEASURE") != nil

/// The completion counter the callback bumps; passed as the callback parameter so the
/// callback closure captures nothing (no allocation, no reference counting per descriptor).
final class Counter: @unchecked Sendable {
    let done = Atomic<Int>(0)
}

@Suite(.enabled(if: measureEnabled && uringAvailable, "set DMABENCH_URING_MEASURE=1 to measure (needs io_uring)"))
struct URingMeasure {
    static func run(setup: URingSetup, backing: URingPoolBacking, size: Int, batch: Int, depth: Int, ops: Int)
        throws -> (opsPerSecond: Double, cpuNsPerOp: Double)
    {
        let stride = (size + 63) / 64 * 64
        let ch = try URingChannel(
            options: DMAChannelOptions(poolSize: 2 * depth, coherentPoolBytes: depth * stride + (1 << 20)),
            setup: setup, pool: backing)
        defer { try? ch.release() }
        let src = try ch.allocateCoherent(byteCount: depth * stride)
        for i in 0..<(depth * stride) { src.base.storeBytes(of: UInt8(truncatingIfNeeded: i &* 31 &+ 7), toByteOffset: i, as: UInt8.self) }
        let dst = try PageMemory.map(byteCount: depth * stride, prefault: true)
        defer { PageMemory.unmap(dst, byteCount: depth * stride) }
        let counter = Counter()
        let param = UInt64(UInt(bitPattern: Unmanaged.passUnretained(counter).toOpaque()))
        let cb = DMACallback.plain(parameter: param) { p in
            let c = Unmanaged<Counter>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(p))!).takeUnretainedValue()
            c.done.wrappingAdd(1, ordering: .releasing)
        }
        let warmup = ops / 10
        let total = ops + warmup
        var submitted = 0, issued = 0
        var t0: UInt64 = 0, c0: UInt64 = 0
        while true {
            // Ordering: acquire; pairs with the release increment in the callback.
            let d = counter.done.load(ordering: .acquiring)
            if d >= total { break }
            if t0 == 0 && d >= warmup {
                t0 = MonotonicClock.now()
                c0 = MonotonicClock.processCPUTime()
            }
            var progressed = false
            while submitted < total && submitted - d < depth {
                let slot = submitted % depth
                let desc = ch.prepareMemcpy(to: dst + slot * stride, from: src.base + slot * stride, length: size,
                                            flags: .default, callback: cb)!
                _ = ch.submit(desc)
                submitted += 1
                progressed = true
                if submitted - issued == batch {
                    ch.issuePending()
                    issued = submitted
                }
            }
            if submitted > issued && (submitted == total || issued == d) {
                ch.issuePending()
                issued = submitted
            }
            if !progressed { sched_yield() }
        }
        let t1 = MonotonicClock.now(), c1 = MonotonicClock.processCPUTime()
        let secs = Double(t1 - t0) / 1e9
        #expect(memcmp(dst, src.base, depth * stride) == 0, "every slot holds a copy of its source")
        return (Double(ops) / secs, Double(c1 - c0) / Double(ops))
    }

    @Test func compareBackingsAndSetups() throws {
        let ops = Int(getenv("DMABENCH_URING_OPS").map { String(cString: $0) } ?? "") ?? 100_000
        let cases: [(URingSetup, URingPoolBacking)] = [
            (.plain, .memfd), (.plain, .pageCacheFile), (.plain, .registeredFile(directory: "/var/tmp")),
            (.deferTaskrun, .memfd), (.deferTaskrun, .pageCacheFile), (.sqpoll, .memfd), (.sqpoll, .pageCacheFile),
        ]
        for rep in 0..<3 {
            for size in [64, 4096] {
                for (setup, backing) in cases {
                    let r = try Self.run(setup: setup, backing: backing, size: size, batch: 32, depth: 256, ops: ops)
                    print("uring-measure rep=\(rep) setup=\(setup.rawValue) pool=\(backing) size=\(size) batch=32 depth=256 "
                          + "kops=\(Int(r.opsPerSecond / 1e3)) cpu_ns_per_op=\(Int(r.cpuNsPerOp))")
                    #expect(r.opsPerSecond > 0)
                }
            }
        }
    }
}
