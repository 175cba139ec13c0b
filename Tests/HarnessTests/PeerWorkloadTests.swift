// dmabench — HarnessTests
//
// The peers' workload variants against real backends (cpu and ring, from the registry):
// dmatest's random offsets with its verification, a deliberately overrunning backend,
// polled completion, cold caches, and the mode ratios. Counts only, never timings.

import DMABackends
import DMAEngine
import Foundation
import Platform
import Testing

@testable import Harness

@Suite("The peers' workloads")
struct PeerWorkloadTests {
    static func channel(_ name: String, depth: Int = 64) throws -> any DMAChannel {
        let e = try #require(BackendRegistry.all.first { $0.name == name })
        return try e.make(DMAChannelOptions(poolSize: 4 * depth + 64, coherentPoolBytes: 64 << 20))
    }

    static func spec(size: Int = 4096, depth: Int = 64, descriptors: Int = 3_000) -> WorkloadSpec {
        var s = WorkloadSpec(
            size: size, batch: 8, depth: depth, durationNanoseconds: 0, warmupDescriptors: 200, verify: true,
            recordLatency: true, maxDescriptors: descriptors)
        s.verifySampleEvery = 16
        return s
    }

    /// 3 000 descriptors of up to 4 KiB at random offsets, aligned to 8, one in 16 checked whole.
    static func runRandom(on ch: any DMAChannel) throws -> (ClosedLoopClient, WorkloadSample) {
        var spec = Self.spec()
        spec.offsets = .random
        spec.alignment = 8
        let c = try ClosedLoopClient(channel: ch, spec: spec)
        return (c, try c.run())
    }

    @Test("random offsets: every copy matches, the bytes around it are intact, lengths and offsets are aligned", arguments: ["cpu", "ring"])
    func randomOffsetsVerifyClean(_ backend: String) throws {
        let ch = try Self.channel(backend)
        defer { try? ch.release() }
        let (c, s) = try Self.runRandom(on: ch)
        let v = try #require(s.verification)
        #expect(s.descriptors == 3_000 && s.errors == 0)
        #expect(v.checked >= 3_200 / 16, "one descriptor in 16 is checked whole, plus every slot at the end")
        #expect(v.mismatches == 0 && v.first.isEmpty, "\(v.first)")
        #expect(s.verifyFailures == 0)
        // Uniform lengths in [8, 4096] average about 2 KiB; fixed copies would average 4096.
        #expect(s.meanLength > 1_500 && s.meanLength < 2_600, "mean length \(s.meanLength)")
        // Each slot's latest copy lies inside its slot, on 8-byte boundaries.
        for slot in 0..<c.slots.count {
            let copy = c.state.pointee.copies[slot]
            #expect(copy.length >= 8 && copy.length <= 4096 && copy.length % 8 == 0)
            #expect(copy.srcOffset % 8 == 0 && copy.dstOffset % 8 == 0)
            #expect(Int(copy.srcOffset + copy.length) <= 4096 && Int(copy.dstOffset + copy.length) <= 4096)
        }
    }

    @Test("a backend that copies one byte too many is caught by the guard check, not as a source or copy mismatch", arguments: ["cpu", "ring"])
    func overrunIsCaught(_ backend: String) throws {
        let ch = OverrunChannel(try Self.channel(backend), overrun: 1)
        defer { try? ch.release() }
        let s = try Self.runRandom(on: ch).1
        let v = try #require(s.verification)
        #expect(v.guardOverwritten > 0, "every sampled descriptor wrote one guard byte")
        #expect(v.srcMismatch == 0 && v.dstMismatch == 0)
        #expect(s.verifyFailures > 0)
        #expect(v.first.first?.contains("overwritten after the copy! Expected 0xa5") == true, "\(v.first)")
    }

    @Test("the verifier counts each kind: a changed source byte, a wrong copied byte, a byte written before the copy")
    func verifierKinds() throws {
        let stride = 128, size = 64
        let src = UnsafeMutableRawPointer.allocate(byteCount: stride, alignment: 64)
        let dst = UnsafeMutableRawPointer.allocate(byteCount: stride, alignment: 64)
        defer { src.deallocate(); dst.deallocate() }
        memset(src, Int32(VerifierState.sourceFill), stride)
        Pattern.fill(src, slot: 0, count: size)
        memset(dst, Int32(VerifierState.guardByte), stride)
        let copy = SlotCopy(srcOffset: 8, dstOffset: 16, length: 32, guarded: true)
        memcpy(dst + 16, src + 8, 32)
        var v = VerifierState()
        defer { v.free() }
        let clean = v.verify(descriptor: 0, slot: 0, copy: copy, src: src, dst: dst, stride: stride, size: size)
        #expect(clean)
        src.storeBytes(of: 0, toByteOffset: 100, as: UInt8.self)  // in the source's fill
        dst.storeBytes(of: 0, toByteOffset: 20, as: UInt8.self)  // inside the copy
        dst.storeBytes(of: 0, toByteOffset: 3, as: UInt8.self)  // before the copy
        let broken = v.verify(descriptor: 1, slot: 0, copy: copy, src: src, dst: dst, stride: stride, size: size)
        #expect(!broken)
        let sum = v.summary(sampleEvery: 1)
        #expect(sum.srcMismatch == 1 && sum.dstMismatch == 1 && sum.guardOverwritten == 1 && sum.checked == 2)
        #expect(sum.first.contains { $0.contains("srcbuf[0x64] overwritten") })
        #expect(sum.first.contains { $0.contains("dstbuf[0x3] overwritten before the copy") })
        #expect(v.badDescriptors == 1)
    }

