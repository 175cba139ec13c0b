// dmabench — Harness
//
// The workload shared by throughput and latency (docs/measurement-notes.md, "The anchor workload"; the plain-C
// anchors run the same loop): `nslots = pow2ceil(depth)` slots of `stride = roundup(size, 64)`
// bytes in a source and a destination region; a descriptor in slot s copies src slot s to
// dst slot s. The client keeps at most `depth` descriptors in flight and calls
// `issuePending` every `batch` submits.

import DMAEngine
import Histogram
import Platform
import Synchronization

/// What one workload run is asked to do.
public struct WorkloadSpec: Sendable, Hashable {
    public var size: Int
    public var batch: Int
    public var depth: Int
    /// Measure for this long (after warm-up).
    public var durationNanoseconds: UInt64
    /// Completions before the clock starts.
    public var warmupDescriptors: Int
    /// Verify a sample of descriptors (every 4096th, plus every slot at the end).
    public var verify: Bool
    /// Stamp descriptors and record their latency (submit → start of callback).
    public var recordLatency: Bool
    /// Stamp one descriptor in this many (a power of two; 1 = every descriptor): the k-th
    /// submitted descriptor is stamped when k is a multiple of it. Throughput points use 16,
    /// so that two clock reads per descriptor (one on each side) stay out of the measured
    /// loop; latency points stamp every descriptor.
    public var latencySampleEvery: Int = 1
    /// Open loop: descriptors are due at `rate` per second, latency counts from the due time.
    public var rate: Double?
    /// Stop after this many measured descriptors instead of after `durationNanoseconds`
    /// (the package-benchmark suites use it for a fixed amount of work per iteration).
    public var maxDescriptors: Int?
    /// Inject a read fault into every N-th descriptor (`--inject-faults N`): the faults must
    /// come back as error results and be counted in the point's `errors`.
    public var faultEvery: Int?
    /// No completion for this long while descriptors are in flight is a stall: the run
    /// terminates the channel and fails with a timeout error (dmatest semantics).
    public var stallTimeoutNanoseconds: UInt64 = 10_000_000_000
    /// Where each descriptor copies within its slot (`--offsets`).
    public var offsets: OffsetMode = .fixed
    /// Random mode: lengths and offsets are multiples of this many bytes (a power of two,
    /// at most `size`; dmatest's `alignment` is its log2).
    public var alignment: Int = 1
    /// How completions are detected (`--completion`).
    public var completion: CompletionMode = .callback
    /// The cache state at submit (`--cache`), and how cold is made.
    public var cache: CacheMode = .hot
    public var cacheMethod: CacheMethod = .footprint
    /// Verify one descriptor in this many whole (a power of two), when `verify` is set.
    public var verifySampleEvery: Int = 4096
    /// Seeds the random offsets and lengths.
    public var seed: UInt64 = 0x0123_4567_89AB_CDEF
    /// Scatter-gather (`--sge`): each descriptor is a `prepareMemcpySG` of this many source
    /// and destination segments (nil: a flat `prepareMemcpy`).
    public var sge: SGShape?

    public init(
        size: Int, batch: Int, depth: Int, durationNanoseconds: UInt64, warmupDescriptors: Int = 10_000,
        verify: Bool = true, recordLatency: Bool = true, rate: Double? = nil, maxDescriptors: Int? = nil,
        faultEvery: Int? = nil, latencySampleEvery: Int = 1
    ) {
        precondition(latencySampleEvery > 0 && latencySampleEvery & (latencySampleEvery - 1) == 0,
                     "latencySampleEvery must be a power of two")
        self.latencySampleEvery = latencySampleEvery
        self.faultEvery = faultEvery
        self.maxDescriptors = maxDescriptors
        self.size = size
        self.batch = batch
        self.depth = depth
        self.durationNanoseconds = durationNanoseconds
        self.warmupDescriptors = warmupDescriptors
        self.verify = verify
        self.recordLatency = recordLatency
        self.rate = rate
    }
}

/// What one workload run measured.
public struct WorkloadSample: Sendable {
    public var descriptors: Int
    public var elapsedNanoseconds: UInt64
    public var submitNanoseconds: UInt64
    public var errors: Int
    public var verifyFailures: Int
    public var outOfOrder: Int
    /// The mean length of the descriptors submitted (`size` unless offsets are random).
    public var meanLength: Double = 0
    /// What verification checked and found.
    public var verification: VerificationSummary?
    /// `--cache cold` by flushing: the mean time the client spent flushing a slot before a
    /// submit, in the measured loop.
    public var flushNanosecondsPerDescriptor: Double?
    public var descriptorsPerSecond: Double { elapsedNanoseconds == 0 ? 0 : Double(descriptors) * 1e9 / Double(elapsedNanoseconds) }
}

