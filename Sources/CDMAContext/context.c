// dmabench — CDMAContext: per-thread non-blocking-context depth.
#include "CDMAContext.h"

static _Thread_local int nbc_depth;
static _Thread_local int lock_depth;

void cdma_nbc_enter(void) { nbc_depth++; }
void cdma_nbc_exit(void) { nbc_depth--; }
int cdma_nbc_depth(void) { return nbc_depth; }

void cdma_lock_enter(void) { lock_depth++; }
void cdma_lock_exit(void) { lock_depth--; }
int cdma_lock_depth(void) { return lock_depth; }