    @Test("polled completion: descriptors are prepared without .interrupt or a callback, and every one is counted and stamped in order", arguments: ["cpu", "ring", "locked"])
    func polledCompletion(_ backend: String) throws {
        let ch = OverrunChannel(try Self.channel(backend), overrun: 0)
        defer { try? ch.release() }
        var spec = Self.spec(size: 256)
        spec.completion = .polled
        let c = try ClosedLoopClient(channel: ch, spec: spec)
        let s = try c.run()
        #expect(s.descriptors == 3_000 && s.errors == 0 && s.outOfOrder == 0 && s.verifyFailures == 0)
        #expect(c.histogram.pointee.totalCount == 3_000, "every measured descriptor has a latency")
        // The client counted them itself: the channel's watermark says they all completed.
        let wm = ch.debugWatermark()
        #expect(wm.last == wm.used)
        #expect(ch.preparedWithInterrupt.load(ordering: .relaxed) == 0 && ch.preparedWithCallback.load(ordering: .relaxed) == 0)
        #expect(ch.preparedPlain.load(ordering: .relaxed) == 3_200, "warm-up and measured descriptors")
    }

    @Test("cold caches by flushing verify clean and report the flush cost", .enabled(if: CacheControl.instruction != nil, "this CPU has no cache-flush instruction"))
    func coldByFlush() throws {
        let ch = try Self.channel("cpu")
        defer { try? ch.release() }
        var spec = Self.spec()
        spec.cache = .cold
        spec.cacheMethod = .flush
        let s = try ClosedLoopClient(channel: ch, spec: spec).run()
        #expect(s.errors == 0 && s.verifyFailures == 0 && s.descriptors == 3_000)
        #expect((s.flushNanosecondsPerDescriptor ?? 0) > 0)
    }

    @Test("cold caches by footprint run clean and add slots up to 4x the last-level cache, up to what a callback parameter holds")
    func coldByFootprint() throws {
        let ch = try Self.channel("cpu", depth: 256)
        defer { try? ch.release() }
        var spec = Self.spec(size: 64)
        spec.cache = .cold
        let c = try ClosedLoopClient(channel: ch, spec: spec)
        let s = try c.run()
        #expect(s.errors == 0 && s.verifyFailures == 0 && s.descriptors == 3_000 && s.flushNanosecondsPerDescriptor == nil)
        if let llc = CacheControl.lastLevelBytes(CacheControl.levels()) {
            #expect(2 * c.slots.count * c.slots.stride >= min(4 * llc, 1 << 30), "\(c.slots)")
        }
        spec.size = 4096
        spec.cacheMethod = .footprint
        let ring = ClosedLoopClient.layout(spec, lastLevelCache: 8 << 20)
        #expect(ring.slots == 4096 && 2 * ring.slots * ring.stride >= 32 << 20, "\(ring)")
        spec.cache = .hot
        #expect(ClosedLoopClient.layout(spec, lastLevelCache: 8 << 20).slots == 64)
        spec.offsets = .random
        #expect(ClosedLoopClient.layout(spec, lastLevelCache: nil).stride == 4096 + 64, "random offsets add a guard line")
    }

    @Test("sysfs cache sizes parse as the kernel writes them")
    func cacheSizes() {
        #expect(CacheControl.parseSize("32K") == 32 << 10)
        #expect(CacheControl.parseSize("8192K") == 8 << 20)
        #expect(CacheControl.parseSize("1M") == 1 << 20)
        #expect(CacheControl.parseSize("x") == nil)
        let levels = [
            CacheControl.Level(level: 1, type: "Data", sizeBytes: 1, sharedWith: "0"),
            CacheControl.Level(level: 3, type: "Unified", sizeBytes: 3, sharedWith: "0-1"),
            CacheControl.Level(level: 4, type: "Instruction", sizeBytes: 4, sharedWith: "0"),
        ]
        #expect(CacheControl.lastLevelBytes(levels) == 3)
    }

