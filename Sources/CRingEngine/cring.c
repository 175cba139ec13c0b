/*
 * cring.c: a plain-C port of dmabench's lock-free ring backend (Sources/DMAEngineRing) as an
 * engine for the plugin ABI (dmabench_engine.h).
 *
 * The design is the Swift one, line by line where it can be:
 * - submission: an MPSC Vyukov bounded queue indexed by ticket; one fetch-add on `used` per
 *   submit hands out the ticket, the cookie and the ring slot (RingCore+Client.swift);
 * - the engine thread consumes issued tickets in order, moves the bytes (one memcpy on the
 *   fast path, chunked on the slow path), and feeds an SPSC completion ring (RingEngine.swift);
 * - an executor thread drains the completion ring, entry by entry, and calls host->complete
 *   (RingExecutor.swift); with options->callbacks_on_engine the engine thread drains it
 *   itself at its safe points;
 * - terminate is an epoch protocol on the packed control word; `ack`, `idleMark` and
 *   `compHead` let synchronize know when the engine and the executor are done with it.
 *
 * Differences from the Swift code that the ABI forces: the client's callback stays in the
 * host (the engine keeps only `has_callback`), the executor calls host->complete instead of a
 * closure, and it retires a descriptor (REUSE: back to prepared; otherwise scrubbed and
 * freed) only after its complete() returned, because the host keys the callback by index.
 * In that window a REUSE descriptor is SLOT_COMPLETING, and a descriptor call on it from
 * another thread waits for it to become prepared (await_completing).
 *
 * Build: gcc -O2 -shared -fPIC -I Sources/CDMAPlugin/include Sources/CRingEngine/cring.c -lpthread
 * With CRING_BROKEN_SYNCHRONIZE defined, the engine is the negative control
 * "cring-broken-sync": synchronize returns at once (RingNegativeControl.synchronizeDoesNotWait).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "dmabench_engine.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define CR_LINE 128
#define CR_NONE UINT32_MAX
#define CR_MAX_SEGMENTS 16
#define CR_PIECE_CAPACITY (2 * CR_MAX_SEGMENTS - 1)
#define CR_DESC_STRIDE 128
#define CR_BATCH 32
#define CR_FLUSH_COUNT 32
#define CR_FLUSH_BYTES (256u << 10)

/* --- Platform ------------------------------------------------------------------------------ */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* FUTEX_WAIT while *word == expected, up to timeout_ns (< 0: forever). The futex is only a
 * sleep: every hand-over goes through the atomics around it. */
static void futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tp = &ts;
    }
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, tp, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int count) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

static void *aligned_zalloc(size_t bytes) {
    size_t n = (bytes + CR_LINE - 1) / CR_LINE * CR_LINE;
    if (n == 0) n = CR_LINE;
    void *p = aligned_alloc(CR_LINE, n);
    if (p) memset(p, 0, n);
    return p;
}

static uint32_t power_of_two_at_least(uint32_t n) {
    uint32_t p = 2;
    while (p < n) p <<= 1;
    return p;
}

/* --- Tickets and cookies (RingLayout.swift, Tickets) ---------------------------------------- */

#define CR_PERIOD ((int64_t)INT32_MAX)
/* Move the cookie base every 2^30 tickets, so every ticket in play stays within ±2^31. */
#define CR_REBASE_MASK ((1u << 30) - 1)

static inline uint32_t hi32(uint64_t w) { return (uint32_t)(w >> 32); }
static inline uint32_t lo32(uint64_t w) { return (uint32_t)w; }
static inline uint64_t pack32(uint32_t high, uint32_t low) { return (uint64_t)high << 32 | low; }
/* a - b as a signed distance (valid while |a - b| < 2^31). */
static inline int32_t tdist(uint32_t a, uint32_t b) { return (int32_t)(a - b); }

/* Folds any integer into the cookie range 1...INT32_MAX (rule C2). */
static inline int32_t wrap_cookie(int64_t x) {
    if (x >= 1 && x <= CR_PERIOD) return (int32_t)x;
    int64_t r = (x - 1) % CR_PERIOD;
    if (r < 0) r += CR_PERIOD;
    return (int32_t)(r + 1);
}

static inline int32_t cookie_of_ticket_base(uint32_t t, uint64_t base) {
    uint32_t base_ticket = hi32(base);
    int64_t base_cookie = (int64_t)(int32_t)lo32(base);
    return wrap_cookie(base_cookie + (int64_t)tdist(t, base_ticket));
}

/* How many cookies `c` lies behind `reference` (0 ..< INT32_MAX). */
static inline uint32_t cookies_behind(int32_t c, int32_t reference) {
    int64_t d = ((int64_t)reference - (int64_t)c) % CR_PERIOD;
    if (d < 0) d += CR_PERIOD;
    return (uint32_t)d;
}

/* True when ticket t comes after `last` (serial-number order, no upper bound: a terminate
 * moves `last` to its cutoff, which may be past the engine's issued tail). */
static inline bool ticket_is_after(uint32_t t, uint32_t last) { return tdist(t, last) > 0; }

/* dma_async_is_complete() */
static inline bool cookie_is_complete(int32_t c, int32_t l, int32_t u) {
    if (l <= u) return c <= l || c > u;
    return c <= l && c > u;
}

/* --- The packed control word (RingLayout.swift, Control) ------------------------------------
 * bits 0-31 cutoff ticket of the last terminate, bit 32 paused, bit 33 stop,
 * bits 34-47 pause generation, bits 48-63 terminate epoch. */

#define CTL_PAUSED (1ull << 32)
#define CTL_STOP (1ull << 33)

static inline uint32_t ctl_cutoff(uint64_t r) { return (uint32_t)r; }
static inline bool ctl_paused(uint64_t r) { return (r & CTL_PAUSED) != 0; }
static inline bool ctl_stop(uint64_t r) { return (r & CTL_STOP) != 0; }
static inline uint32_t ctl_pause_gen(uint64_t r) { return (uint32_t)((r >> 34) & 0x3FFF); }
static inline uint32_t ctl_epoch(uint64_t r) { return (uint32_t)(r >> 48); }
/* The part the engine acknowledges (everything but the cutoff). */
static inline uint64_t ctl_upper(uint64_t r) { return r & 0xFFFFFFFF00000000ull; }

static inline uint64_t ctl_terminated(uint64_t r, uint32_t cutoff) {
    uint64_t n = r & ~0xFFFFFFFFull & ~CTL_PAUSED & ~(0xFFFFull << 48);
    n |= cutoff;
    n |= (uint64_t)((ctl_epoch(r) + 1) & 0xFFFF) << 48;
    return n;
}

static inline uint64_t ctl_pausing(uint64_t r) {
    uint64_t n = r & ~(0x3FFFull << 34);
    n |= CTL_PAUSED;
    n |= (uint64_t)((ctl_pause_gen(r) + 1) & 0x3FFF) << 34;
    return n;
}

static inline uint64_t ctl_resumed(uint64_t r) { return r & ~CTL_PAUSED; }
static inline uint64_t ctl_stopping(uint64_t r) { return r | CTL_STOP; }
/* Signed distance between two 16-bit epochs (a - b). */
static inline int16_t epoch_distance(uint32_t a, uint32_t b) { return (int16_t)(a - b); }

/* --- Storage types (RingLayout.swift) -------------------------------------------------------- */

/* SLOT_COMPLETING: a REUSE descriptor whose complete() the executor is running or has just
 * returned from; it becomes SLOT_PREPARED right after (see exec_batch). */
enum { SLOT_FREE = 0, SLOT_PREPARED = 1, SLOT_IN_FLIGHT = 2, SLOT_COMPLETING = 3 };

/* One descriptor of the preallocated pool, one 128-byte stride each. The atomics are read by
 * any thread holding a handle; the plain fields belong to whoever owns the descriptor in its
 * current state (the client while prepared, the engine, then the executor), handed over
 * through the release/acquire pairs of the submission ring, the completion ring and the free
 * queue. */
struct cr_desc {
    _Atomic uint32_t state;
    /* Incremented each time the slot goes back to the free list (stale handles fail). */
    _Atomic uint32_t generation;
    /* Atomic (relaxed) only because a client with a handle of an in-flight descriptor reads
     * it to choose EBUSY or EINVAL while the executor's scrub may clear it. */
    _Atomic uint8_t reuse;
    uint8_t is_memset;
    uint8_t is_cyclic;
    uint8_t interrupt;
    /* Chunked or injected: take the engine's slow path (probe per chunk, control checks). */
    uint8_t slow;
    uint8_t stall;
    /* 0 none, 1 read, 2 write. */
    uint8_t fault;
    uint8_t fill;
    /* Scatter-gather: pieces in `pieces` at index * CR_PIECE_CAPACITY (0 = flat). */
    uint8_t piece_count;
    /* The client set a callback (the callback itself stays in the host). */
    uint8_t has_callback;
    /* stall_generation when the stall was injected. */
    uint32_t stall_seen;
    /* Cyclic: pace_bytes at prep (0 = memory speed). */
    uint32_t pace;
    void *destination;
    const void *source;
    uint64_t length;
    uint64_t period_length;
    uint64_t chunk_bytes;
    int64_t delay_per_chunk;
    /* The host's area (host_area): the client's callback, in the descriptor's own lines, so
     * that prep writes one descriptor's lines and complete() reads lines the engine has. */
    _Alignas(16) unsigned char host_area[DMABENCH_HOST_AREA_BYTES];
};

_Static_assert(sizeof(struct cr_desc) <= CR_DESC_STRIDE, "cr_desc outgrew its stride");

struct cr_piece {
    void *destination;
    const void *source;
    uint64_t length;
};

/* One submission-ring slot (Vyukov): seq == t free for ticket t, seq == t + 1 holds ticket t,
 * seq == t + capacity consumed by the engine. */
struct cr_sub_slot {
    _Atomic uint32_t seq;
    _Atomic uint32_t descriptor;
    /* The length of the queued transfer, for the residue of queued cookies (every prep caps a
     * length at UINT32_MAX). */
    _Atomic uint32_t length;
    /* The issue mark: issue_pending stores ticket t here when t is the first ticket it issues,
     * so that an idle engine learns of the issue from the line that holds the slot, as the
     * Swift ring does (docs/measurement-notes.md, "RingEngine: the issue mark"). The engine
     * stores t + 1, a ticket of the next slot, when it consumes t; slot i starts at i + 1; the
     * ring has two slots at least: no stale mark matches a ticket of its own slot. */
    _Atomic uint32_t issued;
};

/* One completion-ring entry: plain memory, owned by the engine until the release store of
 * compTail, then by the executor until the release store of compHead. */
struct cr_comp_entry {
    uint32_t descriptor;
    uint32_t ticket;
    /* The epoch the engine had observed when it finished the transfer. */
    uint32_t epoch;
    /* The engine dropped or aborted it because of a terminate: never a callback. */
    uint8_t terminated;
    int32_t code;
    uint64_t residue;
};

/* The free descriptor indices: a bounded MPMC FIFO (RingFreeQueue.swift). */
struct cr_free_cell {
    _Atomic uint32_t seq;
    _Atomic uint32_t index;
};

struct cr_free_queue {
    _Alignas(CR_LINE) _Atomic uint32_t enqueue_pos;
    _Alignas(CR_LINE) _Atomic uint32_t dequeue_pos;
    _Alignas(CR_LINE) uint32_t capacity;
    uint32_t mask;
    struct cr_free_cell *cells;
};

/* The engine thread's private state (RingEngine). */
struct cr_engine {
    uint32_t head;
    uint32_t issued_cache;
    /* Look for issue marks only while the issues seen cover one ticket each: a batch submitter
     * writes its slots while the engine waits, and polling the first one's mark took each line
     * back between two of its stores (RingEngine.pollMarks). */
    bool poll_marks;
    uint64_t seen;
    bool draining;
    uint32_t drain_until;
    bool need_ack;
    bool stopping;
    uint32_t comp_tail_private;
    uint32_t comp_head_cache;
    uint32_t published;
    uint32_t pending_last;
    uint32_t pending_count;
    uint64_t pending_bytes;
};

/* The callback executor's private state (RingExecutor): touched only by the thread that runs
 * the callbacks (the executor thread, or the engine thread in callbacks_on_engine mode). */
struct cr_executor {
    uint32_t head;
    uint32_t tail_cache;
    uint64_t periods_seen;
    uint32_t retired[CR_BATCH];
    uint32_t retired_count;
};

/* ParkingEvent (Sources/Platform/Futex.swift): 0 not signalled, 1 signalled, 2 not signalled
 * and a waiter is parked. */