public struct WorkloadError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// State shared between the client and the completion callback, in raw memory so that the
/// callback (a closure that captures nothing) reaches it through `callback_param` with no
/// reference counting. Only the callback writes `completed`, the latency ring and the error
/// counters; the client reads them after an acquire load of `completed`.
struct CallbackState {
    /// In its own 128-byte line: the client polls it while the callback thread writes it.
    var completed: UnsafeMutablePointer<Atomic<Int>>
    /// The value of `completed`, kept by its only writer: the callback reads this, never the
    /// polled line, which a client poll may have taken away (docs/measurement-notes.md,
    /// "recordCompletion: counting without reading the polled line").
    var count: Int
    // The rest is written by the callback thread only (callbacks of one channel never overlap,
    // rule K3), and read by the client after it has observed `completed` with acquire.
    /// Submit stamps by slot. Only the client reads and writes them.
    var submitStamps: UnsafeMutablePointer<UInt64>
    /// Completion ring: the callback of the n-th completion stores its stamp and slot at
    /// `n & slotMask`; the client turns them into latencies (against `submitStamps`) and
    /// records them in the histogram when it reaps. The callback stays short, and it never
    /// reads a line that the client writes per descriptor: in engine-thread mode the engine
    /// runs it, and in the anchors the client stamps and reaps itself. The ring cannot
    /// overrun: completion n exists only once descriptor n was submitted, so
    /// n < reaped + depth ≤ reaped + slots for every entry not yet reaped. A slot's submit
    /// stamp is rewritten only when the client submits into the slot again, after it reaped.
    var completions: UnsafeMutablePointer<CompletionStamp>
    var measureFrom: Int  // the warm-up ends at this completion count (it stamps `firstStamp`)
    var firstStamp: UInt64  // stamp at the completion that ends the warm-up (the measureFrom-th)
    var lastStamp: UInt64  // stamp at the latest stamped completion
    var lastCount: Int  // the completion count that `lastStamp` ends (n + 1 of that completion)
    var finalCount: Int  // a run of `maxDescriptors` ends at this count: always stamped (or Int.max)
    var errors: Int
    var outOfOrder: Int
    var nextExpected: Int32
    var verifyEvery: Int
    /// How each slot's latest descriptor was laid out (the client writes it per submit in
    /// random mode; the verifier reads it only for a verified completion).
    var copies: UnsafeMutablePointer<SlotCopy>
    var verifier: VerifierState
    var src: UnsafeMutableRawPointer
    var dst: UnsafeMutableRawPointer
    var stride: Int
    var size: Int
    var slotMask: Int
    var recordLatency: Bool
    /// `latencySampleEvery - 1`: completion n is stamped when `n & sampleMask == 0`.
    var sampleMask: Int
    /// Stamps are ticks of this clock (`StampClock`); the histogram gets nanoseconds.
    var clock: StampClock
    /// Scatter-gather: the slot's segment layout, for the verifier (nil: flat copies).
    var sg: UnsafeMutablePointer<SGLayout>?
}

/// What the callback records for the client: when the callback started, and for which slot.
struct CompletionStamp {
    var stamp: UInt64
    var slot: Int
}

/// The completion callback: count it, check order, record latency, sample-verify.
/// It captures nothing: its state comes through the parameter (`CallbackParameter`).
let workloadCallback: DMACallback.WithResult = { completion in
    let p = completion.parameter
    recordCompletion(CallbackParameter.state(p), slot: CallbackParameter.slot(p), code: completion.result.code, cookie: completion.cookie)
}

/// A callback parameter that carries the `CallbackState`'s address and a slot: bits 12–47
/// are the address (the state is page-aligned and user addresses fit in 48 bits), bits
/// 48–63 the slot's low 16 bits and bits 0–11 its next 12, so up to 2^28 slots (cold
/// caches by footprint need 2^18 slots of 64 bytes here).
enum CallbackParameter {
    static let stateAlignment = 4096
    static let maxSlots = 1 << 28

    @inline(__always)
    static func make(_ stateBits: UInt64, slot: Int) -> UInt64 {
        stateBits | UInt64(slot & 0xFFFF) << 48 | UInt64(slot >> 16)
    }

    @inline(__always)
    static func state(_ p: UInt64) -> UnsafeMutablePointer<CallbackState> {
        UnsafeMutablePointer<CallbackState>(bitPattern: UInt(p & 0x0000_FFFF_FFFF_F000))!
    }

    @inline(__always)
    static func slot(_ p: UInt64) -> Int { Int(p >> 48) | Int(p & 0xFFF) << 16 }
}

