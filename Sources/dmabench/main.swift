// dmabench — command line
//
// The executable is the library's entry point with the built-in backends only
// (Sources/DMABenchCLI; an out-of-tree package calls the same with its own).

import DMABenchCLI

DMABenchMain.main()
