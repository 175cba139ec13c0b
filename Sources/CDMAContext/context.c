// dmabench — CDMAContext: per-thread non-blocking-context depth (the accessors are inline
// in CDMAContext.h).
#include "CDMAContext.h"

_Thread_local int cdma_nbc_depth_v __attribute__((tls_model("initial-exec")));
_Thread_local int cdma_lock_depth_v __attribute__((tls_model("initial-exec")));
