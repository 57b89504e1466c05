/* mod_ocsp_guard_cache.c: where responses live in shared memory. The table
 * the handshake reads without a lock (og_table: one slot per certificate,
 * sized from the responses, in an anonymous shared mapping created before
 * the children fork) holds every response; OCSPGuardCache over mod_socache
 * (shmcb, sized from the certificate count, with the global mutex the
 * provider needs; keys are the 20-byte certificate ids) holds the report
 * rows and the few responses too long for a table slot. Nothing here
 * fetches. */
#include <stdlib.h>

#include <apr_shm.h>
#include <apr_strings.h>
#include <http_core.h>
#include <ap_provider.h>
#include <util_mutex.h>

#include "mod_ocsp_guard_private.h"

#define GUARD_CACHE_MIN_SIZE (512 * 1024)

static apr_status_t cache_cleanup(void *data);
static apr_status_t locked_store(guard_t *g, server_rec *s, const unsigned char *key,
                                 unsigned int klen, apr_time_t expiry, unsigned char *data,
                                 unsigned int len, apr_pool_t *p);
static apr_status_t locked_retrieve(guard_t *g, server_rec *s, const unsigned char *key,
                                    unsigned int klen, unsigned char *buf, unsigned int *plen,
                                    apr_pool_t *p);

static apr_status_t cache_cleanup(void *data)
{
    guard_t *g = data;

    if (g->cache && g->cache_inst) {
        g->cache->destroy(g->cache_inst, g->s);
        g->cache_inst = NULL;
    }
    return APR_SUCCESS;
}

/* Every cache access holds the mutex (when the provider needs one) around one
 * in-memory operation only: no I/O under it. */
static apr_status_t locked_store(guard_t *g, server_rec *s, const unsigned char *key,
                                 unsigned int klen, apr_time_t expiry, unsigned char *data,
                                 unsigned int len, apr_pool_t *p)
{
    apr_status_t rv;

    if (!g->cache_inst) {
        return APR_EINVAL;
    }
    if (g->mutex && (rv = apr_global_mutex_lock(g->mutex)) != APR_SUCCESS) {
        return rv;
    }
    rv = g->cache->store(g->cache_inst, s, key, klen, expiry, data, len, p);
    if (g->mutex) {
        apr_global_mutex_unlock(g->mutex);
    }
    return rv;
}

static apr_status_t locked_retrieve(guard_t *g, server_rec *s, const unsigned char *key,
                                    unsigned int klen, unsigned char *buf, unsigned int *plen,
                                    apr_pool_t *p)
{
    apr_status_t rv;

    if (!g->cache_inst) {
        return APR_ENOENT;
    }
    if (g->mutex && (rv = apr_global_mutex_lock(g->mutex)) != APR_SUCCESS) {
        return rv;
    }
    rv = g->cache->retrieve(g->cache_inst, s, key, klen, buf, plen, p);
    if (g->mutex) {
        apr_global_mutex_unlock(g->mutex);
    }
    return rv;
}

apr_status_t guard_cache_post_config(guard_t *g, server_rec *s, apr_pool_t *pconf,
                                  apr_pool_t *ptemp)
{
    guard_sconf_t *sc = guard_sconf(s);
    struct ap_socache_hints hints;
    apr_status_t rv;
    const char *err;

    if (sc->cache.provider) {
        g->cache = sc->cache.provider;
        g->cache_inst = sc->cache.inst;
        g->cache_desc = sc->cache.spec;
    }
    else {
        apr_size_t size = (apr_size_t)g->entries->nelts * OG_RECORD_ROOM_PER_CERT;
        const char *arg;

        if (size < GUARD_CACHE_MIN_SIZE) {
            size = GUARD_CACHE_MIN_SIZE;
        }
        g->cache = ap_lookup_provider(AP_SOCACHE_PROVIDER_GROUP, "shmcb",
                                      AP_SOCACHE_PROVIDER_VERSION);
        if (!g->cache) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, OGLOGNO(00001)
                         "OCSPGuardCache needs mod_socache_shmcb (the handshakes' cache must "
                         "be this machine's shared memory): add 'LoadModule "
                         "socache_shmcb_module modules/mod_socache_shmcb.so' (on Debian: "
                         "a2enmod socache_shmcb)");
            return APR_EGENERAL;
        }
        arg = apr_psprintf(pconf, "%s(%" APR_SIZE_T_FMT ")",
                           ap_runtime_dir_relative(pconf, GUARD_DEFAULT_CACHE_NAME), size);
        err = g->cache->create(&g->cache_inst, arg, ptemp, pconf);
        if (err) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, OGLOGNO(00002)
                         "cannot create the default cache shmcb:%s: %s; set "
                         "OCSPGuardCache explicitly", arg, err);
            return APR_EGENERAL;
        }
        g->cache_desc = apr_pstrcat(pconf, "shmcb:", arg, NULL);
    }

    if (g->cache->flags & AP_SOCACHE_FLAG_NOTMPSAFE) {
        rv = ap_global_mutex_create(&g->mutex, NULL, GUARD_MUTEX_TYPE, NULL, s, pconf, 0);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, OGLOGNO(00003)
                         "cannot create the mutex for OCSPGuardCache %s; check the "
                         "Mutex directive for '" GUARD_MUTEX_TYPE "'", g->cache_desc);
            return rv;
        }
    }

    memset(&hints, 0, sizeof(hints));
    hints.avg_id_len = OG_CERT_ID_LEN;
    hints.avg_obj_size = OG_RECORD_AVG_SIZE;
    hints.expiry_interval = 300;
    rv = g->cache->init(g->cache_inst, "ocsp_guard", &hints, s, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, OGLOGNO(00004)
                     "cannot initialise OCSPGuardCache %s; check that its directory "
                     "exists and is writable, or choose another path", g->cache_desc);
        return rv;
    }
    apr_pool_cleanup_register(pconf, g, cache_cleanup, apr_pool_cleanup_null);
    g->table_pending = 1; /* guard_cache_table, once the responses are known */
    return APR_SUCCESS;
}

