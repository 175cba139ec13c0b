// dmabench — HarnessTests
//
// The harness's client loop and terminate workload driven against the deterministic double:
// no threads, no timing assertions. The client's wait loop pumps `completeAll()`.

import DMAEngine
import DMAEngineEmbedded
import Testing

@testable import Harness

@Suite("Workloads against the embedded double")
struct EmbeddedWorkloadTests {
    func client(size: Int, batch: Int, depth: Int, descriptors: Int, warmup: Int, verify: Bool = true) throws -> (EmbeddedChannel, ClosedLoopClient) {
        let ch = EmbeddedChannel(options: DMAChannelOptions(poolSize: 2 * depth + 8))
        let spec = WorkloadSpec(
            size: size, batch: batch, depth: depth, durationNanoseconds: 0, warmupDescriptors: warmup, verify: verify,
            recordLatency: true, maxDescriptors: descriptors)
        let c = try ClosedLoopClient(channel: ch, spec: spec)
        c.pump = { _ = ch.completeAll() }
        return (ch, c)
    }

    @Test(arguments: [(64, 1, 1), (64, 32, 256), (4096, 4, 16), (100, 3, 7)])
    func runsExactlyTheRequestedDescriptorsAndCountsThemInTheHistogram(_ p: (Int, Int, Int)) throws {
        let (ch, c) = try client(size: p.0, batch: p.1, depth: p.2, descriptors: 5_000, warmup: 300)
        let s = try c.run()
        #expect(s.descriptors == 5_000)
        #expect(Int(c.histogram.pointee.totalCount) == s.descriptors, "the histogram holds exactly the measured descriptors")
        #expect(s.errors == 0 && s.verifyFailures == 0 && s.outOfOrder == 0)
        // Cookies: 300 warm-up + 5 000 measured, first cookie 2.
        #expect(ch.debugWatermark().used.rawValue == 2 + 5_300 - 1)
        #expect(try ch.finish().isClean)
    }

    @Test(arguments: [(64, 32, 256), (100, 3, 7)])
    func aSampledRunStampsEverySixteenthDescriptorAndStillCountsThemAll(_ p: (Int, Int, Int)) throws {
        let ch = EmbeddedChannel(options: DMAChannelOptions(poolSize: 2 * p.2 + 8))
        let spec = WorkloadSpec(
            size: p.0, batch: p.1, depth: p.2, durationNanoseconds: 0, warmupDescriptors: 300,
            recordLatency: true, maxDescriptors: 5_000, latencySampleEvery: 16)
        let c = try ClosedLoopClient(channel: ch, spec: spec)
        c.pump = { _ = ch.completeAll() }
        let first = try c.run()
        #expect(first.descriptors == 5_000, "the window still spans every measured descriptor")
        #expect(first.elapsedNanoseconds > 0)
        // Descriptors 300..<5300 are measured; those whose index is a multiple of 16 are stamped.
        #expect(Int(c.histogram.pointee.totalCount) == (300..<5_300).filter { $0 % 16 == 0 }.count)
        // A second run continues the count (index 5300 on): the sample stays aligned.
        c.resetHistogram()
        let second = try c.run()
        #expect(second.descriptors == 5_000)
        #expect(Int(c.histogram.pointee.totalCount) == (5_600..<10_600).filter { $0 % 16 == 0 }.count)
        #expect(first.errors == 0 && second.outOfOrder == 0 && second.verifyFailures == 0)
        #expect(try ch.finish().isClean)
    }

    @Test func batchIsTheIssueGranularity() throws {
        // With depth 32 and batch 8 the double never holds more than 8 submitted-but-unissued
        // descriptors: check through the pump.
        let ch = EmbeddedChannel(options: DMAChannelOptions(poolSize: 128))
        let spec = WorkloadSpec(size: 64, batch: 8, depth: 32, durationNanoseconds: 0, warmupDescriptors: 0, maxDescriptors: 1_000)
        let c = try ClosedLoopClient(channel: ch, spec: spec)
        var maxPending = 0
        c.pump = {
            maxPending = max(maxPending, ch.pendingCount)
            _ = ch.completeAll()
        }
        let s = try c.run()
        #expect(s.descriptors == 1_000)
        #expect(maxPending <= 8)
    }

