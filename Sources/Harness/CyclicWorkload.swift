// dmabench — Harness
//
// The cyclic workload (docs/architecture.md, "Workloads"; docs/measurement-notes.md,
// "Scatter-gather and cyclic streams"): a paced cyclic stream of P periods, as a sound, SPI
// or UART driver runs one, measured for how late its period callbacks start after the
// engine ended each period, how many periods each callback covers, how many periods were
// overwritten before their callback ran, and what stopping, pausing and resuming a running
// stream cost.

import DMAEngine
import Histogram
import Platform
import Synchronization

/// What one cyclic point asks for.
public struct CyclicSpec: Sendable, Hashable {
    public var periodBytes: Int
    public var periods: Int
    /// Bytes per second of the peripheral's request line (0: memory speed).
    public var pace: Int
    /// The measured window: at least this long, and at least `minimumPeriods` periods.
    public var durationNanoseconds: UInt64
    /// Busy work in each period callback (a consumer's processing), nanoseconds.
    public var periodWorkNanoseconds: Int = 0
    public var verify: Bool = true
    /// A period's bytes move in this many bursts (each waits for its share of the pace).
    public static let burstsPerPeriod = 8
    /// The window covers at least this many periods at the pace.
    public static let minimumPeriods = 16

    public init(periodBytes: Int, periods: Int, pace: Int, durationNanoseconds: UInt64) {
        self.periodBytes = periodBytes
        self.periods = periods
        self.pace = pace
        self.durationNanoseconds = durationNanoseconds
    }

    /// One period at the pace, in nanoseconds (0 at memory speed).
    public var periodNanoseconds: Double { pace > 0 ? Double(periodBytes) * 1e9 / Double(pace) : 0 }

    /// The window: `durationNanoseconds`, stretched to `minimumPeriods` periods, at most 10 s.
    public var windowNanoseconds: UInt64 {
        UInt64(min(10e9, max(Double(durationNanoseconds), periodNanoseconds * Double(Self.minimumPeriods))))
    }

    /// `DMAConfig.burstBytes` for the stream.
    public var burstBytes: Int { max(64, periodBytes / Self.burstsPerPeriod) }
}

/// What one repetition measured.
public struct CyclicSample: Sendable {
    public var periodBytes: Int
    public var periods: Int
    public var callbacks: Int
    public var overruns: Int
    /// Periods whose end stamp was gone (more than `DMAPeriodClock.capacity` periods
    /// behind) when their callback ran: no latency recorded for them.
    public var unstamped: Int
    public var elapsedNanoseconds: UInt64
    public var pauseNanoseconds: Double
    public var resumeToNextByteNanoseconds: Double
    public var stopFromCallbackNanoseconds: Double
    public var stopFromClientNanoseconds: Double
    /// Destination bytes that differ from the source after the stream stopped.
    public var mismatchedBytes: Int

    /// From the end of the period before the window to the end of the window's last period
    /// (the engine's stamps); nil when a stamp was gone.
    public var paceSpanNanoseconds: UInt64?

    /// Bytes per second the stream moved in the window: between period-end stamps when
    /// there are both, else over the window.
    public var achievedPace: Double {
        let span = paceSpanNanoseconds ?? elapsedNanoseconds
        return span == 0 ? 0 : Double(periods * periodBytes) * 1e9 / Double(span)
    }
}

/// The period callback's state, reached through `callback_param` (the callback captures
/// nothing). The counters the client reads are atomics written only by the callback
/// (callbacks never overlap, K3); `consumed` is the callback's alone.
final class CyclicState: @unchecked Sendable {
    let clock: DMAPeriodClock
    let channel: any DMAChannel
    let periods: UInt64
    let workNanoseconds: UInt64
    let histogram: UnsafeMutablePointer<Histogram<UInt64>>
    /// Periods the callbacks have accounted for (callback thread only).
    var consumed: UInt64 = 0
    let callbacks = Atomic<Int>(0)
    let overruns = Atomic<Int>(0)
    let unstamped = Atomic<Int>(0)
    /// Callbacks record latencies only while the client measures.
    let measuring = Atomic<Bool>(false)
    /// The client asks the next callback to call terminateAsync (the seed's use case).
    let stopRequested = Atomic<Bool>(false)
    let stopStamp = Atomic<UInt64>(0)
    let stopDone = Atomic<Bool>(false)
    let stopFailed = Atomic<Bool>(false)

