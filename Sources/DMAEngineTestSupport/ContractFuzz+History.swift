// dmabench — DMAEngineTestSupport
//
// The random-client checker's history and its model of the contract (docs/contract.md,
// part D). Every operation a fuzz client makes is recorded with the global sequence number
// read just before the call (invocation) and just after it returned (response), so that
// "A returned before B was called" is `A.response < B.invocation`, as in a linearizability
// history. Every callback is recorded the same way (entry and exit). `checkHistory` then
// replays the history against the rules; the rules that need the buffers themselves (data
// frozen while paused, copied bytes) are checked while the trial runs and recorded as
// `.violation` events.

#if os(Linux)
import DMAEngine
import Platform
import Synchronization

/// What a fuzz transfer is.
enum FuzzKind: String, Sendable {
    case memcpy, memset, cyclic
}

/// One recorded event.
struct FuzzEvent: Sendable {
    enum Kind: Sendable {
        case submit(transfer: Int, cookie: DMACookie, kind: FuzzKind, length: Int, callback: Bool)
        case issue
        case status(cookie: DMACookie, status: DMAStatus, state: DMATxState)
        case pause
        case resume
        case terminateAsync(fromCallback: Bool)
        case synchronize
        case terminateSync
        /// A callback's run, from entry (invocation) to return (response); `inside` is
        /// the status of its own cookie read first thing in the callback (K2).
        case callback(cookie: DMACookie, kind: FuzzKind, inside: DMAStatus)
        case freed(transfer: Int, cookie: DMACookie)
        case violation(String)
    }

    /// The client thread (0…3), or -1 for a callback.
    var thread: Int
    var invocation: Int
    var response: Int
    var kind: Kind

    var line: String {
        let who = thread < 0 ? "cb" : "t\(thread)"
        let at = "[\(invocation)…\(response)] \(who)"
        switch kind {
        case .submit(let t, let c, let k, let len, let cb):
            return "\(at) submit #\(t) \(k) \(len) B\(cb ? "" : " polled") -> cookie \(c)"
        case .issue: return "\(at) issuePending"
        case .status(let c, let s, let st):
            return "\(at) status(\(c)) = \(s.rawValue) last \(st.last) used \(st.used) residue \(st.residue)"
        case .pause: return "\(at) pause"
        case .resume: return "\(at) resume"
        case .terminateAsync(let cb): return "\(at) terminateAsync\(cb ? " (from a callback)" : "")"
        case .synchronize: return "\(at) synchronize"
        case .terminateSync: return "\(at) terminateSync"
        case .callback(let c, let k, let inside): return "\(at) callback(\(c), \(k)) status inside: \(inside.rawValue)"
        case .freed(let t, let c): return "\(at) free buffers of #\(t) (cookie \(c))"
        case .violation(let v): return "\(at) VIOLATION \(v)"
        }
    }
}

/// The history of one trial, appended to by every client thread and callback.
final class FuzzHistory: @unchecked Sendable {
    private let sequence = Atomic<Int>(0)
    private let events = LockedValue<[FuzzEvent]>([])

    /// The next sequence number.
    @inline(__always)
    func tick() -> Int {
        // Ordering: seq_cst; the total order of these increments is the history's clock: a
        // response number taken after a call returned is smaller than any invocation
        // number taken later by another thread that observed that call's effect.
        sequence.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue
    }

    func record(_ thread: Int, _ invocation: Int, _ kind: FuzzEvent.Kind) {
        let response = tick()
        events.withLock { $0.append(FuzzEvent(thread: thread, invocation: invocation, response: response, kind: kind)) }
    }

    func record(_ thread: Int, _ invocation: Int, _ response: Int, _ kind: FuzzEvent.Kind) {
        events.withLock { $0.append(FuzzEvent(thread: thread, invocation: invocation, response: response, kind: kind)) }
    }

    func violation(_ thread: Int, _ what: String) {
        let t = tick()
        record(thread, t, t, .violation(what))
    }

    var all: [FuzzEvent] { events.withLock { $0 }.sorted { $0.invocation < $1.invocation } }
}

/// What the model needs to know of the channel.
struct FuzzModelSettings {
    var granularity: DMAResidueGranularity
    var inOrder: Bool
    var firstCookie: Int32
}