struct cr_event {
    _Alignas(CR_LINE) _Atomic uint32_t state;
};

struct dmabench_chan {
    /* Hot lines, one 128-byte line each (RingCore.swift). */
    /* The last ticket handed out: submitters fetch-add it. */
    _Alignas(CR_LINE) _Atomic uint32_t used;
    /* The last issued ticket (issue_pending -> engine). */
    _Alignas(CR_LINE) _Atomic uint32_t issued_tail;
    /* Engine futex word: 1 while the engine is parked (or about to park). */
    _Alignas(CR_LINE) _Atomic uint32_t engine_park;
    /* Completion-ring producer index (engine -> executor). */
    _Alignas(CR_LINE) _Atomic uint32_t comp_tail;
    /* Completion-ring consumer index (executor -> engine, synchronize). */
    _Alignas(CR_LINE) _Atomic uint32_t comp_head;
    /* Executor futex word: 1 while the executor is parked (or about to park). */
    _Alignas(CR_LINE) _Atomic uint32_t executor_park;
    /* Engine-written: the control value it has acted on (upper half) and the completion-ring
     * position after which no entry belongs to an earlier epoch (low half). */
    _Alignas(CR_LINE) _Atomic uint64_t ack;
    /* Engine-written: (active ticket << 32 | bytes remaining), for residue. */
    _Atomic uint64_t active;
    /* Engine-written before it parks idle: (1 << 32 | consumer position), 0 otherwise. */
    _Atomic uint64_t idle_mark;
    /* Read-mostly line. */
    _Alignas(CR_LINE) _Atomic uint64_t control;
    /* (base ticket << 32 | base cookie) of the ticket -> cookie mapping. */
    _Atomic uint64_t cookie_base;
    _Atomic uint64_t burst_bytes;
    _Atomic uint64_t pace_bytes;
    _Atomic uint32_t probe;
    _Atomic uint32_t stall_generation;
    _Atomic bool released;
    /* Set by terminate, cleared when a synchronize completes (channel state terminating). */
    _Atomic bool terminate_pending;
    _Alignas(CR_LINE) _Atomic int32_t sync_waiters;
    /* Engine-written: the running cyclic transfer (ticket << 32 | index), CR_NONE low when none. */
    _Alignas(CR_LINE) _Atomic uint64_t cyclic;
    /* Engine-written: periods elapsed on cyclic transfers (the executor coalesces them). */
    _Atomic uint64_t cyclic_periods;
    /* The last completed ticket: the engine and terminate move it forward with CAS. */
    _Alignas(CR_LINE) _Atomic uint32_t last;
    /* Thread ids, stored by each thread before create returns (the startup handshake). */
    _Alignas(CR_LINE) _Atomic uint32_t engine_tid;
    _Atomic uint32_t executor_tid;

    struct cr_event sync_event;
    struct cr_free_queue free_queue;

    /* Set at create, then only read. */
    _Alignas(CR_LINE) uint32_t pool_size;
    uint32_t capacity;
    uint32_t mask;
    uint32_t comp_capacity;
    uint32_t comp_mask;
    int64_t spin_ns;
    bool callbacks_on_engine;
    bool has_engine_thread;
    bool has_executor_thread;
    int32_t engine_cpu;
    int32_t executor_cpu;
    pthread_t engine_thread;
    pthread_t executor_thread;
    struct dmabench_host_ops ops;
    dmabench_host *host;
    unsigned char *pool;
    struct cr_sub_slot *sub;
    struct cr_comp_entry *comp;
    struct cr_piece *pieces;

    /* Thread-private state, each on lines of its own. */
    _Alignas(CR_LINE) struct cr_engine engine;
    _Alignas(CR_LINE) struct cr_executor executor;
};

typedef struct dmabench_chan chan_t;

/* The channel whose engine thread this is (NULL on other threads): a pause from a callback
 * on the engine thread (callbacks_on_engine mode) returns at once. */
static _Thread_local chan_t *tls_engine_of;

static inline struct cr_desc *desc_at(chan_t *ch, uint32_t index) {
    return (struct cr_desc *)(ch->pool + (size_t)index * CR_DESC_STRIDE);
}

static inline bool is_released(chan_t *ch) { return atomic_load_explicit(&ch->released, memory_order_relaxed); }

/* --- Free queue (RingFreeQueue.swift) --------------------------------------------------------- */

static int free_queue_init(struct cr_free_queue *q, uint32_t count) {
    uint32_t cap = power_of_two_at_least(count);
    q->capacity = cap;
    q->mask = cap - 1;
    q->cells = aligned_zalloc((size_t)cap * sizeof(struct cr_free_cell));
    if (!q->cells) return -1;
    for (uint32_t i = 0; i < cap; i++) {
        bool full = i < count;
        atomic_init(&q->cells[i].seq, i + (full ? 1u : 0u));
        atomic_init(&q->cells[i].index, full ? i : 0u);
    }
    atomic_init(&q->enqueue_pos, count);
    atomic_init(&q->dequeue_pos, 0u);
    return 0;
}

/* Takes the oldest free index; false when none is free. Any thread. */
static inline bool free_queue_dequeue(struct cr_free_queue *q, uint32_t *out) {
    uint32_t pos = atomic_load_explicit(&q->dequeue_pos, memory_order_relaxed);
    for (;;) {
        struct cr_free_cell *cell = &q->cells[pos & q->mask];
        /* Ordering: acquire; pairs with the release store of `seq` in enqueue: the descriptor's
         * last owner (the executor that scrubbed it, or free_desc) is done with it, and its
         * writes are visible before we write it. */
        uint32_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
        int32_t dif = (int32_t)(seq - (pos + 1));
        if (dif == 0) {
            /* Relaxed: the CAS only decides which dequeuer owns the cell; the data hand-over is
             * the seq acquire above and the seq release below. */
            if (atomic_compare_exchange_weak_explicit(&q->dequeue_pos, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                uint32_t index = atomic_load_explicit(&cell->index, memory_order_relaxed);
                /* Ordering: release; pairs with the acquire wait on `seq` in enqueue for
                 * position pos + capacity (we have read the index out of the cell). */
                atomic_store_explicit(&cell->seq, pos + q->capacity, memory_order_release);
                *out = index;
                return true;
            }
        } else if (dif < 0) {
            return false; /* the cell at the dequeue position holds nothing yet: empty */
        } else {
            pos = atomic_load_explicit(&q->dequeue_pos, memory_order_relaxed);
        }
    }
}

/* Appends `count` indices. Any thread; the caller owns them, and the queue never holds more
 * than the pool, so the cells are free or about to be. */
static inline void free_queue_enqueue(struct cr_free_queue *q, const uint32_t *indices, uint32_t count) {
    if (count == 0) return;
    /* Relaxed: reserving positions publishes nothing; each cell's seq store does. */
    uint32_t first = atomic_fetch_add_explicit(&q->enqueue_pos, count, memory_order_relaxed);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t pos = first + i;
        struct cr_free_cell *cell = &q->cells[pos & q->mask];
        /* Ordering: acquire; pairs with the release store of `seq` in dequeue (the previous
         * occupant's index has been read out). */
        while (atomic_load_explicit(&cell->seq, memory_order_acquire) != pos) cpu_relax();
        atomic_store_explicit(&cell->index, indices[i], memory_order_relaxed);
        /* Ordering: release; pairs with the acquire load of `seq` in dequeue: the index, and
         * the descriptor writes made before this call (scrub), are visible to the taker. */
        atomic_store_explicit(&cell->seq, pos + 1, memory_order_release);
    }
}

/* --- Parking event (ParkingEvent) ------------------------------------------------------------ */

static void event_signal(struct cr_event *ev) {
    /* Ordering: acq_rel; the release part pairs with the acquire exchange in event_wait, so
     * whatever the signaller wrote before is visible to the waiter that consumes the event. */
    uint32_t old = atomic_exchange_explicit(&ev->state, 1, memory_order_acq_rel);
    if (old == 2) futex_wake(&ev->state, 1);
}

/* Waits until signalled (consuming the signal), spinning about spin_ns before parking.
 * Returns false if timeout_ns (>= 0) passes first. */
static bool event_wait(struct cr_event *ev, int64_t spin_ns, int64_t timeout_ns) {
    /* Ordering: acq_rel; the acquire part pairs with the release exchange in event_signal. */
    if (atomic_exchange_explicit(&ev->state, 0, memory_order_acq_rel) == 1) return true;
    uint64_t start = now_ns();
    if (spin_ns > 0) {
        unsigned spins = 0;
        for (;;) {
            /* Relaxed peek; the exchange below does the acquire. */
            if (atomic_load_explicit(&ev->state, memory_order_relaxed) == 1) {
                /* Ordering: acq_rel; pairs with the release exchange in event_signal. */
                if (atomic_exchange_explicit(&ev->state, 0, memory_order_acq_rel) == 1) return true;
            }
            cpu_relax();
            spins++;
            if ((spins & 63) == 0 && (int64_t)(now_ns() - start) > spin_ns) break;
        }
    }
    for (;;) {
        /* Announce the parked waiter: 0 -> 2. If it is 1 meanwhile, take it.
         * Ordering: acq_rel; pairs with the release exchange in event_signal (which wakes
         * only when it reads 2). */
        uint32_t expected = 0;
        if (!atomic_compare_exchange_strong_explicit(&ev->state, &expected, 2, memory_order_acq_rel,
                                                     memory_order_acquire) &&
            expected == 1) {
            /* Ordering: acq_rel; pairs with the release exchange in event_signal. */
            if (atomic_exchange_explicit(&ev->state, 0, memory_order_acq_rel) == 1) return true;
            continue;
        }
        int64_t remaining = -1;
        if (timeout_ns >= 0) {
            int64_t elapsed = (int64_t)(now_ns() - start);
            if (elapsed >= timeout_ns) {
                /* Withdraw the parked mark (2 -> 0); if signalled meanwhile, consume it.
                 * Ordering: acq_rel; pairs with the release exchange in event_signal. */
                uint32_t o = 2;
                atomic_compare_exchange_strong_explicit(&ev->state, &o, 0, memory_order_acq_rel,
                                                        memory_order_acquire);
                if (o == 1) {
                    /* Ordering: release; a plain reset after consuming (no reader pairs). */
                    atomic_store_explicit(&ev->state, 0, memory_order_release);
                    return true;
                }
                return false;
            }
            remaining = timeout_ns - elapsed;
        }
        futex_wait(&ev->state, 2, remaining);
        /* Ordering: acquire; pairs with the release exchange in event_signal. */
        if (atomic_load_explicit(&ev->state, memory_order_acquire) == 1) {
            /* Ordering: acq_rel; pairs with the release exchange in event_signal. */
            if (atomic_exchange_explicit(&ev->state, 0, memory_order_acq_rel) == 1) return true;
        }
    }
}

/* --- Core (RingCore.swift) ---------------------------------------------------------------------- */

static inline int32_t cookie_of_ticket(chan_t *ch, uint32_t t) {
    return cookie_of_ticket_base(t, atomic_load_explicit(&ch->cookie_base, memory_order_relaxed));
}

/* One consistent (used, last) ticket pair (rule S1; DMACookieWatermark.loadSplit): `used`,
 * `last`, `used` again, until `used` reads the same twice. */
static inline void ticket_snapshot(chan_t *ch, uint32_t *u_out, uint32_t *l_out) {
    /* Ordering: acquire; keeps the load of `last` after this one. */
    uint32_t u = atomic_load_explicit(&ch->used, memory_order_acquire);
    for (;;) {
        /* Ordering: acquire; pairs with the release CAS of `last` in advance_last (and the
         * release store in debug_seed_cookie), and keeps the second load of `used` after it. */
        uint32_t l = atomic_load_explicit(&ch->last, memory_order_acquire);
        uint32_t u2 = atomic_load_explicit(&ch->used, memory_order_relaxed);
        if (u2 == u) {
            *u_out = u;
            *l_out = l;
            return;
        }
        u = u2;
    }
}

/* Moves `last` forward to ticket t unless it already is at or past it (rule C6). */
static inline void advance_last(chan_t *ch, uint32_t t) {
    uint32_t l = atomic_load_explicit(&ch->last, memory_order_relaxed);
    while (ticket_is_after(t, l)) {
        /* Ordering: release; pairs with the acquire load of `last` in ticket_snapshot, so a
         * client that reads COMPLETE (polled mode) sees the bytes the engine copied. */
        if (atomic_compare_exchange_weak_explicit(&ch->last, &l, t, memory_order_release, memory_order_relaxed))
            return;
    }
}

/* Returns a non-REUSE (or freed REUSE) descriptor to the pool state: callback flag dropped,
 * generation bumped (stale handles now fail), state free. The caller enqueues it. */