    init(clock: DMAPeriodClock, channel: any DMAChannel, periods: Int, workNanoseconds: Int) {
        self.clock = clock
        self.channel = channel
        self.periods = UInt64(periods)
        self.workNanoseconds = UInt64(workNanoseconds)
        histogram = .allocate(capacity: 1)
        histogram.initialize(to: Histogram<UInt64>(
            lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three))
    }

    deinit {
        histogram.deinitialize(count: 1)
        histogram.deallocate()
    }

    /// A new stream: its periods count from 0.
    func restart() { consumed = 0 }

    @inline(__always)
    func onPeriod() {
        let now = MonotonicClock.now()
        let n = clock.completedPeriods
        let m = consumed
        if n > m {
            // Period j is overwritten once the engine starts period j + P, i.e. once n > j + P - 1
            // periods are complete: of the unconsumed periods m..<n, those j ≤ n - P.
            if n >= periods && n - periods + 1 > m {
                let lost = Int(n - periods + 1 - m)
                // Ordering: relaxed; only this (serialized) callback writes it.
                overruns.store(overruns.load(ordering: .relaxed) &+ lost, ordering: .relaxed)
            }
            // Ordering: relaxed; see `measuring`'s writer, the client, which reads the histogram
            // only after the stream's synchronize.
            if measuring.load(ordering: .relaxed) {
                let from = max(m, n > UInt64(DMAPeriodClock.capacity) ? n - UInt64(DMAPeriodClock.capacity) : 0)
                var missing = Int(from - m)
                var k = from
                while k < n {
                    if let end = clock.end(ofPeriod: k, now: now) {
                        _ = histogram.pointee.record(now > end ? now - end : 0)
                    } else {
                        missing += 1
                    }
                    k += 1
                }
                if missing > 0 { unstamped.store(unstamped.load(ordering: .relaxed) &+ missing, ordering: .relaxed) }
            }
            consumed = n
        }
        callbacks.store(callbacks.load(ordering: .relaxed) &+ 1, ordering: .relaxed)
        if workNanoseconds > 0 {
            let until = now &+ workNanoseconds
            while MonotonicClock.now() < until { cpuRelax() }
        }
        // Ordering: acquire; pairs with the client's release store of the request.
        if stopRequested.load(ordering: .acquiring) && !stopDone.load(ordering: .relaxed) {
            stopRequested.store(false, ordering: .relaxed)
            stopStamp.store(MonotonicClock.now(), ordering: .relaxed)
            do { try channel.terminateAsync() } catch { stopFailed.store(true, ordering: .relaxed) }
            // Ordering: release; pairs with the client's acquire load: the stamp is visible.
            stopDone.store(true, ordering: .releasing)
        }
    }
}

/// The period callback: the state comes through the parameter.
let cyclicCallback: DMACallback.WithResult = { completion in
    Unmanaged<CyclicState>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(completion.parameter))!).takeUnretainedValue().onPeriod()
}

public final class CyclicClient {
    public let channel: any DMAChannel
    public let spec: CyclicSpec
    let src: DMABuffer
    let dst: DMABuffer
    let state: CyclicState
    public private(set) var verifiedMemory = VerifiedMemory()
    /// Called when the measured window starts and ends (counters).
    public var onMeasureStart: (() -> Void)?
    public var onMeasureEnd: (() -> Void)?

    public init(channel: any DMAChannel, spec: CyclicSpec, memory: MemoryPlacer? = nil) throws {
        guard channel.capabilities.cyclic else {
            throw WorkloadError("backend \(channel.backendName) has no cyclic transfers (cyclic is false)")
        }
        guard let clock = channel.periodClock else {
            throw WorkloadError("backend \(channel.backendName) stamps no period ends (periodClock is nil)")
        }
        self.channel = channel
        self.spec = spec
        let bytes = spec.periodBytes * spec.periods
        do {
            src = try channel.allocateCoherent(byteCount: bytes)
            dst = try channel.allocateCoherent(byteCount: bytes)
        } catch {
            throw WorkloadError("cannot allocate \(2 * bytes) bytes of DMA memory: \(error)")
        }
        if let memory {
            try memory.bind(src, role: .src)
            try memory.bind(dst, role: .dst)
        }
        for p in 0..<spec.periods { Pattern.fill(src.base + p * spec.periodBytes, slot: p, count: spec.periodBytes) }
        memset(dst.base, 0xEE, bytes)
        if let memory {
            verifiedMemory = VerifiedMemory(src: try memory.verify(src, role: .src), dst: try memory.verify(dst, role: .dst))
        }
        state = CyclicState(clock: clock, channel: channel, periods: spec.periods, workNanoseconds: spec.periodWorkNanoseconds)
    }

