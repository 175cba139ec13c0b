// dmabench — DMAEngineTestSupport
//
// Scenarios 35–38 of docs/contract.md part B: scatter-gather copies (`prepareMemcpySG`).
// Every segment lives in a guarded buffer of its own, at an odd offset, so a walk that
// skips, repeats or overruns a segment, or touches one after synchronize, is seen.

#if os(Linux)
import DMAEngine
import Platform
import Synchronization

/// Two segment lists over guarded buffers: sources filled with the source pattern,
/// destinations with the destination pattern, each at `offset` inside a buffer with
/// `offset` bytes of slack on both sides.
final class SGTransfer: @unchecked Sendable {
    let sources: [GuardedBuffer]
    let destinations: [GuardedBuffer]
    let sourceLengths: [Int]
    let destinationLengths: [Int]
    let offset: Int
    var total: Int { sourceLengths.reduce(0, +) }

    init(_ rig: Rig, sources: [Int], destinations: [Int], offset: Int = 37) throws {
        precondition(sources.reduce(0, +) == destinations.reduce(0, +))
        self.sourceLengths = sources
        self.destinationLengths = destinations
        self.offset = offset
        self.sources = try sources.enumerated().map { k, n in try rig.allocator.allocate(n + 2 * offset, label: "source segment \(k)") }
        self.destinations = try destinations.enumerated().map { k, n in
            try rig.allocator.allocate(n + 2 * offset, label: "destination segment \(k)")
        }
        refill()
    }

    /// The source bytes are one pattern across all segments (segment k continues where k-1
    /// ended), so a piece copied to the wrong place shows.
    func refill() {
        var at = 0
        for (b, n) in zip(sources, sourceLengths) {
            b.bytes.initializeMemory(as: UInt8.self, repeating: 0xEE)
            for i in 0..<n { b.bytes[offset + i] = Self.sourceByte(at + i) }
            at += n
        }
        for b in destinations { b.bytes.initializeMemory(as: UInt8.self, repeating: 0x5C) }
    }

    static func sourceByte(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: (i &* 131) ^ (i >> 8) ^ 0x11) }

    var sourceSegments: [DMASegment] {
        zip(sources, sourceLengths).map { DMASegment(address: UnsafeRawPointer($0.base + offset), length: $1) }
    }
    var destinationSegments: [DMASegment] {
        zip(destinations, destinationLengths).map { DMASegment($0.base + offset, length: $1) }
    }

    /// Up to 8 lines naming the first wrong bytes: copied bytes that differ from the source
    /// stream, and slack bytes around a destination segment that were written.
    func verify() -> [String] {
        var bad: [String] = []
        var at = 0, wrong = 0
        for (k, (b, n)) in zip(destinations, destinationLengths).enumerated() {
            for i in 0..<(n + 2 * offset) {
                let inside = i >= offset && i < offset + n
                let want = inside ? Self.sourceByte(at + i - offset) : 0x5C
                let got = b.readOnlyBytes[i]
                if got != want {
                    wrong += 1
                    if bad.count < 8 {
                        bad.append(
                            "destination segment \(k) byte \(i - offset)\(inside ? "" : " (outside the segment)"): "
                                + "expected 0x\(String(want, radix: 16)), got 0x\(String(got, radix: 16))")
                    }
                }
            }
            at += n
        }
        if wrong > bad.count { bad.append("… \(wrong) wrong bytes in all") }
        return bad
    }

    func snapshot() -> [[UInt8]] { destinations.map { Array($0.readOnlyBytes) } }

    func free(_ rig: Rig) {
        for b in sources + destinations { rig.allocator.free(b) }
    }

    func prep(_ rig: Rig, callback: DMACallback? = nil, injection: DMAInjection? = nil) throws -> DMADescriptor {
        guard let d = rig.channel.prepareMemcpySG(destinations: destinationSegments, sources: sourceSegments) else {
            throw ScenarioFailure(
                "prepareMemcpySG(\(sourceLengths.count) source, \(destinationLengths.count) destination segments) returned nil "
                    + "on a channel that advertises memcpySG with maxSegments \(rig.caps.maxSegments)")
        }
        if let callback { try rig.channel.setCallback(callback, for: d) }
        if let injection { try rig.channel.debugInject(injection, into: d) }
        return d
    }
}

extension Scenarios {
    static func requireSG(_ rig: Rig) throws {
        guard rig.caps.memcpySG else {
            // The default of the protocol: no scatter-gather means nil, never a wrong copy.
            let s = [DMASegment(address: UnsafeRawPointer(bitPattern: 64)!, length: 1)]
            if rig.channel.prepareMemcpySG(destinations: s, sources: s) != nil {
                throw ScenarioFailure("prepareMemcpySG returned a descriptor on a channel whose memcpySG is false")
            }
            throw ScenarioSkip("memcpySG is false (no scatter-gather: DMA_MEMCPY_SG not in the capability mask)")
        }
    }