static inline void scrub(chan_t *ch, uint32_t index) {
    struct cr_desc *d = desc_at(ch, index);
    d->has_callback = 0;
    atomic_store_explicit(&d->reuse, 0, memory_order_relaxed);
    /* Only the descriptor's owner writes the generation: a load and a store, no locked add. */
    atomic_store_explicit(&d->generation, atomic_load_explicit(&d->generation, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&d->state, SLOT_FREE, memory_order_relaxed);
}

static void wake(_Atomic uint32_t *word) {
    /* Ordering: seq_cst; pairs with the parker's seq_cst store of 1 in park. */
    if (atomic_exchange_explicit(word, 0, memory_order_seq_cst) == 1) futex_wake(word, 1);
}

/* Wakes the engine if it is parked. Callers have just made a seq_cst change the engine
 * re-checks after announcing that it parks. */
static inline void wake_engine_if_parked(chan_t *ch) {
    /* Ordering: seq_cst; pairs with the seq_cst store of 1 in park (Dekker: either we see 1
     * here, or the engine sees our change before it sleeps). */
    if (atomic_load_explicit(&ch->engine_park, memory_order_seq_cst) == 1) wake(&ch->engine_park);
}

static inline void wake_executor_if_parked(chan_t *ch) {
    /* Ordering: seq_cst; pairs with the seq_cst store of 1 in park by the executor. */
    if (atomic_load_explicit(&ch->executor_park, memory_order_seq_cst) == 1) wake(&ch->executor_park);
}

typedef bool (*changed_fn)(chan_t *ch, void *ctx);

/* Parks the calling thread on `word` until woken or timeout_ns passes, unless changed()
 * reports new work after the park was announced. */
static void park(chan_t *ch, _Atomic uint32_t *word, int64_t timeout_ns, changed_fn changed, void *ctx) {
    /* Ordering: seq_cst; pairs with the seq_cst loads in wake_engine_if_parked /
     * wake_executor_if_parked after the waker's seq_cst publication. */
    atomic_store_explicit(word, 1, memory_order_seq_cst);
    if (!changed(ch, ctx)) futex_wait(word, 1, timeout_ns);
    atomic_store_explicit(word, 0, memory_order_relaxed);
}

/* When the engine is parked idle past `cutoff` (every ticket up to it consumed, done and
 * published), returns true and the completion-ring position to wait for. */
static inline bool idle_engine_witness(chan_t *ch, uint32_t cutoff, uint32_t *position) {
    /* Ordering: seq_cst; pairs with the seq_cst store of 1 in park, which the engine makes
     * after storing idle_mark (so the mark read below is at least that recent). */
    if (atomic_load_explicit(&ch->engine_park, memory_order_seq_cst) != 1) return false;
    uint64_t mark = atomic_load_explicit(&ch->idle_mark, memory_order_relaxed);
    if (mark >> 32 != 1 || !(tdist(lo32(mark), cutoff) > 0)) return false;
    /* Ordering: acquire; pairs with the engine's seq_cst (or release) store of comp_tail in flush. */
    *position = atomic_load_explicit(&ch->comp_tail, memory_order_acquire);
    return true;
}

/* The signalling half of a Dekker pair with wait_for_epoch, which increments sync_waiters
 * (seq_cst) and then checks `ack` and `comp_head`. Called only by publish_ack and
 * publish_comp_head, right after their seq_cst store, so either this load sees the waiter or
 * the waiter sees the store. After a release store the load could pass it, and the waiter
 * slept out its timeout (RingCore.signalSyncWaiters, the same fix). */
static inline void signal_sync_waiters(chan_t *ch) {
    /* Ordering: seq_cst; pairs with the seq_cst increment in wait_for_epoch. */
    if (atomic_load_explicit(&ch->sync_waiters, memory_order_seq_cst) > 0) event_signal(&ch->sync_event);
}

/* Stores `ack` and signals a waiting synchronize or pause. */
static inline void publish_ack(chan_t *ch, uint64_t value) {
    /* Ordering: seq_cst. The release part pairs with the acquire load of `ack` in synchronize
     * and pause; the seq_cst part is the Dekker store of signal_sync_waiters. */
    atomic_store_explicit(&ch->ack, value, memory_order_seq_cst);
    signal_sync_waiters(ch);
}

/* Stores `comp_head` and signals a waiting synchronize. */
static inline void publish_comp_head(chan_t *ch, uint32_t value) {
    /* Ordering: seq_cst. The release part pairs with the acquire load of `comp_head` in
     * synchronize and in the engine's ring-full check; the seq_cst part is the Dekker store
     * of signal_sync_waiters. */
    atomic_store_explicit(&ch->comp_head, value, memory_order_seq_cst);
    signal_sync_waiters(ch);
}

/* --- Executor (RingExecutor.swift) ------------------------------------------------------------ */

/* Nonzero on a thread while it is inside complete(), i.e. inside the client's callback. */
static _Thread_local int tls_in_complete;

/* A REUSE descriptor in SLOT_COMPLETING, seen by a descriptor call: inside its own callback it
 * stays busy (the state changes only after complete() returns, so waiting would never end).
 * From another thread, the callback may already have returned and the executor be about to
 * make it prepared: a client that saw the callback's effect must find it reusable (the
 * checker's A.2 and T3 (c); the executor had been preempted between the two), so wait for
 * that, spinning and then yielding, for at most 10 ms (a preempted executor's time slice), and
 * return the state then: still SLOT_COMPLETING, i.e. busy, if the callback is still running. */
static uint32_t await_completing(struct cr_desc *d, uint32_t s) {
    if (s != SLOT_COMPLETING || tls_in_complete) return s;
    uint64_t start = now_ns();
    for (uint32_t spins = 1;; spins++) {
        /* Ordering: acquire; pairs with the release store of SLOT_PREPARED in exec_batch. */
        s = atomic_load_explicit(&d->state, memory_order_acquire);
        if (s != SLOT_COMPLETING) return s;
        if ((spins & 63) == 0 && now_ns() - start > 10000000) return s;
        if (spins < 1000) cpu_relax(); else sched_yield();
    }
}

/* One batch of `n` entries from the head, entry by entry, as vchan_complete does (the Swift
 * executor's retireAndDispatch): read `control` (the dispatch point), decide whether the entry
 * gets its complete() (not if the engine flagged it terminated, nor if it completed in an
 * earlier epoch at or before the current cutoff: rule T1), call it, then retire the descriptor
 * (REUSE: back to prepared; otherwise scrubbed, and enqueued on the free queue after the
 * batch). Then store compHead. Unlike the Swift code the host keeps the callback keyed by
 * index, so the descriptor retires after its complete() returned. The two passes this
 * replaced (decide the whole batch, then call back) ran at the same speed here; one pass keeps
 * the port line by line (Results/host-e057f412/702bf93326f9/measurements.md). */
static void exec_batch(chan_t *ch, struct cr_executor *x, uint32_t n) {
    uint32_t nretired = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct cr_comp_entry *e = &ch->comp[(x->head + i) & ch->comp_mask];
        uint32_t index = e->descriptor;
        struct cr_desc *d = desc_at(ch, index);
        /* Ordering: acquire; pairs with the seq_cst CAS of `control` in terminate. */
        uint64_t c = atomic_load_explicit(&ch->control, memory_order_acquire);
        bool drop = e->terminated;
        if (!drop && e->epoch != ctl_epoch(c) && tdist(e->ticket, ctl_cutoff(c)) <= 0) drop = true;
        bool reuse = atomic_load_explicit(&d->reuse, memory_order_relaxed);
        if (!drop && d->interrupt && d->has_callback) {
            /* A client call on this REUSE descriptor from another thread now waits for it to be
             * prepared instead of failing busy (await_completing). */
            if (reuse) atomic_store_explicit(&d->state, SLOT_COMPLETING, memory_order_relaxed);
            tls_in_complete++;
            ch->ops.complete(ch->host, index, cookie_of_ticket(ch, e->ticket), e->code, e->residue);
            tls_in_complete--;
        }
        if (reuse) {
            /* Ordering: release; pairs with the acquire load of `state` in submit and the other
             * descriptor calls (slot): the client may now resubmit or change it. */
            atomic_store_explicit(&d->state, SLOT_PREPARED, memory_order_release);
        } else {
            scrub(ch, index);
            x->retired[nretired++] = index;
        }
    }
    x->head += n;
    /* Back to the pool after the batch's complete() calls, as the kernel finishes a descriptor
     * after its callback (vchan_complete: invoke, then vchan_vdesc_fini). */
    free_queue_enqueue(&ch->free_queue, x->retired, nretired);
    /* Every complete() of the batch has returned and its descriptor is back in the pool (the
     * orderings are in publish_comp_head). */
    publish_comp_head(ch, x->head);
}

/* Calls complete() for the running cyclic transfer once for every run of periods elapsed since
 * the last call (coalescing, rule K1), unless a terminate removed the transfer. */
static void exec_cyclic_callback(chan_t *ch, struct cr_executor *x) {
    /* Ordering: acquire; pairs with the engine's seq_cst increment after a period. */
    x->periods_seen = atomic_load_explicit(&ch->cyclic_periods, memory_order_acquire);
    /* Ordering: acquire; pairs with the engine's release store of `cyclic`. */
    uint64_t info = atomic_load_explicit(&ch->cyclic, memory_order_acquire);
    uint32_t index = lo32(info);
    if (index == CR_NONE) return;
    uint32_t t = hi32(info);
    /* The dispatch point. Ordering: acquire; pairs with the seq_cst CAS of `control`. */
    uint64_t c = atomic_load_explicit(&ch->control, memory_order_acquire);
    if (ctl_epoch(c) != 0 && tdist(t, ctl_cutoff(c)) <= 0) return;
    struct cr_desc *d = desc_at(ch, index);
    if (!(d->interrupt && d->has_callback)) return;
    tls_in_complete++;
    ch->ops.complete(ch->host, index, cookie_of_ticket(ch, t), DMABENCH_RESULT_NOERROR, 0);
    tls_in_complete--;
}

/* callbacks_on_engine mode: the cyclic complete() when a period elapsed since the last one. */
static inline void exec_cyclic_on_engine(chan_t *ch, struct cr_executor *x) {
    /* Ordering: acquire; pairs with the engine's seq_cst increment after a period (the same
     * thread in this mode; kept for symmetry with exec_run). */
    if (atomic_load_explicit(&ch->cyclic_periods, memory_order_acquire) != x->periods_seen)
        exec_cyclic_callback(ch, x);
}

/* callbacks_on_engine mode: retires and dispatches every entry up to `tail` (the engine's own
 * published position), then any cyclic period not yet called back. On the engine thread only,
 * after flush advanced `last` (rule K2). */
static __attribute__((noinline)) void exec_run_on_engine(chan_t *ch, struct cr_executor *x, uint32_t tail) {
    while (x->head != tail) {
        uint32_t n = tail - x->head;
        if (n > CR_BATCH) n = CR_BATCH;
        exec_batch(ch, x, n);
    }
    exec_cyclic_on_engine(ch, x);
}

struct exec_idle_ctx {
    uint32_t cached;
    uint64_t periods;
};

static bool exec_idle_changed(chan_t *ch, void *p) {
    struct exec_idle_ctx *c = p;
    /* Ordering: seq_cst; pairs with the seq_cst store of `comp_tail` in the engine's flush,
     * its seq_cst increment of `cyclic_periods` and the seq_cst CAS of `control` in release. */
    return atomic_load_explicit(&ch->comp_tail, memory_order_seq_cst) != c->cached ||
           atomic_load_explicit(&ch->cyclic_periods, memory_order_seq_cst) != c->periods ||
           ctl_stop(atomic_load_explicit(&ch->control, memory_order_seq_cst));
}

static void exec_idle(chan_t *ch, struct cr_executor *x) {
    int64_t spin = ch->spin_ns;
    struct exec_idle_ctx ctx = {x->tail_cache, x->periods_seen};
    if (spin > 0) {
        uint64_t start = now_ns();
        unsigned spins = 0;
        for (;;) {
            if (atomic_load_explicit(&ch->comp_tail, memory_order_relaxed) != ctx.cached) return;
            if (atomic_load_explicit(&ch->cyclic_periods, memory_order_relaxed) != ctx.periods) return;
            if (ctl_stop(atomic_load_explicit(&ch->control, memory_order_relaxed))) return;
            cpu_relax();
            spins++;
            if ((spins & 63) == 0 && (int64_t)(now_ns() - start) > spin) break;
        }
    }
    park(ch, &ch->executor_park, -1, exec_idle_changed, &ctx);
}

