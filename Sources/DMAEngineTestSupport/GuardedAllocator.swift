// dmabench — DMAEngineTestSupport
//
// The guarded allocator of docs/contract.md part B: page-aligned buffers from the channel's own
// coherent memory, filled with dmatest patterns (appendix C.3); "free" poisons a buffer and
// `mprotect`s it to PROT_NONE, so that a late engine write faults, and marks it freed in a
// registry that the engine-access probe consults, so that a late access is recorded as a
// failure even where the write itself does not fault (or where protection is switched off
// for negative controls).

#if os(Linux)
import DMAEngine
import Glibc
import Platform
import Synchronization

// MARK: - dmatest patterns

/// The dmatest verification pattern (docs/contract.md appendix C.3; the kernel's
/// `drivers/dma/dmatest.c`, `dmatest_init_srcs`, `dmatest_init_dsts`, `dmatest_verify`).
public enum DMATestPattern {
    /// `PATTERN_SRC`: set in source bytes, clear in destination bytes.
    public static let source: UInt8 = 0x80
    /// `PATTERN_COPY`: marks source bytes that should be copied.
    public static let copy: UInt8 = 0x40
    /// `PATTERN_OVERWRITE`: marks destination bytes that should be overwritten.
    public static let overwrite: UInt8 = 0x20
    /// `PATTERN_COUNT_MASK`: the inverted 5-bit counter.
    public static let countMask: UInt8 = 0x1f
    /// What a freed buffer is filled with: neither a source nor a destination byte pattern
    /// that a correct copy could produce at every position.
    public static let poison: UInt8 = 0xDB

