// dmabench — CURing implementation: the only file that includes <liburing.h>.
#define _GNU_SOURCE
#include "CURing.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

struct curing_ring {
    struct io_uring ring;
};

/* The SQ and CQ rings are memory shared with the kernel, mapped by liburing with raw
 * syscalls that ThreadSanitizer does not see. When one channel's ring is destroyed and the
 * next one is mapped at the same address, TSan pairs the new ring's SQE writes with the old
 * ring's and reports races between unrelated channels. The unmap/map is a synchronisation
 * point TSan cannot observe, so it is modelled with a release on one global address when a
 * ring is destroyed and an acquire when one is created. Nothing else is hidden from TSan. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
static char ring_mapping_epoch;
#define RING_CREATED() __tsan_acquire(&ring_mapping_epoch)
#define RING_DESTROYED() __tsan_release(&ring_mapping_epoch)
#endif
#endif
#ifndef RING_CREATED
#define RING_CREATED() ((void)0)
#define RING_DESTROYED() ((void)0)
#endif

int curing_probe(void) {
    struct io_uring ring;
    int r = io_uring_queue_init(2, &ring, 0);
    if (r == 0) {
        RING_CREATED();
        RING_DESTROYED();
        io_uring_queue_exit(&ring);
    }
    return r;
}

int curing_create(unsigned sq_entries, unsigned cq_entries, int mode, int sq_cpu, unsigned sq_idle_ms,
                  curing_ring **out) {
    *out = NULL;
    curing_ring *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = cq_entries;
    switch (mode) {
    case CURING_MODE_PLAIN: break;
    case CURING_MODE_DEFER: p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN; break;
    case CURING_MODE_SQPOLL:
        p.flags |= IORING_SETUP_SQPOLL;
        p.sq_thread_idle = sq_idle_ms;
        if (sq_cpu >= 0) {
            p.flags |= IORING_SETUP_SQ_AFF;
            p.sq_thread_cpu = (unsigned)sq_cpu;
        }
        break;
    default: free(r); return -EINVAL;
    }
    int rc = io_uring_queue_init_params(sq_entries, &r->ring, &p);
    if (rc < 0) {
        free(r); /* the ring was not set up: nothing to exit */
        return rc;
    }
    if (!(p.features & IORING_FEAT_EXT_ARG)) {
        io_uring_queue_exit(&r->ring);
        free(r);
        return -EOPNOTSUPP;
    }
    RING_CREATED();
    *out = r;
    return 0;
}

void curing_destroy(curing_ring *r) {
    if (!r) return;
    RING_DESTROYED();
    io_uring_queue_exit(&r->ring);
    free(r);
}

int curing_register_file(curing_ring *r, int fd) { return io_uring_register_files(&r->ring, &fd, 1); }

int curing_register_buffer(curing_ring *r, void *base, size_t length) {
    struct iovec iov = {.iov_base = base, .iov_len = length};
    return io_uring_register_buffers(&r->ring, &iov, 1);
}

unsigned curing_sq_space_left(curing_ring *r) {
    /* Acquire: pairs with the kernel's smp_store_release of khead once it has read the SQEs
     * before it. With DEFER_TASKRUN a client thread preps SQEs while the engine thread
     * enters, so the SQE writes that follow must not move above this load (liburing's own
     * read is plain, because it assumes the submitter is the thread that preps). */
    struct io_uring_sq *sq = &r->ring.sq;
    return sq->ring_entries - (sq->sqe_tail - io_uring_smp_load_acquire(sq->khead));
}

int curing_prep_read(curing_ring *r, int fd, int fixed_file, void *buffer, unsigned length, uint64_t offset,
                     int buf_index, uint64_t user_data) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return -EBUSY;
    if (buf_index >= 0) io_uring_prep_read_fixed(sqe, fd, buffer, length, offset, buf_index);
    else io_uring_prep_read(sqe, fd, buffer, length, offset);
    if (fixed_file) sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int curing_prep_readv(curing_ring *r, int fd, int fixed_file, const void *iovecs, unsigned nr, uint64_t offset,
                      uint64_t user_data) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_readv(sqe, fd, (const struct iovec *)iovecs, nr, offset);
    if (fixed_file) sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int curing_prep_nop(curing_ring *r, uint64_t user_data) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int curing_prep_cancel_any(curing_ring *r, uint64_t user_data) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (!sqe) return -EBUSY;
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int curing_submit(curing_ring *r) { return io_uring_submit(&r->ring); }