static void exec_run(chan_t *ch) {
    struct cr_executor *x = &ch->executor;
    for (;;) {
        /* Ordering: acquire; pairs with the engine's seq_cst increment after a period. */
        if (atomic_load_explicit(&ch->cyclic_periods, memory_order_acquire) != x->periods_seen)
            exec_cyclic_callback(ch, x);
        if (x->head == x->tail_cache) {
            /* Ordering: acquire; pairs with the seq_cst store of `comp_tail` in the engine's
             * flush, which publishes the entries before it. */
            x->tail_cache = atomic_load_explicit(&ch->comp_tail, memory_order_acquire);
            if (x->head == x->tail_cache) {
                /* Ordering: acquire; pairs with the seq_cst CAS of `control` in stop_threads. */
                if (ctl_stop(atomic_load_explicit(&ch->control, memory_order_acquire))) return;
                exec_idle(ch, x);
                continue;
            }
        }
        uint32_t n = x->tail_cache - x->head;
        if (n > CR_BATCH) n = CR_BATCH;
        exec_batch(ch, x, n);
    }
}

/* --- Engine (RingEngine.swift) -------------------------------------------------------------- */

static void eng_flush(chan_t *ch);

/* callbacks_on_engine mode: runs the callbacks of every published completion not yet
 * dispatched. One compare when there is nothing to do (or in executor-thread mode). */
static inline void eng_run_callbacks(chan_t *ch) {
    if (ch->callbacks_on_engine && ch->executor.head != ch->engine.published)
        exec_run_on_engine(ch, &ch->executor, ch->engine.published);
}

/* Moves `last` forward over what completed, then publishes the completion ring (in that order:
 * rule K2, a complete() starts only after its cookie reads COMPLETE). */
static void eng_flush(chan_t *ch) {
    struct cr_engine *g = &ch->engine;
    if (g->pending_count > 0) {
        advance_last(ch, g->pending_last);
        g->pending_count = 0;
        g->pending_bytes = 0;
    }
    if (g->comp_tail_private != g->published) {
        g->published = g->comp_tail_private;
        if (!ch->callbacks_on_engine) {
            /* Ordering: seq_cst; the release part pairs with the acquire load of `comp_tail` in
             * the executor, the seq_cst part with the executor's seq_cst park announcement
             * (Dekker with wake_executor_if_parked). */
            atomic_store_explicit(&ch->comp_tail, g->published, memory_order_seq_cst);
            wake_executor_if_parked(ch);
        } else {
            /* No executor thread parks on it, so no store-load fence. Ordering: release; pairs
             * with the acquire load in idle_engine_witness (read only after it saw the
             * engine's later seq_cst park store). */
            atomic_store_explicit(&ch->comp_tail, g->published, memory_order_release);
        }
    }
}

static void eng_acknowledge(chan_t *ch) {
    struct cr_engine *g = &ch->engine;
    eng_flush(ch);
    g->need_ack = false;
    /* Every completion entry of an earlier epoch lies before `published` (the orderings are
     * in publish_ack). */
    publish_ack(ch, ctl_upper(g->seen) | g->published);
}

static void eng_observe(chan_t *ch, uint64_t c) {
    struct cr_engine *g = &ch->engine;
    if (ctl_epoch(c) != ctl_epoch(g->seen)) {
        g->draining = true;
        g->drain_until = ctl_cutoff(c);
    }
    if (ctl_stop(c)) g->stopping = true;
    g->seen = c;
    g->need_ack = true;
}

static inline void eng_push(chan_t *ch, uint32_t index, uint32_t t, int32_t code, uint64_t residue, bool terminated,
                            uint64_t bytes) {
    struct cr_engine *g = &ch->engine;
    if (g->comp_tail_private - g->comp_head_cache >= ch->comp_capacity) {
        for (;;) {
            /* Ordering: acquire; pairs with the seq_cst store in publish_comp_head (the entries
             * before it are free to overwrite). */
            g->comp_head_cache = atomic_load_explicit(&ch->comp_head, memory_order_acquire);
            if (g->comp_tail_private - g->comp_head_cache < ch->comp_capacity) break;
            eng_flush(ch);
            if (ch->callbacks_on_engine) {
                /* Nobody else frees entries; dispatch them here. */
                eng_run_callbacks(ch);
            } else {
                cpu_relax();
            }
        }
    }
    struct cr_comp_entry *e = &ch->comp[g->comp_tail_private & ch->comp_mask];
    e->descriptor = index;
    e->ticket = t;
    e->epoch = ctl_epoch(g->seen);
    e->terminated = terminated;
    e->code = code;
    e->residue = residue;
    g->comp_tail_private++;
    if (!terminated) {
        g->pending_last = t;
        g->pending_count++;
        g->pending_bytes += bytes;
        if (g->pending_count >= CR_FLUSH_COUNT || g->pending_bytes >= CR_FLUSH_BYTES) eng_flush(ch);
    }
}

struct eng_idle_ctx {
    uint32_t cached;
    uint64_t seen_raw;
};

static bool eng_idle_changed(chan_t *ch, void *p) {
    struct eng_idle_ctx *c = p;
    /* Ordering: seq_cst; pairs with the seq_cst CAS in issue_pending / of `control`. */
    return atomic_load_explicit(&ch->issued_tail, memory_order_seq_cst) != c->cached ||
           atomic_load_explicit(&ch->control, memory_order_seq_cst) != c->seen_raw;
}

/* Whether an issuer marked ticket t issued in its slot (cr_sub_slot.issued). Ordering: relaxed;
 * the mark only says that t was issued, and the slot is read after the acquire wait on `seq`. */
static inline bool eng_is_marked(chan_t *ch, uint32_t t) {
    return atomic_load_explicit(&ch->sub[t & ch->mask].issued, memory_order_relaxed) == t;
}

/* Spins about spin_ns for new issued work or a control change, then parks. */
static void eng_idle(chan_t *ch) {
    struct cr_engine *g = &ch->engine;
    int64_t spin = ch->spin_ns;
    if (spin > 0) {
        uint64_t start = now_ns();
        unsigned spins = 0;
        for (;;) {
            /* The mark first: an issuer stores it before its compare-and-swap. */
            if (g->poll_marks && eng_is_marked(ch, g->head)) return;
            /* While marks are polled the next issue marks head's slot: issued_tail only every 64
             * spins (RingEngine.idle; measured neutral here, kept for the port's sake). */
            if ((!g->poll_marks || (spins & 63) == 0) &&
                atomic_load_explicit(&ch->issued_tail, memory_order_relaxed) != g->issued_cache)
                return;
            if (atomic_load_explicit(&ch->control, memory_order_relaxed) != g->seen) return;
            cpu_relax();
            spins++;
            if ((spins & 63) == 0 && (int64_t)(now_ns() - start) > spin) break;
        }
    }
    struct eng_idle_ctx ctx = {g->issued_cache, g->seen};
    /* Everything before `head` is done and published (the caller flushed): say so, for
     * idle_engine_witness. The park's seq_cst store of 1 orders this store before it. */
    atomic_store_explicit(&ch->idle_mark, (1ull << 32) | g->head, memory_order_relaxed);
    park(ch, &ch->engine_park, -1, eng_idle_changed, &ctx);
    atomic_store_explicit(&ch->idle_mark, 0, memory_order_relaxed);
}

static bool eng_control_changed(chan_t *ch, void *p) {
    /* Ordering: seq_cst; pairs with the seq_cst CAS of `control`. */
    return atomic_load_explicit(&ch->control, memory_order_seq_cst) != *(uint64_t *)p;
}

/* Parks until `control` changes (paused: waiting for resume, terminate or release). */
static void eng_wait_for_control_change(chan_t *ch) {
    uint64_t seen_raw = ch->engine.seen;
    /* Ordering: acquire; pairs with the seq_cst CAS of `control` in resume/terminate/release. */
    while (atomic_load_explicit(&ch->control, memory_order_acquire) == seen_raw)
        park(ch, &ch->engine_park, -1, eng_control_changed, &seen_raw);
}

struct eng_sleep_ctx {
    uint64_t seen_raw;
    bool has_stall;
    uint32_t stall_seen;
};

static bool eng_sleep_changed(chan_t *ch, void *p) {
    struct eng_sleep_ctx *c = p;
    /* Ordering: seq_cst; pairs with the seq_cst CAS of `control`, and the seq_cst increment of
     * `stall_generation` followed by a wake in debug_release_stalls. */
    if (atomic_load_explicit(&ch->control, memory_order_seq_cst) != c->seen_raw) return true;
    if (c->has_stall && atomic_load_explicit(&ch->stall_generation, memory_order_seq_cst) != c->stall_seen)
        return true;
    return false;
}

/* Sleeps up to ns (< 0: until woken), cut short by a control change or a stall release.
 * Returns true when interrupted by one of those. */
static bool eng_interruptible_sleep(chan_t *ch, int64_t ns, bool has_stall, uint32_t stall_seen) {
    struct eng_sleep_ctx ctx = {ch->engine.seen, has_stall, stall_seen};
    if (eng_sleep_changed(ch, &ctx)) return true;
    park(ch, &ch->engine_park, ns, eng_sleep_changed, &ctx);
    return eng_sleep_changed(ch, &ctx);
}

/* Waits out an injected per-chunk delay (none when delay <= 0). Returns true when a control
 * change cut it short, so the caller re-checks before it moves data. */
static bool eng_injected_delay_interrupted(chan_t *ch, int64_t delay) {
    if (delay <= 0) return false;
    int64_t deadline = (int64_t)now_ns() + delay;
    for (;;) {
        int64_t remaining = deadline - (int64_t)now_ns();
        if (remaining <= 0) return false;
        if (eng_interruptible_sleep(ch, remaining, false, 0)) return true;
    }
}

/* At a chunk boundary: handles a control change. Returns true when the active transfer must
 * stop (terminated or channel stopping); parks while paused. */
static bool eng_must_abort(chan_t *ch, uint32_t t) {
    struct cr_engine *g = &ch->engine;
    for (;;) {
        /* Ordering: acquire; pairs with the seq_cst CAS of `control` (terminate/pause/...). */
        uint64_t c = atomic_load_explicit(&ch->control, memory_order_acquire);
        if (c != g->seen) eng_observe(ch, c);
        if (g->stopping) return true;
        if (g->draining && tdist(t, g->drain_until) <= 0) return true;
        if (g->draining && tdist(g->head, g->drain_until) > 0) g->draining = false;
        if (ctl_paused(g->seen)) {
            /* Rule P1: stop moving data, publish, acknowledge, wait for resume/terminate. */
            eng_flush(ch);
            eng_acknowledge(ch);
            eng_run_callbacks(ch);
            eng_wait_for_control_change(ch);
            continue;
        }
        if (g->need_ack && !g->draining) eng_acknowledge(ch);
        if (ch->callbacks_on_engine && ch->executor.head != g->published) {
            /* What acknowledge published must be dispatched before a long transfer goes on
             * (synchronize waits for it); then re-check `control`. */
            exec_run_on_engine(ch, &ch->executor, g->published);
            continue;
        }
        return false;
    }
}

static inline void set_active(chan_t *ch, uint32_t t, uint64_t remaining) {
    atomic_store_explicit(&ch->active, (uint64_t)t << 32 | (uint32_t)remaining, memory_order_relaxed);
}

static inline void probe_access(chan_t *ch, int32_t cookie, int32_t write, const void *address, uint64_t n) {
    if (ch->ops.access) ch->ops.access(ch->host, cookie, write, address, n);
}

/* The fast path's other kinds, out of line: a fill, or a scatter-gather copy in one burst. */
static __attribute__((noinline)) void eng_fill_or_pieces(chan_t *ch, uint32_t index) {
    struct cr_desc *d = desc_at(ch, index);
    if (d->is_memset) {
        memset(d->destination, d->fill, d->length);
        return;
    }
    struct cr_piece *p = ch->pieces + (size_t)index * CR_PIECE_CAPACITY;
    for (uint32_t k = 0; k < d->piece_count; k++) memcpy(p[k].destination, p[k].source, p[k].length);
}

/* A cyclic transfer: copies the buffer period by period until terminated (or the channel
 * stops); after each period it reports period_ended, bumps `cyclic_periods`, and the executor
 * calls complete(), coalescing periods it has not caught up with (rule K1). */