/* The handshake's table, created once the store and the prefetch have
 * brought the responses, so that its slots fit them (packed, a quarter
 * more than the longest: memory follows the real response size); every
 * response held goes in at once. Without it (no shared memory to be had)
 * handshakes read OCSPGuardCache under its mutex. */
void guard_cache_table(guard_t *g, server_rec *s, apr_pool_t *pconf, apr_pool_t *ptemp)
{
    unsigned int n = (unsigned int)g->entries->nelts;
    apr_size_t longest = 0, slot, size;
    apr_shm_t *shm;
    apr_status_t rv;
    int i;

    g->table = NULL;
    g->table_pending = 0;
    for (i = 0; i < g->entries->nelts; i++) {
        const guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);

        if (e->rec.der && OG_RECORD_HDR_LEN + e->rec.der_len > longest) {
            longest = OG_RECORD_HDR_LEN + e->rec.der_len;
        }
    }
    /* nothing yet: room for a typical response with an embedded signer */
    slot = og_table_slot_size(longest ? longest : 1500);
    size = og_table_size(n, slot);
    /* anonymous: inherited by every child, gone with the last process of this
     * generation; the parent's mapping goes with pconf */
    rv = apr_shm_create(&shm, size, NULL, pconf);
    if (rv != APR_SUCCESS
        || !(g->table = og_table_init(apr_shm_baseaddr_get(shm), apr_shm_size_get(shm), n,
                                      slot))) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, OGLOGNO(00063)
                     "cannot map %" APR_SIZE_T_FMT " KiB of shared memory for the "
                     "handshakes' lock-free copy of %u response(s); handshakes read "
                     "OCSPGuardCache under its mutex instead. Check the memory limits "
                     "(ulimit -v, vm.overcommit_memory)", size / 1024, n);
    }
    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, OGLOGNO(00066)
                 "handshake table: %u slot(s) of %" APR_SIZE_T_FMT " bytes (%" APR_SIZE_T_FMT
                 " KiB of shared memory); responses longer than %" APR_SIZE_T_FMT " bytes are "
                 "read from OCSPGuardCache", n, slot, size / 1024, slot - OG_TABLE_SLOT_HDR);
    for (i = 0; i < g->entries->nelts; i++) {
        const guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);

        if (e->rec.der && guard_cache_put(g, s, e, ptemp) != APR_SUCCESS) {
            GUARD_ELOG(APLOG_ERR, 0, s, e, ptemp, OGLOGNO(00067)
                       "the verified response (%" APR_SIZE_T_FMT " bytes) fits neither the "
                       "handshake table nor OCSPGuardCache %s; it cannot be stapled: make "
                       "the cache larger", e->rec.der_len, g->cache_desc);
        }
    }
}

void guard_cache_child_init(guard_t *g, apr_pool_t *p, server_rec *s)
{
    apr_status_t rv;

    if (!g || !g->mutex) {
        return;
    }
    rv = apr_global_mutex_child_init(&g->mutex, apr_global_mutex_lockfile(g->mutex), p);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, OGLOGNO(00005)
                     "cannot attach to the OCSPGuardCache mutex in this child: "
                     "stapling from this child is off; check the Mutex directive");
        g->cache_inst = NULL;
    }
}

