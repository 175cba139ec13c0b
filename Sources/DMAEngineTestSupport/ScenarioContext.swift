// dmabench — DMAEngineTestSupport
//
// What every scenario uses: failure recording with scenario and iteration, the heartbeat
// the watchdog reads, channels wired to a guarded allocator and an access monitor, waits
// that drive hand-driven doubles, callback logs, and a seeded random generator.

#if os(Linux)
import DMAEngine
import Glibc
import Platform
import Synchronization

/// A scenario that does not apply to the channel under test, with the reason.
struct ScenarioSkip: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

/// SplitMix64: small, seedable, good enough to randomize sleeps, lengths and offsets.
public struct ConformanceRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A short random delay: mostly nothing or a few spins, sometimes a yield, rarely a
    /// sleep of up to `maxMicroseconds`. Races need varied interleavings, not long pauses.
    public mutating func jitter(maxMicroseconds: Int = 50) {
        switch Int.random(in: 0..<16, using: &self) {
        case 0..<6: break
        case 6..<11:
            for _ in 0..<Int.random(in: 1...200, using: &self) { cpuRelax() }
        case 11..<15: sched_yield()
        default: MonotonicClock.sleep(nanoseconds: Int64(Int.random(in: 1...maxMicroseconds, using: &self)) * 1000)
        }
    }
}

/// A channel with its guarded allocator and access monitor.
final class Rig: @unchecked Sendable {
    let channel: any DMAChannel
    let allocator: GuardedAllocator
    let monitor: AccessMonitor
    let released = Atomic<Bool>(false)

    init(channel: any DMAChannel, allocator: GuardedAllocator, monitor: AccessMonitor) {
        self.channel = channel
        self.allocator = allocator
        self.monitor = monitor
    }

    var caps: DMACapabilities { channel.capabilities }

    /// `issuePending` as a scenario that needs the engine beside the client makes it: on a
    /// backend with `synchronousIssue` the call does the work (a stall blocks it), so it runs
    /// on a helper thread, which then plays the engine; the scenario joins it at its end
    /// (`joinIssuer`). Elsewhere a plain call.
    func issueBeside() throws {
        guard caps.synchronousIssue else {
            channel.issuePending()
            return
        }
        let channel = self.channel
        let t = try OSThread(name: "scenario-issuer") { channel.issuePending() }
        issuers.withLock { $0.append(t) }
    }

    func joinIssuer() {
        for t in issuers.withLock({ list -> [OSThread] in defer { list = [] }; return list }) { t.join() }
    }

    private let issuers = LockedValue<[OSThread]>([])
}

/// Source and destination of one copy, with the dmatest patterns in place.
final class Transfer: @unchecked Sendable {
    let src: GuardedBuffer
    let dst: GuardedBuffer
    let srcOffset: Int
    let dstOffset: Int
    let length: Int

    init(src: GuardedBuffer, dst: GuardedBuffer, srcOffset: Int, dstOffset: Int, length: Int) {
        self.src = src
        self.dst = dst
        self.srcOffset = srcOffset
        self.dstOffset = dstOffset
        self.length = length
        refill()
    }

    func refill() {
        DMATestPattern.fillSource(src.bytes, region: srcOffset..<(srcOffset + length))
        DMATestPattern.fillDestination(dst.bytes, region: dstOffset..<(dstOffset + length))
    }

    var source: UnsafeRawPointer { UnsafeRawPointer(src.base + srcOffset) }
    var destination: UnsafeMutableRawPointer { dst.base + dstOffset }

    func verify() -> [String] {
        DMATestPattern.verifyCopy(
            source: src.readOnlyBytes, sourceOffset: srcOffset, destination: dst.readOnlyBytes,
            destinationOffset: dstOffset, length: length)
    }

    func verifyUntouched() -> [String] {
        DMATestPattern.verifyUntouchedDestination(dst.readOnlyBytes, region: dstOffset..<(dstOffset + length))
    }

    func snapshot() -> [UInt8] { Array(dst.readOnlyBytes) }
}

