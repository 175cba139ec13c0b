// dmabench — ReliabilityTests
//
// Create and release 1 000 channels per backend: the process's open file descriptors
// (/proc/self/fd) and threads (/proc/self/task) must come back to the baseline. Releasing a
// channel joins every thread and closes every fd (io_uring, perf, memfd).

import DMABackends
import DMAEngine
import Foundation
import Testing

enum ProcessResources {
    static func count(_ dir: String) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: dir).count) ?? -1
    }
    static var openFDs: Int { count("/proc/self/fd") }
    static var threads: Int { count("/proc/self/task") }
}

/// The backends that can run here; the others are listed with their reasons in the test names.
let runnableBackends: [String] = BackendRegistry.all.filter { $0.unavailableReason() == nil }.map(\.name)

@Suite("Leaks", .serialized)
struct LeakTests {
    @Test("1000 channels: fds and threads return to the baseline", arguments: runnableBackends)
    func createAndRelease(_ name: String) throws {
        let entry = try #require(BackendRegistry.entry(named: name))
        let iterations = ProcessInfo.processInfo.environment["DMABENCH_LONG_TESTS"] == "1" ? 10_000 : 1_000
        // One warm-up channel, so that one-time allocations (thread-local storage, libpfm,
        // the dynamic loader) are not counted as leaks.
        try entry.make(DMAChannelOptions(poolSize: 64)).release()
        let fds0 = ProcessResources.openFDs
        let threads0 = ProcessResources.threads
        let src = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        defer { src.deallocate() }
        for i in 0..<iterations {
            let ch = try entry.make(DMAChannelOptions(poolSize: 64))
            if i % 10 == 0 {
                // Use some channels for real: a copy from the channel's own memory.
                let buf = try ch.allocateCoherent(byteCount: 4096)
                let d = try #require(ch.prepareMemcpy(to: buf.base + 2048, from: buf.base, length: 64, flags: .default))
                let cookie = ch.submitAndIssue(d)
                #expect(cookie.isValid)
                try ch.terminateSync()
                ch.freeCoherent(buf)
            }
            try ch.release()
        }
        #expect(ProcessResources.openFDs == fds0, "open fds after \(iterations) channels")
        #expect(ProcessResources.threads == threads0, "threads after \(iterations) channels")
    }

    @Test("operations after release fail with .released")
    func afterRelease() throws {
        for name in runnableBackends {
            let ch = try BackendRegistry.entry(named: name)!.make(DMAChannelOptions(poolSize: 16))
            try ch.release()
            #expect(throws: DMAError.released) { try ch.terminateSync() }
            #expect(throws: DMAError.released) { try ch.pause() }
            #expect(!ch.submit(DMADescriptor(index: 0, generation: 0)).isValid)
        }
    }
}
