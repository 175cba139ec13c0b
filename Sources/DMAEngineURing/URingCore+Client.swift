// dmabench — DMAEngineURing
//
// The client's calls, as the channel forwards them: configure, prep, submit, issue,
// status, pause and resume, the release check and the test hooks. Each one is a short
// section under the channel lock; what must happen outside it (a hand-off to the engine, a
// wait) comes after.

import CURing
import DMAEngine
import Glibc
import Platform
import Synchronization

extension URingCore {
    /// Runs `body` under the channel lock, or throws `.released` once the channel is released.
    @inline(__always)
    func withLiveLock<R>(_ body: (borrowing Held) throws(DMAError) -> R) throws(DMAError) -> R {
        try lock.withLock { (held: borrowing Held) throws(DMAError) -> R in
            if st.pointee.released { throw .released }
            return try body(held)
        }
    }

    // MARK: Configuration and prep

    func configure(_ config: DMAConfig) throws(DMAError) {
        guard config.burstBytes >= 0 else { throw .invalidArgument("burstBytes = \(config.burstBytes); it must be >= 0") }
        try withLiveLock { _ throws(DMAError) in st.pointee.config = config }
    }

    func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        guard length > 0, let off = pool.offset(of: source, length: length) else { return nil }
        return prepare(destination: destination, sourceOffset: off, length: length, flags: flags, segments: nil)
    }

    /// `prepareMemcpy` and `setCallback` in one lock section: the client's lock acquisitions
    /// are what the engine waits behind (a contended unlock cost the engine a futex wake).
    func prepareMemcpy(
        to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, length: Int, flags: DMAPrepFlags,
        callback: consuming DMACallback
    ) -> DMADescriptor? {
        guard length > 0, let off = pool.offset(of: source, length: length) else { return nil }
        return prepare(destination: destination, sourceOffset: off, length: length, flags: flags, segments: nil,
                       callback: callback)
    }

    /// A scatter-gather copy: one READ per piece (a run inside one source and one destination
    /// segment), submitted together and unlinked, as the chunks of a flat copy are. Every
    /// source segment must lie in the pool file.
    func prepareMemcpySG(
        destinations: UnsafeBufferPointer<DMASegment>, sources: UnsafeBufferPointer<DMASegment>, flags: DMAPrepFlags
    ) -> DMADescriptor? {
        guard let d = destinations.first, let first = sources.first,
            let off = pool.offset(of: first.address, length: first.length)
        else { return nil }
        for s in sources where pool.offset(of: s.address, length: max(1, s.length)) == nil { return nil }
        return prepare(
            destination: UnsafeMutableRawPointer(mutating: d.address), sourceOffset: off, length: 1, flags: flags,
            segments: (destinations, sources))
    }

    /// Groups slot `idx`'s pieces into runs whose sources are contiguous in the pool file and
    /// fills their iovecs. Returns the run count. A READV of 4 iovecs ran 1:4 copies of 4 KiB
    /// 2.3x [1.37, 3.56] as fast as 4 READs (9 paired rounds, a C microbenchmark): each SQE
    /// on a memfd source is one io-wq work item (docs/measurement-notes.md).
    func planRuns(_ idx: UInt32, pieces count: Int) -> Int {
        let base = Int(idx) * Self.pieceCapacity
        var n = 0
        for k in 0..<count {
            let p = pieces[base + k]
            iovecs[base + k] = iovec(iov_base: p.destination, iov_len: p.length)
            if n > 0 {
                let prev = pieces[base + k - 1]
                if prev.source + prev.length == p.source {
                    runs[base + n - 1].count += 1
                    runs[base + n - 1].length += p.length
                    continue
                }
            }
            runs[base + n] = URingRun(first: Int32(k), count: 1, length: p.length)
            n += 1
        }
        return n
    }

    private func prepare(
        destination: UnsafeMutableRawPointer, sourceOffset off: Int, length: Int, flags: DMAPrepFlags,
        segments: (UnsafeBufferPointer<DMASegment>, UnsafeBufferPointer<DMASegment>)?,
        callback: DMACallback? = nil
    ) -> DMADescriptor? {
        lock.withLock { held -> DMADescriptor? in
            guard !st.pointee.released, st.pointee.freeCount > 0 else { return nil }
            let idx = freeList[st.pointee.freeCount - 1]
            let s = slots + Int(idx)
            var length = length
            s.pointee.pieceCount = 0
            if let (dsts, srcs) = segments {
                guard let plan = DMASGPlan.plan(
                    destinations: dsts, sources: srcs, maxSegments: Self.maxSegments,
                    into: pieces + Int(idx) * Self.pieceCapacity)
                else { return nil }
                s.pointee.pieceCount = plan.count
                s.pointee.runCount = planRuns(idx, pieces: plan.count)
                length = plan.total
            }
            st.pointee.freeCount -= 1
            // The engine retired the next free slot last: start its transfer now, for the next
            // prep, while this one is filled in.
            if st.pointee.freeCount > 0 {
                prefetchForWrite(slots + Int(freeList[st.pointee.freeCount - 1]), count: MemoryLayout<URingSlot>.stride)
            }
            s.pointee.state = .prepared
            s.pointee.flags = flags
            s.pointee.destination = destination
            s.pointee.sourceOffset = off
            s.pointee.length = length
            s.pointee.chunksIssued = 0
            s.pointee.outstanding = 0
            s.pointee.bytesDone = 0
            s.pointee.result = .noError
            s.pointee.delay = 0
            s.pointee.stall = false
            s.pointee.fault = nil
            setChunking(s, requested: st.pointee.config.burstBytes, held)
            if let callback { s.pointee.callback = DMAPackedCallback(callback) }
            return DMADescriptor(index: idx, generation: s.pointee.generation)
        }
    }

    func setCallback(_ callback: DMACallback, for descriptor: DMADescriptor) throws(DMAError) {
        try withLiveLock { held throws(DMAError) in
            guard let s = preparedSlot(descriptor, held) else { throw .invalidHandle }
            s.pointee.callback = DMAPackedCallback(callback)
        }
    }

    /// `.notPermitted` for every valid handle (no descriptor here is REUSE).
    func free(_ descriptor: DMADescriptor) throws(DMAError) {
        try withLiveLock { _ throws(DMAError) in
            let i = Int(descriptor.index)
            guard i < slotCount, slots[i].generation == descriptor.generation, slots[i].state != .free
            else { throw .invalidHandle }
            throw .notPermitted
        }
    }

    // MARK: Submit, issue, status

    func submit(_ descriptor: DMADescriptor) -> DMACookie {
        lock.withLock { held -> DMACookie in
            if st.pointee.released { return .failure(ENODEV) }
            guard let s = preparedSlot(descriptor, held) else { return .failure(EINVAL) }
            if st.pointee.failNextSubmits > 0 {
                st.pointee.failNextSubmits -= 1
                return .failure(EIO)
            }
            let cookie = st.pointee.watermark.assign()
            s.pointee.cookie = cookie
            s.pointee.state = .submitted
            fifo[st.pointee.tail & fifoMask] = descriptor.index
            st.pointee.tail += 1
            publish(held)
            return cookie
        }
    }

    /// Nothing reaches the kernel while paused.
    func issuePending() {
        let go = lock.withLock { _ -> Bool in
            if st.pointee.released { return false }
            st.pointee.issuedEnd = st.pointee.tail
            return !st.pointee.paused && st.pointee.barrier < 0 && st.pointee.kcursor < st.pointee.issuedEnd
        }
        guard go else { return }
        if setup == .deferTaskrun {
            prepFromClient()
        } else {
            pumpFromClient()
        }
    }

    func status(of cookie: DMACookie) -> (DMAStatus, DMATxState) {
        // Ordering: acquire; pairs with the release store in `publish`.
        let wm = DMACookieWatermark(packed: published.load(ordering: .acquiring))
        if wm.isComplete(cookie) {
            return (.complete, DMATxState(last: wm.last, used: wm.used, residue: 0,
                                          inFlightBytes: inFlightBytes.load(ordering: .relaxed)))
        }
        return lock.withLock { _ -> (DMAStatus, DMATxState) in
            let w = st.pointee.watermark
            let inFlight = st.pointee.bytesInKernel
            if w.isComplete(cookie) {
                return (.complete, DMATxState(last: w.last, used: w.used, residue: 0, inFlightBytes: inFlight))
            }
            var residue = 0
            var pos = st.pointee.head
            while pos < st.pointee.tail {
                let s = slots + Int(fifo[pos & fifoMask])
                if s.pointee.cookie == cookie {
                    switch s.pointee.state {
                    case .active, .done: residue = max(1, s.pointee.length - s.pointee.bytesDone)
                    default: residue = s.pointee.length
                    }
                    break
                }
                pos += 1
            }
            return (st.pointee.paused ? .paused : .inProgress,
                    DMATxState(last: w.last, used: w.used, residue: residue, inFlightBytes: inFlight))
        }
    }

    // MARK: Flow control

    /// Holds back submission and returns once no SQE of this channel is in the kernel. From a
    /// callback (the engine thread) it reaps in place; from another thread it waits for the
    /// engine (bounded by the reads in flight).
    func pause() throws(DMAError) {
        try withLiveLock { _ throws(DMAError) in st.pointee.paused = true }
        if onEngineThread {
            drainInline()
        } else {
            // Ordering: seq_cst; pairs with the seq_cst decrement in `absorb`.
            waitFor { outstanding.load(ordering: .sequentiallyConsistent) == 0 }
        }
    }

    func resume() throws(DMAError) {
        try withLiveLock { _ throws(DMAError) in
            guard st.pointee.paused else { throw .notPaused }
            st.pointee.paused = false
        }
        if setup != .deferTaskrun { pumpFromClient() }
        request(URingControl.flush | URingControl.service, urgent: true)
    }

    // MARK: Termination and release

    /// NB-safe.
    func terminateAsync() throws(DMAError) {
        let cancel = try withLiveLock { held throws(DMAError) in terminateLocked(held) }
        if cancel { request(URingControl.cancel, urgent: true) }
    }

    /// Marks the channel released, terminates, and stops the engine (joined unless called on
    /// it). `waitForQuiescence`: synchronize first (not from the engine thread's deinit).
    func shutdown(waitForQuiescence: Bool) {
        let cancel = lock.withLock { held -> Bool in
            st.pointee.released = true
            return terminateLocked(held)
        }
        // Ordering: release; pairs with the acquire loads of `released` in the public calls.
        released.store(true, ordering: .releasing)
        if cancel { request(URingControl.cancel, urgent: true) }
        if waitForQuiescence { waitQuiescent() }
        stopEngine()
    }

    // MARK: Test hooks

    func seedCookie(used: DMACookie, last: DMACookie) throws(DMAError) {
        guard used.isValid, last.isValid else {
            throw .invalidArgument("debugSeedCookie(used: \(used), last: \(last)); cookies must be >= 1")
        }
        try withLiveLock { held throws(DMAError) in
            guard st.pointee.head == st.pointee.tail, st.pointee.zombies == 0 else { throw .busy }
            st.pointee.watermark = DMACookieWatermark(used: used, last: last)
            publish(held)
        }
    }

    func inject(_ injection: DMAInjection, into descriptor: DMADescriptor) throws(DMAError) {
        try withLiveLock { held throws(DMAError) in
            guard let s = preparedSlot(descriptor, held) else { throw .invalidHandle }
            if injection.chunkBytes > 0 { setChunking(s, requested: injection.chunkBytes, held) }
            s.pointee.delay = max(0, injection.delayPerChunkNanoseconds)
            s.pointee.stall = injection.stall
            s.pointee.fault = injection.fault
        }
    }

    func failNextSubmits(_ count: Int) {
        lock.withLock { _ in st.pointee.failNextSubmits = max(0, count) }
    }

    func releaseStalls() {
        lock.withLock { _ in for i in 0..<slotCount { slots[i].stall = false } }
        request(URingControl.service, urgent: true)
    }

    func setAccessProbe(_ probe: DMAAccessProbe?) {
        lock.withLock { _ in
            st.pointee.probe = probe
            st.pointee.hasProbe = probe != nil
        }
    }
}