apr_status_t guard_cache_put(guard_t *g, server_rec *s, const guard_entry_t *e,
                          apr_pool_t *p)
{
    unsigned char *buf;
    apr_size_t len;
    apr_status_t rv;

    if (!g->cache_inst || !e->rec.der) {
        return APR_EINVAL;
    }
    if (g->table_pending) {
        return APR_SUCCESS; /* the parent, before the table: guard_cache_table puts it */
    }
    /* malloc'ed: 16 KiB per call in a long-lived pool would pile up */
    if (!(buf = malloc(OG_RECORD_MAX))) {
        return APR_ENOMEM;
    }
    len = og_record_encode(buf, OG_RECORD_MAX, &e->rec);
    if (!len) {
        rv = APR_ENOSPC;
    }
    /* the table holds it, or says it is too long: then the socache does */
    else if (g->table && (rv = og_table_put(g->table, e->slot, e->cert->id, buf, len)) <= 0) {
        rv = rv == 0 ? APR_SUCCESS : APR_EINVAL;
    }
    else {
        rv = locked_store(g, s, e->cert->id, OG_CERT_ID_LEN, e->rec.next_update, buf,
                          (unsigned int)len, p);
    }
    free(buf);
    return rv;
}

/* The handshake path: a copy out of the table, checked; no lock, no system
 * call. Only a record too long for its slot (or no table) takes the
 * socache's mutex. */
apr_status_t guard_cache_get(guard_t *g, server_rec *s, const guard_entry_t *e,
                          unsigned char *buf, apr_size_t *plen, apr_pool_t *p)
{
    unsigned int len = OG_RECORD_MAX;
    apr_status_t rv;

    if (g->table) {
        switch (og_table_get(g->table, e->slot, e->cert->id, buf, OG_RECORD_MAX, plen)) {
        case 0:
            return APR_SUCCESS;
        case 1:
            break; /* too long for the table */
        default:
            return APR_ENOENT;
        }
    }
    rv = locked_retrieve(g, s, e->cert->id, OG_CERT_ID_LEN, buf, &len, p);
    *plen = len;
    return rv;
}

/* Report rows live beside the records, under the id followed by 'S'; the
 * fleet cache's row under an id no certificate has (a SHA-1 of nothing of
 * ours), followed by 'F'. */
static void status_key(unsigned char *key, const guard_entry_t *e)
{
    memcpy(key, e->cert->id, OG_CERT_ID_LEN);
    key[OG_CERT_ID_LEN] = 'S';
}

static void fleet_key(unsigned char *key)
{
    memcpy(key, "ocsp_guard fleet row", OG_CERT_ID_LEN);
    key[OG_CERT_ID_LEN] = 'F';
}

apr_status_t guard_cache_put_fleet_report(guard_t *g, server_rec *s, const og_report_t *rp,
                                       apr_pool_t *p)
{
    unsigned char key[OG_CERT_ID_LEN + 1], buf[OG_REPORT_MAX];
    apr_size_t len = og_report_encode(buf, rp);

    fleet_key(key);
    return locked_store(g, s, key, sizeof(key), apr_time_now() + apr_time_from_sec(3650 * 86400),
                        buf, (unsigned int)len, p);
}

apr_status_t guard_cache_get_fleet_report(guard_t *g, server_rec *s, og_report_t *rp,
                                       apr_pool_t *p)
{
    unsigned char key[OG_CERT_ID_LEN + 1], buf[OG_REPORT_MAX];
    unsigned int len = sizeof(buf);
    apr_status_t rv;

    fleet_key(key);
    rv = locked_retrieve(g, s, key, sizeof(key), buf, &len, p);
    if (rv == APR_SUCCESS && og_report_decode(rp, buf, len) != 0) {
        rv = APR_EINVAL;
    }
    return rv;
}

apr_status_t guard_cache_put_report(guard_t *g, server_rec *s, const guard_entry_t *e,
                                 const og_report_t *rp, apr_pool_t *p)
{
    unsigned char key[OG_CERT_ID_LEN + 1], buf[OG_REPORT_MAX];
    apr_size_t len = og_report_encode(buf, rp);

    status_key(key, e);
    return locked_store(g, s, key, sizeof(key), apr_time_now() + apr_time_from_sec(3650 * 86400),
                        buf, (unsigned int)len, p);
}

/* Decoded, never taken as raw bytes: a row is only shown once it checks out. */
apr_status_t guard_cache_get_report(guard_t *g, server_rec *s, const guard_entry_t *e,
                                 og_report_t *rp, apr_pool_t *p)
{
    unsigned char key[OG_CERT_ID_LEN + 1], buf[OG_REPORT_MAX];
    unsigned int len = sizeof(buf);
    apr_status_t rv;

    status_key(key, e);
    rv = locked_retrieve(g, s, key, sizeof(key), buf, &len, p);
    if (rv == APR_SUCCESS && og_report_decode(rp, buf, len) != 0) {
        rv = APR_EINVAL;
    }
    return rv;
}
