/* mod_ocsp_guard_watchdog.c: the background refresher. One mod_watchdog
 * singleton for the whole server, running in one child (so as the
 * unprivileged User): every second it applies the exchanges that finished
 * and queues what came due (og_sched's times) on the one fetch path's
 * persistent set of exchanges (mod_ocsp_guard_fetch.c), which applies each
 * outcome (cache, store, report row, logs once per change). */
#include <apr_optional.h>
#include <mod_watchdog.h>

#include "mod_ocsp_guard_private.h"

#define GUARD_WATCHDOG_NAME "_ocsp_guard_"

static apr_status_t og_wd_callback(int state, void *data, apr_pool_t *pool);
static void refresh_due(guard_t *g, apr_pool_t *ptemp);

static APR_OPTIONAL_FN_TYPE(ap_watchdog_get_instance) *wd_get_instance;
static APR_OPTIONAL_FN_TYPE(ap_watchdog_register_callback) *wd_register_callback;

/* One tick: write what the parent left for us, apply the exchanges that
 * finished and queue what came due (mod_ocsp_guard_fetch.c: nothing here
 * waits for an exchange), then expire what passed its nextUpdate. */
static void refresh_due(guard_t *g, apr_pool_t *ptemp)
{
    apr_time_t now;
    int i;

    guard_store_flush(g, g->s, ptemp);
    og_store_batch(g->store, 1); /* what this tick accepts: one syncfs at its end */
    guard_fetch_tick(g, ptemp);
    og_store_batch(g->store, 0);
    now = apr_time_now();
    for (i = 0; i < g->entries->nelts; i++) {
        guard_entry_check_expiry(g, APR_ARRAY_IDX(g->entries, i, guard_entry_t *), g->s, now,
                                 ptemp);
    }
}

static apr_status_t og_wd_callback(int state, void *data, apr_pool_t *pool)
{
    guard_t *g = data;
    apr_pool_t *ptemp;

    switch (state) {
    case AP_WATCHDOG_STATE_STARTING:
        /* `pool` is cleared right after this call: the refresher gets a pool of
         * its own, with its own allocator, used by this thread only */
        (void)pool;
        apr_pool_create_unmanaged_ex(&g->wd_pool, NULL, NULL);
        guard_fetch_start(g);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, g->s, OGLOGNO(00030)
                     "background refresh started in child %" APR_PID_T_FMT
                     " for %d certificate(s)", getpid(), g->entries->nelts);
        break;
    case AP_WATCHDOG_STATE_RUNNING:
        apr_pool_create(&ptemp, g->wd_pool);
        refresh_due(g, ptemp);
        apr_pool_destroy(ptemp);
        break;
    case AP_WATCHDOG_STATE_STOPPING:
        guard_fetch_stop(g);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, g->s, OGLOGNO(00031)
                     "background refresh stopping in child %" APR_PID_T_FMT, getpid());
        break;
    }
    return APR_SUCCESS;
}

void guard_watchdog_post_config(guard_t *g, server_rec *s, apr_pool_t *pconf)
{
    ap_watchdog_t *wd = NULL;
    apr_status_t rv;

    wd_get_instance = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_get_instance);
    wd_register_callback = APR_RETRIEVE_OPTIONAL_FN(ap_watchdog_register_callback);
    if (!wd_get_instance || !wd_register_callback) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, OGLOGNO(00032)
                     "mod_watchdog is not loaded: responses are fetched at startup only and "
                     "are NOT refreshed before they expire; add 'LoadModule watchdog_module "
                     "modules/mod_watchdog.so'");
        return;
    }
    /* child (parent = 0), singleton: one refresher for the whole server */
    rv = wd_get_instance(&wd, GUARD_WATCHDOG_NAME, 0, 1, pconf);
    if (rv == APR_SUCCESS) {
        rv = wd_register_callback(wd, AP_WD_TM_INTERVAL, g, og_wd_callback);
    }
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, OGLOGNO(00033)
                     "cannot start the background refresh (mod_watchdog): responses are "
                     "fetched at startup only and expire; check the error log above");
    }
}
