// dmabench — CDMAPlugin
//
// The plugin ABI header (include/dmabench_engine.h) as a module, so that the Swift adapter
// (DMAEnginePlugin) and the reference C engines share one definition. A C target needs a
// source file; this one gives Swift the header's version macro as a function.
#include "cdma_plugin.h"

uint32_t cdma_plugin_host_abi_version(void) { return DMABENCH_ENGINE_ABI_VERSION; }
