/* cring.h: the plain-C ring engine (cring.c), a dmabench plugin (dmabench_engine.h). */
#ifndef CRING_H
#define CRING_H

#include "dmabench_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The plugin entry point (DMABENCH_PLUGIN_SYMBOL): one engine, "cring". */
const struct dmabench_plugin *dmabench_plugin(void);

#ifdef __cplusplus
}
#endif

#endif /* CRING_H */
