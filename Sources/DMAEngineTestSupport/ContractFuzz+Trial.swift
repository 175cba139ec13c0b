// dmabench — DMAEngineTestSupport
//
// One trial of the random-client checker: a fresh channel, 1–4 client threads running their
// programs against it, and the end of the trial (resume, drain, terminate, reuse, release).
// The client behaves as a careful real one does (pcm_dmaengine, dmatest): pause, resume and
// terminate are serialized by a control mutex, submits pass a stop gate that a terminate
// closes first (T7), and buffers are freed only after a synchronize (or after their callback).

#if os(Linux)
import DMAEngine
import Glibc
import Platform
import Synchronization

/// A transfer of a trial: its buffers, and the cookie it runs under now (a callback that
/// resubmits, or a REUSE resubmit, gives it a new one).
final class FuzzTransfer: @unchecked Sendable {
    enum Phase { case inFlight, called, freed }
    let id: Int
    let spec: FuzzTransferSpec
    let source: GuardedBuffer?
    let destination: GuardedBuffer
    // Guarded by `FuzzTrial.state`.
    var cookie = DMACookie(0)
    var descriptor: DMADescriptor?
    var phase = Phase.inFlight
    var resubmitsLeft = 0
    var reuseLeft = 0
    var generation = 0
    var submitEpoch = 0
    /// Between the call to `submit` and the recording of the cookie it returned. Another
    /// thread's issuePending may complete the transfer inside that window, and its callback
    /// then waits for the cookie instead of taking itself for a stale one.
    var submitting = false
    /// The history numbers just before the current cookie's submit was called and just
    /// after it returned.
    var submitInvocation = 0
    var submitResponse = 0
    /// The history number just before the first submit: the destination is pristine only
    /// until then (a callback's resubmit finds it already written by the earlier cookie).
    var firstSubmitInvocation = -1
    var periods = 0

    init(id: Int, spec: FuzzTransferSpec, source: GuardedBuffer?, destination: GuardedBuffer) {
        self.id = id
        self.spec = spec
        self.source = source
        self.destination = destination
        resubmitsLeft = { if case .resubmit(let n) = spec.action { return n } else { return 0 } }()
        reuseLeft = spec.reuse
    }

    var region: Range<Int> { spec.destinationOffset..<(spec.destinationOffset + spec.length) }

    func sourceByte(_ k: Int, generation g: Int) -> UInt8 { FuzzPattern.source[(k + FuzzPattern.phase(id, g)) % 251] }

    func fillSource(generation g: Int) {
        guard let s = source else { return }
        FuzzPattern.fill(s.base + spec.sourceOffset, count: spec.length, table: FuzzPattern.sourceTable, phase: FuzzPattern.phase(id, g))
    }

    func fillDestination() {
        FuzzPattern.fill(destination.base, count: destination.count, table: FuzzPattern.destinationTable, phase: 0)
    }

    /// A copy of the whole destination buffer.
    func destinationSnapshot() -> [UInt8] { Array(destination.readOnlyBytes) }

    func destinationEquals(_ snapshot: [UInt8]) -> Bool {
        snapshot.withUnsafeBytes { memcmp($0.baseAddress!, destination.base, destination.count) == 0 }
    }