/// Records callbacks and checks the callback rules on every entry: K2 (status COMPLETE
/// inside the callback), K3 (never two at once), K4 (non-blocking context, no backend
/// lock), and that the context was not freed (scenarios 15, 19).
final class CallbackLog: @unchecked Sendable {
    let entries = Atomic<Int>(0)
    let inCallback = Atomic<Int>(0)
    let maxConcurrent = Atomic<Int>(0)
    /// Set when the client "frees" the callback context; an entry afterwards is a failure.
    let freed = Atomic<Bool>(false)
    private let records = LockedValue<[DMACompletion]>([])
    let checkStatus: Bool

    init(checkStatus: Bool = true) { self.checkStatus = checkStatus }

    var completions: [DMACompletion] { records.withLock { $0 } }
    var cookies: [DMACookie] { records.withLock { $0.map(\.cookie) } }
    /// Callbacks entered and recorded. Ordering: acquire; pairs with the release add in `enter`.
    var count: Int { entries.load(ordering: .acquiring) }

    /// A `callback_result` that logs and checks, then runs `then` (still inside the callback).
    func callback(
        _ ctx: ScenarioContext, _ channel: any DMAChannel, parameter: UInt64 = 0,
        then: (@Sendable (DMACompletion) -> Void)? = nil
    ) -> DMACallback {
        .result(parameter: parameter) { [weak channel] completion in
            self.enter(ctx, channel, completion)
            then?(completion)
            self.exit()
        }
    }

    func enter(_ ctx: ScenarioContext, _ channel: (any DMAChannel)?, _ completion: DMACompletion) {
        // Ordering: sequentially consistent; two overlapping callbacks must see each other.
        let now = inCallback.add(1, ordering: .sequentiallyConsistent).newValue
        if now > 1 { ctx.fail("rule K3: \(now) callbacks of one channel ran at once (cookie \(completion.cookie))") }
        _ = maxConcurrent.max(now, ordering: .relaxed)
        // Ordering: acquire; pairs with the release store in `markFreed`.
        if freed.load(ordering: .acquiring) {
            ctx.fail("callback for cookie \(completion.cookie) entered after synchronize returned and its context was freed")
        }
        if !NonBlockingContext.isActive {
            ctx.fail("rule K4: callback for cookie \(completion.cookie) does not run in a non-blocking context")
        }
        if NonBlockingContext.holdsBackendLock {
            ctx.fail("rule K4: callback for cookie \(completion.cookie) runs with a backend lock held")
        }
        if checkStatus, let channel {
            let (st, _) = channel.status(of: completion.cookie)
            let ok = st == .complete || (channel.capabilities.completionNoOrder && st == .outOfOrder)
            if !ok { ctx.fail("rule K2: inside its callback cookie \(completion.cookie) reads \(st), expected complete") }
        }
        records.withLock { $0.append(completion) }
        // Counted last, so that a waiter that sees the count also finds the record.
        // Ordering: release; pairs with the acquire load in `count`.
        entries.add(1, ordering: .releasing)
    }

    func exit() {
        // Ordering: sequentially consistent; pairs with the add in `enter`.
        inCallback.subtract(1, ordering: .sequentiallyConsistent)
    }

    func markFreed() {
        // Ordering: release; pairs with the acquire load in `enter`.
        freed.store(true, ordering: .releasing)
    }
}

/// The state of one running scenario.
final class ScenarioContext: @unchecked Sendable {
    let info: ConformanceScenario
    let subject: ConformanceSubject
    let config: ConformanceConfiguration
    let heartbeat = Atomic<UInt64>(MonotonicClock.now())
    let iteration = Atomic<Int>(-1)
    let finished = Atomic<Bool>(false)
    let abandoned = Atomic<Bool>(false)
    let bytes = Atomic<Int>(0)
    private struct Log {
        var failures: [String] = []
        var suppressed = 0
        var notes: [String] = []
        var skip: String?
        var phase = "setup"
        var iterationsRun = 1
        var rigs: [Rig] = []
    }
    private let log = LockedValue(Log())
    var rng: ConformanceRandom

    static let maxFailureLines = 40

    init(info: ConformanceScenario, subject: ConformanceSubject, configuration: ConformanceConfiguration) {
        self.info = info
        self.subject = subject
        self.config = configuration
        self.rng = ConformanceRandom(seed: configuration.seed &+ UInt64(info.number) &* 0x1000_0001)
    }

    // MARK: Recording

