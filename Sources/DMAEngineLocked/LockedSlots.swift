// dmabench — DMAEngineLocked
//
// The pieces under the channel lock: the mutex itself, the descriptor slot, and the
// intrusive lists that mirror virt-dma's `desc_submitted`, `desc_issued`, `desc_completed`
// and `desc_terminated` (docs/contract.md appendix V); and the prep magazine in front of the
// free stack. virt-dma's fifth list, `desc_allocated`, is implicit: a prepared descriptor is
// on no list (state `.prepared`), and release frees such slots by scanning the pool, as
// `vchan_free_chan_resources` frees `desc_allocated`.

import DMAEngine
import Glibc
import Platform
import Synchronization

/// Marks the thread as holding a backend lock while it holds the channel lock (the userspace
/// form of virt-dma's `vc.lock` spinlock), so that a blocking call made under it is refused
/// (docs/contract.md A.1 (c)) and so that tests can assert that no callback runs with it held
/// (scenario 12).
enum ChannelLockObserver: LockObserver {
    @inline(__always) static func acquired() { NonBlockingContext.lockAcquired() }
    @inline(__always) static func released() { NonBlockingContext.lockReleased() }
}

/// The channel lock: Platform's adaptive mutex on a line of its own. Code that needs it
/// held takes a `Held`.
typealias ChannelLock = ChannelMutex<ChannelLockObserver>
typealias Held = ChannelLock.Held

/// The prep magazine: free slots taken off the free stack 28 at a time, so that `prepare`
/// takes the channel lock once per 28 descriptors instead of once per descriptor (kernel:
/// a driver's prep allocates its descriptor from the slab, whose per-CPU free lists take no
/// channel lock, and only `vchan_tx_prep`'s `list_add_tail` to `desc_allocated` does; with
/// that list implicit here, nothing in prep needs the channel lock). At 4 KiB and 64 B,
/// batch 32, depth 256 the submitter took the lock twice per descriptor and the engine
/// waited on it; one lock per descriptor (submit) is what `locked_pipeline` takes.
///
/// Its own 128-byte line, written only by submitters: a spin lock word, the count, the
/// slot indices, and the `burstBytes` of the channel's configuration that prep copies into
/// the slot. The spin lock is contended only when several threads prep on one channel at
/// once; its holder never blocks (a refill takes the channel lock inside it, and nothing
/// takes the magazine while holding the channel lock).
struct PrepMagazine {
    /// Slot indices that fit in the line after the lock word, the count and `burstBytes`.
    static let capacity = 28
    let base: UnsafeMutableRawPointer

    init() {
        base = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 128)
        base.initializeMemory(as: UInt8.self, repeating: 0, count: 128)
        (base).bindMemory(to: Atomic<UInt32>.self, capacity: 1).initialize(to: Atomic(0))
        (base + 8).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
    }

    func destroy() { base.deallocate() }

    private var word: UnsafeMutablePointer<Atomic<UInt32>> { base.assumingMemoryBound(to: Atomic<UInt32>.self) }
    /// `DMAConfig.burstBytes`, written by `configure` under the channel lock, read by prep.
    var burstBytes: UnsafeMutablePointer<Atomic<Int>> { (base + 8).assumingMemoryBound(to: Atomic<Int>.self) }
    /// Number of indices held. Magazine lock held.
    var count: UnsafeMutablePointer<Int32> { (base + 4).assumingMemoryBound(to: Int32.self) }
    /// The slot indices (a stack), bytes 16..<128. Magazine lock held.
    var slots: UnsafeMutablePointer<Int32> { (base + 16).assumingMemoryBound(to: Int32.self) }

    /// Runs `body` with the magazine's spin lock held (the lock idiom of the channel lock;
    /// a spin lock because its holders never block).
    @inline(__always)
    func withLock<R>(_ body: () -> R) -> R {
        lock()
        defer { unlock() }
        return body()
    }

    @inline(__always)
    private func lock() {
        // Ordering: acquire; pairs with the release store in `unlock()`: the previous
        // holder's magazine and slot writes are visible.
        while word.pointee.exchange(1, ordering: .acquiring) != 0 {
            var spins = 0
            // Ordering: relaxed; only a hint to retry the exchange.
            while word.pointee.load(ordering: .relaxed) != 0 {
                spins &+= 1
                if spins < 256 { cpuRelax() } else { sched_yield() }
            }
        }
    }

    @inline(__always)
    private func unlock() {
        // Ordering: release; pairs with the acquire exchange in `lock()`.
        word.pointee.store(0, ordering: .releasing)
    }
}

/// Where a descriptor is. List membership follows the state, as in virt-dma.
enum SlotState: UInt8 {
    /// On the free stack; the handle's generation no longer matches.
    case free
    /// Prepared, not submitted (kernel: on `desc_allocated`; here on no list).
    case prepared
    /// On the submitted or the issued list (`desc_submitted`, `desc_issued`).
    case queued
    /// Held by the engine; on no list, or on the terminated list once terminated.
    case active
    /// On the completed list (`desc_completed`): the watermark passed it, callback pending.
    case completed
    /// Taken by the callback executor: its callback runs or is about to.
    case dispatched
    /// On the terminated list (`desc_terminated`), waiting for `synchronize`.
    case terminated
}

