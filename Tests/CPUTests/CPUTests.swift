// dmabench — CPUTests
//
// The cpu backend: the shared conformance suite and the random-client checker, and what is
// its own: issuePending does the work on the calling thread, a callback that issues more
// work does not recurse, and concurrent issuers share one draining thread.

import DMAEngine
import DMAEngineCPU
import DMAEngineTestSupport
import Glibc
import Platform
import Synchronization
import TestHelpers
import Testing

enum CPUSubjects {
    static let subject = ConformanceSubject(name: "cpu") { options in try CPUChannel(options: options) }
    /// Capabilities cpu does not advertise: pause (24), descriptor reuse (26) and cyclic
    /// (28); and the scenarios that need an engine running beside the client
    /// (`synchronousIssue`). Scenario 25 checks that reuse is refused, so it runs.
    static let unadvertised: Set<Int> = [24, 26, 28]
    static let needsEngine = Set(ConformanceScenario.all.filter(\.needsEngineThread).map(\.number))
    static let applicable = ConformanceScenario.all.filter { !unadvertised.contains($0.number) && !needsEngine.contains($0.number) }
    static let skipped = ConformanceScenario.all.filter { unadvertised.contains($0.number) || needsEngine.contains($0.number) }
}

@Suite(.serialized)
struct CPUConformance {
    @Test("cpu passes scenario", arguments: CPUSubjects.applicable)
    func passes(_ scenario: ConformanceScenario) {
        let r = runConformanceScenario(scenario.number, subject: CPUSubjects.subject)
        expectScenario(r, tag: "cpu")
    }

    @Test("what cpu cannot do is skipped with its reason", arguments: CPUSubjects.skipped)
    func skipsWithReason(_ scenario: ConformanceScenario) {
        let r = runConformanceScenario(scenario.number, subject: CPUSubjects.subject)
        guard case .skipped(let why) = r.outcome else {
            Issue.record("scenario \(scenario.number) was not skipped: \(r)")
            return
        }
        if CPUSubjects.needsEngine.contains(scenario.number) {
            #expect(why.contains("synchronousIssue"), "\(why)")
        } else {
            #expect(!why.isEmpty)
        }
    }

    @Test("the random-client checker passes on cpu")
    func checkerPasses() {
        let tsan = ConformanceConfiguration.isThreadSanitizerActive
        var c = ContractFuzzConfiguration(seed: 0x5EED_C0, duration: tsan ? 4 : 6)
        if tsan { c.watchdogSeconds = 30 }
        let report = checkContractFuzz(subject: CPUSubjects.subject, configuration: c)
        print("[fuzz] \(report)")
        #expect(report.passed, "\(report)")
        #expect(report.operations > 0 && report.callbacks > 0, "the checker did nothing: \(report)")
    }
}

@Suite("CPUChannel")
struct CPUChannelTests {
    @Test("issuePending copies on the calling thread and runs the callbacks before it returns")
    func synchronous() throws {
        let ch = try CPUChannel()
        defer { try? ch.release() }
        #expect(ch.capabilities.synchronousIssue && !ch.capabilities.cmdPause)
        let src = try ch.allocateCoherent(byteCount: 4096)
        let dst = try ch.allocateCoherent(byteCount: 4096)
        defer { ch.freeCoherent(src); ch.freeCoherent(dst) }
        for i in 0..<4096 { src.base.storeBytes(of: UInt8(truncatingIfNeeded: i * 7), toByteOffset: i, as: UInt8.self) }
        let me = CPU.currentThreadID
        let ran = LockedValue<[Int32]>([])
        let d = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: 4096, flags: .default,
                                             callback: DMACallback(plain: { _ in ran.withLock { $0.append(CPU.currentThreadID) } })))
        let c = ch.submit(d)
        #expect(ch.status(of: c).0 == .inProgress, "submit does not start the copy")
        ch.issuePending()
        #expect(ran.withLock { $0 } == [me], "the callback ran once, on the issuing thread, before issuePending returned")
        #expect(ch.status(of: c).0 == .complete)
        #expect(memcmp(src.base, dst.base, 4096) == 0)
        #expect(throws: DMAError.notSupported) { try ch.pause() }
    }

    @Test("a callback that issues more work does not recurse: 100 000 chained descriptors, depth 1")
    func nestedIssueDoesNotRecurse() throws {
        let ch = try CPUChannel(options: DMAChannelOptions(poolSize: 64))
        defer { try? ch.release() }
        let buf = try ch.allocateCoherent(byteCount: 128)
        defer { ch.freeCoherent(buf) }
        final class Chain: @unchecked Sendable {
            var left = 100_000
            var depth = 0
            var maxDepth = 0
            var done = 0
        }
        let chain = Chain()
        @Sendable func next() {
            guard chain.left > 0 else { return }
            chain.left -= 1
            let d = ch.prepareMemcpy(to: buf.base + 64, from: buf.base, length: 64, flags: .default, callback: DMACallback(plain: { _ in
                chain.depth += 1
                chain.maxDepth = max(chain.maxDepth, chain.depth)
                chain.done += 1
                next()
                chain.depth -= 1
            }))
            guard let d else { return }
            _ = ch.submit(d)
            ch.issuePending()
        }
        next()
        #expect(chain.done == 100_000)
        #expect(chain.maxDepth == 1, "nested issuePending ran a callback inside a callback")
    }

    @Test("concurrent issuers: one thread drains, every cookie completes once, callbacks in cookie order")
    func concurrentIssuers() throws {
        let ch = try CPUChannel(options: DMAChannelOptions(poolSize: 200))  // not a power of two: the FIFO ring is larger than the pool
        defer { try? ch.release() }
        let buf = try ch.allocateCoherent(byteCount: 8192)
        defer { ch.freeCoherent(buf) }
        let seen = LockedValue<[Int32]>([])
        let perThread = 20_000
        let threads = try (0..<4).map { t in
            try OSThread(name: "cpu-issuer-\(t)") {
                var n = 0
                while n < perThread {
                    guard let d = ch.prepareMemcpy(to: buf.base + 4096 + 64 * t, from: buf.base + 64 * t, length: 64, flags: .default,
                                                   callback: .result { comp in seen.withLock { $0.append(comp.cookie.rawValue) } })
                    else { sched_yield(); continue }
                    _ = ch.submit(d)
                    ch.issuePending()
                    n += 1
                }
            }
        }
        for t in threads { t.join() }
        let cookies = seen.withLock { $0 }
        #expect(cookies.count == 4 * perThread)
        #expect(cookies == cookies.sorted(), "callbacks ran out of cookie order")
        #expect(Set(cookies).count == cookies.count, "a cookie completed twice")
    }
}