    // MARK: 35

    static func sgUnevenLists(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        try requireSG(rig)
        let m = rig.caps.maxSegments
        var shapes: [(String, [Int], [Int])] = [
            ("3 × 1000 B into 1 × 3000 B", [1000, 1000, 1000], [3000]),
            ("1 × 4096 B into 4 × 1024 B", [4096], [1024, 1024, 1024, 1024]),
            ("7 + 993 + 2000 B into 1500 + 1500 B", [7, 993, 2000], [1500, 1500]),
            ("1 B segments", [1, 1, 1], [3]),
        ]
        if m >= 2 {
            let src = (0..<m).map { 100 + 37 * $0 }
            let total = src.reduce(0, +)
            var dst = Array(repeating: total / m, count: m)
            dst[m - 1] += total - dst.reduce(0, +)
            shapes.append(("\(m) × uneven into \(m) × even (maxSegments)", src, dst))
        }
        for (what, src, dst) in shapes where src.count <= m && dst.count <= m {
            ctx.phase("copying \(what)")
            let t = try SGTransfer(rig, sources: src, destinations: dst)
            let log = CallbackLog()
            let c = try ctx.submit(rig, try t.prep(rig, callback: log.callback(ctx, rig.channel)), length: t.total)
            rig.channel.issuePending()
            ctx.waitUntil("the callback of the scatter-gather copy \(what)", rig: rig) { log.count >= 1 }
            if let r = log.completions.first {
                ctx.expectEqual(r.result, .noError, "\(what): callback result (K5: NOERROR, residue 0)")
            }
            ctx.expectEqual(rig.channel.status(of: c).1.residue, 0, "\(what): residue after completion (S4)")
            ctx.expectVerified(t.verify(), "scatter-gather copy \(what)")
            t.free(rig)
        }
        // Invalid lists are refused (nil), never half-copied.
        ctx.phase("invalid segment lists")
        let b = try rig.allocator.allocate(8192, label: "scratch")
        let a = UnsafeRawPointer(b.base)
        func refused(_ d: [DMASegment], _ s: [DMASegment], _ why: String) {
            if rig.channel.prepareMemcpySG(destinations: d, sources: s) != nil {
                ctx.fail("prepareMemcpySG accepted \(why)")
            }
        }
        refused([DMASegment(address: a, length: 100)], [DMASegment(address: a + 4096, length: 99)], "unequal totals (100 vs 99 B)")
        refused([], [DMASegment(address: a, length: 1)], "an empty destination list")
        refused([DMASegment(address: a, length: 0)], [DMASegment(address: a + 4096, length: 0)], "zero-length segments")
        let many = (0...m).map { DMASegment(address: a + $0, length: 1) }
        refused(many, [DMASegment(address: a + 4096, length: many.count)], "\(many.count) segments (maxSegments \(m))")
    }

    // MARK: 36

    static func sgResidue(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        try requireSG(rig)
        let seg = 2048, n = min(8, rig.caps.maxSegments)
        let t = try SGTransfer(rig, sources: [seg * n / 2, seg * n / 2], destinations: Array(repeating: seg, count: n))
        let log = CallbackLog()
        let c = try ctx.submit(
            rig, try t.prep(rig, callback: log.callback(ctx, rig.channel), injection: ctx.slow(t.total, seconds: ctx.config.slowTransferSeconds * 3, chunks: 4 * n)),
            length: t.total)
        rig.channel.issuePending()
        ctx.phase("polling the residue of a slow \(n)-segment copy")
        var previous = Int.max
        var seen = Set<Int>()
        while true {
            let (st, tx) = rig.channel.status(of: c)
            if st == .complete { break }
            if st == .outOfOrder { ctx.idle(0.002); continue }
            if rig.caps.residueGranularity == .descriptor {
                ctx.expectEqual(tx.residue, 0, "residue with descriptor granularity (S5)")
            } else {
                ctx.expect(tx.residue > 0 && tx.residue <= t.total, "residue \(tx.residue) of an in-progress copy should be in (0, \(t.total)]")
                ctx.expect(tx.residue <= previous, "residue grew from \(previous) to \(tx.residue) (S5 across segments)")
                previous = tx.residue
                seen.insert(tx.residue)
            }
            ctx.idle(0.002)
        }
        ctx.waitUntil("the callback of the slow scatter-gather copy", rig: rig) { log.count >= 1 }
        ctx.expectEqual(rig.channel.status(of: c).1.residue, 0, "residue after completion (S4)")
        ctx.expectVerified(t.verify(), "slow \(n)-segment copy")
        let crossed = seen.contains { $0 < t.total - seg } && seen.contains { $0 > seg }
        if rig.caps.residueGranularity != .descriptor && !crossed && seen.count > 2 {
            ctx.fail("the residue never moved across a segment boundary in \(seen.count) samples: \(seen.sorted().prefix(8))")
        }
        ctx.note("\(seen.count) distinct residues seen across \(n) destination segments")
        t.free(rig)
    }

