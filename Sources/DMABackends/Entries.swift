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
    BackendEntry(name: "ring", summary: "lock-free: MPSC submission ring, polling engine, completion ring, epoch terminate, callbacks in client polls") { o throws(DMAError) in
        // No executor thread (on a 2-CPU machine it has no CPU of its own): the engine runs
        // the callbacks, and a client that polls with a batch in flight runs them while the
        // engine copies, as the anchors' client does (DMACallbackContext.clientPoll). The
        // ring passes the whole conformance suite in all three callback contexts.
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