    /// The first byte that is wrong after a completed transfer (its region holds a source
    /// byte of some generation, or the fill value; the rest keeps the destination pattern).
    /// Compared a block at a time with memcmp; a block that matches no single generation is
    /// checked byte by byte (chunks of different generations may meet inside it).
    func verify() -> String? {
        let b = destination.readOnlyBytes
        let r = region
        if let k = FuzzPattern.firstMismatch(destination.base, count: r.lowerBound, table: FuzzPattern.destinationTable, phase: 0) {
            return "guard byte \(k) before the region \(r) changed"
        }
        if let k = FuzzPattern.firstMismatch(destination.base + r.upperBound, count: b.count - r.upperBound, table: FuzzPattern.destinationTable, phase: r.upperBound) {
            return "guard byte \(r.upperBound + k) after the region \(r) changed"
        }
        if spec.kind == .memset {
            if let k = (0..<spec.length).first(where: { b[r.lowerBound + $0] != spec.value }) {
                return "byte \(k) of the fill is 0x\(String(b[r.lowerBound + k], radix: 16)), expected 0x\(String(spec.value, radix: 16))"
            }
            return nil
        }
        let block = 4096
        var off = 0
        while off < spec.length {
            let n = min(block, spec.length - off)
            let p = destination.base + r.lowerBound + off
            let whole = (0...generation).contains { g in
                FuzzPattern.firstMismatch(p, count: n, table: FuzzPattern.sourceTable, phase: FuzzPattern.phase(id, g) + off) == nil
            }
            if !whole {
                for k in off..<(off + n) {
                    let v = b[r.lowerBound + k]
                    if (0...generation).contains(where: { sourceByte(k, generation: $0) == v }) { continue }
                    if spec.kind == .cyclic && v == FuzzPattern.destinationTable[(r.lowerBound + k) % 241] { continue }
                    return "byte \(k) of the copy is 0x\(String(v, radix: 16)), from no version of the source"
                }
            }
            off += n
        }
        return nil
    }
}

/// The byte patterns of the checker: a source and a destination table of prime periods (251
/// and 241), laid out repeatedly so that a fill or a comparison is one memcpy or memcmp.
enum FuzzPattern {
    static let source: [UInt8] = table(251, seed: 0x5EED)
    static let destination: [UInt8] = table(241, seed: 0xD57)
    static let span = (1 << 20) + 4096
    // Written once, when first used, and only read after that.
    nonisolated(unsafe) static let sourceTable = repeated(source)
    nonisolated(unsafe) static let destinationTable = repeated(destination)

    static func table(_ n: Int, seed: UInt64) -> [UInt8] {
        var r = ConformanceRandom(seed: seed)
        return (0..<n).map { _ in UInt8.random(in: 0...255, using: &r) }
    }
    static func repeated(_ t: [UInt8]) -> UnsafeMutablePointer<UInt8> {
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: span + t.count)
        for i in 0..<(span + t.count) { p[i] = t[i % t.count] }
        return p
    }
    static func phase(_ id: Int, _ g: Int) -> Int { (id &* 7 &+ g &* 97) % 251 }
    static func period(_ table: UnsafeMutablePointer<UInt8>) -> Int { table == sourceTable ? 251 : 241 }

    static func fill(_ p: UnsafeMutableRawPointer, count: Int, table: UnsafeMutablePointer<UInt8>, phase: Int) {
        var done = 0
        while done < count {
            let n = min(span, count - done)
            memcpy(p + done, table + (phase + done) % period(table), n)
            done += n
        }
    }

    static func firstMismatch(_ p: UnsafeRawPointer, count: Int, table: UnsafeMutablePointer<UInt8>, phase: Int) -> Int? {
        var done = 0
        while done < count {
            let n = min(span, count - done)
            let q = table + (phase + done) % period(table)
            if memcmp(p + done, q, n) != 0 {
                for k in 0..<n where p.load(fromByteOffset: done + k, as: UInt8.self) != q[k] { return done + k }
            }
            done += n
        }
        return nil
    }
}

/// A pthread read-write lock: the stop gate. Submitters (client threads and callbacks) hold
/// it shared while they check the gate and submit; a terminate holds it exclusively to close
/// the gate, so every submit either came before the terminate or saw the gate closed.
final class FuzzGate: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_rwlock_t>.allocate(capacity: 1)
    private var stopping = false
    init() {
        lock.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(lock, nil)
    }
    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }
    /// Runs `body` if the gate is open, holding it shared.
    func ifOpen(_ body: () -> Void) {
        pthread_rwlock_rdlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        if !stopping { body() }
    }
    func set(stopping s: Bool) {
        pthread_rwlock_wrlock(lock)
        stopping = s
        pthread_rwlock_unlock(lock)
    }
}