static __attribute__((noinline)) void eng_cyclic_transfer(chan_t *ch, uint32_t index, uint32_t t) {
    struct cr_engine *g = &ch->engine;
    struct cr_desc *d = desc_at(ch, index);
    uint64_t length = d->length;
    uint64_t period = d->period_length < length ? d->period_length : length;
    if (period < 1) period = 1;
    uint64_t chunk = d->chunk_bytes > 0 ? d->chunk_bytes : period;
    if (chunk < 1) chunk = 1;
    int32_t cookie = cookie_of_ticket(ch, t);
    eng_flush(ch);
    eng_run_callbacks(ch);
    /* Ordering: release; pairs with the executor's acquire load of `cyclic` (the descriptor's
     * interrupt/has_callback, written before submit, are visible to it). */
    atomic_store_explicit(&ch->cyclic, (uint64_t)t << 32 | index, memory_order_release);
    uint64_t offset = 0, in_period = 0;
    /* The pace: a burst of n bytes moves once the request line has asked for them, n / pace
     * seconds after the previous one was due. A resume restarts the schedule with the next
     * burst due at once (no catching up). */
    uint32_t pace = d->pace;
    double ns_per_byte = pace > 0 ? 1e9 / (double)pace : 0;
    uint64_t schedule_start = now_ns();
    uint64_t scheduled = 0; /* bytes moved since schedule_start, the first burst after a resume excepted */
    bool due_now = false;   /* the first burst after a resume */
    uint32_t pauses = ctl_pause_gen(g->seen);
    set_active(ch, t, length);
    for (;;) {
        if (eng_must_abort(ch, t)) {
            /* Ordering: release; pairs with the executor's acquire load of `cyclic`. */
            atomic_store_explicit(&ch->cyclic, (uint64_t)CR_NONE, memory_order_release);
            eng_push(ch, index, t, DMABENCH_RESULT_ABORTED, length - offset, true, 0);
            return;
        }
        if (pace > 0 && ctl_pause_gen(g->seen) != pauses) {
            pauses = ctl_pause_gen(g->seen);
            schedule_start = now_ns();
            scheduled = 0;
            due_now = true;
        }
        /* Terminate or pause cut an injected delay short: re-check before touching memory. */
        if (eng_injected_delay_interrupted(ch, d->delay_per_chunk)) continue;
        uint64_t n = chunk;
        if (period - in_period < n) n = period - in_period;
        if (length - offset < n) n = length - offset;
        if (pace > 0) {
            /* Sleeps on the engine's futex; a control change wakes it, and the loop re-checks
             * before it moves data. */
            uint64_t due = schedule_start + (uint64_t)((double)(scheduled + n) * ns_per_byte);
            uint64_t now = now_ns();
            if (now < due && !due_now) {
                eng_interruptible_sleep(ch, (int64_t)(due - now), false, 0);
                continue;
            }
            if (due_now)
                due_now = false;
            else
                scheduled += n;
        }
        /* Ordering: acquire; pairs with the release store in debug_set_probe. */
        if (atomic_load_explicit(&ch->probe, memory_order_acquire)) {
            probe_access(ch, cookie, 0, (const char *)d->source + offset, n);
            probe_access(ch, cookie, 1, (char *)d->destination + offset, n);
        }
        memcpy((char *)d->destination + offset, (const char *)d->source + offset, n);
        offset += n;
        in_period += n;
        if (offset == length) offset = 0;
        set_active(ch, t, length - offset);
        if (in_period == period || offset == 0) {
            in_period = 0;
            /* The period's end, reported before its complete() can run. */
            if (ch->ops.period_ended) ch->ops.period_ended(ch->host, cookie);
            /* Ordering: seq_cst; the release part pairs with the executor's acquire load of
             * `cyclic_periods` (the period's bytes are visible to the callback), the seq_cst
             * part with the executor's seq_cst park announcement. */
            atomic_fetch_add_explicit(&ch->cyclic_periods, 1, memory_order_seq_cst);
            if (ch->callbacks_on_engine) {
                /* The period's complete(), here; the loop re-checks `control` (must_abort)
                 * before it copies again. */
                exec_cyclic_on_engine(ch, &ch->executor);
            } else {
                wake_executor_if_parked(ch);
            }
        }
    }
}

/* Chunked transfer with control checks, injected delay, stall, faults and the access probe. */
static __attribute__((noinline)) void eng_slow_transfer(chan_t *ch, uint32_t index, uint32_t t) {
    struct cr_desc *d = desc_at(ch, index);
    if (d->is_cyclic) {
        eng_cyclic_transfer(ch, index, t);
        return;
    }
    uint64_t length = d->length;
    uint64_t chunk = d->chunk_bytes > 0 ? d->chunk_bytes : length;
    if (chunk < 1) chunk = 1;
    int32_t cookie = cookie_of_ticket(ch, t);
    /* Publish what completed before this transfer: it may wait (delay, stall, pause). */
    eng_flush(ch);
    eng_run_callbacks(ch);
    set_active(ch, t, length);

    if (d->stall) {
        uint32_t stall_seen = d->stall_seen;
        for (;;) {
            if (eng_must_abort(ch, t)) {
                eng_push(ch, index, t, DMABENCH_RESULT_ABORTED, length, true, 0);
                return;
            }
            /* Ordering: acquire; pairs with the seq_cst increment in debug_release_stalls. */
            if (atomic_load_explicit(&ch->stall_generation, memory_order_acquire) != stall_seen) break;
            eng_interruptible_sleep(ch, -1, true, stall_seen);
        }
    }
    if (d->fault != 0) {
        if (eng_must_abort(ch, t)) {
            eng_push(ch, index, t, DMABENCH_RESULT_ABORTED, length, true, 0);
            return;
        }
        int32_t code = d->fault == 1 ? DMABENCH_RESULT_READ_FAILED : DMABENCH_RESULT_WRITE_FAILED;
        eng_push(ch, index, t, code, length, false, 0);
        return;
    }
    uint64_t offset = 0;
    /* Scatter-gather: the piece the walk is in, and the offset in it (each chunk stays inside
     * one piece, so pause, terminate and the probe work per segment). */
    uint32_t piece_count = d->piece_count;
    struct cr_piece *pieces = ch->pieces + (size_t)index * CR_PIECE_CAPACITY;
    uint32_t piece = 0;
    uint64_t in_piece = 0;
    while (offset < length) {
        if (eng_must_abort(ch, t)) {
            eng_push(ch, index, t, DMABENCH_RESULT_ABORTED, length - offset, true, 0);
            return;
        }
        if (eng_injected_delay_interrupted(ch, d->delay_per_chunk)) continue;
        uint64_t n = chunk < length - offset ? chunk : length - offset;
        char *dst;
        const char *src;
        if (piece_count > 0) {
            if (pieces[piece].length - in_piece < n) n = pieces[piece].length - in_piece;
            dst = (char *)pieces[piece].destination + in_piece;
            src = (const char *)pieces[piece].source + in_piece;
        } else {
            dst = (char *)d->destination + offset;
            src = d->source ? (const char *)d->source + offset : NULL;
        }
        /* Ordering: acquire; pairs with the release store in debug_set_probe. */
        if (atomic_load_explicit(&ch->probe, memory_order_acquire)) {
            if (!d->is_memset && src) probe_access(ch, cookie, 0, src, n);
            probe_access(ch, cookie, 1, dst, n);
        }
        if (d->is_memset)
            memset(dst, d->fill, n);
        else
            memcpy(dst, src, n);
        offset += n;
        if (piece_count > 0) {
            in_piece += n;
            if (in_piece == pieces[piece].length) {
                piece++;
                in_piece = 0;
            }
        }
        set_active(ch, t, length - offset);
    }
    eng_push(ch, index, t, DMABENCH_RESULT_NOERROR, 0, false, length);
}

static inline void eng_execute(chan_t *ch, uint32_t index, uint32_t t) {
    struct cr_desc *d = desc_at(ch, index);
    uint64_t length = d->length;
    /* Ordering: acquire; pairs with the release store in debug_set_probe. */
    if (!d->slow && atomic_load_explicit(&ch->probe, memory_order_acquire) == 0) {
        /* The hot path: one copy, no clock, no lock, no allocation. The host's complete()
         * reads the callback from the host area, the descriptor's second line, which the
         * client wrote at prep: start fetching it before the copy, or the callback waits
         * for it (eng_prefetch_next does this only when a next descriptor is issued). */
        if (d->has_callback) __builtin_prefetch(d->host_area, 0);
        if (d->piece_count == 0 && !d->is_memset)
            memcpy(d->destination, d->source, length);
        else
            eng_fill_or_pieces(ch, index);
        eng_push(ch, index, t, DMABENCH_RESULT_NOERROR, 0, false, length);
        return;
    }
    eng_slow_transfer(ch, index, t);
}

/* Starts fetching the next issued descriptor before this one's bytes move; a hint only. */
static inline void eng_prefetch_next(chan_t *ch) {
    struct cr_engine *g = &ch->engine;
    if (tdist(g->head, g->issued_cache) > 0) return;
    struct cr_sub_slot *next = &ch->sub[g->head & ch->mask];
    /* Relaxed; only a hint (a stale index prefetches the wrong descriptor). */
    if (atomic_load_explicit(&next->seq, memory_order_relaxed) == g->head + 1) {
        const char *p = (const char *)desc_at(ch, atomic_load_explicit(&next->descriptor, memory_order_relaxed));
        __builtin_prefetch(p, 1);
        __builtin_prefetch(p + 64, 1);
    }
}

static void eng_run(chan_t *ch) {
    struct cr_engine *g = &ch->engine;
    for (;;) {
        /* Ordering: acquire; pairs with the seq_cst CAS of `control` in terminate, pause,
         * resume and release. */
        uint64_t c = atomic_load_explicit(&ch->control, memory_order_acquire);
        if (c != g->seen) eng_observe(ch, c);
        if (g->stopping) {
            eng_flush(ch);
            eng_run_callbacks(ch);
            return;
        }
        if (g->draining && tdist(g->head, g->drain_until) > 0) g->draining = false;
        if (g->need_ack && !g->draining) eng_acknowledge(ch);
        if (ctl_paused(g->seen) && !g->draining) {
            /* Rule P2: issued work does not start while paused. */
            eng_flush(ch);
            eng_run_callbacks(ch);
            eng_wait_for_control_change(ch);
            continue;
        }
        uint32_t limit = g->issued_cache;
        if (tdist(g->head, limit) > 0) {
            if (g->poll_marks && eng_is_marked(ch, g->head)) {
                /* Issued, by the mark: start it without reading `issued_tail`, whose line the
                 * issuer's compare-and-swap may be holding. */
                limit = g->head;
            } else {
                /* No mark on the next ticket (at depth 1: caught up): publish and call back before
                 * the reload, which misses on the line the issuer's compare-and-swap took
                 * (docs/measurement-notes.md, "RingEngine: calling back before reloading
                 * issuedTail"). */
                if (g->poll_marks) {
                    eng_flush(ch);
                    eng_run_callbacks(ch);
                }
                /* Ordering: acquire; pairs with the seq_cst CAS of `issued_tail` in issue_pending
                 * (the slot contents are published by each slot's own `seq`). */
                uint32_t tail = atomic_load_explicit(&ch->issued_tail, memory_order_acquire);
                if (tail != g->issued_cache) {
                    g->poll_marks = tail - g->issued_cache == 1;
                    g->issued_cache = tail;
                }
                limit = g->issued_cache;
            }
        }
        if (g->draining && tdist(g->drain_until, limit) > 0) limit = g->drain_until;
        if (tdist(g->head, limit) > 0) {
            eng_flush(ch);
            eng_run_callbacks(ch);
            eng_idle(ch);
            continue;
        }
        /* Consume ticket `head`. */
        uint32_t t = g->head;
        struct cr_sub_slot *slot = &ch->sub[t & ch->mask];
        /* Ordering: acquire; pairs with the release store of `seq` in submit, which publishes
         * the slot and the descriptor fields written at prep. */
        while (atomic_load_explicit(&slot->seq, memory_order_acquire) != t + 1) cpu_relax();
        uint32_t index = atomic_load_explicit(&slot->descriptor, memory_order_relaxed);
        /* Active before the slot is released: tx_status finds a queued cookie either in its
         * slot or as the active one, never in neither (rule S5 residue). */
        uint64_t length = atomic_load_explicit(&slot->length, memory_order_relaxed);
        set_active(ch, t, length);
        /* Consumed: the mark can never match again. Ordering: relaxed; a mark is only a hint
         * whose slot is then published by `seq`. */
        atomic_store_explicit(&slot->issued, t + 1, memory_order_relaxed);
        /* Ordering: release; pairs with the acquire wait on `seq` in submit for ticket
         * t + capacity (the slot is free again), and with the acquire load of `seq` in
         * residue_of (the `active` store is visible). */
        atomic_store_explicit(&slot->seq, t + ch->capacity, memory_order_release);
        g->head = t + 1;
        eng_prefetch_next(ch);
        if (g->draining && tdist(t, g->drain_until) <= 0) {
            eng_push(ch, index, t, DMABENCH_RESULT_ABORTED, 0, true, 0);
            continue;
        }
        eng_execute(ch, index, t);
        /* callbacks_on_engine mode: the callbacks of the batch push just published. */
        eng_run_callbacks(ch);
    }
}

