// dmabench — CDMAContext
//
// Why this exists: Swift has no thread-local storage of its own. The non-blocking-context
// marker (CONTRACT.md A.1) must be per thread and cheap to read on every blocking call, so it
// lives in one C `_Thread_local` counter. Nothing else belongs here.
#ifndef CDMACONTEXT_H
#define CDMACONTEXT_H

/// Enters a non-blocking region on the calling thread (nestable).
void cdma_nbc_enter(void);
/// Leaves a non-blocking region on the calling thread.
void cdma_nbc_exit(void);
/// The nesting depth of non-blocking regions on the calling thread (0 = blocking context).
int cdma_nbc_depth(void);

/// Counts internal backend locks held by the calling thread (CONTRACT.md A.1 (c)).
void cdma_lock_enter(void);
void cdma_lock_exit(void);
int cdma_lock_depth(void);

#endif