final class FuzzTrial: @unchecked Sendable {
    struct State {
        var transfers: [Int: FuzzTransfer] = [:]
        var nextID = 0
        /// Terminates begun (counted before the call) and ended (after it returned). A
        /// transfer, or a pause window, is clean of terminates when no terminate was under
        /// way at its start and none began before its end.
        var epoch = 0
        var terminatesEnded = 0
        /// The epoch when no terminate is under way, else -1 (matches no epoch).
        var quietEpoch: Int { epoch == terminatesEnded ? epoch : -1 }
        var paused = false
        var allocated = 0
    }
    let channel: any DMAChannel
    let caps: DMACapabilities
    let allocator: GuardedAllocator
    let history = FuzzHistory()
    let state = LockedValue(State())
    let control = LockedValue(0)
    let gate = FuzzGate()
    let needsSync = Atomic<Bool>(false)
    /// The invocation number of the last terminateAsync made by a callback.
    let callbackTerminate = Atomic<Int>(0)
    let watchdogSeconds: Double
    let seed: UInt64
    let pauses = Atomic<Int>(0)
    let callbacks = Atomic<Int>(0)
    /// Bytes a trial may hold in buffers; past it, transfers shrink to 4 KiB.
    static let memoryBudget = 24 << 20

    init(channel: any DMAChannel, protect: Bool, watchdogSeconds: Double, seed: UInt64) {
        self.channel = channel
        self.caps = channel.capabilities
        self.allocator = GuardedAllocator(channel: channel, protectOnFree: protect, quarantineLimit: 16)
        self.watchdogSeconds = watchdogSeconds
        self.seed = seed
        let history = self.history
        let allocator = self.allocator
        // T3 (a): an engine access to a freed buffer is reported at once, with the seed,
        // before the write faults on the protected page.
        channel.debugSetAccessProbe { access in
            if let b = allocator.freedBuffer(overlapping: access.address, count: access.count) {
                let line = "T3: the engine \(access.kind == .read ? "read" : "wrote") \(access.count) B of \(b.label) (cookie \(access.cookie)) after it was freed; seed \(seed)\n"
                // Out at once: the process may fault right after this.
                Files.writeToStandardError(line)
                history.violation(-1, line.dropLast().description)
            }
        }
    }

    // MARK: Operations

    func run(_ op: FuzzOp, thread t: Int) {
        if needsSync.load(ordering: .acquiring) { synchronizeAfterCallbackTerminate(t) }  // Ordering: acquire; pairs with the release store in a callback.
        switch op {
        case .transfer(let spec): startTransfer(spec, thread: t)
        case .batch(let n, let len, let pause):
            let spec = FuzzTransferSpec(
                kind: .memcpy, length: len, sourceOffset: 0, destinationOffset: 0, tail: 0, value: 0, period: 0,
                polled: false, reuse: 0, action: .none, issue: false)
            for _ in 0..<n { startTransfer(spec, thread: t) }
            let i = history.tick()
            channel.issuePending()
            history.record(t, i, .issue)
            // Pause and resume in quick succession while the batch drains, as a client that
            // toggles a stream: each window is another chance to catch the engine mid-batch.
            if pause { for k in 0..<8 { pauseWindow(thread: t, hold: k == 7 ? 1000 : 20, end: 0) } }
        case .issuePending:
            let i = history.tick()
            channel.issuePending()
            history.record(t, i, .issue)
        case .poll: poll(thread: t)
        case .reap: reap(thread: t)
        case .pause(let hold, let end): pauseWindow(thread: t, hold: hold, end: end)
        case .terminateSync: control.withLock { _ in terminateSync(thread: t) }
        case .terminateAsyncSynchronize: control.withLock { _ in terminateAsyncSynchronize(thread: t) }
        case .configure(let burst): try? channel.configure(DMAConfig(burstBytes: burst))
        case .sleep(let us): MonotonicClock.sleep(nanoseconds: Int64(us) * 1000)
        }
    }

