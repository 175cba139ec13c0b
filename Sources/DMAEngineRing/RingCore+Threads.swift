// dmabench — DMAEngineRing
//
// The ring core's two threads: started once the core is built, stopped through the control
// word, joined by release or by the channel's deinit.

import DMAEngine
import Glibc
import Platform
import Synchronization

extension RingCore {
    /// Starts the engine thread and, unless the engine runs the callbacks, the executor
    /// thread (pinned to `options.engineCPU` / `options.executorCPU` when given). The threads
    /// hold the core, never the channel. Returns the executor, which a client-poll channel
    /// keeps for `poll()`.
    @discardableResult
    func start() throws(DMAError) -> RingExecutor {
        let executor = RingExecutor(core: self)
        let engine = RingEngine(core: self, executor: executor, inline: callbacksOnEngine)
        do {
            engineThread = try OSThread(name: "ring-engine", cpu: options.engineCPU) { engine.run() }
        } catch {
            throw .unavailable("cannot start the engine thread: \(error)")
        }
        if callbacksOnEngine { return executor }
        do {
            executorThread = try OSThread(name: "ring-executor", cpu: options.executorCPU) { executor.run() }
        } catch {
            stopThreads(join: true)
            throw .unavailable("cannot start the executor thread: \(error)")
        }
        return executor
    }

    /// Sets `stopping` in the control word, wakes both threads and (optionally) joins them.
    func stopThreads(join: Bool) {
        var c = control.pointee.load(ordering: .relaxed)
        while true {
            // Ordering: seq_cst; pairs with the acquire loads of `control` in both threads and
            // their seq_cst park re-checks.
            let (done, now) = control.pointee.compareExchange(
                expected: c, desired: Control(raw: c).stopping().raw, ordering: .sequentiallyConsistent)
            if done { break }
            c = now
        }
        wake(enginePark)
        wake(executorPark)
        if join {
            engineThread?.join()
            executorThread?.join()
            threadsJoined.store(true, ordering: .relaxed)
        }
    }

    /// The channel was dropped without `release()`: stop the threads, and join them unless
    /// this is one of them (the last reference dropped in a callback: the executor, or the
    /// engine in engine-thread mode), which then exits by itself.
    func stopFromDeinit() {
        if threadsJoined.load(ordering: .relaxed) { return }
        let callbackThread = callbacksOnEngine ? engineThread?.threadID : executorThread?.threadID
        stopThreads(join: CPU.currentThreadID != callbackThread)
    }

    /// Whether the caller is a callback running on the engine thread (engine-thread mode).
    var onEngineCallback: Bool {
        callbacksOnEngine && NonBlockingContext.isActive && CPU.currentThreadID == engineThread?.threadID
    }

    /// Kernel: `dma_release_channel`: terminate, synchronize, stop and join the threads, free
    /// the pool and the rings.
    func release() throws(DMAError) {
        try NonBlockingContext.checkBlockingAllowed()
        try beginRelease()
        stopThreads(join: true)
        freeStorage()
    }
}
