/*
 * dmabench_engine.h: the plugin ABI through which a DMA engine written in C gets dmabench's
 * conformance suite, contract checker and harness (docs/plugin-abi.md).
 *
 * ABI version 1. This header is the whole contract between dmabench (the *host*) and an
 * engine in a shared object (the *plugin*). It mirrors the provider side of Linux dmaengine:
 * the engine implements what a dmaengine driver puts in `struct dma_device` (device_prep_*,
 * tx_submit, device_issue_pending, device_tx_status, device_pause/resume,
 * device_terminate_all, device_synchronize), and calls the host back where a driver calls
 * dmaengine_desc_get_callback_invoke().
 *
 * Loading. `dmabench run --backend plugin:PATH[:NAME]` opens PATH with dlopen(RTLD_NOW |
 * RTLD_LOCAL), looks up `dmabench_plugin` (DMABENCH_PLUGIN_SYMBOL), calls it once and checks
 * `abi_version` before it reads anything else. NAME picks one of the plugin's engines (the
 * first when absent).
 *
 * Threads. The engine owns every thread it creates: it starts them in `create` and joins them
 * in `release`. It reports their Linux thread ids (gettid) through `thread_ids`, so that the
 * harness can check their placement and count per-thread events. From its own threads the
 * engine may call only the host functions in `struct dmabench_host_ops`; it never calls the
 * client. The host never creates threads for the engine.
 *
 * Contexts (docs/contract.md A.1). `complete` runs the client's callback on the engine's
 * calling thread, in a non-blocking context: the callback may call the NB-safe operations
 * below (prep, set_callback, submit, issue_pending, tx_status, pause, resume, terminate_async,
 * configure, the test hooks) re-entrantly, on that thread, while `complete` is on the stack.
 * The engine must hold none of its locks while it calls `complete`. The host refuses the
 * blocking operations (synchronize, terminate_sync, release) in a non-blocking context with
 * DMABENCH_E_ILLEGAL_CONTEXT before it calls the engine, so an engine never sees them there.
 *
 * Ownership. The client's callback and its parameter stay in the host, keyed by descriptor
 * index; the engine only records whether one is set. Memory given to prep belongs to the
 * client: the engine touches it from issue until the descriptor completes or, after a
 * terminate, until `synchronize` returns, and never after.
 */
#ifndef DMABENCH_ENGINE_H
#define DMABENCH_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. A plugin built against another version is refused. */
#define DMABENCH_ENGINE_ABI_VERSION 1u
/* The one symbol a plugin exports: `const struct dmabench_plugin *dmabench_plugin(void)`. */
#define DMABENCH_PLUGIN_SYMBOL "dmabench_plugin"

/* --- Errors: 0 or one of these (negative). Each is one case of Swift's DMAError. --------- */
enum {
    DMABENCH_OK = 0,
    DMABENCH_E_ILLEGAL_CONTEXT = -1,  /* a blocking call in a non-blocking context */
    DMABENCH_E_NOT_SUPPORTED = -2,    /* the engine lacks the operation (-ENOSYS) */
    DMABENCH_E_NOT_PERMITTED = -3,    /* not allowed on this descriptor (-EPERM) */
    DMABENCH_E_BUSY = -4,             /* the descriptor is in flight (-EBUSY) */
    DMABENCH_E_NOT_PAUSED = -5,       /* resume on a channel that is not paused */
    DMABENCH_E_RELEASED = -6,         /* the channel was released */
    DMABENCH_E_INVALID_HANDLE = -7,   /* a stale descriptor handle */
    DMABENCH_E_NO_RESOURCES = -8,     /* the descriptor pool is exhausted */
    DMABENCH_E_TIMED_OUT = -9,        /* a wait ran out of time */
    DMABENCH_E_INVALID_ARGUMENT = -10,/* an argument out of range */
    DMABENCH_E_UNAVAILABLE = -11,     /* the engine cannot run here (threads, memory) */
};

/* --- Cookies, descriptors, results ------------------------------------------------------ */

/* dma_cookie_t: 1...INT32_MAX, wrapping to 1 (rule C2); a negative value is -errno. */
typedef int32_t dmabench_cookie_t;

/* A descriptor handle: a slot of the engine's preallocated pool (index < pool_size) and a
 * generation the engine bumps each time the slot is recycled, so that stale handles fail. */