/// One completion's bookkeeping: by the callback, or by the client when it polls.
@inline(__always)
func recordCompletion(_ state: UnsafeMutablePointer<CallbackState>, slot: Int, code: DMAResultCode, cookie: DMACookie) {
    if code != .noError { state.pointee.errors &+= 1 }
    if cookie.rawValue != state.pointee.nextExpected, state.pointee.nextExpected != 0 {
        state.pointee.outOfOrder &+= 1
    }
    state.pointee.nextExpected = cookie.next.rawValue
    let n = state.pointee.count
    state.pointee.count = n &+ 1
    let sampled = n & state.pointee.sampleMask == 0
    if state.pointee.recordLatency
        && (sampled || n &+ 1 == state.pointee.measureFrom || n &+ 1 == state.pointee.finalCount)
    {
        // The clock is read only for a stamped completion and for the ones that open and
        // close the measured window (the end of the warm-up; the last of a fixed count),
        // because clock reads dominated this callback (docs/measurement-notes.md,
        // "workloadCallback and Runner.throughputLatencySampleEvery: stamping one descriptor in 16").
        let now = state.pointee.clock.now()
        if sampled { state.pointee.completions[n & state.pointee.slotMask] = CompletionStamp(stamp: now, slot: slot) }
        if n &+ 1 == state.pointee.measureFrom { state.pointee.firstStamp = now }
        state.pointee.lastStamp = now
        state.pointee.lastCount = n &+ 1
    }
    // verifyEvery is 0 or a power of two: a mask, not a division. The client filled this
    // descriptor's destination slot with the guard byte (it sampled the same index).
    if state.pointee.verifyEvery > 0, n & (state.pointee.verifyEvery &- 1) == 0, code == .noError {
        if let sg = state.pointee.sg {
            _ = state.pointee.verifier.verifySG(
                descriptor: n, slot: slot, guarded: state.pointee.copies[slot].guarded, layout: sg, src: state.pointee.src,
                dst: state.pointee.dst, stride: state.pointee.stride)
        } else {
            _ = state.pointee.verifier.verify(
            descriptor: n, slot: slot, copy: state.pointee.copies[slot], src: state.pointee.src, dst: state.pointee.dst,
            stride: state.pointee.stride, size: state.pointee.size)
        }
    }
    // Ordering: release; pairs with the acquire load of `completed` in the client's wait loop,
    // which then reads the latency ring and counters written above.
    state.pointee.completed.pointee.store(n &+ 1, ordering: .releasing)
}

/// Test pattern helpers (dmatest-like: every byte depends on its slot and index).
public enum Pattern {
    public static func fill(_ p: UnsafeMutableRawPointer, slot: Int, count: Int) {
        let b = p.assumingMemoryBound(to: UInt8.self)
        for i in 0..<count { b[i] = byte(slot: slot, index: i) }
    }

    /// The source byte at `index` of `slot`.
    @inline(__always)
    public static func byte(slot: Int, index i: Int) -> UInt8 {
        UInt8(truncatingIfNeeded: 0x80 | 0x40 | (~(i &+ slot &* 7) & 0x1f))
    }

    public static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
        memcmp(a, b, n) == 0
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// Runs the throughput/latency client loop on the calling thread.
public final class ClosedLoopClient {
    public let channel: any DMAChannel
    public let spec: WorkloadSpec
    let nslots: Int
    let stride: Int
    let src: DMABuffer
    let dst: DMABuffer
    let state: UnsafeMutablePointer<CallbackState>
    public private(set) var histogram: UnsafeMutablePointer<Histogram<UInt64>>
    /// Called while the client waits for completions. Nil for real backends; tests set it to
    /// drive a hand-driven double (`EmbeddedChannel.completeAll()`).
    public var pump: (() -> Void)?
    /// Called when the measured window starts (after warm-up) and when it ends: the runner
    /// starts and stops counters here, so counters cover exactly the throughput phase.
    public var onMeasureStart: (() -> Void)?
    public var onMeasureEnd: (() -> Void)?

    /// Where the source and destination pages are, verified after first touch.
    public private(set) var verifiedMemory = VerifiedMemory()

    /// The clock that stamps descriptors (`StampClock.shared` unless a test passes one).
    public let clock: StampClock

    /// Each descriptor's cookie by slot (polled completion only).
    let cookies: UnsafeMutablePointer<DMACookie>
    /// Read once: polling would otherwise ask the channel (an existential call) every time.
    let completionNoOrder: Bool