    func startTransfer(_ spec0: FuzzTransferSpec, thread t: Int) {
        var spec = spec0
        let tooMuch = state.withLock { $0.allocated > Self.memoryBudget }
        if tooMuch && spec.kind != .cyclic { spec.length = min(spec.length, 4096) }
        let id = state.withLock { s -> Int in
            s.nextID += 1
            s.allocated += 2 * (spec.length + 192)
            return s.nextID
        }
        let dst: GuardedBuffer
        var src: GuardedBuffer? = nil
        do {
            dst = try allocator.allocate(spec.destinationOffset + spec.length + spec.tail, label: "dst#\(id)")
            if spec.kind != .memset { src = try allocator.allocate(spec.sourceOffset + spec.length, label: "src#\(id)") }
        } catch {
            return  // the backend's coherent pool is full: a resource limit, not a violation
        }
        let x = FuzzTransfer(id: id, spec: spec, source: src, destination: dst)
        x.fillDestination()
        x.fillSource(generation: 0)
        state.withLock { $0.transfers[id] = x }
        var submitted = false
        gate.ifOpen { submitted = submit(x, thread: t, reusing: nil) }
        if submitted && spec.issue { issue(thread: t) }
    }

    /// issuePending, outside the stop gate: a backend with `synchronousIssue` runs callbacks
    /// inside it, and a callback's stop closes the gate (a write lock this thread must not hold
    /// shared).
    func issue(thread t: Int) {
        let j = history.tick()
        channel.issuePending()
        history.record(t, j, .issue)
    }

    /// Prepares (or reuses) the descriptor, submits it and records the submit. Gate held; the
    /// caller issues after leaving the gate.
    @discardableResult
    func submit(_ x: FuzzTransfer, thread t: Int, reusing: DMADescriptor?) -> Bool {
        let spec = x.spec
        var d = reusing
        if d == nil {
            let flags: DMAPrepFlags = spec.polled ? .ack : .default
            let dst = x.destination.base + spec.destinationOffset
            switch spec.kind {
            case .memcpy:
                d = channel.prepareMemcpy(to: dst, from: x.source!.base + spec.sourceOffset, length: spec.length, flags: flags)
            case .memset: d = channel.prepareMemset(to: dst, value: spec.value, length: spec.length, flags: flags)
            case .cyclic:
                d = channel.prepareCyclic(to: dst, from: x.source!.base, bufferLength: spec.length, periodLength: spec.period, flags: flags)
            }
            guard let d else { return false }  // pool exhausted: allowed (prep returns nil)
            if !spec.polled {
                do { try channel.setCallback(callback(for: x), for: d) } catch {
                    history.violation(t, "A.2: setCallback on a fresh descriptor failed: \(error)")
                    return false
                }
            }
            if spec.reuse > 0 {
                do { try channel.setReuse(true, for: d) } catch {
                    history.violation(t, "A.9: setReuse failed although descriptorReuse is advertised: \(error)")
                }
            }
        }
        let epoch = state.withLock { s in
            x.submitting = true
            return s.quietEpoch
        }
        let i = history.tick()
        let cookie = channel.submit(d!)
        guard cookie.isValid else {
            state.withLock { _ in x.submitting = false }
            history.violation(t, "A.2: submit returned the negative cookie \(cookie) with no failure injected")
            return false
        }
        let r = history.tick()
        state.withLock { _ in
            x.cookie = cookie
            x.submitting = false
            x.descriptor = d
            x.phase = .inFlight
            x.submitEpoch = epoch
            x.submitInvocation = i
            x.submitResponse = r
            if x.firstSubmitInvocation < 0 { x.firstSubmitInvocation = i }
        }
        history.record(t, i, r, .submit(transfer: x.id, cookie: cookie, kind: spec.kind, length: spec.length, callback: !spec.polled))
        return true
    }

