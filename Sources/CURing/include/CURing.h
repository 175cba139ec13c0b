// dmabench — CURing: an opaque wrapper around liburing 2.3.
//
// This public header deliberately does NOT include <liburing.h>: liburing.h defines
// _GNU_SOURCE/_XOPEN_SOURCE, which changes glibc's fd_set and breaks every other Clang
// module that Swift imports next to it (docs/architecture.md, "liburing behind an opaque C wrapper"). Swift sees only an
// opaque `curing_ring *` and plain functions; the liburing static inlines run in curing.c.
//
// Conventions: functions return 0 (or a count) on success and -errno on failure, as
// liburing does. Each function says why it exists. Only DMAEngineURing imports this.
#ifndef CURING_H
#define CURING_H

#include <stddef.h>
#include <stdint.h>

/// An io_uring instance (`struct io_uring`) plus what the wrapper needs. Opaque to Swift.
typedef struct curing_ring curing_ring;

/// Ring setups. Plain: flags 0. Defer: IORING_SETUP_SINGLE_ISSUER|IORING_SETUP_DEFER_TASKRUN
/// (only the creating thread may submit or reap). SQPoll: IORING_SETUP_SQPOLL (a kernel
/// thread polls the SQ; IORING_SETUP_SQ_AFF when sq_cpu >= 0).
enum curing_mode { CURING_MODE_PLAIN = 0, CURING_MODE_DEFER = 1, CURING_MODE_SQPOLL = 2 };

/// Why: the backend's availability probe. Creates and destroys a 2-entry plain ring.
/// Returns 0 or -errno from io_uring_queue_init (ENOSYS: no io_uring; EPERM: disabled
/// by sysctl or seccomp).
int curing_probe(void);

/// Why: io_uring_queue_init_params needs `struct io_uring_params` and IORING_SETUP_*
/// constants. Creates a ring of `sq_entries` SQEs and `cq_entries` CQEs (IORING_SETUP_CQSIZE).
/// Fails with -EOPNOTSUPP when the kernel lacks IORING_FEAT_EXT_ARG (timed waits would
/// otherwise need an SQE, which another thread may be filling). Returns 0 or -errno.
int curing_create(unsigned sq_entries, unsigned cq_entries, int mode, int sq_cpu, unsigned sq_idle_ms,
                  curing_ring **out);
/// Why: io_uring_queue_exit + free of the wrapper.
void curing_destroy(curing_ring *ring);

/// Why: io_uring_register_files with one file, so reads can use IOSQE_FIXED_FILE (index 0).
int curing_register_file(curing_ring *ring, int fd);
/// Why: io_uring_register_buffers with one iovec, so reads into it can use READ_FIXED (index 0).
int curing_register_buffer(curing_ring *ring, void *base, size_t length);

/// Why: io_uring_sq_space_left is a static inline. Free SQ entries.
unsigned curing_sq_space_left(curing_ring *ring);

/// Why: io_uring_get_sqe + io_uring_prep_read (or prep_read_fixed when buf_index >= 0) +
/// set_data64 + IOSQE_FIXED_FILE are static inlines/macros. One SQE that reads `length`
/// bytes at `offset` of file `fd` (a registered index when fixed_file != 0) into `buffer`.
/// Returns 0, or -EBUSY when the SQ is full.
int curing_prep_read(curing_ring *ring, int fd, int fixed_file, void *buffer, unsigned length, uint64_t offset,
                     int buf_index, uint64_t user_data);
/// Why: get_sqe + prep_readv (static inlines). Reads `nr` iovecs (`iovecs` points to
/// `struct iovec`s, which must stay valid until the SQE completes) from one contiguous range at
/// `offset`: a scatter-gather copy whose source pieces are contiguous in the file, as one SQE.
/// Returns 0 or -EBUSY.
int curing_prep_readv(curing_ring *ring, int fd, int fixed_file, const void *iovecs, unsigned nr, uint64_t offset,
                      uint64_t user_data);
