/* Plugins the loader must refuse, one per -D switch (Tests/PluginTests/PluginLoaderTests.swift
 * compiles each with the C compiler at test time):
 *   NO_SYMBOL      exports no dmabench_plugin
 *   WRONG_VERSION  dmabench_plugin() reports ABI version 99
 *   PAUSE_ONLY     capabilities: PAUSE without RESUME
 *   SG_NO_SEGMENTS capabilities: MEMCPY_SG with max_segments 0
 *   MISSING_OP     synchronize is NULL
 * Without a switch it is a loadable plugin whose engine refuses to create a channel. */
#include "dmabench_engine.h"

static int32_t no_create(const struct dmabench_chan_options *o, const struct dmabench_host_ops *ops,
                         dmabench_host *h, dmabench_chan **out) {
    (void)o; (void)ops; (void)h; (void)out;
    return DMABENCH_E_UNAVAILABLE;
}
static int32_t i_chan(dmabench_chan *c) { (void)c; return 0; }
static void v_chan(dmabench_chan *c) { (void)c; }
static void tids(dmabench_chan *c, int32_t *e, int32_t *x) { (void)c; *e = 0; *x = 0; }
static int32_t conf(dmabench_chan *c, const struct dmabench_config *k) { (void)c; (void)k; return 0; }
static int32_t prep(dmabench_chan *c, void *d, const void *s, uint64_t n, uint32_t f, struct dmabench_desc *o) {
    (void)c; (void)d; (void)s; (void)n; (void)f; (void)o; return DMABENCH_E_NO_RESOURCES;
}
static int32_t cb(dmabench_chan *c, struct dmabench_desc d, uint32_t x) { (void)c; (void)d; (void)x; return 0; }
static int32_t fr(dmabench_chan *c, struct dmabench_desc d) { (void)c; (void)d; return 0; }
static dmabench_cookie_t sub(dmabench_chan *c, struct dmabench_desc d) { (void)c; (void)d; return -22; }
static int32_t st(dmabench_chan *c, dmabench_cookie_t k, struct dmabench_tx_state *s) { (void)c; (void)k; (void)s; return 0; }
static int32_t seed(dmabench_chan *c, dmabench_cookie_t u, dmabench_cookie_t l) { (void)c; (void)u; (void)l; return 0; }
static void wm(dmabench_chan *c, dmabench_cookie_t *u, dmabench_cookie_t *l) { (void)c; *u = 1; *l = 1; }
static int32_t inj(dmabench_chan *c, struct dmabench_desc d, const struct dmabench_injection *i) { (void)c; (void)d; (void)i; return 0; }
static void probe(dmabench_chan *c, uint32_t e) { (void)c; (void)e; }

static const struct dmabench_engine engine = {
    .abi_version = DMABENCH_ENGINE_ABI_VERSION,
    .struct_size = sizeof(struct dmabench_engine),
    .name = "bad",
    .description = "a plugin the loader must refuse",
#if defined(PAUSE_ONLY)
    .caps = {DMABENCH_CAP_PAUSE | DMABENCH_CAP_TERMINATE, DMABENCH_RESIDUE_DESCRIPTOR, 0, 0},
#elif defined(SG_NO_SEGMENTS)
    .caps = {DMABENCH_CAP_MEMCPY_SG | DMABENCH_CAP_TERMINATE, DMABENCH_RESIDUE_DESCRIPTOR, 0, 0},
#else
    .caps = {DMABENCH_CAP_TERMINATE, DMABENCH_RESIDUE_DESCRIPTOR, 0, 0},
#endif
    .create = no_create, .release = i_chan, .thread_ids = tids, .configure = conf,
    .prep_memcpy = prep, .set_callback = cb, .free_desc = fr, .submit = sub, .issue_pending = v_chan,
    .tx_status = st, .terminate_async = i_chan,
#if !defined(MISSING_OP)
    .synchronize = i_chan,
#endif
    .debug_seed_cookie = seed, .debug_watermark = wm, .debug_inject = inj, .debug_release_stalls = v_chan,
    .debug_set_probe = probe,
};
static const struct dmabench_engine *const engines[] = {&engine};
static const struct dmabench_plugin plugin = {
#if defined(WRONG_VERSION)
    99,
#else
    DMABENCH_ENGINE_ABI_VERSION,
#endif
    1, engines};

#if !defined(NO_SYMBOL)
__attribute__((visibility("default"))) const struct dmabench_plugin *dmabench_plugin(void) { return &plugin; }
#else
__attribute__((visibility("default"))) const struct dmabench_plugin *some_other_symbol(void) { return &plugin; }
#endif
