// dmabench — DMABackends
//
// One line per backend (or backend variant).

import DMAEngine
import DMAEngineCPU
import DMAEngineLocked
import DMAEngineRing
import DMAEngineURing

/// Why io_uring cannot be used here, or nil.
let uringUnavailable: @Sendable () -> String? = {
    if case .failure(let e) = URingChannel.availability() {
        if case .unavailable(let why) = e { return why }
        return "\(e)"
    }
    return nil
}

let entries: [BackendEntry] = [
    BackendEntry(name: "cpu", summary: "the baseline: a CPU copy on the issuing thread (async_tx's fallback, DPDK CPU_MEM_COPY)") { o throws(DMAError) in
        try CPUChannel(options: o)
    },
    BackendEntry(name: "locked", summary: "virt-dma model: one lock, five lists, engine thread (runs the callbacks too)") { o throws(DMAError) in
        // Two threads, not three: on a 2-CPU machine a separate callback executor has no CPU
        // of its own (DMACallbackContext.engineThread).
        var o = o
        o.callbackContext = o.requestedCallbackContext ?? .engineThread
        return try LockedChannel(options: o)
    },
    BackendEntry(name: "ring", summary: "lock-free: MPSC submission ring, polling engine, completion ring, epoch terminate") { o throws(DMAError) in
        // The engine thread runs the callbacks (two threads instead of three: on a 2-CPU
        // machine the executor thread has no CPU of its own). The ring passes the whole
        // conformance suite in both callback contexts.
        var o = o
        o.callbackContext = o.requestedCallbackContext ?? .clientPoll
        return try RingChannel(options: o)
    },
    BackendEntry(name: "uring", summary: "io_uring: reads from a page-cache pool file, reaper thread", unavailableReason: uringUnavailable) { o throws(DMAError) in
        try URingChannel(options: o, setup: .plain)
    },
    BackendEntry(name: "uring-defer", summary: "io_uring with SINGLE_ISSUER|DEFER_TASKRUN (the engine thread owns the ring)", unavailableReason: uringUnavailable) { o throws(DMAError) in
        try URingChannel(options: o, setup: .deferTaskrun)
    },
    BackendEntry(name: "uring-sqpoll", summary: "io_uring with SQPOLL (a kernel thread polls the submission queue)", unavailableReason: uringUnavailable) { o throws(DMAError) in
        try URingChannel(options: o, setup: .sqpoll)
    },
]