struct dmabench_desc {
    uint32_t index;
    uint32_t generation;
};

/* enum dmaengine_tx_result */
enum {
    DMABENCH_RESULT_NOERROR = 0,
    DMABENCH_RESULT_READ_FAILED = 1,
    DMABENCH_RESULT_WRITE_FAILED = 2,
    DMABENCH_RESULT_ABORTED = 3,
};

/* enum dma_status, the return value of tx_status */
enum {
    DMABENCH_STATUS_COMPLETE = 0,
    DMABENCH_STATUS_IN_PROGRESS = 1,
    DMABENCH_STATUS_PAUSED = 2,
    DMABENCH_STATUS_ERROR = 3,
    DMABENCH_STATUS_OUT_OF_ORDER = 4,
};

/* struct dma_tx_state */
struct dmabench_tx_state {
    dmabench_cookie_t last;   /* the last completed cookie */
    dmabench_cookie_t used;   /* the last cookie handed out */
    uint64_t residue;         /* bytes left of the queried cookie (rule S5) */
    uint64_t in_flight_bytes; /* bytes in flight on the channel (0 when not tracked) */
};

/* Prep flags (enum dma_ctrl_flags), and one the host adds. */
#define DMABENCH_PREP_INTERRUPT (1u << 0) /* DMA_PREP_INTERRUPT: complete() on completion */
#define DMABENCH_PREP_ACK (1u << 1)       /* DMA_CTRL_ACK */
#define DMABENCH_PREP_CALLBACK (1u << 31) /* the client sets a callback at prep (set_callback) */

/* One scatter-gather segment (struct scatterlist's dma address and length). */
struct dmabench_segment {
    const void *address;
    uint64_t length;
};

/* --- Capabilities (struct dma_slave_caps and the capability mask) ------------------------ */

#define DMABENCH_CAP_PAUSE (1u << 0)         /* cmd_pause: needs DMABENCH_CAP_RESUME too */
#define DMABENCH_CAP_RESUME (1u << 1)        /* cmd_resume */
#define DMABENCH_CAP_TERMINATE (1u << 2)     /* cmd_terminate */
#define DMABENCH_CAP_REUSE (1u << 3)         /* descriptor_reuse */
#define DMABENCH_CAP_MEMSET (1u << 4)        /* DMA_MEMSET: prep_memset */
#define DMABENCH_CAP_CYCLIC (1u << 5)        /* DMA_CYCLIC: prep_cyclic */
#define DMABENCH_CAP_MEMCPY_SG (1u << 6)     /* DMA_MEMCPY_SG: prep_memcpy_sg, max_segments > 0 */
#define DMABENCH_CAP_NO_ORDER (1u << 7)      /* completes out of order (rule S8) */
#define DMABENCH_CAP_SYNC_ISSUE (1u << 8)    /* issue_pending does the work on the caller */
#define DMABENCH_CAP_ALL ((1u << 9) - 1)

enum {
    DMABENCH_RESIDUE_DESCRIPTOR = 0,
    DMABENCH_RESIDUE_SEGMENT = 1,
    DMABENCH_RESIDUE_BURST = 2,
};

/* The loader refuses (exit 64) capabilities that contradict each other: an unknown bit,
 * PAUSE without RESUME, MEMCPY_SG with max_segments 0 or max_segments without MEMCPY_SG, an
 * unknown residue granularity, or a capability whose operation is NULL. */
struct dmabench_caps {
    uint32_t flags;               /* DMABENCH_CAP_* */
    uint32_t residue_granularity; /* DMABENCH_RESIDUE_* */
    uint32_t max_segments;        /* per list of prep_memcpy_sg; 0 without MEMCPY_SG */
    uint32_t reserved;            /* 0 */
};

/* --- Channel creation ------------------------------------------------------------------- */

/* Where the engine runs its threads (DMAChannelOptions). */
struct dmabench_chan_options {
    uint32_t struct_size;         /* sizeof(struct dmabench_chan_options) of the host */
    uint32_t pool_size;           /* descriptors in the pool; prep fails when all are in use */
    int32_t engine_cpu;           /* CPU for the engine thread, -1 = not pinned */
    int32_t executor_cpu;         /* CPU for the callback thread, -1 = not pinned */
    int64_t spin_ns;              /* how long threads spin before they park */
    uint32_t callbacks_on_engine; /* 1: the engine thread calls complete() itself */
    uint32_t reserved;            /* 0 */
};