    deinit {
        channel.freeCoherent(src)
        channel.freeCoherent(dst)
    }

    public var histogram: Histogram<UInt64> { state.histogram.pointee }
    public func resetHistogram() { state.histogram.pointee.reset() }

    /// Starts a stream: configure the pace, prep, submit, issue, and wait until the engine
    /// runs it (its period clock counts for its cookie). Returns its cookie.
    func start() throws -> DMACookie {
        state.restart()
        do {
            try channel.configure(DMAConfig(burstBytes: spec.burstBytes, paceBytesPerSecond: spec.pace))
        } catch { throw WorkloadError("configure(pace \(spec.pace) B/s) failed on backend \(channel.backendName): \(error)") }
        guard let d = channel.prepareCyclic(
            to: dst.base, from: src.base, bufferLength: spec.periodBytes * spec.periods, periodLength: spec.periodBytes, flags: .default)
        else { throw WorkloadError("prepareCyclic returned nil on backend \(channel.backendName)") }
        let parameter = UInt64(UInt(bitPattern: Unmanaged.passUnretained(state).toOpaque()))
        do { try channel.setCallback(DMACallback(withResult: cyclicCallback, parameter: parameter), for: d) } catch {
            throw WorkloadError("setCallback on the cyclic descriptor failed: \(error)")
        }
        let c = channel.submit(d)
        guard c.isValid else { throw WorkloadError("submit of the cyclic descriptor failed with cookie \(c)") }
        channel.issuePending()
        let limit = MonotonicClock.now() &+ 5_000_000_000
        while state.clock.stream != c {
            if MonotonicClock.now() > limit {
                try? channel.terminateSync()
                throw WorkloadError("the engine did not start the cyclic transfer in 5 s on backend \(channel.backendName); terminated")
            }
            sched_yield()
        }
        return c
    }

    /// Waits until `periods` periods have completed, or fails after the pace's time for them
    /// plus 5 s (a stalled stream is reported, never waited on forever).
    func waitForPeriods(_ periods: UInt64, what: String) throws {
        let limit = MonotonicClock.now() &+ UInt64(spec.periodNanoseconds * Double(periods + 1)) &+ 5_000_000_000
        while state.clock.completedPeriods < periods {
            if MonotonicClock.now() > limit {
                try? channel.terminateSync()
                throw WorkloadError("stalled: \(state.clock.completedPeriods) of \(periods) periods completed \(what) on backend \(channel.backendName); terminated")
            }
            MonotonicClock.sleep(nanoseconds: spec.pace > 0 ? 200_000 : 20_000)
        }
    }