    @inline(__always)
    static func counter(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: ~i) & countMask }

    /// Writes `base | counter(i + shift)` at every index `i` of `range`, 32 bytes at a time
    /// from a template (the counter has period 32), so that debug builds stay fast.
    static func writeRun(_ p: UnsafeMutableRawPointer, _ range: Range<Int>, base: UInt8, shift: Int) {
        guard !range.isEmpty else { return }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64) { t in
            for j in 0..<64 { t[j] = base | counter(j) }
            var i = range.lowerBound
            while i < range.upperBound {
                let phase = ((i + shift) % 32 + 32) % 32
                let n = min(32, range.upperBound - i)
                (p + i).copyMemory(from: t.baseAddress! + phase, byteCount: n)
                i += n
            }
        }
    }

    /// Fills a source buffer; bytes in `region` get the copy marker. The corresponding kernel
    /// function is `dmatest_init_srcs()`.
    public static func fillSource(_ buffer: UnsafeMutableRawBufferPointer, region: Range<Int>) {
        guard let p = buffer.baseAddress else { return }
        let r = region.clamped(to: 0..<buffer.count)
        writeRun(p, 0..<r.lowerBound, base: source, shift: 0)
        writeRun(p, r, base: source | copy, shift: 0)
        writeRun(p, r.upperBound..<buffer.count, base: source, shift: 0)
    }

    /// Fills a destination buffer; bytes in `region` get the overwrite marker. The
    /// corresponding kernel function is `dmatest_init_dsts()`.
    public static func fillDestination(_ buffer: UnsafeMutableRawBufferPointer, region: Range<Int>) {
        guard let p = buffer.baseAddress else { return }
        let r = region.clamped(to: 0..<buffer.count)
        writeRun(p, 0..<r.lowerBound, base: 0, shift: 0)
        writeRun(p, r, base: overwrite, shift: 0)
        writeRun(p, r.upperBound..<buffer.count, base: 0, shift: 0)
    }

    /// Compares `actual` with `expected` (memcmp first, byte by byte only on a mismatch).
    static func compare(_ actual: UnsafeRawBufferPointer, _ expected: UnsafeRawBufferPointer, _ what: (Int) -> String)
        -> [String]
    {
        guard actual.count == expected.count, let a = actual.baseAddress, let e = expected.baseAddress else { return [] }
        if memcmp(a, e, actual.count) == 0 { return [] }
        var report = MismatchReport()
        for i in 0..<actual.count where actual[i] != expected[i] { report.add(what(i), i, expected[i], actual[i]) }
        return report.lines
    }

    /// The three dmatest checks for a copy of `length` bytes from `sourceOffset` to
    /// `destinationOffset`: the whole source unchanged, the destination outside the region
    /// untouched, the region equal to the source pattern (counter included). Returns at most
    /// 32 mismatch descriptions, then one line with the number suppressed (C.3). The
    /// corresponding kernel function is `dmatest_verify()`.
    public static func verifyCopy(
        source: UnsafeRawBufferPointer, sourceOffset: Int, destination: UnsafeRawBufferPointer,
        destinationOffset: Int, length: Int
    ) -> [String] {
        let expectedSource = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, source.count), alignment: 16)
        defer { expectedSource.deallocate() }
        let es = UnsafeMutableRawBufferPointer(rebasing: expectedSource[0..<source.count])
        fillSource(es, region: sourceOffset..<(sourceOffset + length))
        var lines = compare(source, UnsafeRawBufferPointer(es)) { _ in "source changed" }
        let expectedDestination = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, destination.count), alignment: 16)
        defer { expectedDestination.deallocate() }
        let ed = UnsafeMutableRawBufferPointer(rebasing: expectedDestination[0..<destination.count])
        let region = destinationOffset..<(destinationOffset + length)
        fillDestination(ed, region: region)
        writeRun(ed.baseAddress!, region, base: Self.source | copy, shift: sourceOffset - destinationOffset)
        lines += compare(destination, UnsafeRawBufferPointer(ed)) { i in
            region.contains(i) ? "copied byte wrong" : "destination outside the region changed"
        }
        return lines
    }

    /// Checks that a destination still holds its initial pattern (nothing was written).
    public static func verifyUntouchedDestination(_ destination: UnsafeRawBufferPointer, region: Range<Int>) -> [String] {
        let expected = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, destination.count), alignment: 16)
        defer { expected.deallocate() }
        let e = UnsafeMutableRawBufferPointer(rebasing: expected[0..<destination.count])
        fillDestination(e, region: region)
        return compare(destination, UnsafeRawBufferPointer(e)) { _ in "destination written before it should be" }
    }

    /// Checks a memset of `value` over `region` of a destination filled by `fillDestination`.
    public static func verifyFill(_ destination: UnsafeRawBufferPointer, region: Range<Int>, value: UInt8) -> [String] {
        let expected = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, destination.count), alignment: 16)
        defer { expected.deallocate() }
        let e = UnsafeMutableRawBufferPointer(rebasing: expected[0..<destination.count])
        fillDestination(e, region: region)
        for i in region { e[i] = value }
        return compare(destination, UnsafeRawBufferPointer(e)) { _ in "memset byte wrong" }
    }

    struct MismatchReport {
        var lines: [String] = []
        var suppressed = 0
        mutating func add(_ what: String, _ i: Int, _ want: UInt8, _ got: UInt8) {
            if lines.count < 32 {
                lines.append("\(what) at offset \(i): expected 0x\(hex(want)), got 0x\(hex(got))")
            } else {
                suppressed += 1
                if suppressed == 1 { lines.append("") }
                lines[32] = "\(suppressed) more mismatches suppressed"
            }
        }
        func hex(_ b: UInt8) -> String {
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }
    }
}

// MARK: - Guarded buffers

/// A buffer from `GuardedAllocator`. `bytes` is valid until the buffer is freed.
public final class GuardedBuffer: @unchecked Sendable, CustomStringConvertible {
    public let base: UnsafeMutableRawPointer
    public let count: Int
    let mappedCount: Int
    let coherent: DMABuffer
    public let label: String
    /// True once `GuardedAllocator.free` ran.
    public var isFreed: Bool { freed.load(ordering: .relaxed) }
    let freed = Atomic<Bool>(false)

    init(coherent: DMABuffer, count: Int, label: String) {
        self.coherent = coherent
        self.base = coherent.base
        self.count = count
        self.mappedCount = PageMemory.roundUp(coherent.count)
        self.label = label
    }

    public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base, count: count) }
    public var readOnlyBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    public var description: String { "\(label)@\(base) (\(count) bytes)" }
}