/* --- Threads (RingCore+Threads.swift) -------------------------------------------------------- */

static void *engine_main(void *arg) {
    chan_t *ch = arg;
    pthread_setname_np(pthread_self(), "cring-engine");
    tls_engine_of = ch;
    /* Ordering: release; pairs with the acquire load in start_thread (create returns with the
     * tid stored). */
    atomic_store_explicit(&ch->engine_tid, (uint32_t)gettid(), memory_order_release);
    futex_wake(&ch->engine_tid, 1);
    eng_run(ch);
    return NULL;
}

static void *executor_main(void *arg) {
    chan_t *ch = arg;
    pthread_setname_np(pthread_self(), "cring-exec");
    /* Ordering: release; pairs with the acquire load in start_thread. */
    atomic_store_explicit(&ch->executor_tid, (uint32_t)gettid(), memory_order_release);
    futex_wake(&ch->executor_tid, 1);
    exec_run(ch);
    return NULL;
}

static int start_thread(pthread_t *thread, int32_t cpu, void *(*fn)(void *), chan_t *ch, _Atomic uint32_t *tid) {
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0) return -1;
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (pthread_attr_setaffinity_np(&attr, sizeof set, &set) != 0) {
            pthread_attr_destroy(&attr);
            return -1;
        }
    }
    int rc = pthread_create(thread, &attr, fn, ch);
    pthread_attr_destroy(&attr);
    if (rc != 0) return -1;
    /* The startup handshake: wait for the thread to store its tid.
     * Ordering: acquire; pairs with the release store of the tid in the thread. */
    while (atomic_load_explicit(tid, memory_order_acquire) == 0) futex_wait(tid, 0, -1);
    return 0;
}

/* Sets `stop` in the control word, wakes both threads and joins them. */
static void stop_threads(chan_t *ch) {
    uint64_t c = atomic_load_explicit(&ch->control, memory_order_relaxed);
    /* Ordering: seq_cst; pairs with the acquire loads of `control` in both threads and their
     * seq_cst park re-checks. */
    while (!atomic_compare_exchange_weak_explicit(&ch->control, &c, ctl_stopping(c), memory_order_seq_cst,
                                                  memory_order_relaxed)) {
    }
    wake(&ch->engine_park);
    wake(&ch->executor_park);
    if (ch->has_engine_thread) pthread_join(ch->engine_thread, NULL);
    if (ch->has_executor_thread) pthread_join(ch->executor_thread, NULL);
    ch->has_engine_thread = false;
    ch->has_executor_thread = false;
}

static void free_storage(chan_t *ch) {
    free(ch->pool);
    free(ch->sub);
    free(ch->comp);
    free(ch->pieces);
    free(ch->free_queue.cells);
    free(ch);
}

/* --- Client operations (RingCore+Client.swift) ----------------------------------------------- */

static int32_t c_create(const struct dmabench_chan_options *options, const struct dmabench_host_ops *ops,
                        dmabench_host *host, dmabench_chan **out) {
    if (!options || !ops || !out) return DMABENCH_E_INVALID_ARGUMENT;
    struct dmabench_chan_options o;
    memset(&o, 0, sizeof o);
    size_t n = options->struct_size < sizeof o ? options->struct_size : sizeof o;
    memcpy(&o, options, n);
    if (o.pool_size < 1 || o.pool_size > (1u << 20)) return DMABENCH_E_INVALID_ARGUMENT;
    if (o.spin_ns < 0) return DMABENCH_E_INVALID_ARGUMENT;
    if (o.engine_cpu >= CPU_SETSIZE || o.executor_cpu >= CPU_SETSIZE) return DMABENCH_E_INVALID_ARGUMENT;
    if (!ops->complete) return DMABENCH_E_INVALID_ARGUMENT;

    chan_t *ch = aligned_zalloc(sizeof *ch);
    if (!ch) return DMABENCH_E_UNAVAILABLE;
    size_t opsn = ops->struct_size < sizeof ch->ops ? ops->struct_size : sizeof ch->ops;
    memcpy(&ch->ops, ops, opsn);
    ch->host = host;
    ch->pool_size = o.pool_size;
    uint32_t cap = power_of_two_at_least(o.pool_size);
    ch->capacity = cap;
    ch->mask = cap - 1;
    /* Completion ring: 2 x capacity, as in the Swift code (a REUSE descriptor resubmitted
     * before the executor consumed its previous entry; here it cannot, but the room is cheap). */
    ch->comp_capacity = cap * 2;
    ch->comp_mask = cap * 2 - 1;
    ch->spin_ns = o.spin_ns;
    ch->callbacks_on_engine = o.callbacks_on_engine != 0;
    ch->engine_cpu = o.engine_cpu;
    ch->executor_cpu = o.executor_cpu;

    atomic_init(&ch->used, 0u);
    atomic_init(&ch->last, 0u);
    atomic_init(&ch->issued_tail, 0u);
    atomic_init(&ch->engine_park, 0u);
    atomic_init(&ch->comp_tail, 0u);
    atomic_init(&ch->comp_head, 0u);
    atomic_init(&ch->executor_park, 0u);
    atomic_init(&ch->ack, 0ull);
    atomic_init(&ch->active, (uint64_t)UINT32_MAX << 32);
    atomic_init(&ch->idle_mark, 0ull);
    atomic_init(&ch->cyclic, (uint64_t)CR_NONE);
    atomic_init(&ch->cyclic_periods, 0ull);
    atomic_init(&ch->control, 0ull);
    atomic_init(&ch->cookie_base, pack32(0, 1));
    atomic_init(&ch->burst_bytes, 0ull);
    atomic_init(&ch->pace_bytes, 0ull);
    atomic_init(&ch->probe, 0u);
    atomic_init(&ch->stall_generation, 0u);
    atomic_init(&ch->released, false);
    atomic_init(&ch->terminate_pending, false);
    atomic_init(&ch->sync_waiters, 0);
    atomic_init(&ch->engine_tid, 0u);
    atomic_init(&ch->executor_tid, 0u);
    atomic_init(&ch->sync_event.state, 0u);

    ch->pool = aligned_zalloc((size_t)o.pool_size * CR_DESC_STRIDE);
    ch->pieces = aligned_zalloc((size_t)o.pool_size * CR_PIECE_CAPACITY * sizeof(struct cr_piece));
    /* Both rings start on a 128-byte boundary, so that an entry never straddles two lines. */
    ch->sub = aligned_zalloc((size_t)cap * sizeof(struct cr_sub_slot));
    ch->comp = aligned_zalloc((size_t)cap * 2 * sizeof(struct cr_comp_entry));
    if (!ch->pool || !ch->pieces || !ch->sub || !ch->comp || free_queue_init(&ch->free_queue, o.pool_size) != 0) {
        free_storage(ch);
        return DMABENCH_E_UNAVAILABLE;
    }
    for (uint32_t i = 0; i < o.pool_size; i++) {
        struct cr_desc *d = desc_at(ch, i);
        atomic_init(&d->state, SLOT_FREE);
        atomic_init(&d->generation, 1u);
        atomic_init(&d->reuse, 0);
    }
    for (uint32_t i = 0; i < cap; i++) {
        /* Ticket 0 is never handed out (the first ticket is 1), so slot 0 starts as if ticket 0
         * had been consumed: free for ticket `cap`. */
        atomic_init(&ch->sub[i].seq, i == 0 ? cap : i);
        atomic_init(&ch->sub[i].descriptor, 0u);
        atomic_init(&ch->sub[i].length, 0u);
        atomic_init(&ch->sub[i].issued, i + 1);
    }
    ch->engine.head = 1;
    ch->engine.seen = 0;

    if (start_thread(&ch->engine_thread, o.engine_cpu, engine_main, ch, &ch->engine_tid) != 0) {
        free_storage(ch);
        return DMABENCH_E_UNAVAILABLE;
    }
    ch->has_engine_thread = true;
    if (!ch->callbacks_on_engine) {
        if (start_thread(&ch->executor_thread, o.executor_cpu, executor_main, ch, &ch->executor_tid) != 0) {
            stop_threads(ch);
            free_storage(ch);
            return DMABENCH_E_UNAVAILABLE;
        }
        ch->has_executor_thread = true;
    }
    *out = ch;
    return DMABENCH_OK;
}

static void c_thread_ids(chan_t *ch, int32_t *engine_tid, int32_t *executor_tid) {
    if (engine_tid) *engine_tid = (int32_t)atomic_load_explicit(&ch->engine_tid, memory_order_relaxed);
    if (executor_tid) *executor_tid = (int32_t)atomic_load_explicit(&ch->executor_tid, memory_order_relaxed);
}

static int32_t c_configure(chan_t *ch, const struct dmabench_config *config) {
    if (is_released(ch)) return DMABENCH_E_RELEASED;
    if (!config) return DMABENCH_E_INVALID_ARGUMENT;
    if (config->pace_bytes_per_second > UINT32_MAX) return DMABENCH_E_INVALID_ARGUMENT;
    atomic_store_explicit(&ch->burst_bytes, config->burst_bytes, memory_order_relaxed);
    /* Relaxed; configure applies to later preps, ordered by the caller. */
    atomic_store_explicit(&ch->pace_bytes, config->pace_bytes_per_second, memory_order_relaxed);
    return DMABENCH_OK;
}

/* Takes a free descriptor and fills it. 0 and the index, or an error. No allocation. */
static inline int32_t prepare(chan_t *ch, void *destination, const void *source, uint8_t fill, bool is_memset,
                              uint64_t length, uint32_t flags, uint32_t *out_index) {
    if (is_released(ch)) return DMABENCH_E_RELEASED;
    if (length == 0 || length > UINT32_MAX || !destination) return DMABENCH_E_INVALID_ARGUMENT;
    uint32_t index;
    if (!free_queue_dequeue(&ch->free_queue, &index)) return DMABENCH_E_NO_RESOURCES;
    struct cr_desc *d = desc_at(ch, index);
    uint64_t burst = atomic_load_explicit(&ch->burst_bytes, memory_order_relaxed);
    d->is_memset = is_memset;
    d->is_cyclic = 0;
    atomic_store_explicit(&d->reuse, 0, memory_order_relaxed);
    d->interrupt = (flags & DMABENCH_PREP_INTERRUPT) != 0;
    d->has_callback = (flags & DMABENCH_PREP_CALLBACK) != 0;
    d->slow = burst > 0 && burst < length;
    d->stall = 0;
    d->fault = 0;
    d->fill = fill;
    d->destination = destination;
    d->source = source;
    d->length = length;
    d->period_length = 0;
    d->chunk_bytes = burst;
    d->delay_per_chunk = 0;
    d->piece_count = 0;
    d->pace = 0;
    atomic_store_explicit(&d->state, SLOT_PREPARED, memory_order_relaxed);
    *out_index = index;
    return DMABENCH_OK;
}

static inline void handle_of(chan_t *ch, uint32_t index, struct dmabench_desc *out) {
    out->index = index;
    out->generation = atomic_load_explicit(&desc_at(ch, index)->generation, memory_order_relaxed);
}

static int32_t c_prep_memcpy(chan_t *ch, void *dst, const void *src, uint64_t length, uint32_t flags,
                             struct dmabench_desc *out) {
    if (!src || !out) return DMABENCH_E_INVALID_ARGUMENT;
    uint32_t index;
    int32_t rc = prepare(ch, dst, src, 0, false, length, flags, &index);
    if (rc != 0) return rc;
    handle_of(ch, index, out);
    return DMABENCH_OK;
}

static int32_t c_prep_memset(chan_t *ch, void *dst, uint8_t value, uint64_t length, uint32_t flags,
                             struct dmabench_desc *out) {
    if (!out) return DMABENCH_E_INVALID_ARGUMENT;
    uint32_t index;
    int32_t rc = prepare(ch, dst, NULL, value, true, length, flags, &index);
    if (rc != 0) return rc;
    handle_of(ch, index, out);
    return DMABENCH_OK;
}