    func callback(for x: FuzzTransfer) -> DMACallback {
        .result { [self] completion in
            let entry = history.tick()
            let (inside, _) = channel.status(of: completion.cookie)
            callbacks.wrappingAdd(1, ordering: .relaxed)
            let spec = x.spec
            var resubmit = false
            var terminate = false
            // A callback can overtake the submitting thread's recording of its cookie (the
            // cookie is only known once `submit` returns): it waits for that record, or it
            // would take itself for a stale cookie's and leave the transfer in flight for ever.
            while state.withLock({ _ in spec.kind != .cyclic && x.submitting && completion.cookie != x.cookie }) {
                sched_yield()
            }
            state.withLock { _ in
                if spec.kind == .cyclic {
                    x.periods += 1
                    terminate = spec.action == .terminateAsync && x.periods >= spec.stopAfterPeriods
                } else if completion.cookie == x.cookie {
                    if x.resubmitsLeft > 0 {
                        x.resubmitsLeft -= 1
                        resubmit = true
                    } else {
                        x.phase = .called
                    }
                }
            }
            if spec.kind != .cyclic && completion.result.code != .noError {
                history.violation(-1, "K5: cookie \(completion.cookie) completed with \(completion.result.code.rawValue), residue \(completion.result.residue), no fault injected")
            }
            if resubmit {
                var done = false
                gate.ifOpen { done = submit(x, thread: -1, reusing: nil) }
                if done { issue(thread: -1) } else { state.withLock { _ in x.phase = .called } }
            }
            switch spec.action {
            case .terminateAsync where spec.kind != .cyclic || terminate:
                if spec.kind != .cyclic || !needsSync.load(ordering: .relaxed) { stopFromCallback() }
            case .illegalBlocking: tryBlockingCalls()
            default: break
            }
            history.record(-1, entry, .callback(cookie: completion.cookie, kind: spec.kind, inside: inside))
        }
    }

    /// pcm_dmaengine's STOP from the period callback: close the gate, terminateAsync; a
    /// client thread synchronizes later (`synchronizeAfterCallbackTerminate`).
    func stopFromCallback() {
        gate.set(stopping: true)
        state.withLock { $0.epoch += 1 }
        let i = history.tick()
        do { try channel.terminateAsync() } catch {
            history.violation(-1, "T1: terminateAsync from a callback failed: \(error)")
        }
        history.record(-1, i, .terminateAsync(fromCallback: true))
        state.withLock { $0.terminatesEnded += 1 }
        // Ordering: relaxed; published by the release store of `needsSync` below.
        callbackTerminate.store(i, ordering: .relaxed)
        // Ordering: release; pairs with the acquire load in `run`.
        needsSync.store(true, ordering: .releasing)
    }

    /// K4: each blocking call from a callback fails with `.illegalContext` and returns.
    func tryBlockingCalls() {
        let calls: [(String, () throws(DMAError) -> Void)] = [
            ("synchronize", channel.synchronize), ("terminateSync", channel.terminateSync), ("release", channel.release),
        ]
        for (name, call) in calls {
            do throws(DMAError) {
                try call()
                history.violation(-1, "K4: \(name) from a callback returned normally; expected .illegalContext")
            } catch {
                if error != .illegalContext { history.violation(-1, "K4: \(name) from a callback failed with \(error); expected .illegalContext") }
            }
        }
    }

    func liveTransfers() -> [FuzzTransfer] {
        state.withLock { s in s.transfers.values.filter { $0.phase == .inFlight }.sorted { $0.id < $1.id } }
    }

    func poll(thread t: Int) {
        // Under `DMACallbackContext.clientPoll` the callbacks waiting run here, on this thread.
        _ = channel.poll()
        for x in liveTransfers() {
            let c = state.withLock { _ in x.cookie }
            guard c.isValid else { continue }
            let i = history.tick()
            let (s, st) = channel.status(of: c)
            history.record(t, i, .status(cookie: c, status: s, state: st))
        }
    }
}
#endif