    /// Records a failure, prefixed with the scenario and the current iteration.
    func fail(_ message: String) {
        let it = iteration.load(ordering: .relaxed)
        let prefix = "scenario \(info.number)" + (it >= 0 ? ", iteration \(it)" : "") + ": "
        log.withLock { l in
            if l.failures.count < Self.maxFailureLines {
                l.failures.append(prefix + message)
            } else {
                l.suppressed += 1
            }
        }
    }

    func expect(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition { fail(message()) }
    }

    func expectEqual<T: Equatable>(_ seen: T, _ expected: T, _ what: @autoclosure () -> String) {
        if seen != expected { fail("\(what()): expected \(expected), saw \(seen)") }
    }

    /// Expects a call to succeed; records the error otherwise.
    func expectOK(_ what: String, _ body: () throws -> Void) {
        do { try body() } catch { fail("\(what): expected success, got \(describe(error))") }
    }

    /// Expects a call to fail with `expected`.
    func expectError(_ expected: DMAError, _ what: String, _ body: () throws -> Void) {
        do {
            try body()
            fail("\(what): expected .\(expected), but it succeeded")
        } catch {
            if (error as? DMAError) != expected { fail("\(what): expected .\(expected), got \(describe(error))") }
        }
    }

    func describe(_ error: any Error) -> String {
        if let e = error as? DMAError { return ".\(e) (\(e.description))" }
        return "\(error)"
    }

    /// Expects `cookie` to read IN_PROGRESS (or OUT_OF_ORDER on a `completionNoOrder`
    /// backend, rule S8).
    func expectInProgress(_ rig: Rig, _ cookie: DMACookie, _ what: @autoclosure () -> String) {
        let st = rig.channel.status(of: cookie).0
        if st == .inProgress || (rig.caps.completionNoOrder && st == .outOfOrder) { return }
        fail("\(what()): status of cookie \(cookie): expected inProgress, saw \(st)")
    }

    /// Expects `cookie` to read COMPLETE (or OUT_OF_ORDER on a `completionNoOrder` backend
    /// where `allowOutOfOrder`, rule S8).
    func expectComplete(_ rig: Rig, _ cookie: DMACookie, allowOutOfOrder: Bool = true, _ what: @autoclosure () -> String) {
        let st = rig.channel.status(of: cookie).0
        if st == .complete || (allowOutOfOrder && rig.caps.completionNoOrder && st == .outOfOrder) { return }
        fail("\(what()): status of cookie \(cookie): expected complete, saw \(st)")
    }

    func expectVerified(_ lines: [String], _ what: String) {
        if !lines.isEmpty { fail("\(what): data check failed: " + lines.prefix(8).joined(separator: "; ")) }
    }

    func note(_ line: String) { log.withLock { $0.notes.append(line) } }

    var failureCount: Int { log.withLock { $0.failures.count + $0.suppressed } }

    /// The phase name the watchdog reports.
    func phase(_ name: String) {
        log.withLock { $0.phase = name }
        tick()
    }

    var currentPhase: String {
        let it = iteration.load(ordering: .relaxed)
        return log.withLock { $0.phase } + (it >= 0 ? " (iteration \(it))" : "")
    }

    /// Progress: resets the watchdog.
    @inline(__always)
    func tick() { heartbeat.store(MonotonicClock.now(), ordering: .relaxed) }

    func setIteration(_ i: Int) {
        iteration.store(i, ordering: .relaxed)
        tick()
    }

    func iterationsRun(_ n: Int) { log.withLock { $0.iterationsRun = n } }

    func addBytes(_ n: Int) { bytes.add(n, ordering: .relaxed) }

    // MARK: Running

    func runBody(_ body: @Sendable (ScenarioContext) throws -> Void) {
        do {
            try body(self)
        } catch let skip as ScenarioSkip {
            log.withLock { $0.skip = skip.reason }
        } catch let f as ScenarioFailure {
            fail(f.description + " (during \(currentPhase))")
        } catch let e as DMAError {
            fail("unexpected error .\(e) (\(e.description)) during \(currentPhase)")
        } catch {
            fail("unexpected error \(error) during \(currentPhase)")
        }
        iteration.store(-1, ordering: .relaxed)
        cleanUp()
    }