static int32_t c_prep_cyclic(chan_t *ch, void *dst, const void *src, uint64_t buffer_length, uint64_t period_length,
                             uint32_t flags, struct dmabench_desc *out) {
    if (!src || !out) return DMABENCH_E_INVALID_ARGUMENT;
    if (period_length == 0 || period_length > buffer_length) return DMABENCH_E_INVALID_ARGUMENT;
    uint32_t index;
    int32_t rc = prepare(ch, dst, src, 0, false, buffer_length, flags, &index);
    if (rc != 0) return rc;
    struct cr_desc *d = desc_at(ch, index);
    d->is_cyclic = 1;
    d->period_length = period_length;
    d->slow = 1;
    /* Relaxed; see configure. */
    d->pace = (uint32_t)atomic_load_explicit(&ch->pace_bytes, memory_order_relaxed);
    handle_of(ch, index, out);
    return DMABENCH_OK;
}

/* DMASGPlan.plan: merges the lists into pieces that each lie inside one source and one
 * destination segment. Returns the piece count (0 when the lists are not a valid copy). */
static uint32_t sg_plan(const struct dmabench_segment *dst, uint32_t ndst, const struct dmabench_segment *src,
                        uint32_t nsrc, struct cr_piece *pieces, uint64_t *total) {
    if (ndst == 0 || nsrc == 0 || ndst > CR_MAX_SEGMENTS || nsrc > CR_MAX_SEGMENTS) return 0;
    uint64_t dtotal = 0, stotal = 0;
    for (uint32_t i = 0; i < ndst; i++) {
        if (dst[i].length == 0 || !dst[i].address) return 0;
        dtotal += dst[i].length;
    }
    for (uint32_t i = 0; i < nsrc; i++) {
        if (src[i].length == 0 || !src[i].address) return 0;
        stotal += src[i].length;
    }
    if (dtotal != stotal) return 0;
    uint32_t di = 0, si = 0, n = 0;
    uint64_t doff = 0, soff = 0;
    while (di < ndst && si < nsrc) {
        uint64_t dl = dst[di].length - doff, sl = src[si].length - soff;
        uint64_t len = dl < sl ? dl : sl;
        pieces[n].destination = (char *)dst[di].address + doff;
        pieces[n].source = (const char *)src[si].address + soff;
        pieces[n].length = len;
        n++;
        doff += len;
        soff += len;
        if (doff == dst[di].length) {
            di++;
            doff = 0;
        }
        if (soff == src[si].length) {
            si++;
            soff = 0;
        }
    }
    *total = dtotal;
    return n;
}

static int32_t c_prep_memcpy_sg(chan_t *ch, const struct dmabench_segment *dst, uint32_t ndst,
                                const struct dmabench_segment *src, uint32_t nsrc, uint32_t flags,
                                struct dmabench_desc *out) {
    if (!dst || !src || !out || ndst == 0 || nsrc == 0) return DMABENCH_E_INVALID_ARGUMENT;
    uint32_t index;
    int32_t rc = prepare(ch, (void *)dst[0].address, src[0].address, 0, false, 1, flags, &index);
    if (rc != 0) return rc;
    struct cr_piece *p = ch->pieces + (size_t)index * CR_PIECE_CAPACITY;
    uint64_t total = 0;
    uint32_t count = sg_plan(dst, ndst, src, nsrc, p, &total);
    if (count == 0 || total > UINT32_MAX) {
        scrub(ch, index);
        free_queue_enqueue(&ch->free_queue, &index, 1);
        return DMABENCH_E_INVALID_ARGUMENT;
    }
    struct cr_desc *d = desc_at(ch, index);
    d->length = total;
    d->piece_count = (uint8_t)count;
    /* The fast path walks the pieces back to back (a burst or an injection makes it the
     * chunked slow path, as for a flat copy). */
    d->slow = d->chunk_bytes > 0 && d->chunk_bytes < total;
    handle_of(ch, index, out);
    return DMABENCH_OK;
}

/* The slot of a live handle, with its state; NULL for a stale one. */
static inline struct cr_desc *slot_of(chan_t *ch, struct dmabench_desc h, uint32_t *state) {
    if (h.index >= ch->pool_size || is_released(ch)) return NULL;
    struct cr_desc *d = desc_at(ch, h.index);
    if (atomic_load_explicit(&d->generation, memory_order_relaxed) != h.generation) return NULL;
    /* Ordering: acquire; pairs with the release store of `prepared` in the executor's retire
     * of a REUSE descriptor (it is done reading the descriptor). */
    uint32_t s = atomic_load_explicit(&d->state, memory_order_acquire);
    if (s == SLOT_FREE) return NULL;
    *state = s;
    return d;
}

static inline int32_t prepared_slot(chan_t *ch, struct dmabench_desc h, struct cr_desc **out) {
    if (is_released(ch)) return DMABENCH_E_RELEASED;
    uint32_t s;
    struct cr_desc *d = slot_of(ch, h, &s);
    if (!d) return DMABENCH_E_INVALID_HANDLE;
    s = await_completing(d, s);
    if (s == SLOT_IN_FLIGHT || s == SLOT_COMPLETING)
        return atomic_load_explicit(&d->reuse, memory_order_relaxed) ? DMABENCH_E_BUSY : DMABENCH_E_INVALID_HANDLE;
    *out = d;
    return DMABENCH_OK;
}

static int32_t c_set_callback(chan_t *ch, struct dmabench_desc desc, uint32_t has_callback) {
    struct cr_desc *d;
    int32_t rc = prepared_slot(ch, desc, &d);
    if (rc != 0) return rc;
    d->has_callback = has_callback != 0;
    return DMABENCH_OK;
}

static int32_t c_set_reuse(chan_t *ch, struct dmabench_desc desc, uint32_t reuse) {
    struct cr_desc *d;
    int32_t rc = prepared_slot(ch, desc, &d);
    if (rc != 0) return rc;
    atomic_store_explicit(&d->reuse, reuse != 0, memory_order_relaxed);
    return DMABENCH_OK;
}

static int32_t c_free_desc(chan_t *ch, struct dmabench_desc desc) {
    struct cr_desc *d;
    int32_t rc = prepared_slot(ch, desc, &d);
    if (rc != 0) return rc;
    if (!atomic_load_explicit(&d->reuse, memory_order_relaxed)) return DMABENCH_E_NOT_PERMITTED;
    scrub(ch, desc.index);
    free_queue_enqueue(&ch->free_queue, &desc.index, 1);
    return DMABENCH_OK;
}

static __attribute__((noinline)) void rebase(chan_t *ch, uint32_t t) {
    int32_t c = cookie_of_ticket(ch, t);
    atomic_store_explicit(&ch->cookie_base, pack32(t, (uint32_t)c), memory_order_relaxed);
}

static dmabench_cookie_t c_submit(chan_t *ch, struct dmabench_desc desc) {
    if (is_released(ch)) return -ENODEV;
    uint32_t s;
    struct cr_desc *d = slot_of(ch, desc, &s);
    if (!d) return -EINVAL;
    s = await_completing(d, s);
    if (s != SLOT_PREPARED) return atomic_load_explicit(&d->reuse, memory_order_relaxed) ? -EBUSY : -EINVAL;
    atomic_store_explicit(&d->state, SLOT_IN_FLIGHT, memory_order_relaxed);
    /* The serialization point (rule C1): one fetch-add on `used` hands out the ticket, and with
     * it the cookie and the ring slot. */
    uint32_t t = atomic_fetch_add_explicit(&ch->used, 1, memory_order_relaxed) + 1;
    struct cr_sub_slot *slot = &ch->sub[t & ch->mask];
    /* The ring never holds more than pool_size <= capacity tickets, so this slot is free; the
     * wait only covers the engine's store not being visible yet.
     * Ordering: acquire; pairs with the engine's release store of `seq` when it consumed
     * ticket t - capacity. */
    while (atomic_load_explicit(&slot->seq, memory_order_acquire) != t) cpu_relax();
    atomic_store_explicit(&slot->descriptor, desc.index, memory_order_relaxed);
    atomic_store_explicit(&slot->length, (uint32_t)d->length, memory_order_relaxed);
    /* Ordering: release; pairs with the engine's acquire load of `seq` before it reads the slot
     * and the descriptor (fields written at prep and by set_callback/inject). */
    atomic_store_explicit(&slot->seq, t + 1, memory_order_release);
    if ((t & CR_REBASE_MASK) == 0) rebase(ch, t);
    return cookie_of_ticket(ch, t);
}

static void c_issue_pending(chan_t *ch) {
    if (is_released(ch)) return;
    uint32_t used = atomic_load_explicit(&ch->used, memory_order_relaxed);
    uint32_t current = atomic_load_explicit(&ch->issued_tail, memory_order_relaxed);
    if (tdist(used, current) <= 0) return;
    /* The issue mark, before the compare-and-swap: every ticket up to `used` was handed out, so
     * marking current + 1 issues nothing early. Ordering: relaxed; the engine reads the slot
     * only after its acquire wait on `seq`. */
    atomic_store_explicit(&ch->sub[(current + 1) & ch->mask].issued, current + 1, memory_order_relaxed);
    while (tdist(used, current) > 0) {
        /* Ordering: seq_cst; the release part pairs with the engine's acquire load of
         * `issued_tail`, the seq_cst part with the engine's seq_cst park announcement (Dekker
         * with wake_engine_if_parked below). */
        if (atomic_compare_exchange_weak_explicit(&ch->issued_tail, &current, used, memory_order_seq_cst,
                                                  memory_order_relaxed)) {
            wake_engine_if_parked(ch);
            return;
        }
    }
}

/* Rule S5: the active transfer's remaining bytes, or the full length of a queued one. */
static uint64_t residue_of(chan_t *ch, int32_t cookie, uint32_t used_ticket, int32_t used_cookie) {
    uint32_t t = used_ticket - cookies_behind(cookie, used_cookie);
    uint64_t a = atomic_load_explicit(&ch->active, memory_order_relaxed);
    if (hi32(a) == t) return lo32(a) > 1 ? lo32(a) : 1;
    struct cr_sub_slot *slot = &ch->sub[t & ch->mask];
    /* Ordering: acquire; pairs with the release store of `seq` in submit. */
    uint32_t s1 = atomic_load_explicit(&slot->seq, memory_order_acquire);
    uint64_t length = atomic_load_explicit(&slot->length, memory_order_relaxed);
    /* Ordering: acquire; pairs with the engine's release store of `seq` on consume. */
    if (s1 == t + 1 && atomic_load_explicit(&slot->seq, memory_order_acquire) == s1) return length;
    /* Consumed since: the engine stored `active` before releasing the slot, so it is active
     * now, or already finished (reading COMPLETE from here on). */
    uint64_t a2 = atomic_load_explicit(&ch->active, memory_order_relaxed);
    if (hi32(a2) == t) return lo32(a2) > 1 ? lo32(a2) : 1;
    return 1;
}

static int32_t c_tx_status(chan_t *ch, dmabench_cookie_t cookie, struct dmabench_tx_state *state) {
    /* COMPLETE implies the engine's writes are visible: the snapshot's acquire load of `last`
     * pairs with the release CAS in advance_last. */
    uint32_t u, l;
    ticket_snapshot(ch, &u, &l);
    uint64_t base = atomic_load_explicit(&ch->cookie_base, memory_order_relaxed);
    int32_t mu = cookie_of_ticket_base(u, base), ml = cookie_of_ticket_base(l, base);
    struct dmabench_tx_state st = {ml, mu, 0, 0};
    int32_t status;
    if (cookie_is_complete(cookie, ml, mu)) {
        status = DMABENCH_STATUS_COMPLETE;
    } else {
        st.residue = is_released(ch) ? 0 : residue_of(ch, cookie, u, mu);
        bool paused = ctl_paused(atomic_load_explicit(&ch->control, memory_order_relaxed));
        status = paused ? DMABENCH_STATUS_PAUSED : DMABENCH_STATUS_IN_PROGRESS;
    }
    if (state) *state = st;
    return status;
}

