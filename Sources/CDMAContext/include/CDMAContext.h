// dmabench — CDMAContext
//
// Why this exists: Swift has no thread-local storage of its own. The non-blocking-context
// marker (docs/contract.md A.1) must be per thread and cheap to read on every blocking call, so it
// lives in two C `_Thread_local` counters. Nothing else belongs here.
//
// The accessors are `static inline`, so that Swift inlines them: they run around every
// completion callback and every backend lock hold, and as calls into context.c they cost a
// call, a return and a TLS address computation each (callgrind: two calls per descriptor on
// the ring engine, four on the locked client and engine). The counters use the
// initial-exec TLS model: dmabench links its modules into one executable (or into the test
// runner), never into a library opened with dlopen, so the offset from the thread pointer
// is fixed at load time and an access is one `%fs`-relative instruction.
#ifndef CDMACONTEXT_H
#define CDMACONTEXT_H

/// The nesting depth of non-blocking regions and of internal backend locks on each thread
/// (defined in context.c). Use the functions below.
extern _Thread_local int cdma_nbc_depth_v __attribute__((tls_model("initial-exec")));
extern _Thread_local int cdma_lock_depth_v __attribute__((tls_model("initial-exec")));

/// Enters a non-blocking region on the calling thread (nestable).
static inline void cdma_nbc_enter(void) { cdma_nbc_depth_v++; }
/// Leaves a non-blocking region on the calling thread.
static inline void cdma_nbc_exit(void) { cdma_nbc_depth_v--; }
/// The nesting depth of non-blocking regions on the calling thread (0 = blocking context).
static inline int cdma_nbc_depth(void) { return cdma_nbc_depth_v; }

/// Counts internal backend locks held by the calling thread (docs/contract.md A.1 (c)).
static inline void cdma_lock_enter(void) { cdma_lock_depth_v++; }
static inline void cdma_lock_exit(void) { cdma_lock_depth_v--; }
static inline int cdma_lock_depth(void) { return cdma_lock_depth_v; }

#endif
