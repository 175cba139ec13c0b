// dmabench — DMAEngineTestSupport
//
// The random-client checker's programs: what each client thread of a trial does, generated
// from one seed, so that a seed replays the same program (the interleaving differs from run
// to run; shrinking therefore re-runs each smaller candidate a few times).

#if os(Linux)
import DMAEngine

/// What a callback does besides recording itself.
enum FuzzCallbackAction: Sendable, Hashable {
    case none
    /// Submits the same copy again, up to this many times, behind the client's stop gate (T7).
    case resubmit(Int)
    /// Calls terminateAsync from the callback (a pcm_dmaengine STOP from the period
    /// callback); some client thread then synchronizes.
    case terminateAsync
    /// Calls synchronize, terminateSync or release, each of which must fail with
    /// `.illegalContext` (K4).
    case illegalBlocking
}

/// One transfer a client prepares and submits.
struct FuzzTransferSpec: Sendable, Hashable {
    var kind: FuzzKind
    var length: Int
    var sourceOffset: Int
    var destinationOffset: Int
    /// Bytes of destination after the region (guard bytes that must keep their pattern).
    var tail: Int
    var value: UInt8
    /// Cyclic: bytes per period (`length` is the whole buffer).
    var period: Int
    /// No INTERRUPT flag and no callback: the client polls (K6).
    var polled: Bool
    /// REUSE: the client resubmits it after each completion, then frees it.
    var reuse: Int
    var action: FuzzCallbackAction
    /// issuePending right after submit.
    var issue: Bool
    /// Cyclic with `.terminateAsync`: the period callback stops the stream after this many
    /// periods.
    var stopAfterPeriods: Int = 0
}

/// One operation of a client thread.
enum FuzzOp: Sendable, Hashable {
    case transfer(FuzzTransferSpec)
    /// `count` small copies submitted back to back, then one issuePending, and optionally a
    /// pause at once (a client that queues a batch and pauses while the engine works on it).
    case batch(count: Int, length: Int, pause: Bool)
    case issuePending
    /// `DMAChannel.poll()`, then reads the status of every live cookie.
    case poll
    /// Verifies what completed, resubmits REUSE descriptors, frees buffers.
    case reap
    /// Pauses, checks that everything is frozen for `holdMicroseconds` while the source is
    /// rewritten, then resumes (0), terminateSyncs (1) or terminateAsyncs + synchronizes (2).
    case pause(holdMicroseconds: Int, end: Int)
    case terminateSync
    case terminateAsyncSynchronize
    case configure(burst: Int)
    case sleep(microseconds: Int)

    var label: String {
        switch self {
        case .transfer(let s):
            var l = "\(s.kind) \(s.length) B"
            if s.kind == .cyclic { l += " in periods of \(s.period) B" }
            if s.polled { l += ", polled" }
            if s.reuse > 0 { l += ", REUSE ×\(s.reuse)" }
            switch s.action {
            case .none: break
            case .resubmit(let n): l += ", callback resubmits ×\(n)"
            case .terminateAsync: l += ", callback terminates"
            case .illegalBlocking: l += ", callback tries blocking calls"
            }
            if !s.issue { l += ", not issued" }
            return l
        case .batch(let n, let len, let p): return "batch of \(n) × \(len) B\(p ? ", then 8 pause windows" : "")"
        case .issuePending: return "issuePending"
        case .poll: return "poll"
        case .reap: return "reap"
        case .pause(let h, let e): return "pause \(h) µs, then " + ["resume", "terminateSync", "terminateAsync + synchronize"][e]
        case .terminateSync: return "terminateSync"
        case .terminateAsyncSynchronize: return "terminateAsync + synchronize"
        case .configure(let b): return "configure burst \(b)"
        case .sleep(let us): return "sleep \(us) µs"
        }
    }
}

/// The program of one trial: one list of operations per client thread.
struct FuzzProgram: Sendable, Hashable {
    var seed: UInt64
    var threads: [[FuzzOp]]
    /// The channel's burst (`DMAConfig.burstBytes`) at the start of the trial: the engine
    /// moves data, and sees pauses, a burst at a time.
    var burst: Int

    var operationCount: Int { threads.reduce(0) { $0 + $1.count } }

    var listing: String {
        (["    burst \(burst) B"] + threads.enumerated().map { i, ops in
            "    thread \(i): " + ops.map(\.label).joined(separator: "; ")
        }).joined(separator: "\n")
    }