unsigned curing_sq_tail(curing_ring *r) { return r->ring.sq.sqe_tail; }

unsigned curing_sq_publish_to(curing_ring *r, unsigned tail) {
    struct io_uring_sq *sq = &r->ring.sq;
    /* Never backwards: io_uring_submit on the same thread may have published further. */
    if ((int)(tail - sq->sqe_head) > 0) {
        sq->sqe_head = tail;
        /* Release: pairs with the kernel's acquire of ktail in io_submit_sqes, so the SQEs
         * written before it are visible when the kernel reads them. */
        io_uring_smp_store_release(sq->ktail, tail);
    }
    return tail - io_uring_smp_load_acquire(sq->khead);
}

int curing_enter_submit(curing_ring *r, unsigned to_submit) {
    unsigned flags = 0;
    /* As liburing's submit: enter for events too when the CQ overflowed or task work waits. */
    if (IO_URING_READ_ONCE(*r->ring.sq.kflags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN))
        flags |= IORING_ENTER_GETEVENTS;
    /* The raw syscall: its -1/errno convention is fixed, where liburing's wrapper differs
     * between builds. */
    long rc = syscall(__NR_io_uring_enter, r->ring.ring_fd, to_submit, 0, flags, NULL, 0);
    return rc < 0 ? -errno : (int)rc;
}

static void to_ts(int64_t ns, struct __kernel_timespec *ts) {
    ts->tv_sec = ns / 1000000000;
    ts->tv_nsec = ns % 1000000000;
}

int curing_submit_and_wait(curing_ring *r, int64_t timeout_ns) {
    if (timeout_ns < 0) return io_uring_submit_and_wait(&r->ring, 1);
    struct __kernel_timespec ts;
    struct io_uring_cqe *cqe;
    to_ts(timeout_ns, &ts);
    return io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, &ts, NULL);
}

int curing_wait(curing_ring *r, int64_t timeout_ns) {
    struct io_uring_cqe *cqe;
    if (timeout_ns < 0) return io_uring_wait_cqe(&r->ring, &cqe);
    struct __kernel_timespec ts;
    to_ts(timeout_ns, &ts);
    return io_uring_wait_cqe_timeout(&r->ring, &cqe, &ts);
}

unsigned curing_reap(curing_ring *r, uint64_t *user_data, int32_t *res, unsigned max) {
    struct io_uring_cqe *cqes[256];
    if (max > 256) max = 256;
    unsigned n = io_uring_peek_batch_cqe(&r->ring, cqes, max);
    for (unsigned i = 0; i < n; i++) {
        user_data[i] = cqes[i]->user_data;
        res[i] = cqes[i]->res;
    }
    if (n) io_uring_cq_advance(&r->ring, n);
    return n;
}

unsigned curing_cq_ready(curing_ring *r) { return io_uring_cq_ready(&r->ring); }

int curing_open_pool_file(const char *directory, size_t length) {
    struct statfs fs;
    if (statfs(directory, &fs) != 0) return -errno;
    if (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC) return -EXDEV;
    int fd = open(directory, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/dmabench-uring-XXXXXX", directory) >= (int)sizeof path) return -ENAMETOOLONG;
        fd = mkostemp(path, O_CLOEXEC);
        if (fd >= 0) unlink(path);
    }
    if (fd < 0) return -errno;
    // No atime update per read: each READ from the pool otherwise checks and may stamp the
    // inode's access time (atime_needs_update, current_time in the engine's profile). The
    // owner may set it; where it cannot be set, reads still work.
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl | O_NOATIME);
    if (ftruncate(fd, (off_t)length) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int curing_open_pool_memfd(size_t length) {
    int fd = memfd_create("dmabench-uring-pool", MFD_CLOEXEC);
    if (fd < 0) return -errno;
    if (ftruncate(fd, (off_t)length) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int curing_eventfd(void) {
    int fd = eventfd(0, EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int curing_eventfd_signal(int fd) { return eventfd_write(fd, 1) == 0 ? 0 : -errno; }

// io_uring_register_iowq_aff takes a cpu_set_t, built with the CPU_SET macros: C only.
int curing_register_iowq_affinity(curing_ring *ring, const int *cpus, int count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++)
        if (cpus[i] >= 0 && cpus[i] < CPU_SETSIZE) CPU_SET(cpus[i], &set);
    return io_uring_register_iowq_aff(&ring->ring, sizeof(set), &set);
}