/// Hands out page-aligned buffers from a channel's coherent memory and "frees" them by
/// poisoning and protecting them (docs/contract.md part B, harness).
///
/// Freed buffers stay mapped in a bounded quarantine; when it is full the oldest one is
/// checked (its poison must be intact), unprotected and reused for a request of the same
/// size, so that 10 000-iteration scenarios do not exhaust a backend's coherent pool.
/// `finish()` returns everything to the channel; call it before `release()`.
public final class GuardedAllocator: @unchecked Sendable {
    public let channel: any DMAChannel
    /// Whether `free` protects buffers with PROT_NONE (a late write then faults). Negative
    /// controls switch it off so that the process survives and the probe records the access.
    public let protectOnFree: Bool
    public let quarantineLimit: Int

    private struct Registry {
        var live: [GuardedBuffer] = []
        var quarantine: [GuardedBuffer] = []
        var problems: [String] = []
    }
    private let registry = LockedValue(Registry())

    public init(channel: any DMAChannel, protectOnFree: Bool = true, quarantineLimit: Int = 48) {
        self.channel = channel
        self.protectOnFree = protectOnFree
        self.quarantineLimit = max(1, quarantineLimit)
    }

    /// Allocates `byteCount` bytes (rounded up to pages in the mapping) filled with zeros, or
    /// reuses the oldest quarantined buffer of the same size once the quarantine is full.
    public func allocate(_ byteCount: Int, label: String = "buffer") throws -> GuardedBuffer {
        let pages = PageMemory.roundUp(byteCount)
        let recycled: GuardedBuffer? = registry.withLock { r in
            guard r.quarantine.count >= quarantineLimit,
                let i = r.quarantine.firstIndex(where: { $0.mappedCount == pages && $0.count == byteCount })
            else { return nil }
            return r.quarantine.remove(at: i)
        }
        if let old = recycled {
            reclaim(old)
            let fresh = GuardedBuffer(coherent: old.coherent, count: byteCount, label: label)
            fresh.bytes.initializeMemory(as: UInt8.self, repeating: 0)
            registry.withLock { $0.live.append(fresh) }
            return fresh
        }
        let coherent = try channel.allocateCoherent(byteCount: byteCount)
        let b = GuardedBuffer(coherent: coherent, count: byteCount, label: label)
        registry.withLock { $0.live.append(b) }
        return b
    }

    /// "Frees" a buffer: poison-fills it, protects it (when `protectOnFree`), and marks it
    /// freed for the access probe. Any later engine access is a failure.
    public func free(_ b: GuardedBuffer) {
        // Ordering: relaxed; the registry mutex below publishes the state to the probe.
        guard !b.freed.exchange(true, ordering: .relaxed) else { return }
        UnsafeMutableRawBufferPointer(start: b.base, count: b.mappedCount).initializeMemory(
            as: UInt8.self, repeating: DMATestPattern.poison)
        if protectOnFree {
            do { try PageMemory.protect(b.base, byteCount: b.mappedCount, .none) } catch {
                registry.withLock { $0.problems.append("guarded allocator: \(error)") }
            }
        }
        registry.withLock { r in
            r.live.removeAll { $0 === b }
            r.quarantine.append(b)
        }
    }

    /// The freed buffer that `address ..< address+count` overlaps, if any. Called from the
    /// access probe on the engine thread: one short lock, no allocation.
    public func freedBuffer(overlapping address: UInt, count: Int) -> GuardedBuffer? {
        let end = address &+ UInt(max(count, 1))
        return registry.withLock { r in
            for b in r.quarantine {
                let s = UInt(bitPattern: b.base)
                if address < s &+ UInt(b.mappedCount) && end > s { return b }
            }
            return nil
        }
    }

    /// Checks the poison of a quarantined buffer, unprotects it and reports a late write.
    private func reclaim(_ b: GuardedBuffer) {
        if protectOnFree {
            do { try PageMemory.protect(b.base, byteCount: b.mappedCount, .readWrite) } catch {
                registry.withLock { $0.problems.append("guarded allocator: \(error)") }
                return
            }
        }
        let raw = UnsafeRawBufferPointer(start: b.base, count: b.mappedCount)
        if let i = raw.firstIndex(where: { $0 != DMATestPattern.poison }) {
            registry.withLock {
                $0.problems.append("\(b.label) was written after it was freed (offset \(i) holds 0x\(String(raw[i], radix: 16)))")
            }
        }
    }