/// Checks a history against the contract. Returns one line per violation, each naming its
/// rule, with the events involved.
func checkHistory(_ events: [FuzzEvent], _ settings: FuzzModelSettings) -> [String] {
    var out: [String] = []
    func fail(_ rule: String, _ what: String, _ evs: [FuzzEvent]) {
        out.append("\(rule): \(what)" + evs.map { "\n      " + $0.line }.joined())
    }

    // Violations found while the trial ran.
    for e in events { if case .violation(let v) = e.kind { out.append(v + "\n      " + e.line) } }

    struct Sub { var event: FuzzEvent; var kind: FuzzKind; var length: Int; var callback: Bool }
    var subs: [Int32: Sub] = [:]
    var terminates: [FuzzEvent] = []
    var syncs: [FuzzEvent] = []  // synchronize and terminateSync
    var pauses: [FuzzEvent] = []
    var resumes: [FuzzEvent] = []
    var callbacks: [FuzzEvent] = []
    var statuses: [FuzzEvent] = []
    var perThread: [Int: [Int32]] = [:]
    for e in events {
        switch e.kind {
        case .submit(_, let c, let k, let len, let cb):
            if subs[c.rawValue] != nil { fail("C4", "cookie \(c) handed out twice", [subs[c.rawValue]!.event, e]) }
            subs[c.rawValue] = Sub(event: e, kind: k, length: len, callback: cb)
            if e.thread >= 0 { perThread[e.thread, default: []].append(c.rawValue) }
        case .terminateAsync: terminates.append(e)
        case .terminateSync:
            terminates.append(e)
            syncs.append(e)
        case .synchronize: syncs.append(e)
        case .pause: pauses.append(e)
        case .resume: resumes.append(e)
        case .callback: callbacks.append(e)
        case .status: statuses.append(e)
        default: break
        }
    }

    // C4: one contiguous run of cookies from the channel's first, each thread's increasing.
    let cookies = subs.keys.sorted()
    if let first = cookies.first {
        if first != settings.firstCookie {
            fail("C4/C3", "the first cookie is \(first), expected \(settings.firstCookie)", [subs[first]!.event])
        }
        for (a, b) in zip(cookies, cookies.dropFirst()) where b != a + 1 {
            fail("C4", "cookies are not contiguous: \(a) is followed by \(b)", [subs[a]!.event, subs[b]!.event])
            break
        }
    }
    for (t, cs) in perThread {
        for (a, b) in zip(cs, cs.dropFirst()) where b <= a {
            fail("C4", "thread \(t) got cookie \(b) after \(a)", [subs[a]!.event, subs[b]!.event])
            break
        }
    }

    // Pause windows: from pause's response to the invocation of the resume or terminate
    // that ended it (the checker's clients serialize pause, resume and terminate).
    // A terminate that overlaps the pause (a callback's, say) ends the window where it
    // began, which may leave it empty.
    var windows: [(start: FuzzEvent, end: Int)] = []
    for p in pauses {
        let ends = resumes.filter { $0.invocation > p.response }.map(\.invocation)
            + terminates.filter { $0.response > p.invocation }.map(\.invocation)
        windows.append((p, ends.min() ?? Int.max))
    }
    func window(containing e: FuzzEvent) -> (start: FuzzEvent, end: Int)? {
        windows.first { $0.start.response < e.invocation && e.response < $0.end }
    }
    func overlapsPause(_ e: FuzzEvent) -> Bool {
        for p in pauses {
            let end = (resumes + terminates).filter { $0.invocation > p.invocation }.map(\.response).min() ?? Int.max
            if e.response > p.invocation && e.invocation < end { return true }
        }
        return false
    }

    // S1, S3, S4, S5, S6 and P1 on every status read.
    var byCookie: [Int32: [FuzzEvent]] = [:]
    var lastSeen: FuzzEvent?
    for e in statuses {
        guard case .status(let c, let s, let st) = e.kind else { continue }
        let complete = DMACookieWatermark.isComplete(c, last: st.last, used: st.used)
        if (s == .complete) != complete && s != .error {
            fail("S1", "cookie \(c) reads \(s.rawValue), but its own snapshot (last \(st.last), used \(st.used)) says \(complete ? "complete" : "not complete")", [e])
        }
        if s == .complete && st.residue != 0 { fail("S4", "cookie \(c) is COMPLETE with residue \(st.residue)", [e]) }
        // C6: `last` never moves back (no wrap in a trial: cookies start at the first).
        if let p = lastSeen, case .status(_, _, let ps) = p.kind, p.response < e.invocation, st.last.rawValue < ps.last.rawValue {
            fail("C6", "last moved back from \(ps.last) to \(st.last)", [p, e])
        }
        lastSeen = e
        guard let sub = subs[c.rawValue], sub.event.response < e.invocation else { continue }
        // S6: a cookie submitted before a terminate reads COMPLETE once it returned.
        if s != .complete, let t = terminates.first(where: { sub.event.response < $0.invocation && $0.response < e.invocation }) {
            fail("S6", "cookie \(c) was submitted before a terminate and still reads \(s.rawValue) after it", [sub.event, t, e])
        }
        if s == .inProgress || s == .paused {
            let inWindow = window(containing: e) != nil
            if inWindow && s != .paused { fail("S3", "cookie \(c) reads \(s.rawValue) while the channel is paused", [e]) }
            if !overlapsPause(e) && s == .paused { fail("S3", "cookie \(c) reads paused while the channel is not paused", [e]) }
            if settings.granularity != .descriptor && (st.residue <= 0 || st.residue > sub.length) {
                fail("S5", "cookie \(c) (\(sub.length) B) is \(s.rawValue) with residue \(st.residue), outside (0, length]", [e])
            }
            byCookie[c.rawValue, default: []].append(e)
        }
    }
    for (c, obs) in byCookie {
        let sub = subs[c]!
        for (i, a) in obs.enumerated() {
            guard case .status(_, _, let sa) = a.kind else { continue }
            for b in obs[(i + 1)...] where a.response < b.invocation {
                guard case .status(_, _, let sb) = b.kind else { continue }
                // S5: residue of an active cookie never increases (a cyclic one wraps).
                if sub.kind != .cyclic && sb.residue > sa.residue {
                    fail("S5", "residue of cookie \(c) rose from \(sa.residue) to \(sb.residue)", [a, b])
                }
                // P1: frozen within one pause window.
                if let wa = window(containing: a), let wb = window(containing: b), wa.start.invocation == wb.start.invocation,
                    sa.residue != sb.residue
                {
                    fail("P1", "residue of cookie \(c) moved from \(sa.residue) to \(sb.residue) while paused", [wa.start, a, b])
                }
                break  // the next observation after `a` suffices; the chain covers the rest
            }
        }
    }

    // Callbacks: K1, K2, K3, and P1 (no new completion while paused).
    var perCookie: [Int32: [FuzzEvent]] = [:]
    let ordered = callbacks.sorted { $0.invocation < $1.invocation }
    for (i, e) in ordered.enumerated() {
        guard case .callback(let c, let k, let inside) = e.kind else { continue }
        perCookie[c.rawValue, default: []].append(e)
        if k != .cyclic && settings.inOrder && inside != .complete {
            fail("K2", "the callback of cookie \(c) saw its cookie \(inside.rawValue)", [e])
        }
        if i > 0 {
            let p = ordered[i - 1]
            if p.response > e.invocation { fail("K3", "two callbacks of one channel overlap", [p, e]) }
            if settings.inOrder, case .callback(let pc, let pk, _) = p.kind, pk != .cyclic, k != .cyclic, c.rawValue < pc.rawValue {
                fail("K3", "callback of cookie \(c) ran after that of cookie \(pc)", [p, e])
            }
        }
        if k != .cyclic, let w = window(containing: e) {
            // A callback may run while paused only if its cookie completed before pause
            // returned: the first status read in the window shows the watermark then.
            let firstRead = statuses.first { $0.invocation > w.start.response && $0.response < w.end }
            if let r = firstRead, case .status(_, _, let st) = r.kind, !DMACookieWatermark.isComplete(c, last: st.last, used: st.used) {
                fail("P1", "callback of cookie \(c) started while paused, but its cookie had not completed when pause returned", [w.start, r, e])
            }
        }
    }
    for (c, cbs) in perCookie where subs[c]?.kind != .cyclic && cbs.count > 1 {
        fail("K1", "cookie \(c) got \(cbs.count) callbacks", cbs)
    }
    for (c, sub) in subs where sub.kind != .cyclic {
        if !sub.callback, perCookie[c] != nil { fail("K6", "polled cookie \(c) got a callback", [sub.event] + perCookie[c]!) }
        // K1 (exactly one): a cookie with a callback that never ran must have been removed
        // by a terminate (or dropped by a synchronize, rule T6) that came after its submit.
        if sub.callback && perCookie[c] == nil
            && !(terminates + syncs).contains(where: { $0.response > sub.event.invocation })
        {
            fail("K1", "cookie \(c) never got its callback, and no terminate followed its submit", [sub.event])
        }
    }

    // T3: once synchronize returned, no callback of a cookie submitted before the last
    // terminate runs, or will start.
    for s in syncs {
        let before = terminates.filter { $0.response <= s.response && $0.invocation <= s.invocation }
        guard let t = before.max(by: { $0.invocation < $1.invocation }) else { continue }
        for cb in callbacks {
            guard case .callback(let c, _, _) = cb.kind, let sub = subs[c.rawValue], sub.event.response < t.invocation else {
                continue
            }
            if cb.response > s.response && cb.invocation > t.response {
                fail("T3", "a callback of cookie \(c), submitted before the terminate, \(cb.invocation > s.response ? "started" : "was running") after synchronize returned", [sub.event, t, s, cb])
            }
        }
    }
    return out
}
#endif

#if os(Linux)
/// Callbacks of plain transfers that started while the channel was paused. P1 allows them
/// only for cookies that completed before pause returned; `checkHistory` checks that, and
/// this count says how often the case arose.
func callbacksWhilePaused(_ events: [FuzzEvent]) -> Int {
    var windows: [(Int, Int)] = []
    let ends = events.compactMap { e -> Int? in
        switch e.kind {
        case .resume, .terminateAsync, .terminateSync: return e.invocation
        default: return nil
        }
    }
    let terminates = events.filter { e in
        switch e.kind {
        case .terminateAsync, .terminateSync: return true
        default: return false
        }
    }
    for e in events {
        if case .pause = e.kind {
            let end = (ends.filter { $0 > e.response } + terminates.filter { $0.response > e.invocation }.map(\.invocation)).min()
            windows.append((e.response, end ?? Int.max))
        }
    }
    return events.filter { e in
        guard case .callback(_, let k, _) = e.kind, k != .cyclic else { return false }
        return windows.contains { $0.0 < e.invocation && e.invocation < $0.1 }
    }.count
}
#endif