    /// The slot ring of a spec: `slots` (a power of two) of `stride` bytes in each region.
    /// Random offsets add a 64-byte guard line after each slot, so that a copy that runs past
    /// its length lands on guard bytes even when it ends at the slot's end. Cold caches by
    /// footprint add slots until one lap of both regions covers `CacheMethod.footprintMultiple`
    /// times the last-level cache (`lastLevelCache`, bytes).
    public static func layout(_ spec: WorkloadSpec, lastLevelCache: Int?) -> (slots: Int, stride: Int) {
        var n = 1
        while n < spec.depth { n <<= 1 }
        // Scatter-gather segments are spread with gaps; the tail line guards the last one.
        let span = spec.sge.map { max(SGShape.span($0.sources, length: spec.size), SGShape.span($0.destinations, length: spec.size)) }
        let stride = ((span ?? spec.size) + 63) / 64 * 64 + (spec.offsets == .random || spec.sge != nil ? 64 : 0)
        if spec.cache == .cold && spec.cacheMethod == .footprint, let llc = lastLevelCache {
            let want = min(CacheMethod.footprintMultiple * llc, 1 << 30)
            while 2 * n * stride < want && n < CallbackParameter.maxSlots { n <<= 1 }
        }
        return (n, stride)
    }

    public init(channel: any DMAChannel, spec: WorkloadSpec, memory: MemoryPlacer? = nil, clock: StampClock = .shared) throws {
        self.channel = channel
        self.clock = clock
        self.spec = spec
        completionNoOrder = channel.capabilities.completionNoOrder
        if spec.cache == .cold && spec.cacheMethod == .footprint && CacheControl.lastLevel == nil {
            throw WorkloadError("cold caches by footprint need the last-level cache size, and sysfs gives none here (\(CacheControl.levelsRoot)); use the flush method")
        }
        if let g = spec.sge {
            if spec.offsets == .random { throw WorkloadError("--sge splits fixed copies; it cannot be combined with --offsets random") }
            let caps = channel.capabilities
            guard caps.memcpySG else { throw WorkloadError("backend \(channel.backendName) has no scatter-gather (memcpySG is false)") }
            guard max(g.sources, g.destinations) <= caps.maxSegments else {
                throw WorkloadError("--sge \(g) needs \(max(g.sources, g.destinations)) segments; backend \(channel.backendName) takes at most \(caps.maxSegments) (maxSegments)")
            }
            guard spec.size >= max(g.sources, g.destinations) else {
                throw WorkloadError("--sge \(g) needs at least one byte per segment; size \(spec.size) is smaller")
            }
        }
        (nslots, stride) = Self.layout(spec, lastLevelCache: CacheControl.lastLevel)
        do {
            src = try channel.allocateCoherent(byteCount: nslots * stride)
            dst = try channel.allocateCoherent(byteCount: nslots * stride)
        } catch {
            throw WorkloadError("cannot allocate \(2 * nslots * stride) bytes of DMA memory: \(error)")
        }
        if let memory {
            try memory.bind(src, role: .src)
            try memory.bind(dst, role: .dst)
        }
        // First touch: every page of both regions (not only the bytes copied).
        memset(src.base, 0x5A, src.count)
        memset(dst.base, 0xEE, dst.count)
        var sgLayout: UnsafeMutablePointer<SGLayout>?
        if let g = spec.sge {
            let l = UnsafeMutablePointer<SGLayout>.allocate(capacity: 1)
            l.initialize(to: SGLayout(g, size: spec.size))
            sgLayout = l
            for s in 0..<nslots { l.pointee.fillSource(src.base + s * stride, slot: s, stride: stride) }
        } else {
            for s in 0..<nslots {
                Pattern.fill(src.base + s * stride, slot: s, count: spec.size)
            }
        }
        let copies = UnsafeMutablePointer<SlotCopy>.allocate(capacity: nslots)
        copies.initialize(repeating: SlotCopy(srcOffset: 0, dstOffset: 0, length: Int32(spec.size), guarded: false), count: nslots)
        cookies = .allocate(capacity: nslots)
        cookies.initialize(repeating: DMACookie(rawValue: 0), count: nslots)
        if let memory {
            verifiedMemory = VerifiedMemory(src: try memory.verify(src, role: .src), dst: try memory.verify(dst, role: .dst))
        }
        histogram = .allocate(capacity: 1)
        histogram.initialize(to: Histogram<UInt64>(
            lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three))
        let stamps = UnsafeMutablePointer<UInt64>.allocate(capacity: nslots)
        stamps.initialize(repeating: 0, count: nslots)
        let completions = UnsafeMutablePointer<CompletionStamp>.allocate(capacity: nslots)
        completions.initialize(repeating: CompletionStamp(stamp: 0, slot: 0), count: nslots)
        let counterLine = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
        let counter = counterLine.bindMemory(to: Atomic<Int>.self, capacity: 1)
        counter.initialize(to: Atomic(0))
        precondition(nslots <= CallbackParameter.maxSlots, "\(nslots) slots do not fit in a callback parameter")
        state = UnsafeMutableRawPointer.allocate(
            byteCount: MemoryLayout<CallbackState>.stride, alignment: CallbackParameter.stateAlignment
        ).bindMemory(to: CallbackState.self, capacity: 1)
        state.initialize(to: CallbackState(
            completed: counter, count: 0, submitStamps: stamps, completions: completions, measureFrom: 0, firstStamp: 0, lastStamp: 0, lastCount: 0, finalCount: .max, errors: 0, outOfOrder: 0,
            nextExpected: 0, verifyEvery: spec.verify ? spec.verifySampleEvery : 0, copies: copies, verifier: VerifierState(),
            src: src.base, dst: dst.base,
            stride: stride, size: spec.size, slotMask: nslots - 1, recordLatency: spec.recordLatency,
            sampleMask: spec.latencySampleEvery - 1, clock: clock, sg: sgLayout))
    }