/* Channel configuration for later preps only (dmaengine_slave_config). */
struct dmabench_config {
    uint64_t burst_bytes;         /* move data in bursts of this many bytes (0 = whole) */
    uint64_t pace_bytes_per_second; /* cyclic transfers: the request line's rate (0 = memory speed) */
};

/* Opaque: the host's side of one channel, handed back in every host call. */
typedef struct dmabench_host dmabench_host;
/* Opaque: the engine's channel. */
typedef struct dmabench_chan dmabench_chan;

/* What the engine may call, from any of its threads, with none of its locks held. */
struct dmabench_host_ops {
    uint32_t struct_size;
    /* Completes descriptor `index` of cookie `cookie`: runs the client's callback (if the
     * descriptor had DMABENCH_PREP_INTERRUPT and a callback) in a non-blocking context and
     * returns. Call it from one thread at a time, in cookie order, after tx_status reads the
     * cookie COMPLETE (rule K2), and before the descriptor slot is reused or re-armed (a REUSE
     * descriptor goes back to prepared after it returns). Never for a descriptor that a
     * terminate dropped (rule T1). For a cyclic transfer: once per period or per run of
     * periods (coalescing, rule K1), result DMABENCH_RESULT_NOERROR. */
    void (*complete)(dmabench_host *host, uint32_t index, dmabench_cookie_t cookie, int32_t result, uint64_t residue);
    /* Reports one access to descriptor memory before the engine makes it, only while
     * set_probe enabled the probe (write = 0 read, 1 write). From the thread moving the data. */
    void (*access)(dmabench_host *host, dmabench_cookie_t cookie, int32_t write, const void *address, uint64_t count);
    /* The end of one period of cyclic transfer `cookie`, before its complete(). */
    void (*period_ended)(dmabench_host *host, dmabench_cookie_t cookie);
};

/* Fault and latency injection for one prepared descriptor (DMAInjection). */
struct dmabench_injection {
    uint64_t chunk_bytes;          /* move in chunks of this size (0 = the configured burst) */
    int64_t delay_per_chunk_ns;    /* wait this long before each chunk; pause/terminate cut it short */
    uint32_t stall;                /* 1: wait before the first chunk until terminate or release_stalls */
    int32_t fault;                 /* 0 none, 1 read fault, 2 write fault (the result code) */
};

/* --- The engine ------------------------------------------------------------------------- */

/*
 * One engine. Every operation takes the channel from `create`. "NB-safe" operations may be
 * called from any thread, concurrently, and from inside complete(); they never wait for the
 * engine's threads. "Blocking" ones are called from a blocking context only.
 */
struct dmabench_engine {
    uint32_t abi_version;          /* DMABENCH_ENGINE_ABI_VERSION */
    uint32_t struct_size;          /* sizeof(struct dmabench_engine) */
    const char *name;              /* the backend name dmabench shows ("cring") */
    const char *description;       /* one line */
    struct dmabench_caps caps;

    /* dma_request_chan. Blocking. Starts the engine's threads. 0 and *out, or an error. */
    int32_t (*create)(const struct dmabench_chan_options *options, const struct dmabench_host_ops *ops,
                      dmabench_host *host, dmabench_chan **out);
    /* dma_release_channel. Blocking. Terminate, synchronize, join every thread, free
     * everything. The host calls nothing on the channel afterwards. */
    int32_t (*release)(dmabench_chan *chan);
    /* The engine's threads (0 when it has none of that role). NB-safe. */
    void (*thread_ids)(dmabench_chan *chan, int32_t *engine_tid, int32_t *executor_tid);
    /* dmaengine_slave_config. NB-safe. */
    int32_t (*configure)(dmabench_chan *chan, const struct dmabench_config *config);