/// Why: get_sqe + prep_nop (static inlines). Returns 0 or -EBUSY.
int curing_prep_nop(curing_ring *ring, uint64_t user_data);
/// Why: get_sqe + prep_cancel64 with IORING_ASYNC_CANCEL_ALL|IORING_ASYNC_CANCEL_ANY
/// (static inline; the flags are macros). Cancels every request of this ring that can be
/// cancelled; its own CQE's res is the number cancelled. Returns 0 or -EBUSY.
int curing_prep_cancel_any(curing_ring *ring, uint64_t user_data);

/// Why: io_uring_submit. Returns the number of SQEs submitted or -errno.
int curing_submit(curing_ring *ring);

/// Why: the SQE tail is a liburing internal. The tail after the last SQE prepped (read it
/// under the lock that guards prepping).
unsigned curing_sq_tail(curing_ring *ring);

/// Why: liburing's flush of the SQ tail is internal to io_uring_submit. Publishes the SQEs
/// up to `tail` to the kernel (the SQ tail, a release store) without entering, and returns how
/// many the kernel has not consumed. `tail` comes from a prepping thread through an atomic of
/// the caller, so the publisher needs no lock; only one thread may publish.
unsigned curing_sq_publish_to(curing_ring *ring, unsigned tail);

/// Why: io_uring_submit holds the SQ for the whole syscall. Enters to submit `to_submit`
/// published SQEs, outside the SQ lock, so that another thread can prep meanwhile (DEFER_TASKRUN:
/// only the ring's owner may call this). Returns the count submitted or -errno.
int curing_enter_submit(curing_ring *ring, unsigned to_submit);
/// Why: io_uring_submit_and_wait_timeout (timeout_ns < 0: io_uring_submit_and_wait). Submits
/// pending SQEs and waits for at least one CQE. Returns >= 0, -ETIME on timeout, -EINTR, or -errno.
int curing_submit_and_wait(curing_ring *ring, int64_t timeout_ns);
/// Why: io_uring_wait_cqe[_timeout] without submitting (another thread may own the SQ).
/// Waits for at least one CQE. Returns 0, -ETIME, -EINTR or -errno.
int curing_wait(curing_ring *ring, int64_t timeout_ns);
/// Why: io_uring_for_each_cqe is a macro; this is io_uring_peek_batch_cqe + copying out +
/// io_uring_cq_advance. Reaps up to `max` ready CQEs into `user_data`/`res`; returns the count.
unsigned curing_reap(curing_ring *ring, uint64_t *user_data, int32_t *res, unsigned max);
/// Why: io_uring_cq_ready is a static inline. CQEs ready in the CQ ring (no syscall).
unsigned curing_cq_ready(curing_ring *ring);

/// Why: O_TMPFILE and statfs/TMPFS_MAGIC are not visible from Swift's Glibc module.
/// Opens an unlinked regular file in `directory` (O_TMPFILE, else mkstemp + unlink) and
/// sizes it to `length`. Fails with -EXDEV when the directory is on tmpfs/ramfs (reads
/// from shmem go through io-wq workers; use a memfd deliberately instead). Returns an fd or -errno.
int curing_open_pool_file(const char *directory, size_t length);
/// Why: memfd_create needs _GNU_SOURCE. A memfd of `length` bytes. Returns an fd or -errno.
int curing_open_pool_memfd(size_t length);
/// Why: <sys/eventfd.h> is not in Swift's Glibc module. eventfd(0, EFD_CLOEXEC).
int curing_eventfd(void);
/// Pins the ring's io-wq worker threads to `cpus` (IORING_REGISTER_IOWQ_AFF): the engine
/// placement for the kernel's own workers. Returns 0 or -errno.
int curing_register_iowq_affinity(curing_ring *ring, const int *cpus, int count);
/// Why: completes the eventfd wrapper: eventfd_write(fd, 1). Returns 0 or -errno.
int curing_eventfd_signal(int fd);

#endif
