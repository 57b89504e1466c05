/* mod_ocsp_guard_store.c: OCSPGuardStore glue. The parent (root) checks the
 * directory in check_config, opens it once in post-config and reads it only
 * through og_store's descriptor-relative, no-follow, fstat-checked operations;
 * it never writes there itself: what it fetched is marked dirty and written,
 * before post-config returns, by a short-lived process forked for that and
 * running as the server's User (the directory's owner); the refresher, in a
 * child as User too, writes directly. Every stored response is verified again
 * and obeys the monotonic rule; what this parent accepted is also remembered
 * in its process pool, so a store rolled back between two generations is
 * caught. */
#include <grp.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <apr_strings.h>
#include <http_core.h>
#include <http_main.h>
#include <unixd.h>

#include "mod_ocsp_guard_private.h"

#define GUARD_FLOORS_KEY "mod_ocsp_guard floors"

static apr_hash_t *process_floors(void);
static int write_dirty(guard_t *g, server_rec *s, apr_pool_t *p);
static int root_for_another_user(void);

/* Root, and the User is someone else: then root must not write the store. */
static int root_for_another_user(void)
{
    return geteuid() == 0 && ap_unixd_config.user_id != 0;
}

#define GUARD_WRITER_WAIT apr_time_from_sec(30)

/* For check_config (apachectl -t too): why the directory would be refused,
 * or NULL. Creates and changes nothing. */
const char *guard_store_check(apr_pool_t *p, const char *dir)
{
    og_store_t *st;
    const char *err;
    apr_status_t rv = og_store_open(&st, &err, p, dir, ap_unixd_config.user_id,
                                    ap_unixd_config.group_id, 0);

    return (rv == APR_SUCCESS || rv == APR_ENOENT) ? NULL : err;
}

void guard_store_open(guard_t *g, server_rec *s, apr_pool_t *pconf)
{
    const char *err;
    apr_status_t rv;

    g->store = NULL;
    g->floors = process_floors();
    if (g->store_problem) {
        g->store_dir = NULL; /* logged as a finding (OG00049) */
        return;
    }
    rv = og_store_open(&g->store, &err, pconf, g->store_dir, ap_unixd_config.user_id,
                       ap_unixd_config.group_id, 1);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, OGLOGNO(00022)
                     "OCSPGuardStore %s %s: responses will not survive a restart; create "
                     "it as a directory of its own (mode 0700) below a directory only root "
                     "can write, or point OCSPGuardStore elsewhere", g->store_dir, err);
        g->store_dir = NULL;
        return;
    }
    /* root's own record of what was accepted, out of the User's reach */
    rv = og_store_floors_load(g->store, g->floors, &err, pconf);
    if (rv != APR_SUCCESS && rv != APR_ENOENT && rv != APR_ENOTIMPL) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, OGLOGNO(00060)
                     "ignoring %s (%s): a store rolled back to older responses would go "
                     "unnoticed at this start; it is written again now",
                     og_store_floors_path(g->store, pconf), err ? err : "unreadable");
    }
}

/* The floors this process accepted, across configuration generations. */
static apr_hash_t *process_floors(void)
{
    void *data = NULL;
    apr_hash_t *h;

    apr_pool_userdata_get(&data, GUARD_FLOORS_KEY, ap_pglobal);
    if (data) {
        return data;
    }
    h = apr_hash_make(ap_pglobal);
    apr_pool_userdata_set(h, GUARD_FLOORS_KEY, apr_pool_cleanup_null, ap_pglobal);
    return h;
}

/* After post-config: what every certificate's floor is now, for the next
 * generation of this parent, and (as root) in the floors file for the next
 * start, for the certificates configured now. */
void guard_store_remember(guard_t *g, server_rec *s, apr_pool_t *p)
{
    apr_hash_t *now = apr_hash_make(p);
    const char *err;
    apr_status_t rv;
    int i;

    for (i = 0; g->floors && i < g->entries->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);
        og_floor_t *f = apr_hash_get(g->floors, e->cert->id, OG_CERT_ID_LEN);

        if (!f) {
            f = apr_pcalloc(ap_pglobal, sizeof(*f));
            apr_hash_set(g->floors, apr_pmemdup(ap_pglobal, e->cert->id, OG_CERT_ID_LEN),
                         OG_CERT_ID_LEN, f);
        }
        og_floor_merge(f, &e->floor);
        if (f->newest_this_update) {
            apr_hash_set(now, e->cert->id, OG_CERT_ID_LEN, f);
        }
    }
    if (!g->store) {
        return;
    }
    rv = og_store_floors_save(g->store, now, &err, p);
    if (rv != APR_SUCCESS && rv != APR_ENOTIMPL) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, OGLOGNO(00061)
                     "cannot write %s (%s): after a full restart, a store rolled back to "
                     "older responses could go unnoticed; check that root can write the "
                     "directory that holds OCSPGuardStore", og_store_floors_path(g->store, p),
                     err);
    }
}

