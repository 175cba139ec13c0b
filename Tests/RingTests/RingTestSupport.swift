// dmabench — RingTests
//
// Small helpers for the ring backend's own tests.

import DMAEngine
import Glibc
import Platform
import TestHelpers
import Synchronization



/// Records callbacks: cookies in order, results, and how many run at once.
final class CallbackLog: Sendable {
    private let state = LockedValue<[(DMACookie, DMAResult)]>([])
    private let running = Atomic<Int>(0)
    let maxConcurrent = Atomic<Int>(0)

    var callback: DMACallback {
        DMACallback.result { c in self.record(c.cookie, c.result) }
    }

    func record(_ cookie: DMACookie, _ result: DMAResult) {
        let now = running.wrappingAdd(1, ordering: .relaxed).newValue
        var m = maxConcurrent.load(ordering: .relaxed)
        while now > m {
            let (done, cur) = maxConcurrent.compareExchange(expected: m, desired: now, ordering: .relaxed)
            if done { break }
            m = cur
        }
        state.withLock { $0.append((cookie, result)) }
        running.subtract(1, ordering: .relaxed)
    }

    var count: Int { state.withLock { $0.count } }
    var cookies: [Int32] { state.withLock { $0.map(\.0.rawValue) } }
    var results: [DMAResult] { state.withLock { $0.map(\.1) } }
}

/// A page-aligned source/destination pair with a recognisable pattern.
final class Buffers: @unchecked Sendable {
    let source: UnsafeMutableRawPointer
    let destination: UnsafeMutableRawPointer
    let count: Int

    init(count: Int) throws {
        self.count = count
        source = try PageMemory.map(byteCount: count)
        destination = try PageMemory.map(byteCount: count)
        for i in 0..<count { source.storeBytes(of: UInt8(truncatingIfNeeded: i &* 7 &+ 3), toByteOffset: i, as: UInt8.self) }
    }

    func copied(_ range: Range<Int>) -> Bool {
        memcmp(source + range.lowerBound, destination + range.lowerBound, range.count) == 0
    }

    func destinationIsZero(_ range: Range<Int>) -> Bool {
        range.allSatisfy { destination.load(fromByteOffset: $0, as: UInt8.self) == 0 }
    }

    deinit {
        PageMemory.unmap(source, byteCount: count)
        PageMemory.unmap(destination, byteCount: count)
    }
}

/// A one-shot gate a callback can block on.
final class Gate: Sendable {
    private let open = Atomic<Bool>(false)
    func wait() {
        while !open.load(ordering: .acquiring) { MonotonicClock.sleep(nanoseconds: 50_000) }
    }
    func release() { open.store(true, ordering: .releasing) }
}