    deinit {
        if let sg = state.pointee.sg {
            sg.pointee.free()
            sg.deinitialize(count: 1)
            sg.deallocate()
        }
        state.pointee.copies.deallocate()
        state.pointee.verifier.free()
        cookies.deallocate()
        state.pointee.submitStamps.deallocate()
        state.pointee.completions.deallocate()
        state.pointee.completed.deinitialize(count: 1)
        UnsafeMutableRawPointer(state.pointee.completed).deallocate()
        state.deinitialize(count: 1)
        UnsafeMutableRawPointer(state).deallocate()
        histogram.deinitialize(count: 1)
        histogram.deallocate()
        channel.freeCoherent(src)
        channel.freeCoherent(dst)
    }

    /// Test hook: overwrites one destination slot, so a test can check that verification
    /// notices a bad copy.
    public func debugCorruptDestination(slot: Int) {
        memset(dst.base + (slot % nslots) * stride, 0x11, spec.size)
    }

    /// The slot ring this client uses (tests; the runner records it).
    public var slots: (count: Int, stride: Int) { (nslots, stride) }

    /// Clears the latency histogram (between repetitions).
    public func resetHistogram() { histogram.pointee.reset() }

    /// Runs warm-up plus a measured window. Returns what it measured. `shouldStop` is polled
    /// between bursts (Ctrl-C).
    public func run(shouldStop: () -> Bool = { false }) throws -> WorkloadSample {
        let plain = spec.offsets == .fixed && spec.completion == .callback && !(spec.cache == .cold && spec.cacheMethod == .flush)
            && spec.sge == nil
        return plain ? try run(AnchorLoop.self, shouldStop: shouldStop) : try run(VariantLoop.self, shouldStop: shouldStop)
    }

