// dmabench — DMABackends
//
// One line per backend.

import DMAEngine
import DMAEngineLocked

let entries: [BackendEntry] = [
    BackendEntry(name: "locked", summary: "virt-dma model: one lock, five lists, engine thread, callback executor") { o throws(DMAError) in
        try LockedChannel(options: o)
    },
]