enum TransferKind: UInt8 {
    // Cyclic last: `isQuick` and the engine's entry under the lock test `rawValue < 3`.
    case memcpy, memset, memcpySG, cyclic
}

/// One descriptor of the preallocated pool (kernel: `struct virt_dma_desc` and the
/// driver's descriptor around it). Fields are guarded by the channel lock, except where the
/// engine or the executor owns the descriptor (states `.active`, `.dispatched`), as noted.
struct Slot {
    var generation: UInt32 = 0
    var state: SlotState = .free
    var kind: TransferKind = .memcpy
    var reuse = false
    var interrupt = false
    /// `debugInject` attached a non-default injection.
    var injected = false
    var value: UInt8 = 0
    /// Intrusive links of whichever list the slot is on (-1 = none). The free stack uses `next`.
    var prev: Int32 = -1
    var next: Int32 = -1
    var cookie = DMACookie(0)
    var destination: UnsafeMutableRawPointer? = nil
    var source: UnsafeRawPointer? = nil
    var length = 0
    var periodLength = 0
    /// `DMAConfig.burstBytes` at prep time (config affects later preps only, scenario 32).
    var burstBytes = 0
    /// `DMAConfig.paceBytesPerSecond` at prep time (cyclic only).
    var pace = 0
    /// `.memcpySG`: pieces in `LockedCore.pieces` at `index * pieceCapacity`.
    var pieceCount = 0
    var injection = DMAInjection()
    /// `stallGeneration` when a stall was injected: the stall ends once it moves past it.
    var stallSeen: UInt64 = 0
    /// `tx_result` of the last run.
    var result = DMAResult.noError
    /// Written only while `.prepared`; read by the executor while `.dispatched` (or, for a
    /// cyclic descriptor, while `.active`), when nobody may write it.
    var callback = DMACallback()
    /// Pads the slot to `Slot.stride` bytes: the pool is 128-byte aligned, so no two slots
    /// share a cache line (or a 128-byte pair that the adjacent-line prefetcher fetches
    /// together). At 152 bytes, the client's prep of one slot and the engine's or executor's
    /// writes to its neighbour took the shared line from each other.
    private var padding: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    /// The slot's size and stride in the pool.
    static let stride = 256
}

// Predicates read through the pool pointer, field by field. As computed properties of `Slot`
// read as `slots[i].isQuick`, they made the optimizer copy the whole slot, retaining and
// releasing its callback closures: about 150 instructions per descriptor on the engine
// thread (callgrind, 4 KiB b32 d256).
extension UnsafeMutablePointer where Pointee == Slot {
    @inline(__always)
    var needsCallback: Bool { pointee.interrupt && pointee.callback.isSet }

    /// A short plain transfer: the engine may finish it before it wakes the executor for
    /// the completions before it (completion coalescing, see `LockedCore.engineMain`).
    @inline(__always)
    var isQuick: Bool { pointee.kind.rawValue < 3 && !pointee.injected && pointee.length <= LockedTuning.quickBytes }
}

/// A doubly linked intrusive list of slot indices, threaded through `Slot.prev/next`.
struct SlotList {
    var head: Int32 = -1
    var tail: Int32 = -1
    var count = 0

    var isEmpty: Bool { count == 0 }
}

extension UnsafeMutablePointer where Pointee == Slot {
    @inline(__always)
    func append(_ i: Int32, to list: inout SlotList) {
        self[Int(i)].prev = list.tail
        self[Int(i)].next = -1
        if list.tail >= 0 { self[Int(list.tail)].next = i } else { list.head = i }
        list.tail = i
        list.count += 1
    }

    @inline(__always)
    func remove(_ i: Int32, from list: inout SlotList) {
        let p = self[Int(i)].prev, n = self[Int(i)].next
        if p >= 0 { self[Int(p)].next = n } else { list.head = n }
        if n >= 0 { self[Int(n)].prev = p } else { list.tail = p }
        self[Int(i)].prev = -1
        self[Int(i)].next = -1
        list.count -= 1
    }

    @inline(__always)
    func popFirst(_ list: inout SlotList) -> Int32 {
        let i = list.head
        if i >= 0 { remove(i, from: &list) }
        return i
    }

    /// Moves every slot of `from` to the tail of `to` in O(1) (kernel: `list_splice_tail_init`).
    @inline(__always)
    func splice(_ from: inout SlotList, to: inout SlotList) {
        guard from.count > 0 else { return }
        if to.tail >= 0 {
            self[Int(to.tail)].next = from.head
            self[Int(from.head)].prev = to.tail
        } else {
            to.head = from.head
        }
        to.tail = from.tail
        to.count += from.count
        from = SlotList()
    }
}