    /// The loop, compiled twice: for `AnchorLoop` every variant test folds to false, so the
    /// anchors' workload runs the code it ran before the variants existed (with them in one
    /// loop, ring 64 B b32 measured 0.95x [0.43, 1.28] in 11 paired rounds).
    @inline(never)
    func run<V: LoopVariants>(_: V.Type, shouldStop: () -> Bool) throws -> WorkloadSample {
        let ch = channel
        let batch = spec.batch
        let depth = spec.depth
        let size = spec.size
        let mask = nslots - 1
        let stateBits = UInt64(UInt(bitPattern: state))
        let stamps = state.pointee.submitStamps
        let completions = state.pointee.completions
        // The counter's address, read once: the wait loop would otherwise load it from the
        // callback state on every poll, and the callback writes that line per completion.
        let completed = state.pointee.completed
        // Read once: a class property read in the wait loop was a dynamic exclusivity check
        // (`swift_beginAccess`) per poll.
        let pump = self.pump
        // `DMACallbackContext.clientPoll`: how many in flight make a poll worth its loads.
        let pollThreshold = ch.pollThreshold
        let histogram = self.histogram
        let recordLatency = spec.recordLatency
        let sampleMask = spec.latencySampleEvery - 1
        let verifyEvery = spec.verify ? spec.verifySampleEvery : 0  // a power of two (masked, not divided)
        let polled = V.enabled && spec.completion == .polled
        // K6: a polled descriptor asks for no callback.
        let flags: DMAPrepFlags = polled ? .ack : .default
        let random = V.enabled && spec.offsets == .random
        let alignment = spec.alignment
        let alignShift = alignment.trailingZeroBitCount  // alignment is a power of two
        let units = UInt64(size >> alignShift)
        let copies = state.pointee.copies
        let coldFlush = V.enabled && spec.cache == .cold && spec.cacheMethod == .flush
        let sg = V.enabled ? state.pointee.sg : nil
        let clock = self.clock
        // Open loop: the interval between due times, in clock ticks.
        let openLoopInterval: Double? = spec.rate.map { clock.ticks(nanoseconds: 1e9 / $0) }
        let faultEvery = spec.faultEvery ?? 0
        let durationTicks = UInt64(clock.ticks(nanoseconds: Double(spec.durationNanoseconds)))

        // Cold caches: nothing of either region is cached when the run starts (the warm-up
        // and the window begin cold); the flush method then re-flushes each slot before reuse.
        if spec.cache == .cold {
            _ = CacheControl.flush(src.base, count: src.count)
            _ = CacheControl.flush(dst.base, count: dst.count)
        }
        var flushTicks: UInt64 = 0
        var flushCount = 0
        var lengthSum = 0
        var lengthCount = 0
        let runStart = clock.now()
        let base = state.pointee.completed.pointee.load(ordering: .acquiring)
        var rng = XorShift64(seed: spec.seed &+ UInt64(base))
        let warmupEnd = base + spec.warmupDescriptors
        state.pointee.measureFrom = warmupEnd
        let submitLimit = spec.maxDescriptors.map { warmupEnd + $0 } ?? Int.max
        state.pointee.finalCount = submitLimit
        var submitted = base
        var issued = base
        var reaped = base
        var measuring = false
        var tStart: UInt64 = 0
        var tEnd: UInt64 = 0
        var deadline: UInt64 = .max
        var stopSubmitting = false
        var submitTicks: UInt64 = 0
        // The clock after the latest burst: the deadline check reuses it (one read fewer).
        var lastBurstEnd: UInt64 = 0
        var measuredStart = 0
        var openLoopStart: UInt64 = 0
        var openLoopIndex: Double = 0
        var outOfPool = 0
        var waitStart: UInt64 = 0

        while true {
            if !stopSubmitting {
                let burstStart = clock.now()
                while submitted - reaped < depth && submitted < submitLimit {
                    let slot = submitted & mask
                    let d = slot * stride
                    var srcOffset = 0
                    var dstOffset = 0
                    var length = size
                    if random {
                        // dmatest: a length in [alignment, size], then source and destination
                        // offsets that keep the copy inside the slot, all multiples of alignment.
                        // Each draw maps 32 random bits onto [0, n) by multiply and shift
                        // (Lemire), not a division: the client's loop is the bottleneck at 64 B.
                        let r1 = rng.next()
                        let r2 = rng.next()
                        length = Int(((r1 & 0xFFFF_FFFF) &* units) >> 32 &+ 1) &* alignment
                        let room = UInt64((size &- length) >> alignShift &+ 1)
                        srcOffset = Int(((r2 & 0xFFFF_FFFF) &* room) >> 32) &* alignment
                        dstOffset = Int(((r2 >> 32) &* room) >> 32) &* alignment
                        lengthSum &+= length
                        lengthCount &+= 1
                    }
                    let sampled = verifyEvery > 0 && submitted & (verifyEvery &- 1) == 0
                    if sampled {
                        // Guard bytes over the whole slot: the verifier checks the bytes around
                        // the copy too (dmatest's PATTERN_DST).
                        memset(dst.base + d, Int32(VerifierState.guardByte), stride)
                    }
                    if random || sampled || sg != nil {
                        // Fixed copies keep their guard: a correct engine never writes past `size`.
                        copies[slot] = SlotCopy(
                            srcOffset: Int32(srcOffset), dstOffset: Int32(dstOffset), length: Int32(length),
                            guarded: sampled || (!random && copies[slot].guarded))
                    }
                    if coldFlush {
                        let t0 = clock.now()
                        _ = CacheControl.flush(src.base + d, count: stride)
                        _ = CacheControl.flush(dst.base + d, count: stride)
                        flushTicks &+= clock.now() &- t0
                        flushCount &+= 1
                    }
                    var stamp: UInt64 = 0
                    var stampNow = false
                    if let interval = openLoopInterval {
                        // Open loop: the descriptor is due at its intended time; wait for it and
                        // count latency from then (coordinated omission stays visible).
                        if openLoopStart == 0 { openLoopStart = clock.now() }
                        let due = openLoopStart &+ UInt64(openLoopIndex * interval)
                        var now = clock.now()
                        if now < due {
                            if submitted > issued { ch.issuePending(); issued = submitted }
                            while now < due { cpuRelax(); now = clock.now() }
                        }
                        openLoopIndex += 1
                        stamp = due
                    } else if recordLatency && submitted & sampleMask == 0 {
                        stampNow = true
                    }
                    var prepared: DMADescriptor?
                    if let sg {
                        sg.pointee.fill(src: src.base + d, dst: dst.base + d)
                        prepared = ch.prepareMemcpySG(destinations: sg.pointee.destinations, sources: sg.pointee.sources, flags: flags)
                        if !polled, let desc = prepared {
                            do {
                                try ch.setCallback(
                                    DMACallback(withResult: workloadCallback, parameter: CallbackParameter.make(stateBits, slot: slot)), for: desc)
                            } catch { throw WorkloadError("setCallback on a scatter-gather descriptor failed: \(error)") }
                        }
                    } else {
                    prepared =
                        polled
                        ? ch.prepareMemcpy(to: dst.base + d + dstOffset, from: src.base + d + srcOffset, length: length, flags: flags)
                        : ch.prepareMemcpy(
                            to: dst.base + d + dstOffset, from: src.base + d + srcOffset, length: length, flags: flags,
                            callback: DMACallback(withResult: workloadCallback, parameter: CallbackParameter.make(stateBits, slot: slot)))
                    }
                    guard let desc = prepared else {
                        outOfPool += 1
                        break  // pool exhausted: reap first
                    }
                    // Closed loop: stamped after prep, just before submit (latency runs from
                    // submit), so that prep's locked instructions do not wait for the stamp
                    // line to come back from the callback thread (docs/measurement-notes.md,
                    // "ClosedLoopClient.run: stamping after prep").
                    if stampNow { stamp = clock.now() }
                    stamps[slot] = stamp
                    if faultEvery > 0 && submitted % faultEvery == faultEvery - 1 {
                        do { try ch.debugInject(.fault(.read), into: desc) } catch {
                            throw WorkloadError("cannot inject a fault on backend \(ch.backendName): \(error)")
                        }
                    }
                    let cookie = ch.submit(desc)
                    if !cookie.isValid { throw WorkloadError("submit failed with cookie \(cookie)") }
                    if polled { cookies[slot] = cookie }
                    submitted &+= 1
                    if submitted - issued == batch {
                        ch.issuePending()
                        issued = submitted
                    }
                    if openLoopInterval != nil { break }
                }
                if submitted > issued && (issued == reaped || openLoopInterval != nil) {
                    ch.issuePending()
                    issued = submitted
                }
                lastBurstEnd = clock.now()
                if measuring { submitTicks &+= lastBurstEnd &- burstStart }
            }
            // Wait for a completion: spin, then yield (2 vCPUs: never starve the engine). Poll
            // `completed` only every (issued - reaped)/4 pauses, at most 64, because each load
            // takes its line from the callback thread; with few issued, poll after every pause
            // to flush them as soon as the engine runs dry (docs/measurement-notes.md,
            // "ClosedLoopClient.run: backing off while waiting").
            let waitBackoff = min(64, max(1, (issued - reaped) >> 2))
            var spins = 0
            if polled { pollCompletions(submitted: submitted) }
            // Under `DMACallbackContext.clientPoll` the waiting client runs a full batch's
            // callbacks itself, as the anchors' client does (0 at once in other contexts).
            if issued - reaped >= pollThreshold { _ = ch.poll() }
            var c = completed.pointee.load(ordering: .acquiring)
            while c == reaped {
                if let pump { pump() }
                if polled { pollCompletions(submitted: submitted) }
                if openLoopInterval != nil && !stopSubmitting && submitted - reaped < depth { break }
                spins &+= 1
                if spins &* waitBackoff < 2000 {  // about 44 µs of pauses, then yield
                    for _ in 0..<waitBackoff { cpuRelax() }
                } else {
                    sched_yield()
                }
                if issued - reaped >= pollThreshold { _ = ch.poll() }
                // Ordering: acquire; pairs with the release store of `completed` in the callback.
                c = completed.pointee.load(ordering: .acquiring)
                if spins & 0xFFFF == 0 && submitted > issued { ch.issuePending(); issued = submitted }
                if spins & 0x3FF == 0 && c == reaped {
                    // dmatest's timeout: no completion for this long means the engine stalled.
                    // Terminate (no late callback can follow) and report, never hang.
                    let now = MonotonicClock.now()
                    if waitStart == 0 { waitStart = now }
                    if now - waitStart > spec.stallTimeoutNanoseconds {
                        let wm = ch.debugWatermark()
                        let first = wm.last.next
                        let (st, tx) = ch.status(of: first)
                        let detail = "watermark used \(wm.used) last \(wm.last); cookie \(first.rawValue): \(st.rawValue), residue \(tx.residue)"
                        try? ch.terminateSync()
                        throw WorkloadError(
                            "stalled: \(submitted - reaped) descriptors in flight (\(submitted - issued) not issued) and no completion for \(spec.stallTimeoutNanoseconds / 1_000_000_000) s on backend \(ch.backendName) (\(detail)); terminated")
                    }
                }
            }
            waitStart = 0
            if recordLatency {
                // The latencies of the stamped completions among reaped..<c (the acquire
                // load of `completed` made their entries visible), from the end of the
                // warm-up on.
                var i = (max(reaped, warmupEnd) &+ sampleMask) & ~sampleMask
                while i < c {
                    let e = completions[i & mask]
                    let t0 = stamps[e.slot]
                    _ = histogram.pointee.record(e.stamp > t0 ? clock.nanoseconds(e.stamp &- t0) : 0)
                    i &+= sampleMask &+ 1
                }
            }
            reaped = c
            if !measuring && reaped >= warmupEnd {
                measuring = true
                onMeasureStart?()
                tStart = clock.now()
                measuredStart = reaped
                deadline = tStart &+ durationTicks
            }
            if measuring && !stopSubmitting {
                if submitted >= submitLimit {
                    stopSubmitting = true
                } else if spec.maxDescriptors == nil {
                    if max(lastBurstEnd, tStart) >= deadline || shouldStop() { stopSubmitting = true }
                }
            } else if !measuring && shouldStop() {
                stopSubmitting = true
            }
            if stopSubmitting && reaped == submitted {
                tEnd = clock.now()
                if measuring { onMeasureEnd?() }
                break
            }
            if stopSubmitting && submitted > issued { ch.issuePending(); issued = submitted }
        }
        _ = outOfPool
        // The measured window runs from the completion that ended the warm-up to the last
        // stamped completion (the last completion when every one is stamped), as the C
        // anchors define it, and counts the descriptors completed in it.
        var measured = max(0, reaped - measuredStart)
        var elapsed = measuring ? clock.nanoseconds(tEnd &- tStart) : 0
        if recordLatency && measuring {
            measured = max(0, state.pointee.lastCount - warmupEnd)
            let first = warmupEnd == base ? runStart : state.pointee.firstStamp
            elapsed = state.pointee.lastStamp > first ? clock.nanoseconds(state.pointee.lastStamp - first) : 0
        }
        if spec.verify && faultEvery == 0 {
            // Every slot's latest copy (slots fill from descriptor 0 of the first run on);
            // its guards only where that descriptor was a sampled one.
            for s in 0..<min(nslots, submitted) {
                let k = submitted &- 1 &- ((submitted &- 1 &- s) & mask)
                if let sg = state.pointee.sg {
                    _ = state.pointee.verifier.verifySG(
                        descriptor: k, slot: s, guarded: copies[s].guarded, layout: sg, src: src.base, dst: dst.base, stride: stride)
                } else {
                    _ = state.pointee.verifier.verify(
                        descriptor: k, slot: s, copy: copies[s], src: src.base, dst: dst.base, stride: stride, size: size)
                }
            }
        }
        var sample = WorkloadSample(
            descriptors: measured, elapsedNanoseconds: elapsed, submitNanoseconds: clock.nanoseconds(submitTicks),
            errors: state.pointee.errors, verifyFailures: state.pointee.verifier.badDescriptors, outOfOrder: state.pointee.outOfOrder)
        sample.meanLength = lengthCount == 0 ? Double(size) : Double(lengthSum) / Double(lengthCount)
        if spec.verify { sample.verification = state.pointee.verifier.summary(sampleEvery: verifyEvery) }
        if flushCount > 0 { sample.flushNanosecondsPerDescriptor = Double(clock.nanoseconds(flushTicks)) / Double(flushCount) }
        state.pointee.errors = 0
        state.pointee.verifier.reset()
        state.pointee.outOfOrder = 0
        return sample
    }

