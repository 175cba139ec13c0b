// dmabench — CDMAPlugin: what the Swift host needs beside the ABI header.
#ifndef CDMA_PLUGIN_H
#define CDMA_PLUGIN_H
#include "dmabench_engine.h"

/// DMABENCH_ENGINE_ABI_VERSION, the version this host speaks.
uint32_t cdma_plugin_host_abi_version(void);
/// DMABENCH_CAP_ALL (a macro expression Swift does not import).
static const uint32_t cdma_plugin_cap_all = DMABENCH_CAP_ALL;
#endif