    /// Terminates, returns buffers, and releases every channel the scenario made.
    private func cleanUp() {
        let rigs = log.withLock { l in
            let r = l.rigs
            l.rigs.removeAll()
            return r
        }
        for rig in rigs {
            phase("clean-up of \(rig.channel.backendName)")
            let wasReleased = rig.released.load(ordering: .relaxed)
            if !wasReleased {
                do throws(DMAError) { try rig.channel.terminateSync() } catch {
                    if error != .released { fail("clean-up: terminateSync failed with .\(error)") }
                }
            }
            rig.monitor.allowEverything()
            rig.channel.debugSetAccessProbe(nil)
            // Negative controls (freed buffers unprotected): a defective backend may still copy
            // after terminateSync returned (that is its defect), so release it first, which
            // joins its engine, and leave the buffers to it: unmapping them under a late write
            // killed the test process once (scenario 33, `terminateKeepsCopyingActive`).
            // Late writes still show as broken poison in `finish`.
            let releaseFirst = !config.protectFreedBuffers && !wasReleased
            if releaseFirst {
                do throws(DMAError) { try rig.channel.release() } catch {
                    if error != .released { fail("clean-up: release failed with .\(error)") }
                }
            }
            for p in rig.allocator.finish(channelReleased: wasReleased || releaseFirst) { fail(p) }
            if !wasReleased && !releaseFirst {
                do throws(DMAError) { try rig.channel.release() } catch {
                    if error != .released { fail("clean-up: release failed with .\(error)") }
                }
            }
        }
    }

    func result(duration: Double) -> ScenarioResult {
        log.withLock { l in
            var notes = l.notes
            if let s = config.scalingNote, info.isRace || info.number == 34 { notes.append(s) }
            let outcome: ScenarioResult.Outcome
            if !l.failures.isEmpty {
                var f = l.failures
                if l.suppressed > 0 { f.append("\(l.suppressed) more failures suppressed") }
                f.append("seed \(config.seed) (set DMABENCH_SEED to reproduce)")
                outcome = .failed(f)
            } else if let s = l.skip {
                outcome = .skipped(s)
            } else {
                outcome = .passed
            }
            return ScenarioResult(
                number: info.number, name: info.name, outcome: outcome, iterations: l.iterationsRun,
                duration: duration, bytesCopied: bytes.load(ordering: .relaxed), notes: notes)
        }
    }

    // MARK: Channels

    /// Makes a channel with its guarded allocator and access monitor installed.
    func makeRig(options: DMAChannelOptions? = nil) throws -> Rig {
        phase("creating a \(subject.name) channel")
        let channel = try subject.makeChannel(options ?? config.channelOptions)
        let allocator = GuardedAllocator(channel: channel, protectOnFree: config.protectFreedBuffers)
        let monitor = AccessMonitor(allocator: allocator) { [weak self] msg in self?.fail(msg) }
        channel.debugSetAccessProbe(monitor.probe)
        let rig = Rig(channel: channel, allocator: allocator, monitor: monitor)
        log.withLock { $0.rigs.append(rig) }
        return rig
    }

    /// Allocates source and destination buffers of `bufferSize` and fills them for a copy of
    /// `length` bytes at the given offsets.
    func transfer(_ rig: Rig, bufferSize: Int, srcOffset: Int = 0, dstOffset: Int = 0, length: Int? = nil) throws
        -> Transfer
    {
        let len = length ?? bufferSize
        precondition(srcOffset + len <= bufferSize && dstOffset + len <= bufferSize)
        let src = try rig.allocator.allocate(bufferSize, label: "source")
        let dst = try rig.allocator.allocate(bufferSize, label: "destination")
        return Transfer(src: src, dst: dst, srcOffset: srcOffset, dstOffset: dstOffset, length: len)
    }

    /// Prepares a memcpy for `t`, with `callback` (if any), `injection` (if any).
    func prep(
        _ rig: Rig, _ t: Transfer, flags: DMAPrepFlags = .default, callback: DMACallback? = nil,
        injection: DMAInjection? = nil, what: String = "prepareMemcpy"
    ) throws -> DMADescriptor {
        guard let d = rig.channel.prepareMemcpy(to: t.destination, from: t.source, length: t.length, flags: flags)
        else {
            throw ScenarioFailure("\(what) returned nil (pool exhausted or arguments refused)")
        }
        if let callback { try rig.channel.setCallback(callback, for: d) }
        if let injection { try rig.channel.debugInject(injection, into: d) }
        return d
    }