    // MARK: 37

    static func sgTerminateMidList(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        try requireSG(rig)
        let seg = 4096, n = min(4, rig.caps.maxSegments)
        let t = try SGTransfer(rig, sources: Array(repeating: seg, count: n), destinations: [seg * n / 2, seg * n / 2])
        let log = CallbackLog()
        let c = try ctx.submit(
            rig, try t.prep(rig, callback: log.callback(ctx, rig.channel), injection: ctx.slow(t.total, seconds: ctx.config.slowTransferSeconds * 4, chunks: 8 * n)),
            length: t.total)
        rig.channel.issuePending()
        ctx.phase("waiting until the copy is past its first segment")
        ctx.waitUntil("the residue dropped below \(t.total - seg)", rig: rig) {
            let (st, tx) = rig.channel.status(of: c)
            return st == .complete || (st == .inProgress && tx.residue > 0 && tx.residue < t.total - seg)
        }
        let wasComplete = rig.channel.status(of: c).0 == .complete
        ctx.phase("terminateSync in the middle of the segment list")
        ctx.expectOK("terminateSync mid-list") { try rig.channel.terminateSync() }
        rig.monitor.forbid(upTo: rig.channel.debugWatermark().used, "after terminateSync of a scatter-gather copy")
        let frozen = t.snapshot()
        let calls = log.count
        ctx.idle(0.1, rig: rig)
        ctx.expect(t.snapshot() == frozen, "the engine kept writing the destination segments after terminateSync (T3)")
        ctx.expectEqual(log.count, calls, "callbacks after terminateSync returned (T3)")
        if !wasComplete {
            ctx.expectEqual(calls, 0, "callback of a copy terminated mid-list (T1)")
        }
        ctx.expectComplete(rig, c, "the terminated cookie (S6 [T])")
        t.free(rig)
        // The channel is reusable (T8): a new scatter-gather copy lands.
        ctx.phase("a scatter-gather copy after the terminate")
        let u = try SGTransfer(rig, sources: [3000, 1096], destinations: [1024, 3072])
        let after = CallbackLog()
        try ctx.submit(rig, try u.prep(rig, callback: after.callback(ctx, rig.channel)), length: u.total)
        rig.channel.issuePending()
        ctx.waitUntil("the copy after terminateSync", rig: rig) { after.count >= 1 }
        ctx.expectVerified(u.verify(), "scatter-gather copy after terminateSync")
        u.free(rig)
    }

    // MARK: 38

    /// The seed's use case on scatter-gather: a callback calls terminateAsync while a slow
    /// segment list runs; the client synchronizes and frees every segment's buffer.
    static func sgSeedRace(_ ctx: ScenarioContext) throws {
        let rig = try ctx.makeRig()
        try requireSG(rig)
        let iterations = max(4, min(ctx.config.iterations / 10, 40))
        let n = min(6, rig.caps.maxSegments)
        for it in 0..<iterations {
            ctx.setIteration(it)
            let t = try SGTransfer(
                rig, sources: (0..<n).map { 512 + 64 * $0 }, destinations: [(0..<n).map { 512 + 64 * $0 }.reduce(0, +)])
            let trigger = try ctx.transfer(rig, bufferSize: 256)
            let stopped = Atomic<Bool>(false)
            let stopper = DMACallback.plain { _ in
                do throws(DMAError) { try rig.channel.terminateAsync() } catch { ctx.fail("terminateAsync from a callback: \(error)") }
                stopped.store(true, ordering: .releasing)
            }
            let log = CallbackLog(checkStatus: false)
            try ctx.submit(rig, try ctx.prep(rig, trigger, callback: stopper), length: 256)
            let c = try ctx.submit(
                rig, try t.prep(rig, callback: log.callback(ctx, rig.channel), injection: ctx.slow(t.total, seconds: 0.02, chunks: 2 * n)),
                length: t.total)
            ctx.rng.jitter(maxMicroseconds: 200)
            rig.channel.issuePending()
            ctx.waitUntil("the trigger's callback called terminateAsync", rig: rig) { stopped.load(ordering: .acquiring) }
            ctx.expectOK("synchronize after terminateAsync from a callback") { try rig.channel.synchronize() }
            rig.monitor.forbid(upTo: c, "after synchronize (T3), scatter-gather iteration \(it)")
            log.markFreed()
            let calls = log.count
            t.free(rig)
            rig.allocator.free(trigger.src)
            rig.allocator.free(trigger.dst)
            ctx.idle(0.005, rig: rig)
            ctx.expectEqual(log.count, calls, "callbacks after synchronize returned (T3), iteration \(it)")
        }
        ctx.iterationsRun(iterations)
    }
}
#endif
