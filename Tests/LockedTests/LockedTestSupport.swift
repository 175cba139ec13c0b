// dmabench — LockedTests
//
// Small helpers for the locked backend's own tests: a thread-safe recorder, a wait with a
// deadline, and buffers filled with a pattern.

import DMAEngine
import DMAEngineLocked
import Glibc
import Platform
import TestHelpers
import Synchronization
import Testing


/// Records callback invocations from the executor thread.
final class Recorder: Sendable {
    struct State {
        var cookies: [Int32] = []
        var results: [DMAResult] = []
        var inCallback = 0
        var maxConcurrent = 0
        var statusCompleteInside = true
        var lockHeldInside = false
    }

    let state = LockedValue(State())

    var count: Int { state.withLock { $0.cookies.count } }
    var cookies: [Int32] { state.withLock { $0.cookies } }
    var results: [DMAResult] { state.withLock { $0.results } }

    /// A `callback_result` callback that records the completion and checks, from inside,
    /// that the cookie already reads COMPLETE (K2) and that no backend lock is held (K4).
    func callback(_ channel: LockedChannel?) -> DMACallback {
        .result { [self] c in
            let complete = channel.map { $0.status(of: c.cookie).0 == .complete } ?? true
            let locked = NonBlockingContext.holdsBackendLock
            state.withLock {
                $0.inCallback += 1
                $0.maxConcurrent = max($0.maxConcurrent, $0.inCallback)
                $0.cookies.append(c.cookie.rawValue)
                $0.results.append(c.result)
                if !complete { $0.statusCompleteInside = false }
                if locked { $0.lockHeldInside = true }
            }
            state.withLock { $0.inCallback -= 1 }
        }
    }
}


/// A coherent buffer from the channel, filled with `seed`-dependent bytes.
func patterned(_ channel: LockedChannel, _ count: Int, seed: UInt8) throws -> DMABuffer {
    let b = try channel.allocateCoherent(byteCount: count)
    for i in 0..<count { b.bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ Int(seed)) }
    return b
}

func equalBytes(_ a: DMABuffer, _ b: DMABuffer, count: Int) -> Bool {
    memcmp(a.base, b.base, count) == 0
}

/// A counting gate a callback can block on (scenario 16 style), released by the test.
final class Gate: Sendable {
    let open = Atomic<Bool>(false)
    let entered = Atomic<Int>(0)
    let exited = Atomic<Int>(0)

    func block() {
        entered.add(1, ordering: .sequentiallyConsistent)
        while !open.load(ordering: .sequentiallyConsistent) { MonotonicClock.sleep(nanoseconds: 50_000) }
        exited.add(1, ordering: .sequentiallyConsistent)
    }
}

/// Whether thread `tid` of this process still exists (/proc/self/task/TID).
func threadExists(_ tid: Int32) -> Bool {
    access("/proc/self/task/\(tid)", F_OK) == 0
}
