// dmabench — DMAEngine
//
// Test hooks every backend exposes (docs/contract.md A.2): cookie seeding, latency injection,
// fault injection and an engine-access probe. They exist so that the conformance suite can
// make a transfer slow, stall it, fail it, and watch every byte the engine touches.

import Synchronization

/// A fault to inject into one transfer (scenario 31).
public enum DMAFault: String, Sendable, Hashable {
    /// The transfer fails reading its source: `callbackResult` gets `.readFailed`.
    case read
    /// The transfer fails writing its destination: `callbackResult` gets `.writeFailed`.
    case write
}

/// Per-descriptor injection, set with `DMAChannel.debugInject(_:into:)` before submit.
public struct DMAInjection: Sendable, Hashable {
    /// Move the data in chunks of this many bytes (0 = the configured burst).
    public var chunkBytes: Int
    /// Wait this long before each chunk. The wait is interruptible: terminate and pause
    /// cut it short, so a slow transfer never delays them by more than one chunk's copy.
    public var delayPerChunkNanoseconds: Int64
    /// Wait before the first chunk until the transfer is terminated or
    /// `debugReleaseStalls()` is called (scenario 30).
    public var stall: Bool
    /// Fail the transfer instead of completing it.
    public var fault: DMAFault?

    public init(chunkBytes: Int = 0, delayPerChunkNanoseconds: Int64 = 0, stall: Bool = false, fault: DMAFault? = nil) {
        self.chunkBytes = chunkBytes
        self.delayPerChunkNanoseconds = delayPerChunkNanoseconds
        self.stall = stall
        self.fault = fault
    }

    /// A transfer of `length` bytes that takes about `duration` in `chunks` chunks.
    public static func slow(length: Int, nanoseconds: Int64, chunks: Int = 16) -> DMAInjection {
        let n = max(1, min(chunks, length))
        return DMAInjection(chunkBytes: max(1, (length + n - 1) / n), delayPerChunkNanoseconds: nanoseconds / Int64(n))
    }

    public static func fault(_ f: DMAFault) -> DMAInjection { DMAInjection(fault: f) }
    public static let stalled = DMAInjection(stall: true)
}

/// One access the engine makes to a descriptor's memory, reported to the probe.
public struct DMAAccess: Sendable {
    public enum Kind: Sendable { case read, write }
    /// The cookie of the submission being served.
    public var cookie: DMACookie
    public var kind: Kind
    /// The first byte touched and the number of bytes.
    public var address: UInt
    public var count: Int

    public init(cookie: DMACookie, kind: Kind, address: UInt, count: Int) {
        self.cookie = cookie
        self.kind = kind
        self.address = address
        self.count = count
    }
}

/// Called by the engine before every access to descriptor memory (every chunk), when set.
/// It runs on the engine thread and must not block. Backends whose engine is the kernel
/// (io_uring) report an access when they hand a request to the kernel, and again when its
/// completion arrives.
public typealias DMAAccessProbe = @Sendable (DMAAccess) -> Void

extension Atomic where Value == Int {
    /// Takes one of the submits that `debugFailNextSubmits` asked to fail, for a backend
    /// without a lock on its submit path: decrements the count unless it is zero, and says
    /// whether it did. Out of line: callers check `load(ordering: .relaxed) > 0` first, so
    /// the submit fast path pays one relaxed load. Relaxed: the count orders nothing else;
    /// the test arms it before it submits.
    public func takeInjectedFailure() -> Bool {
        var n = load(ordering: .relaxed)
        while n > 0 {
            let (done, now) = compareExchange(expected: n, desired: n - 1, ordering: .relaxed)
            if done { return true }
            n = now
        }
        return false
    }
}