/* Startup: take a still-valid stored response, verified again and never
 * older than what was accepted before. Returns 1 if used. */
int guard_store_load(guard_t *g, guard_entry_t *e, server_rec *s, apr_pool_t *p)
{
    og_record_t rec;
    og_floor_t file_floor, *mem;
    og_ocsp_result_t res;
    og_admit_e admit;
    const char *err;
    apr_status_t rv;

    if (g->floors && (mem = apr_hash_get(g->floors, e->cert->id, OG_CERT_ID_LEN))) {
        og_floor_merge(&e->floor, mem);
    }
    if (!g->store) {
        return 0;
    }
    rv = og_store_load(&rec, &file_floor, &err, p, g->store, e->cert->id);
    if (rv == APR_ENOENT) {
        return 0;
    }
    if (rv == OG_STORE_UNSAFE) {
        GUARD_ELOG(APLOG_WARNING, 0, s, e, p, OGLOGNO(00050)
                     "%s in OCSPGuardStore is %s; a new response is fetched. Remove "
                     "it: only mod_ocsp_guard writes there, so someone with the server's "
                     "User rights planted it",
                     og_store_path(g->store, p, e->cert->id), err);
        return 0;
    }
    if (rv != APR_SUCCESS) {
        GUARD_ELOG(APLOG_WARNING, rv, s, e, p, OGLOGNO(00025)
                     "ignoring stored response %s: %s; a new one is fetched (delete the "
                     "file if this repeats)",
                     og_store_path(g->store, p, e->cert->id), err);
        return 0;
    }
    og_floor_clamp(&file_floor, apr_time_now());
    og_floor_merge(&e->floor, &file_floor);
    og_ocsp_verify(&res, e->cert, rec.der, rec.der_len, apr_time_now(), g->max_validity);
    if (res.verdict == OG_VERDICT_EXPIRED
        || (res.verdict == OG_VERDICT_OK && res.cert_status == OG_STATUS_UNKNOWN)) {
        GUARD_ELOG(APLOG_INFO, 0, s, e, p, OGLOGNO(00026)
                     "stored response no longer usable (%s%s%s); a new one is fetched", res.verdict == OG_VERDICT_OK ? "status unknown"
                     : og_ocsp_verdict_str(res.verdict), res.detail[0] ? ": " : "",
                     res.detail);
        return 0;
    }
    if (res.verdict != OG_VERDICT_OK) {
        GUARD_ELOG(APLOG_WARNING, 0, s, e, p, OGLOGNO(00051)
                     "stored response %s fails verification (%s: %s); it is never "
                     "stapled and a new one is fetched. The store is writable by the "
                     "server's User: if this repeats, find out who writes there", og_store_path(g->store, p, e->cert->id),
                     og_ocsp_verdict_str(res.verdict), res.detail);
        return 0;
    }
    admit = og_admit(&e->floor, NULL, &res, rec.der, rec.der_len);
    if (!og_admit_installs(admit)) {
        GUARD_ELOG(APLOG_WARNING, 0, s, e, p, OGLOGNO(00052)
                     "stored response %s (%s, thisUpdate %s) is %s (thisUpdate %s%s): a "
                     "rolled-back store; it is never stapled and a new one is fetched", og_store_path(g->store, p, e->cert->id),
                     og_ocsp_status_str(res.cert_status), og_iso_time(p, res.this_update),
                     og_admit_str(admit),
                     og_iso_time(p, admit == OG_ADMIT_PRE_REVOCATION
                                 ? e->floor.revoked_this_update : e->floor.newest_this_update),
                     admit == OG_ADMIT_PRE_REVOCATION ? ", REVOKED" : "");
        return 0;
    }
    rec.this_update = res.this_update;
    rec.next_update = res.next_update;
    rec.cert_status = res.cert_status;
    rec.source = OG_SOURCE_STORE;
    guard_entry_install(g, e, &rec, res.revoked_at, g->pool);
    e->last_success = rec.fetched_at;
    apr_cpystrn(e->outcome, "loaded from store", sizeof(e->outcome));
    if (guard_cache_put(g, s, e, p) != APR_SUCCESS) {
        return 0;
    }
    GUARD_ELOG(APLOG_DEBUG, 0, s, e, p, OGLOGNO(00027)
                 "using the stored response (thisUpdate %s, nextUpdate %s)", og_iso_time(p, e->rec.this_update),
                 og_iso_time(p, e->rec.next_update));
    if (e->rec.cert_status == OG_STATUS_REVOKED) {
        GUARD_ELOG(APLOG_ERR, 0, s, e, p, OGLOGNO(00028)
                     "the stored response says this certificate is REVOKED; the "
                     "revocation is stapled and clients will refuse the connection: "
                     "replace the certificate now");
    }
    return 1;
}