    /// One repetition: a stream for the window, then pause/resume, a stop from a period
    /// callback, and a second stream stopped by the client.
    public func run(shouldStop: () -> Bool = { false }) throws -> CyclicSample {
        let cookie = try start()
        try waitForPeriods(2, what: "in the warm-up")
        let c0 = state.callbacks.load(ordering: .relaxed)
        let o0 = state.overruns.load(ordering: .relaxed)
        let u0 = state.unstamped.load(ordering: .relaxed)
        onMeasureStart?()
        // Ordering: relaxed; a latency recorded just before or after the window is harmless.
        state.measuring.store(true, ordering: .relaxed)
        let p0 = state.clock.completedPeriods
        let t0 = MonotonicClock.now()
        // The pace is measured between two period ends (the engine's stamps), not between the
        // window's edges: a window of 47 periods of 10.7 ms holds 46 or 47 whole periods, a 2%
        // quantization that the stamps do not have.
        let e0 = p0 > 0 ? state.clock.end(ofPeriod: p0 - 1, now: t0) : nil
        let window = spec.windowNanoseconds
        while MonotonicClock.now() &- t0 < window && !shouldStop() {
            MonotonicClock.sleep(nanoseconds: Int64(min(10_000_000, window - min(window, MonotonicClock.now() &- t0)) + 1))
        }
        let p1 = state.clock.completedPeriods
        let t1 = MonotonicClock.now()
        let e1 = p1 > 0 ? state.clock.end(ofPeriod: p1 - 1, now: t1) : nil
        state.measuring.store(false, ordering: .relaxed)
        onMeasureEnd?()
        // Ordering: relaxed; counts near the window's edge may include a period more.
        var sample = CyclicSample(
            periodBytes: spec.periodBytes, periods: Int(p1 - p0), callbacks: state.callbacks.load(ordering: .relaxed) - c0,
            overruns: state.overruns.load(ordering: .relaxed) - o0, unstamped: state.unstamped.load(ordering: .relaxed) - u0,
            elapsedNanoseconds: t1 - t0, pauseNanoseconds: 0, resumeToNextByteNanoseconds: 0,
            stopFromCallbackNanoseconds: 0, stopFromClientNanoseconds: 0, mismatchedBytes: 0)
        if let e0, let e1, e1 > e0, p1 > p0 { sample.paceSpanNanoseconds = e1 - e0 }

        // Pause and resume on the running stream: pause-call-to-return, then resume-call to
        // the next byte moved (the residue or the period count changes).
        let pa = MonotonicClock.now()
        do { try channel.pause() } catch { throw WorkloadError("pause of a running cyclic stream failed: \(error)") }
        let pb = MonotonicClock.now()
        sample.pauseNanoseconds = Double(pb - pa)
        let frozenResidue = channel.status(of: cookie).1.residue
        let frozenPeriods = state.clock.completedPeriods
        let ra = MonotonicClock.now()
        do { try channel.resume() } catch { throw WorkloadError("resume of a paused cyclic stream failed: \(error)") }
        var rb = MonotonicClock.now()
        while channel.status(of: cookie).1.residue == frozenResidue && state.clock.completedPeriods == frozenPeriods {
            rb = MonotonicClock.now()
            if rb - ra > 5_000_000_000 { throw WorkloadError("no byte moved in 5 s after resume on backend \(channel.backendName)") }
            cpuRelax()
        }
        sample.resumeToNextByteNanoseconds = Double(rb - ra)

        // STOP from a period callback (terminateAsync there), then synchronize here.
        state.stopDone.store(false, ordering: .relaxed)
        // Ordering: release; pairs with the callback's acquire load of the request.
        state.stopRequested.store(true, ordering: .releasing)
        let limit = MonotonicClock.now() &+ UInt64(spec.periodNanoseconds * 4) &+ 5_000_000_000
        // Ordering: acquire; pairs with the callback's release store (the stamp is visible).
        while !state.stopDone.load(ordering: .acquiring) {
            if MonotonicClock.now() > limit {
                try? channel.terminateSync()
                throw WorkloadError("no period callback in time to stop the stream on backend \(channel.backendName)")
            }
            sched_yield()
        }
        if state.stopFailed.load(ordering: .relaxed) { throw WorkloadError("terminateAsync from a period callback failed") }
        do { try channel.synchronize() } catch { throw WorkloadError("synchronize after a stop from the callback failed: \(error)") }
        let sEnd = MonotonicClock.now()
        sample.stopFromCallbackNanoseconds = Double(sEnd &- state.stopStamp.load(ordering: .relaxed))
        if spec.verify && p1 >= UInt64(spec.periods) {
            // Every period was written at least once from the same source: the buffers match.
            let a = src.base.assumingMemoryBound(to: UInt8.self), b = dst.base.assumingMemoryBound(to: UInt8.self)
            if memcmp(a, b, src.count) != 0 {
                for i in 0..<src.count where a[i] != b[i] { sample.mismatchedBytes += 1 }
            }
        }

        // STOP from the client: a second stream, terminateAsync + synchronize once it runs.
        _ = try start()
        try waitForPeriods(1, what: "before the client's stop")
        let ka = MonotonicClock.now()
        do {
            try channel.terminateAsync()
            try channel.synchronize()
        } catch { throw WorkloadError("terminateAsync + synchronize of a running stream failed: \(error)") }
        sample.stopFromClientNanoseconds = Double(MonotonicClock.now() - ka)
        return sample
    }
}

#if canImport(Glibc)
import Glibc
#endif
