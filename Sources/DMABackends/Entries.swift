// dmabench — DMABackends
//
// One line per backend.

import DMAEngine

let entries: [BackendEntry] = []