/* Write the entry's response and floor. Root never writes into the User's
 * directory: it marks the entry, and the refresher writes it (guard_store_flush). */
og_store_t *guard_store_direct(guard_t *g)
{
    return g->store && !root_for_another_user() ? g->store : NULL;
}

void guard_store_persist(guard_t *g, guard_entry_t *e, server_rec *s, apr_pool_t *p)
{
    const char *err;
    apr_status_t rv;

    if (!g->store || !e->rec.der) {
        return;
    }
    if (root_for_another_user()) {
        e->dirty = 1; /* guard_store_flush writes it as the User */
        return;
    }
    rv = og_store_save(&err, p, g->store, e->cert->id, &e->rec, &e->floor);
    if (rv != APR_SUCCESS) {
        GUARD_ELOG(g->store_warned ? APLOG_DEBUG : APLOG_WARNING, rv, s, e, p, OGLOGNO(00021)
                   "cannot persist the response in OCSPGuardStore %s (%s); it is stapled, but "
                   "a restart will have to fetch it again%s", g->store_dir, err,
                   APR_STATUS_IS_EACCES(rv) || rv == APR_FROM_OS_ERROR(EPERM)
                   || rv == APR_FROM_OS_ERROR(EROFS)
                   ? ": make the directory writable by the server's User" : "");
        g->store_warned = 1;
        return;
    }
    e->dirty = 0;
    ap_log_error(APLOG_MARK, APLOG_TRACE1, 0, s, "%s: response (thisUpdate %s) persisted in %s",
                 e->cert->subject, og_iso_time(p, e->rec.this_update), g->store_dir);
}

static int write_dirty(guard_t *g, server_rec *s, apr_pool_t *p)
{
    int i, failed = 0;

    og_store_batch(g->store, 1); /* one syncfs at the end, not two fsyncs per file */
    for (i = 0; i < g->entries->nelts; i++) {
        guard_entry_t *e = APR_ARRAY_IDX(g->entries, i, guard_entry_t *);

        if (e->dirty) {
            guard_store_persist(g, e, s, p);
            failed += e->dirty;
            e->dirty = 0; /* one try: a failure is logged, the next accept retries */
        }
    }
    og_store_batch(g->store, 0);
    return failed;
}

/* Write what was accepted and marked dirty. As root (the parent in
 * post-config), in a process forked for it that first becomes the server's
 * User: root itself never creates, writes or renames a file in a directory
 * the User owns. Waits for it, bounded. */
void guard_store_flush(guard_t *g, server_rec *s, apr_pool_t *p)
{
    int i, dirty = 0, status = 0;
    pid_t pid;
    apr_time_t until;

    for (i = 0; i < g->entries->nelts; i++) {
        dirty += APR_ARRAY_IDX(g->entries, i, guard_entry_t *)->dirty;
    }
    if (!dirty || !g->store) {
        return;
    }
    if (!root_for_another_user()) {
        write_dirty(g, s, p);
        return;
    }
    pid = fork();
    if (pid == 0) {
        /* the writer: the User's identity, nothing of root's left */
        if (setgroups(0, NULL) != 0 || setgid(ap_unixd_config.group_id) != 0
            || setuid(ap_unixd_config.user_id) != 0 || geteuid() == 0) {
            _exit(2);
        }
        _exit(write_dirty(g, s, p) ? 1 : 0);
    }
    if (pid < 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, errno, s, OGLOGNO(00058)
                     "cannot start the process that writes %d response(s) into "
                     "OCSPGuardStore %s as the server's User; the background refresh "
                     "writes them instead", dirty, g->store_dir);
        return; /* the refresher writes what is still dirty */
    }
    until = apr_time_now() + GUARD_WRITER_WAIT;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (apr_time_now() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        apr_sleep(apr_time_from_msec(5));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, OGLOGNO(00059)
                     "cannot become the server's User (uid %ld) to write into "
                     "OCSPGuardStore %s; responses fetched now will be fetched again after "
                     "a restart. Check the User and Group directives",
                     (long)ap_unixd_config.user_id, g->store_dir);
        return;
    }
    for (i = 0; i < g->entries->nelts; i++) {
        APR_ARRAY_IDX(g->entries, i, guard_entry_t *)->dirty = 0;
    }
}