    /// Returns every buffer to the channel (`freeCoherent`), checking the poison of freed
    /// ones first. Call it once the channel is idle (after `terminateSync`) and before
    /// `release()`. With `channelReleased` the memory is only unprotected and left to the
    /// released channel (some backends unmap their pool in `release`). Returns the problems
    /// found (late writes).
    public func finish(channelReleased: Bool = false) -> [String] {
        let (live, quarantined) = registry.withLock { r in
            let x = (r.live, r.quarantine)
            r.live.removeAll()
            r.quarantine.removeAll()
            return x
        }
        for b in quarantined { reclaim(b) }
        if !channelReleased {
            for b in live + quarantined { channel.freeCoherent(b.coherent) }
        }
        return registry.withLock { r in
            let p = r.problems
            r.problems.removeAll()
            return p
        }
    }
}

// MARK: - Access monitor

/// The engine-access probe the suite installs (`debugSetAccessProbe`): it counts accesses,
/// records any access to a freed buffer, and any access while the scenario forbids one
/// (after `synchronize` returned), as failures, without crashing.
public final class AccessMonitor: @unchecked Sendable {
    public let reads = Atomic<Int>(0)
    public let writes = Atomic<Int>(0)
    public let bytesWritten = Atomic<Int>(0)
    /// Accesses by cookies in 1...forbiddenUpTo are failures (0: none; Int32.max: all).
    let forbiddenUpTo = Atomic<Int32>(0)
    let forbidAll = Atomic<Bool>(false)
    let recordsPerCookie = Atomic<Bool>(false)
    private let reason = LockedValue("")
    private let perCookie = LockedValue<[Int32: Int]>([:])
    let allocator: GuardedAllocator
    let report: @Sendable (String) -> Void

    init(allocator: GuardedAllocator, report: @escaping @Sendable (String) -> Void) {
        self.allocator = allocator
        self.report = report
    }

    /// The probe to install.
    public var probe: DMAAccessProbe { { [self] access in self.record(access) } }

    func record(_ a: DMAAccess) {
        switch a.kind {
        case .read: reads.add(1, ordering: .relaxed)
        case .write:
            writes.add(1, ordering: .relaxed)
            bytesWritten.add(a.count, ordering: .relaxed)
            if recordsPerCookie.load(ordering: .relaxed) {
                perCookie.withLock { $0[a.cookie.rawValue, default: 0] += 1 }
            }
        }
        let kind = a.kind == .read ? "read" : "write"
        if let b = allocator.freedBuffer(overlapping: a.address, count: a.count) {
            report("engine \(kind) of \(a.count) bytes at offset \(Int(a.address) - Int(bitPattern: b.base)) of freed \(b.label) (cookie \(a.cookie))")
        }
        // Ordering: relaxed loads; the scenario sets these before it frees anything, and the
        // registry lock above orders them for accesses to freed memory.
        let all = forbidAll.load(ordering: .relaxed)
        let bound = forbiddenUpTo.load(ordering: .relaxed)
        if all || (a.cookie.rawValue >= 1 && a.cookie.rawValue <= bound) {
            report("engine \(kind) of \(a.count) bytes for cookie \(a.cookie) \(reason.withLock { $0 })")
        }
    }

    /// From now on, any access by a cookie in 1...cookie is a failure, for `why`.
    public func forbid(upTo cookie: DMACookie, _ why: String) {
        reason.withLock { $0 = why }
        forbiddenUpTo.store(max(0, cookie.rawValue), ordering: .relaxed)
    }

    /// From now on, any access at all is a failure, for `why`.
    public func forbidEverything(_ why: String) {
        reason.withLock { $0 = why }
        forbidAll.store(true, ordering: .relaxed)
    }

    /// Lifts every prohibition.
    public func allowEverything() {
        forbidAll.store(false, ordering: .relaxed)
        forbiddenUpTo.store(0, ordering: .relaxed)
    }

    /// Starts counting write accesses per cookie (scenario 32).
    public func countWritesPerCookie() { recordsPerCookie.store(true, ordering: .relaxed) }

    /// Write accesses counted for `cookie` since `countWritesPerCookie()`.
    public func writeCount(for cookie: DMACookie) -> Int { perCookie.withLock { $0[cookie.rawValue] ?? 0 } }
}
#endif