    /* Prep (NB-safe): 0 and *out, or DMABENCH_E_NO_RESOURCES / DMABENCH_E_INVALID_ARGUMENT. */
    int32_t (*prep_memcpy)(dmabench_chan *chan, void *dst, const void *src, uint64_t length, uint32_t flags,
                           struct dmabench_desc *out);
    int32_t (*prep_memset)(dmabench_chan *chan, void *dst, uint8_t value, uint64_t length, uint32_t flags,
                           struct dmabench_desc *out);                       /* NULL without MEMSET */
    int32_t (*prep_cyclic)(dmabench_chan *chan, void *dst, const void *src, uint64_t buffer_length,
                           uint64_t period_length, uint32_t flags, struct dmabench_desc *out); /* NULL without CYCLIC */
    int32_t (*prep_memcpy_sg)(dmabench_chan *chan, const struct dmabench_segment *dst, uint32_t ndst,
                              const struct dmabench_segment *src, uint32_t nsrc, uint32_t flags,
                              struct dmabench_desc *out);                    /* NULL without MEMCPY_SG */

    /* Descriptor (NB-safe; prepared descriptors only: DMABENCH_E_INVALID_HANDLE for a stale
     * handle, DMABENCH_E_BUSY for a REUSE descriptor in flight). */
    int32_t (*set_callback)(dmabench_chan *chan, struct dmabench_desc desc, uint32_t has_callback);
    int32_t (*set_reuse)(dmabench_chan *chan, struct dmabench_desc desc, uint32_t reuse); /* NULL without REUSE */
    int32_t (*free_desc)(dmabench_chan *chan, struct dmabench_desc desc);   /* dmaengine_desc_free */

    /* tx_submit: a cookie, or a negative errno (the descriptor is not queued). NB-safe. */
    dmabench_cookie_t (*submit)(dmabench_chan *chan, struct dmabench_desc desc);
    /* device_issue_pending. NB-safe. */
    void (*issue_pending)(dmabench_chan *chan);
    /* device_tx_status: DMABENCH_STATUS_*, from one consistent (used, last) snapshot (rule S1).
     * COMPLETE means the engine's writes to the cookie's memory are visible to the caller. */
    int32_t (*tx_status)(dmabench_chan *chan, dmabench_cookie_t cookie, struct dmabench_tx_state *state);

    /* device_pause: returns once the engine has stopped moving data (rule P1). NB-safe. */
    int32_t (*pause)(dmabench_chan *chan);                /* NULL without PAUSE */
    int32_t (*resume)(dmabench_chan *chan);               /* DMABENCH_E_NOT_PAUSED when not paused */
    /* dmaengine_terminate_async: abort queued and active work, return at once. NB-safe. */
    int32_t (*terminate_async)(dmabench_chan *chan);
    /* dmaengine_synchronize: wait until no terminated descriptor's memory is touched and no
     * callback of one runs or will start (rule T3). Blocking. */
    int32_t (*synchronize)(dmabench_chan *chan);

    /* Test hooks (docs/contract.md A.2); the conformance suite needs all of them. NB-safe. */
    int32_t (*debug_seed_cookie)(dmabench_chan *chan, dmabench_cookie_t used, dmabench_cookie_t last);
    void (*debug_watermark)(dmabench_chan *chan, dmabench_cookie_t *used, dmabench_cookie_t *last);
    int32_t (*debug_inject)(dmabench_chan *chan, struct dmabench_desc desc, const struct dmabench_injection *injection);
    void (*debug_release_stalls)(dmabench_chan *chan);
    /* 1: call host access() before every access to descriptor memory; 0: stop. */
    void (*debug_set_probe)(dmabench_chan *chan, uint32_t enabled);

    /* Optional (NULL: the host keeps a table of its own). The host's area of descriptor
     * `index`: DMABENCH_HOST_AREA_BYTES bytes, 16-byte aligned, zeroed, at one address for the
     * channel's life, best inside the descriptor's own cache lines. The host asks for every
     * index once, after create; it writes the client's callback there at prep and reads it in
     * complete(), so an area beside the engine's descriptor saves a line crossing between the
     * CPUs per descriptor. The engine never touches it; release frees it. */
    void *(*host_area)(dmabench_chan *chan, uint32_t index);
};

/* The size of the host's per-descriptor area (host_area). */
#define DMABENCH_HOST_AREA_BYTES 48

/* What `dmabench_plugin()` returns: static data that lives as long as the shared object. */
struct dmabench_plugin {
    uint32_t abi_version;          /* DMABENCH_ENGINE_ABI_VERSION: checked first */
    uint32_t engine_count;
    const struct dmabench_engine *const *engines;
};

typedef const struct dmabench_plugin *(*dmabench_plugin_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* DMABENCH_ENGINE_H */