    /// The program that `seed` stands for, for a channel with `caps`.
    static func generate(
        seed: UInt64, capabilities caps: DMACapabilities, maxThreads: Int, maxOperations: Int
    ) -> FuzzProgram {
        var rng = ConformanceRandom(seed: seed)
        let burst = [0, 64, 256, 1024, 4096][Int.random(in: 0..<5, using: &rng)]
        let threads = Int.random(in: 1...max(1, maxThreads), using: &rng)
        var lists: [[FuzzOp]] = []
        for _ in 0..<threads {
            let n = Int.random(in: max(1, maxOperations / 4)...max(1, maxOperations), using: &rng)
            lists.append((0..<n).map { _ in op(&rng, caps) })
        }
        return FuzzProgram(seed: seed, threads: lists, burst: burst)
    }

    /// 1 B to 1 MiB, log-uniform, so that most transfers are small and some are large.
    static func size(_ rng: inout ConformanceRandom, max: Int = 1 << 20) -> Int {
        let bits = Int.random(in: 0...20, using: &rng)
        let base = 1 << bits
        return Swift.min(max, base + Int.random(in: 0..<base, using: &rng))
    }

    static func op(_ rng: inout ConformanceRandom, _ caps: DMACapabilities) -> FuzzOp {
        let r = Int.random(in: 0..<100, using: &rng)
        switch r {
        case 0..<40:
            var kind = FuzzKind.memcpy
            let k = Int.random(in: 0..<10, using: &rng)
            if k == 0 && caps.memset { kind = .memset }
            if (1...3).contains(k) && caps.cyclic { kind = .cyclic }
            var spec = FuzzTransferSpec(
                kind: kind, length: size(&rng), sourceOffset: Int.random(in: 0..<64, using: &rng),
                destinationOffset: Int.random(in: 0..<64, using: &rng), tail: Int.random(in: 0..<64, using: &rng),
                value: UInt8.random(in: 0...255, using: &rng), period: 0, polled: false, reuse: 0, action: .none,
                issue: Int.random(in: 0..<8, using: &rng) != 0)
            if kind == .cyclic {
                // pcm_dmaengine: P periods of S bytes, P 2–16, S 64 B–16 KiB.
                let periods = Int.random(in: 2...16, using: &rng)
                spec.period = 64 << Int.random(in: 0...8, using: &rng)
                spec.length = periods * spec.period
                spec.sourceOffset = 0
                spec.destinationOffset = 0
                // Most streams end with a STOP from the period callback, the rest by a
                // client terminate.
                spec.action = Int.random(in: 0..<3, using: &rng) == 0 ? .none : .terminateAsync
                spec.stopAfterPeriods = 16 << Int.random(in: 0...12, using: &rng)
                spec.issue = true
                return .transfer(spec)
            }
            switch Int.random(in: 0..<20, using: &rng) {
            case 0..<3: spec.polled = kind == .memcpy
            case 3..<7: spec.action = .resubmit(Int.random(in: 1...6, using: &rng))
            case 7: spec.action = .terminateAsync
            case 8: spec.action = .illegalBlocking
            case 9..<11: if caps.descriptorReuse && kind == .memcpy { spec.reuse = Int.random(in: 1...4, using: &rng) }
            default: break
            }
            return .transfer(spec)
        case 40..<46:
            return .batch(count: Int.random(in: 2...32, using: &rng), length: 64 << Int.random(in: 0...6, using: &rng),
                          pause: caps.cmdPause && Int.random(in: 0..<2, using: &rng) == 0)
        case 46..<50: return .issuePending
        case 50..<60: return .poll
        case 60..<70: return .reap
        case 70..<82 where caps.cmdPause:
            return .pause(holdMicroseconds: Int.random(in: 0...3000, using: &rng), end: Int.random(in: 0..<8, using: &rng) < 6 ? 0 : Int.random(in: 1...2, using: &rng))
        case 82..<86: return .terminateSync
        case 86..<90: return .terminateAsyncSynchronize
        case 90..<93: return .configure(burst: [0, 64, 256, 1024, 4096][Int.random(in: 0..<5, using: &rng)])
        default: return .sleep(microseconds: Int.random(in: 0...500, using: &rng))
        }
    }

    /// Smaller programs to try when this one fails: fewer threads, then fewer operations.
    func shrinkCandidates() -> [FuzzProgram] {
        var out: [FuzzProgram] = []
        if threads.count > 1 {
            for drop in threads.indices {
                var p = self
                p.threads.remove(at: drop)
                out.append(p)
            }
        }
        for (t, ops) in threads.enumerated() where ops.count > 1 {
            // Halves, then quarters, then single operations from the end.
            var chunk = ops.count / 2
            while chunk >= 1 {
                var start = 0
                while start < ops.count {
                    var p = self
                    p.threads[t].removeSubrange(start..<Swift.min(ops.count, start + chunk))
                    if !p.threads[t].isEmpty { out.append(p) }
                    start += chunk
                }
                if chunk == 1 { break }
                chunk /= 2
            }
        }
        return out
    }
}
#endif