    /// Submits and expects a valid cookie.
    @discardableResult
    func submit(_ rig: Rig, _ d: DMADescriptor, length: Int = 0) throws -> DMACookie {
        let c = rig.channel.submit(d)
        guard c.isValid else { throw ScenarioFailure("submit returned the error cookie \(c)") }
        addBytes(length)
        return c
    }

    /// A slow injection: `length` bytes over `config.slowTransferSeconds` (or `seconds`).
    func slow(_ length: Int, seconds: Double? = nil, chunks: Int = 16) -> DMAInjection {
        .slow(length: length, nanoseconds: Int64((seconds ?? config.slowTransferSeconds) * 1e9), chunks: chunks)
    }

    // MARK: Waiting

    /// Drives a hand-driven channel once (no-op for real backends).
    func drive(_ rig: Rig) {
        if let d = subject.drive, !rig.released.load(ordering: .relaxed) { d(rig.channel) }
    }

    /// Waits until `condition` holds, driving hand-driven channels and (unless `poll` is
    /// false) polling the channel; fails after `timeout` (default: the watchdog) and returns
    /// false.
    @discardableResult
    func waitUntil(
        _ what: @autoclosure () -> String, rig: Rig? = nil, poll: Bool = true, timeout: Double? = nil,
        failOnTimeout: Bool = true, _ condition: () -> Bool
    ) -> Bool {
        let limit = UInt64((timeout ?? config.watchdogSeconds) * 1e9)
        let start = MonotonicClock.now()
        var spins = 0
        while true {
            if condition() { return true }
            if let rig {
                drive(rig)
                // A client that polls (`DMACallbackContext.clientPoll`): callbacks may run here.
                if poll && !rig.released.load(ordering: .relaxed) { _ = rig.channel.poll() }
            }
            if condition() { return true }
            if MonotonicClock.now() &- start > limit {
                if failOnTimeout { fail("timed out after \(format3(Double(limit) / 1e9)) s waiting until \(what())") }
                return false
            }
            spins += 1
            if spins < 64 {
                sched_yield()
            } else {
                MonotonicClock.sleep(nanoseconds: spins < 1000 ? 20_000 : 200_000)
                if spins & 63 == 0 { tick() }
            }
        }
    }

    /// Sleeps `seconds`, driving hand-driven channels meanwhile.
    func idle(_ seconds: Double, rig: Rig? = nil) {
        let end = MonotonicClock.now() &+ UInt64(seconds * 1e9)
        while MonotonicClock.now() < end {
            if let rig { drive(rig) }
            MonotonicClock.sleep(nanoseconds: min(5_000_000, Int64(end &- min(end, MonotonicClock.now()))))
            tick()
        }
    }

    /// Runs `body` on `count` threads and joins them. A thread that cannot start is a failure.
    func onThreads(_ count: Int, name: String, _ body: @escaping @Sendable (Int) -> Void) {
        var threads: [OSThread] = []
        for i in 0..<count {
            do { threads.append(try OSThread(name: "\(name)-\(i)") { body(i) }) } catch {
                fail("could not start thread \(name)-\(i): \(error)")
            }
        }
        for t in threads { t.join() }
    }

    /// Starts one thread; the caller joins it.
    func spawn(_ name: String, _ body: @escaping @Sendable () -> Void) throws -> OSThread {
        try OSThread(name: name, body)
    }

    /// Measures a call, failing if it takes longer than `config.promptSeconds` (calls that
    /// the contract says must return at once).
    func prompt<R>(_ what: String, _ body: () throws -> R) rethrows -> R {
        let start = MonotonicClock.now()
        let r = try body()
        let took = Double(MonotonicClock.now() &- start) / 1e9
        if took > config.promptSeconds {
            fail("\(what) took \(format3(took)) s; it must return promptly (bound \(config.promptSeconds) s)")
        }
        return r
    }

    func markReleased(_ rig: Rig) { rig.released.store(true, ordering: .relaxed) }
}

/// A failure that ends the scenario (thrown from helpers).
struct ScenarioFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A monotonic sequence counter that orders events seen by different threads (scenarios 16,
/// 17): each event takes the next number.
final class EventSequence: @unchecked Sendable {
    private let counter = Atomic<Int>(0)
    /// Ordering: sequentially consistent; every event is ordered with every other.
    func next() -> Int { counter.add(1, ordering: .sequentiallyConsistent).newValue }
}
#endif