    @Test func injectedFaultsAreCountedAsErrors() throws {
        let ch = EmbeddedChannel(options: DMAChannelOptions(poolSize: 64))
        let spec = WorkloadSpec(size: 64, batch: 1, depth: 4, durationNanoseconds: 0, warmupDescriptors: 0, maxDescriptors: 1_000, faultEvery: 10)
        let c = try ClosedLoopClient(channel: ch, spec: spec)
        c.pump = { _ = ch.completeAll() }
        let s = try c.run()
        #expect(s.descriptors == 1_000)
        #expect(s.errors == 100, "every 10th of 1 000 descriptors carried a read fault")
        #expect(s.verifyFailures == 0, "faulted transfers are not verified as copies")
    }

    @Test func submitFailureEndsTheRunWithAnError() throws {
        let ch = EmbeddedChannel(options: DMAChannelOptions(poolSize: 64))
        let spec = WorkloadSpec(size: 64, batch: 1, depth: 1, durationNanoseconds: 0, warmupDescriptors: 0, maxDescriptors: 10)
        let c = try ClosedLoopClient(channel: ch, spec: spec)
        c.pump = { _ = ch.completeAll() }
        ch.debugFailNextSubmits(1)
        #expect(throws: WorkloadError.self) { try c.run() }
    }

    @Test func verificationCatchesACorruptedCopy() throws {
        let (ch, c) = try client(size: 256, batch: 1, depth: 1, descriptors: 4_097, warmup: 0)
        // Corrupt the source after the fact is not possible mid-run; instead corrupt the
        // destination of slot 0 after completion, before the final whole-slot check.
        c.pump = {
            _ = ch.completeAll()
        }
        let s = try c.run()
        #expect(s.verifyFailures == 0)
        // Now scribble on the destination and run again: the end-of-run check must see it.
        c.pump = {
            _ = ch.completeAll()
            c.debugCorruptDestination(slot: 0)
        }
        let s2 = try c.run()
        #expect(s2.verifyFailures > 0)
    }

    @Test func terminateWorkloadCountsCompletedAndAborted() throws {
        let ch = EmbeddedChannel(options: DMAChannelOptions(poolSize: 8192))
        let t = try TerminateRunner(channel: ch, size: 4096, maxInFlight: 256)
        for n in [0, 1, 16, 256] {
            // Nothing completes on the double unless driven, so every descriptor is aborted.
            let s = try t.measure(inFlight: n, seedRaceIterations: 0)
            #expect(s.completed == 0)
            #expect(s.aborted == n)
        }
        #expect(try ch.finish().isClean)
    }
}

@Suite("Stall detection")
struct StallTests {
    @Test func aStalledEngineTimesOutTerminatesAndNeverHangs() throws {
        // The double never completes anything unless pumped; the pump here does nothing.
        let ch = EmbeddedChannel(options: DMAChannelOptions(poolSize: 64))
        var spec = WorkloadSpec(size: 64, batch: 4, depth: 8, durationNanoseconds: 0, warmupDescriptors: 0, maxDescriptors: 100)
        spec.stallTimeoutNanoseconds = 200_000_000
        let c = try ClosedLoopClient(channel: ch, spec: spec)
        c.pump = {}
        do {
            _ = try c.run()
            Issue.record("a stalled run returned normally")
        } catch let e as WorkloadError {
            #expect(e.description.contains("stalled: 8 descriptors in flight"), "\(e)")
            #expect(e.description.contains("terminated"))
        }
        // terminateSync ran: nothing is left in flight, and completing now delivers nothing.
        #expect(ch.completeAll().isEmpty)
        #expect(try ch.finish().isClean)
    }
}