    @Test("the sweep crosses completion modes and cache states; terminate points have none")
    func sweepModes() {
        var plan = SweepPlan(backends: ["cpu"], workloads: [.throughput, .terminate], sizes: [4096], batches: [32], depths: [256])
        plan.completions = [.callback, .polled]
        plan.caches = [.hot, .cold]
        plan.offsets = .random
        plan.alignment = 8
        let pts = plan.points()
        let tp = pts.filter { $0.workload == .throughput }
        #expect(tp.count == 4)
        #expect(Set(tp.map { "\($0.parameters.completion!) \($0.parameters.cache!)" }).count == 4)
        #expect(tp.allSatisfy { $0.parameters.offsets == .random && $0.parameters.alignment == 8 })
        #expect(pts.filter { $0.workload == .terminate }.allSatisfy { $0.parameters.completion == nil && $0.parameters.cache == nil })
    }

    @Test("polledVsCallback and coldVsHot divide by the twin point of the same backend")
    func modeRatios() {
        func point(_ completion: CompletionMode, _ cache: CacheMode, _ dps: Double) -> ResultPoint {
            var m = PointMetrics()
            m.descriptorsPerSecond = MetricSummary(samples: [dps])
            let p = PointParameters(size: 4096, batch: 32, depth: 256, channels: 1, offsets: .fixed, completion: completion, cache: cache)
            return ResultPoint(backend: "ring", workload: "throughput", parameters: p, placement: PlacementRecord(requested: .init(), verified: .init()), metrics: m)
        }
        var doc = ResultDocument(
            context: ResultContext(date: "", host: "h", cpu: "c", cores: 2, kernel: "k", commit: "x", dirty: false, governor: nil, numaNodes: [0], commandLine: [], toolVersion: "t"),
            points: [point(.callback, .hot, 100), point(.polled, .hot, 150), point(.callback, .cold, 50), point(.polled, .cold, 60)])
        doc.annotateModeRatios()
        #expect(doc.points[0].metrics.polledVsCallback == nil && doc.points[0].metrics.coldVsHot == nil)
        #expect(doc.points[1].metrics.polledVsCallback == 1.5)
        #expect(doc.points[2].metrics.coldVsHot == 0.5)
        #expect(doc.points[3].metrics.polledVsCallback == 1.2 && doc.points[3].metrics.coldVsHot == 0.4)
        let table = Formats.table(doc)
        #expect(table.contains("vs cb") && table.contains("vs hot") && table.contains("1.50x") && table.contains("0.40x"))
        #expect(!table.contains("VERIFICATION FAILED"))
        doc.points[1].metrics.verification = VerificationSummary(sampleEvery: 4096, checked: 9, guardOverwritten: 2, first: ["descriptor 4096 slot 0: dstbuf[0xf68] overwritten after the copy! Expected 0xa5, got 0xc7"])
        let failed = Formats.table(doc)
        #expect(failed.contains("VERIFICATION FAILED: ring throughput size=4K b=32 d=256 polled: 0 source, 0 destination and 2 guard bytes wrong in 9 descriptors checked"))
        #expect(failed.contains("dstbuf[0xf68]"))
        let csv = Formats.csv(doc).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let col = { (name: String) in csv[0].firstIndex(of: name)! }
        #expect(csv[2][col("completion")] == "polled" && csv[2][col("polledVsCallback")] == "1.5" && csv[2][col("guardOverwritten")] == "2")
        #expect(csv[3][col("cache")] == "cold" && csv[3][col("coldVsHot")] == "0.5")
    }

    @Test("parameters from before the modes existed decode as nil, and new ones always write every key")
    func parametersCoding() throws {
        let old = #"{"size":64,"batch":1,"depth":1,"channels":1,"rate":null,"inFlight":null}"#
        let p = try JSONDecoder().decode(PointParameters.self, from: Data(old.utf8))
        #expect(p.offsets == nil && p.completion == nil && p.cache == nil && p.alignment == nil)
        let q = PointParameters(size: 64, batch: 1, depth: 1, channels: 1, offsets: .random, alignment: 8, completion: .polled, cache: .cold)
        let text = String(decoding: try JSONEncoder().encode(q), as: UTF8.self)
        for k in [#""offsets":"random""#, #""alignment":8"#, #""completion":"polled""#, #""cache":"cold""#] { #expect(text.contains(k), "\(text)") }
        #expect(try JSONDecoder().decode(PointParameters.self, from: Data(text.utf8)) == q)
    }
}

@Suite("The callback parameter")
struct CallbackParameterTests {
    @Test("a page-aligned state address and any slot below 2^28 survive the round trip", arguments: [0, 1, 0xFFFF, 0x1_0000, 262_143, (1 << 28) - 1])
    func roundTrip(_ slot: Int) {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<CallbackState>.stride, alignment: CallbackParameter.stateAlignment)
        defer { raw.deallocate() }
        let bits = UInt64(UInt(bitPattern: raw))
        let p = CallbackParameter.make(bits, slot: slot)
        #expect(CallbackParameter.slot(p) == slot)
        #expect(UnsafeMutableRawPointer(CallbackParameter.state(p)) == raw)
    }
}