    /// Polled completion: the status of the oldest outstanding cookie; when it is complete,
    /// it and every later one the same snapshot shows complete are counted, as the callback
    /// would have (an out-of-order backend's later cookies are asked one by one, rule S8).
    /// Only this thread writes `completed` in polled mode.
    @inline(__always)
    func pollCompletions(submitted: Int) {
        let completed = state.pointee.completed
        let mask = nslots - 1
        var n = completed.pointee.load(ordering: .relaxed)
        guard n < submitted else { return }
        let (st, tx) = channel.status(of: cookies[n & mask])
        // S4: the outcome of a transfer reaches only its callback, so a polled client
        // counts ERROR as done (and failed) and everything else as still running.
        guard st == .complete || st == .error else { return }
        recordCompletion(state, slot: n & mask, code: st == .error ? .readFailed : .noError, cookie: cookies[n & mask])
        n &+= 1
        if !completionNoOrder {
            while n < submitted, DMACookieWatermark.isComplete(cookies[n & mask], last: tx.last, used: tx.used) {
                recordCompletion(state, slot: n & mask, code: .noError, cookie: cookies[n & mask])
                n &+= 1
            }
        }
    }
}

/// Which specialization of `ClosedLoopClient.run` a spec needs.
protocol LoopVariants { static var enabled: Bool { get } }
/// Fixed offsets, callbacks, no per-slot flush: the anchors' workload.
enum AnchorLoop: LoopVariants { static var enabled: Bool { false } }
/// Random offsets, polled completion or cold caches by flush.
enum VariantLoop: LoopVariants { static var enabled: Bool { true } }
