// dmabench — LockedTests
//
// The negative controls misbehave the way their documentation says, so that the
// conformance suite has something real to catch.

import DMAEngine
@_spi(NegativeControls) import DMAEngineLocked
import Platform
import Synchronization
import Testing
import TestHelpers

@Suite("LockedChannel negative controls")
struct LockedDefectTests {
    @Test func synchronizeDoesNotWaitReturnsWhileCallbackRuns() throws {
        let ch = try LockedChannel(defect: .synchronizeDoesNotWait)
        let buf = try ch.allocateCoherent(byteCount: 64)
        let gate = Gate()
        _ = ch.submitAndIssue(try #require(ch.prepareMemcpy(
            to: buf.base, from: buf.base, length: 8, callback: .plain { _ in gate.block() })))
        #expect(waitUntil { gate.entered.load(ordering: .sequentiallyConsistent) == 1 })
        try ch.terminateSync()
        #expect(gate.exited.load(ordering: .sequentiallyConsistent) == 0)  // the bug
        gate.open.store(true, ordering: .sequentiallyConsistent)
        try ch.release()
        #expect(gate.exited.load(ordering: .sequentiallyConsistent) == 1)
        ch.freeCoherent(buf)
    }

    @Test func terminateKeepsCopyingActiveTouchesMemoryAfterSynchronize() throws {
        let ch = try LockedChannel(defect: .terminateKeepsCopyingActive)
        let len = 4096
        let src = try ch.allocateCoherent(byteCount: len)
        let dst = try ch.allocateCoherent(byteCount: len)
        let after = Atomic<Int>(0)
        let synced = Atomic<Bool>(false)
        ch.debugSetAccessProbe { _ in if synced.load(ordering: .sequentiallyConsistent) { after.add(1, ordering: .relaxed) } }
        let d = try #require(ch.prepareMemcpy(to: dst.base, from: src.base, length: len, flags: []))
        try ch.debugInject(.slow(length: len, nanoseconds: 50_000_000), into: d)
        let c = ch.submitAndIssue(d)
        #expect(waitUntil { ch.status(of: c).1.residue < len })
        try ch.terminateSync()
        synced.store(true, ordering: .sequentiallyConsistent)
        #expect(waitUntil(seconds: 2) { after.load(ordering: .relaxed) > 0 })  // the bug
        try ch.release()
        ch.freeCoherent(src)
        ch.freeCoherent(dst)
    }

    @Test func callbackAfterTerminateRunsCallbacksAfterSynchronize() throws {
        let ch = try LockedChannel(defect: .callbackAfterTerminate)
        let buf = try ch.allocateCoherent(byteCount: 4096)
        let rec = Recorder()
        for _ in 0..<4 {
            let d = try #require(ch.prepareMemcpy(to: buf.base, from: buf.base + 2048, length: 2048, callback: rec.callback(nil)))
            try ch.debugInject(.slow(length: 2048, nanoseconds: 50_000_000), into: d)
            _ = ch.submit(d)
        }
        ch.issuePending()
        MonotonicClock.sleep(nanoseconds: 5_000_000)
        try ch.terminateSync()
        #expect(waitUntil(seconds: 2) { rec.count > 0 })  // the bug
        try ch.release()
        ch.freeCoherent(buf)
    }

    @Test func correctChannelPassesTheSameChecks() throws {
        let ch = try LockedChannel()
        let buf = try ch.allocateCoherent(byteCount: 4096)
        let rec = Recorder()
        let gate = Gate()
        _ = ch.submitAndIssue(try #require(ch.prepareMemcpy(
            to: buf.base, from: buf.base, length: 8, callback: .plain { _ in gate.block() })))
        #expect(waitUntil { gate.entered.load(ordering: .sequentiallyConsistent) == 1 })
        for _ in 0..<4 {
            let d = try #require(ch.prepareMemcpy(to: buf.base, from: buf.base + 2048, length: 2048, callback: rec.callback(nil)))
            try ch.debugInject(.slow(length: 2048, nanoseconds: 50_000_000), into: d)
            _ = ch.submit(d)
        }
        ch.issuePending()
        let opener = try OSThread(name: "opener") {
            MonotonicClock.sleep(nanoseconds: 20_000_000)
            gate.open.store(true, ordering: .sequentiallyConsistent)
        }
        try ch.terminateSync()
        #expect(gate.exited.load(ordering: .sequentiallyConsistent) == 1)
        MonotonicClock.sleep(nanoseconds: 50_000_000)
        #expect(rec.count == 0)
        opener.join()
        try ch.release()
        ch.freeCoherent(buf)
    }
}
