// dmabench — RingTests
//
// An exhaustive interleaving check of the submission ring's index protocol for small
// capacities, and property tests of the ticket ↔ cookie arithmetic.
//
// The model follows `RingCore.submit` and `RingEngine.run` step by step, one shared-memory
// access per step (sequentially consistent interleavings):
//   producer: take a descriptor from the pool (the pool bounds what is in flight) →
//             t = fetch-add ticket → check seq[t & mask] == t → write the slot → seq = t + 1
//   engine:   wait seq[h & mask] == h + 1 → read the slot → seq = h + capacity → h += 1 →
//             (later) the descriptor goes back to the pool
// with the same initial state (ticket 0 is never handed out, slot 0 starts at `capacity`).
// Every reachable state is explored; the checks are: the producer always finds its slot
// free (the ring never overflows, so `submit` never waits on the engine), the engine reads
// every ticket exactly once, in ticket order, with the value its producer wrote, and no
// state deadlocks before everything is consumed.

@testable import DMAEngineRing
import DMAEngine
import Testing

struct IndexModel {
    struct State: Hashable {
        var ticket: UInt32 = 0
        var seq: [UInt32]
        var data: [Int]
        var pool: Int
        var producerPC: [Int]
        var producerTicket: [UInt32]
        var producerDone: [Int]
        var head: UInt32 = 1
        var enginePC = 0
        var engineValue = 0
        var consumed = 0
        var toReturn = 0
    }

    let capacity: Int
    let poolSize: Int
    let producers: Int
    let itemsPerProducer: Int

    /// The value producer p writes for its k-th item, and the ticket order check uses it.
    func value(producer p: Int, item k: Int) -> Int { p * 1000 + k + 1 }

    /// Explores every interleaving. Returns the number of distinct states and any violations.
    func explore() -> (states: Int, violations: [String]) {
        let mask = UInt32(capacity - 1)
        var start = State(
            seq: (0..<capacity).map { $0 == 0 ? UInt32(capacity) : UInt32($0) }, data: Array(repeating: 0, count: capacity),
            pool: poolSize, producerPC: Array(repeating: 0, count: producers),
            producerTicket: Array(repeating: 0, count: producers), producerDone: Array(repeating: 0, count: producers))
        start.head = 1
        var seen: Set<State> = [start]
        var stack = [start]
        var violations: [String] = []
        // Values carry producer and item; `OrderModel` checks their order along every path.
        let total = producers * itemsPerProducer
        while let s = stack.popLast() {
            var successors: [State] = []
            // Producers.
            for p in 0..<producers where s.producerDone[p] < itemsPerProducer {
                var n = s
                switch s.producerPC[p] {
                case 0:  // prep: take a descriptor from the pool
                    guard s.pool > 0 else { continue }
                    n.pool -= 1
                    n.producerPC[p] = 1
                case 1:  // fetch-add on the ticket (the high half of W)
                    n.ticket &+= 1
                    n.producerTicket[p] = n.ticket
                    n.producerPC[p] = 2
                case 2:  // acquire load of seq: must already be free
                    let t = s.producerTicket[p]
                    if s.seq[Int(t & mask)] != t {
                        violations.append("producer \(p) found slot \(t & mask) busy for ticket \(t) (seq \(s.seq[Int(t & mask)]))")
                        continue
                    }
                    n.producerPC[p] = 3
                case 3:  // write the slot
                    let t = s.producerTicket[p]
                    n.data[Int(t & mask)] = value(producer: p, item: s.producerDone[p])
                    n.producerPC[p] = 4
                default:  // release store of seq = t + 1
                    let t = s.producerTicket[p]
                    n.seq[Int(t & mask)] = t &+ 1
                    n.producerPC[p] = 0
                    n.producerDone[p] += 1
                }
                successors.append(n)
            }
            // Engine.
            if s.consumed < total {
                var n = s
                let slot = Int(s.head & mask)
                switch s.enginePC {
                case 0:  // acquire load of seq (spins until ready: enabled only when ready)
                    if s.seq[slot] == s.head &+ 1 {
                        n.enginePC = 1
                        successors.append(n)
                    }
                case 1:  // read the slot
                    n.engineValue = s.data[slot]
                    n.enginePC = 2
                    successors.append(n)
                default:  // release store of seq = h + capacity; the descriptor will retire
                    n.seq[slot] = s.head &+ UInt32(capacity)
                    n.head &+= 1
                    n.consumed += 1
                    n.toReturn += 1
                    n.enginePC = 0
                    if s.engineValue == 0 { violations.append("engine read an empty slot for ticket \(s.head)") }
                    successors.append(n)
                }
            }
            // Executor: retires a consumed descriptor back to the pool.
            if s.toReturn > 0 {
                var n = s
                n.toReturn -= 1
                n.pool += 1
                successors.append(n)
            }
            if successors.isEmpty && s.consumed < total {
                violations.append("deadlock with \(s.consumed) of \(total) consumed: \(s)")
            }
            for n in successors where seen.insert(n).inserted { stack.append(n) }
            if violations.count > 5 { break }
        }
        return (seen.count, violations)
    }
}

/// Order check: the model above verifies slots and progress; this one records the values
/// in consumption order along every path and checks each producer's values arrive in order.
struct OrderModel {
    let capacity: Int
    let producers: Int
    let items: Int