static int32_t c_pause(chan_t *ch) {
    if (is_released(ch)) return DMABENCH_E_RELEASED;
    uint64_t c = atomic_load_explicit(&ch->control, memory_order_relaxed);
    uint64_t desired;
    for (;;) {
        desired = ctl_paused(c) ? c : ctl_pausing(c);
        /* Ordering: seq_cst; pairs with the engine's acquire loads of `control` and, for the
         * parked check below, with the engine's seq_cst park announcement. */
        if (atomic_compare_exchange_weak_explicit(&ch->control, &c, desired, memory_order_seq_cst,
                                                  memory_order_relaxed))
            break;
    }
    c = desired;
    /* Rule P1: return once the engine has stopped moving data: it acknowledged this pause, or
     * it is parked (it re-checks `control` before it moves data again). From a callback on the
     * engine thread (callbacks_on_engine mode) the engine is this thread, between transfers or
     * at a chunk boundary, and re-reads `control` before it moves data. */
    if (ch->callbacks_on_engine && tls_engine_of == ch) return DMABENCH_OK;
    uint32_t generation = ctl_pause_gen(c);
    unsigned spins = 0;
    for (;;) {
        /* Ordering: acquire; pairs with the seq_cst store in publish_ack. */
        uint64_t a = atomic_load_explicit(&ch->ack, memory_order_acquire);
        if (ctl_paused(a) && ctl_pause_gen(a) == generation) return DMABENCH_OK;
        /* Ordering: seq_cst; pairs with the engine's seq_cst park announcement. */
        if (atomic_load_explicit(&ch->engine_park, memory_order_seq_cst) == 1) return DMABENCH_OK;
        /* Ordering: acquire; pairs with the seq_cst CAS of `control` in resume/terminate. */
        uint64_t now = atomic_load_explicit(&ch->control, memory_order_acquire);
        if (!ctl_paused(now) || ctl_pause_gen(now) != generation) return DMABENCH_OK;
        /* The engine acknowledges within one chunk; on a loaded machine let it run. */
        spins++;
        if (spins < 4096)
            cpu_relax();
        else
            sched_yield();
    }
}

static int32_t c_resume(chan_t *ch) {
    if (is_released(ch)) return DMABENCH_E_RELEASED;
    uint64_t c = atomic_load_explicit(&ch->control, memory_order_relaxed);
    for (;;) {
        if (!ctl_paused(c)) return DMABENCH_E_NOT_PAUSED;
        /* Ordering: seq_cst; pairs with the engine's acquire load of `control` and its seq_cst
         * park announcement (Dekker with the wake below). */
        if (atomic_compare_exchange_weak_explicit(&ch->control, &c, ctl_resumed(c), memory_order_seq_cst,
                                                  memory_order_relaxed))
            break;
    }
    wake_engine_if_parked(ch);
    return DMABENCH_OK;
}

/* The epoch bump (rules T1, S6). NB-safe: a few atomics and at most one futex wake. */
static void terminate(chan_t *ch) {
    uint32_t cutoff = atomic_load_explicit(&ch->used, memory_order_relaxed);
    uint64_t c = atomic_load_explicit(&ch->control, memory_order_relaxed);
    /* Ordering: seq_cst; the release part pairs with the acquire loads of `control` in the
     * engine and the executor; this CAS is the linearization point of terminate. */
    while (!atomic_compare_exchange_weak_explicit(&ch->control, &c, ctl_terminated(c, cutoff), memory_order_seq_cst,
                                                  memory_order_relaxed)) {
    }
    /* Rule S6: terminated cookies read COMPLETE at once. */
    advance_last(ch, cutoff);
    atomic_store_explicit(&ch->terminate_pending, true, memory_order_relaxed);
    /* An engine parked idle past the cutoff has nothing to drain: it acknowledges when it
     * next wakes; otherwise wake it now to drain or abort. */
    uint32_t position;
    if (!idle_engine_witness(ch, cutoff, &position)) wake_engine_if_parked(ch);
}

static int32_t c_terminate_async(chan_t *ch) {
    if (is_released(ch)) return DMABENCH_E_RELEASED;
    terminate(ch);
    return DMABENCH_OK;
}

/* Waits until the engine acknowledged the current epoch and the executor has passed every
 * entry before the engine's acknowledged position. */
static void wait_for_epoch(chan_t *ch) {
    /* Ordering: acquire; pairs with the seq_cst CAS of `control` in terminate. */
    uint64_t current = atomic_load_explicit(&ch->control, memory_order_acquire);
    uint32_t target = ctl_epoch(current);
    /* Ordering: seq_cst; pairs with the seq_cst load in signal_sync_waiters. */
    atomic_fetch_add_explicit(&ch->sync_waiters, 1, memory_order_seq_cst);
    int64_t spin = ch->spin_ns < 20000 ? ch->spin_ns : 20000;
    for (;;) {
        /* Ordering: acquire; pairs with the seq_cst store in publish_ack. */
        uint64_t a = atomic_load_explicit(&ch->ack, memory_order_acquire);
        bool have = false;
        uint32_t position = 0;
        if (epoch_distance(ctl_epoch(a), target) >= 0) {
            position = lo32(a);
            have = true;
        } else if (idle_engine_witness(ch, ctl_cutoff(current), &position)) {
            have = true;
        } else {
            wake_engine_if_parked(ch);
        }
        if (have) {
            /* Ordering: acquire; pairs with the seq_cst store in publish_comp_head after each
             * batch (its complete() calls have returned). */
            uint32_t h = atomic_load_explicit(&ch->comp_head, memory_order_acquire);
            if (tdist(h, position) >= 0) break;
        }
        event_wait(&ch->sync_event, spin, 200000);
    }
    /* Ordering: seq_cst; pairs with the seq_cst load in signal_sync_waiters. */
    atomic_fetch_sub_explicit(&ch->sync_waiters, 1, memory_order_seq_cst);
}

/* Rule T3, with up to `extra_rounds` further terminate rounds for work submitted while the
 * terminate was pending (a callback that was already running, T7), so that no complete()
 * starts after synchronize returns. */
#ifdef CRING_BROKEN_SYNCHRONIZE
static const bool synchronize_does_not_wait = true;
#else
static const bool synchronize_does_not_wait = false;
#endif

static void wait_for_quiescence(chan_t *ch) {
    /* The negative control: return at once without waiting (synchronizeDoesNotWait). */
    if (synchronize_does_not_wait) return;
    const int extra_rounds = 4;
    int round = 0;
    for (;;) {
        wait_for_epoch(ch);
        if (!atomic_load_explicit(&ch->terminate_pending, memory_order_relaxed) || round >= extra_rounds) break;
        /* Ordering: acquire; pairs with the seq_cst CAS of `control` in terminate. */
        uint64_t c = atomic_load_explicit(&ch->control, memory_order_acquire);
        if (atomic_load_explicit(&ch->used, memory_order_relaxed) == ctl_cutoff(c)) break;
        round++;
        terminate(ch);
    }
    atomic_store_explicit(&ch->terminate_pending, false, memory_order_relaxed);
}

static int32_t c_synchronize(chan_t *ch) {
    if (is_released(ch)) return DMABENCH_E_RELEASED;
    wait_for_quiescence(ch);
    return DMABENCH_OK;
}

static int32_t c_release(chan_t *ch) {
    /* Relaxed: release is not called concurrently with other ops; the flag only makes later
     * calls fail with RELEASED. */
    bool expected = false;
    if (!atomic_compare_exchange_strong_explicit(&ch->released, &expected, true, memory_order_relaxed,
                                                 memory_order_relaxed))
        return DMABENCH_E_RELEASED;
    terminate(ch);
    wait_for_quiescence(ch);
    stop_threads(ch);
    free_storage(ch);
    return DMABENCH_OK;
}

/* --- Test hooks ----------------------------------------------------------------------------- */

static int32_t c_debug_seed_cookie(chan_t *ch, dmabench_cookie_t used, dmabench_cookie_t last) {
    if (is_released(ch)) return DMABENCH_E_RELEASED;
    if (used < 1 || last < 1) return DMABENCH_E_INVALID_ARGUMENT;
    /* A test hook for an idle channel (no submit or completion races it). */
    uint32_t tu = atomic_load_explicit(&ch->used, memory_order_relaxed);
    uint32_t tl = tu - cookies_behind(last, used);
    atomic_store_explicit(&ch->cookie_base, pack32(tu, (uint32_t)used), memory_order_relaxed);
    /* Ordering: release; pairs with the acquire load of `last` in ticket_snapshot (the base
     * stored just before belongs to this watermark). */
    atomic_store_explicit(&ch->last, tl, memory_order_release);
    return DMABENCH_OK;
}

static void c_debug_watermark(chan_t *ch, dmabench_cookie_t *used, dmabench_cookie_t *last) {
    uint32_t u, l;
    ticket_snapshot(ch, &u, &l);
    uint64_t base = atomic_load_explicit(&ch->cookie_base, memory_order_relaxed);
    if (used) *used = cookie_of_ticket_base(u, base);
    if (last) *last = cookie_of_ticket_base(l, base);
}

static int32_t c_debug_inject(chan_t *ch, struct dmabench_desc desc, const struct dmabench_injection *injection) {
    struct cr_desc *d;
    int32_t rc = prepared_slot(ch, desc, &d);
    if (rc != 0) return rc;
    if (!injection || injection->delay_per_chunk_ns < 0 || injection->fault < 0 || injection->fault > 2)
        return DMABENCH_E_INVALID_ARGUMENT;
    d->slow = 1;
    if (injection->chunk_bytes > 0) d->chunk_bytes = injection->chunk_bytes;
    d->delay_per_chunk = injection->delay_per_chunk_ns;
    d->stall = injection->stall != 0;
    d->stall_seen = atomic_load_explicit(&ch->stall_generation, memory_order_relaxed);
    d->fault = (uint8_t)injection->fault;
    return DMABENCH_OK;
}

static void c_debug_release_stalls(chan_t *ch) {
    /* Ordering: seq_cst (the Swift code has release plus the wake's seq_cst load); the release
     * part pairs with the engine's acquire load of `stall_generation`, the seq_cst part with
     * the engine's seq_cst park announcement before its seq_cst re-check (Dekker with the wake
     * below, which C11 only guarantees when this RMW is seq_cst too). */
    atomic_fetch_add_explicit(&ch->stall_generation, 1, memory_order_seq_cst);
    wake_engine_if_parked(ch);
}

static void c_debug_set_probe(chan_t *ch, uint32_t enabled) {
    /* Ordering: release; pairs with the engine's acquire load of `probe`. */
    atomic_store_explicit(&ch->probe, enabled ? 1u : 0u, memory_order_release);
}

/* The host's area of descriptor `index`, inside the descriptor (see struct cr_desc). */
static void *c_host_area(chan_t *ch, uint32_t index) {
    if (index >= ch->pool_size) return NULL;
    return desc_at(ch, index)->host_area;
}

/* --- The plugin ----------------------------------------------------------------------------- */

#ifdef CRING_BROKEN_SYNCHRONIZE
#define CRING_NAME "cring-broken-sync"
#define CRING_DESCRIPTION \
    "deliberately broken cring (negative control): synchronize returns at once without waiting (violates T3)"
#else
#define CRING_NAME "cring"
#define CRING_DESCRIPTION \
    "plain-C port of the ring backend: MPSC ticket ring, engine thread, completion ring to an executor"
#endif

static const struct dmabench_engine cring_engine = {
    .abi_version = DMABENCH_ENGINE_ABI_VERSION,
    .struct_size = sizeof(struct dmabench_engine),
    .name = CRING_NAME,
    .description = CRING_DESCRIPTION,
    .caps =
        {
            .flags = DMABENCH_CAP_PAUSE | DMABENCH_CAP_RESUME | DMABENCH_CAP_TERMINATE | DMABENCH_CAP_REUSE |
                     DMABENCH_CAP_MEMSET | DMABENCH_CAP_CYCLIC | DMABENCH_CAP_MEMCPY_SG,
            .residue_granularity = DMABENCH_RESIDUE_BURST,
            .max_segments = CR_MAX_SEGMENTS,
            .reserved = 0,
        },
    .create = c_create,
    .release = c_release,
    .thread_ids = c_thread_ids,
    .configure = c_configure,
    .prep_memcpy = c_prep_memcpy,
    .prep_memset = c_prep_memset,
    .prep_cyclic = c_prep_cyclic,
    .prep_memcpy_sg = c_prep_memcpy_sg,
    .set_callback = c_set_callback,
    .set_reuse = c_set_reuse,
    .free_desc = c_free_desc,
    .submit = c_submit,
    .issue_pending = c_issue_pending,
    .tx_status = c_tx_status,
    .pause = c_pause,
    .resume = c_resume,
    .terminate_async = c_terminate_async,
    .synchronize = c_synchronize,
    .debug_seed_cookie = c_debug_seed_cookie,
    .debug_watermark = c_debug_watermark,
    .debug_inject = c_debug_inject,
    .debug_release_stalls = c_debug_release_stalls,
    .debug_set_probe = c_debug_set_probe,
    .host_area = c_host_area,
};

static const struct dmabench_engine *const cring_engines[] = {&cring_engine};

static const struct dmabench_plugin cring_plugin = {
    .abi_version = DMABENCH_ENGINE_ABI_VERSION,
    .engine_count = 1,
    .engines = cring_engines,
};

__attribute__((visibility("default"))) const struct dmabench_plugin *dmabench_plugin(void) { return &cring_plugin; }