    func allConsumptionOrdersArePerProducerFIFO() -> (paths: Int, bad: [String]) {
        // Depth-first over interleavings with the consumed sequence as part of the path
        // (small sizes only: the number of paths grows quickly).
        struct S {
            var ticket: UInt32 = 0
            var seq: [UInt32]
            var data: [Int]
            var pc: [Int]
            var tk: [UInt32]
            var done: [Int]
            var head: UInt32 = 1
            var out: [Int] = []
            var inFlight = 0
        }
        let mask = UInt32(capacity - 1)
        let total = producers * items
        var paths = 0
        var bad: [String] = []
        func step(_ s: S) {
            if s.out.count == total {
                paths += 1
                for p in 0..<producers {
                    let mine = s.out.filter { $0 / 1000 == p }
                    if mine != mine.sorted() { bad.append("producer \(p) out of order: \(s.out)") }
                }
                if Set(s.out).count != total { bad.append("lost or duplicated: \(s.out)") }
                return
            }
            var progressed = false
            for p in 0..<producers where s.done[p] < items {
                var n = s
                switch s.pc[p] {
                case 0:
                    guard s.inFlight < capacity else { continue }
                    n.inFlight += 1
                    n.ticket &+= 1
                    n.tk[p] = n.ticket
                    n.pc[p] = 1
                case 1:
                    n.data[Int(s.tk[p] & mask)] = p * 1000 + s.done[p]
                    n.pc[p] = 2
                default:
                    n.seq[Int(s.tk[p] & mask)] = s.tk[p] &+ 1
                    n.pc[p] = 0
                    n.done[p] += 1
                }
                progressed = true
                step(n)
            }
            let slot = Int(s.head & mask)
            if s.seq[slot] == s.head &+ 1 {
                var n = s
                n.out.append(s.data[slot])
                n.seq[slot] = s.head &+ UInt32(capacity)
                n.head &+= 1
                n.inFlight -= 1
                progressed = true
                step(n)
            }
            if !progressed { bad.append("stuck after \(s.out)") }
        }
        step(
            S(
                seq: (0..<capacity).map { $0 == 0 ? UInt32(capacity) : UInt32($0) }, data: Array(repeating: -1, count: capacity),
                pc: Array(repeating: 0, count: producers), tk: Array(repeating: 0, count: producers),
                done: Array(repeating: 0, count: producers)))
        return (paths, bad)
    }
}

@Suite("Ring index protocol")
struct RingIndexProtocolTests {
    @Test(arguments: [(2, 2, 2, 3), (2, 1, 3, 2), (4, 3, 2, 4), (4, 4, 3, 2)])
    func everyInterleavingKeepsTheRingConsistent(capacity: Int, pool: Int, producers: Int, items: Int) {
        let m = IndexModel(capacity: capacity, poolSize: pool, producers: producers, itemsPerProducer: items)
        let (states, violations) = m.explore()
        #expect(violations.isEmpty, "\(violations.prefix(3))")
        #expect(states > 100)
    }

    /// The checker detects: a pool larger than the ring lets a producer find its slot busy.
    @Test func checkerCatchesAnOverfullRing() {
        let (_, violations) = IndexModel(capacity: 2, poolSize: 3, producers: 3, itemsPerProducer: 1).explore()
        #expect(violations.contains { $0.contains("busy") })
    }

    @Test func everyInterleavingIsFIFOPerProducer() {
        let (paths, bad) = OrderModel(capacity: 2, producers: 2, items: 2).allConsumptionOrdersArePerProducerFIFO()
        #expect(bad.isEmpty, "\(bad.prefix(3))")
        #expect(paths > 10)
    }

    @Test func ticketsWrapThroughTheRingContinuously() {
        // Ticket positions wrap modulo 2^32; with a power-of-two capacity the slot of t and
        // t + capacity coincide across the wrap.
        for cap in [2, 4, 1024] {
            let mask = UInt32(cap - 1)
            for t in [UInt32.max - 3, UInt32.max, 0, 1] {
                #expect((t &+ UInt32(cap)) & mask == t & mask)
            }
        }
    }

    @Test func cookieMappingFollowsC2AcrossWrapAndRebase() {
        // From a base (ticket, cookie), consecutive tickets give consecutive cookies that
        // wrap Int32.max → 1 and never 0; rebasing anywhere keeps the mapping.
        for (baseTicket, baseCookie) in [(UInt32(0), Int32(1)), (UInt32.max - 2, Int32.max - 1), (12345, Int32.max)] {
            let base = Tickets.pack(high: baseTicket, low: UInt32(bitPattern: baseCookie))
            var expected = DMACookie(baseCookie)
            for k in 0..<10 {
                let t = baseTicket &+ UInt32(k)
                let c = Tickets.cookie(ofTicket: t, base: base)
                #expect(c == expected)
                #expect(c.rawValue >= 1)
                let rebased = Tickets.pack(high: t, low: UInt32(bitPattern: c.rawValue))
                #expect(Tickets.cookie(ofTicket: t &+ 7, base: rebased) == Tickets.cookie(ofTicket: t &+ 7, base: base))
                expected = expected.next
            }
            // Far away (2^30 tickets, the rebase distance) still maps consistently.
            let far = baseTicket &+ (1 << 30)
            let cFar = Tickets.cookie(ofTicket: far, base: base)
            #expect(Int64(cFar.rawValue) == (Int64(baseCookie) - 1 + (1 << 30)) % Int64(Int32.max) + 1)
        }
    }

    @Test func lastOnlyMovesForward() {
        #expect(Tickets.isAfter(5, 3))
        #expect(!Tickets.isAfter(3, 3))
        #expect(!Tickets.isAfter(2, 3))
        // Across the 2^32 wrap.
        #expect(Tickets.isAfter(1, UInt32.max - 1))
        #expect(!Tickets.isAfter(UInt32.max - 2, UInt32.max - 1))
        // A terminate's cutoff (39) past the engine's issued tail (30): the engine's completion
        // of ticket 26, from before the terminate, is behind it.
        #expect(!Tickets.isAfter(26, 39))
    }
}
