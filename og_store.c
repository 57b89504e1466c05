/* og_store.c: the on-disk record and the safe file operations around it.
 * Layout (version 2; all integers big-endian):
 *    0  "OGST"               4  u8 version, 3 bytes zero
 *    8  certificate id (20 bytes, SHA-1 of the certificate DER)
 *   28  u32 flags (0)
 *   32  i64 newest thisUpdate accepted for this certificate (us)
 *   40  i64 thisUpdate of the newest revoked response accepted (0: never)
 *   48  i64 the revocationTime it gave
 *   56  u32 length L of the cache record
 *   60  the cache record (L bytes, og_record.c layout)
 * 60+L  SHA-256 of bytes 0 .. 60+L (against accidents only: anyone who can
 *       write the file can compute it, so the content is re-verified)
 * Version 1 (0.1.0): "OGST", 1, id at 8, u32 L at 28, record at 32, SHA-256.
 * Written to ".<id>.<random>.tmp" (O_CREAT|O_EXCL|O_NOFOLLOW), fsync'ed,
 * renamed over "<id>.ocsp" inside the directory, the directory fsync'ed.
 * The floors file "<dir>.floors" (root's, in the parent directory):
 *    0  "OGFL"   4  u8 version 1, 3 bytes zero   8  u32 count N (<= 1,000,000)
 *   12  N entries of 44 bytes: id (20), i64 newest thisUpdate, i64 revoked
 *       thisUpdate, i64 revocationTime
 * 12+44N SHA-256 of everything before it
 * Core file: APR, OpenSSL and POSIX only. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_general.h>
#include <openssl/evp.h>
#include <openssl/err.h>

#include "og_store.h"

#define OG_STORE_V1_HDR 32

#define OG_FLOORS_HDR   12
#define OG_FLOORS_ENTRY 44

struct og_store_t {
    const char *dir;
    const char *parent;         /* the directory that holds it */
    int dfd;
    int pfd;                    /* the parent, when root keeps the floors file */
    const char *floors_name;    /* "<base>.floors" in the parent */
    uid_t uid;                  /* the server's User: owner of the store */
    gid_t gid;
    int batch;                  /* og_store_batch: saves skip their fsyncs */
    int batch_written;          /* ... and something was saved meanwhile */
};

static int sha256(unsigned char *out, const unsigned char *d, apr_size_t len);
static int user_can_write(const struct stat *st, uid_t uid, gid_t gid);
static apr_status_t dfd_cleanup(void *data);
static apr_status_t save(const char **perr, apr_pool_t *p, const og_store_t *st,
                         const unsigned char *id, const og_record_t *rec,
                         const og_floor_t *floor, int sync);
static const char *mode_desc(apr_pool_t *p, const struct stat *st);

static int sha256(unsigned char *out, const unsigned char *d, apr_size_t len)
{
    unsigned int n = 0;

    return EVP_Digest(d, len, out, &n, EVP_sha256(), NULL) == 1 && n == OG_STORE_HASH;
}

/* Could uid (primary group gid, and its supplementary groups) create,
 * rename or delete entries in a directory with these attributes? */
static int user_can_write(const struct stat *st, uid_t uid, gid_t gid)
{
    struct passwd pw, *res = NULL;
    char buf[4096];
    gid_t groups[256];
    int n = (int)(sizeof(groups) / sizeof(groups[0])), i;

    if (st->st_uid == uid || (st->st_mode & S_IWOTH)) {
        return 1;
    }
    if (!(st->st_mode & S_IWGRP)) {
        return 0;
    }
    if (st->st_gid == gid) {
        return 1;
    }
    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res
        || getgrouplist(pw.pw_name, gid, groups, &n) < 0) {
        return 1; /* cannot tell: assume the worst */
    }
    for (i = 0; i < n; i++) {
        if (groups[i] == st->st_gid) {
            return 1;
        }
    }
    return 0;
}

static apr_status_t dfd_cleanup(void *data)
{
    og_store_t *st = data;

    if (st->dfd >= 0) {
        close(st->dfd);
        st->dfd = -1;
    }
    if (st->pfd >= 0) {
        close(st->pfd);
        st->pfd = -1;
    }
    return APR_SUCCESS;
}

static const char *mode_desc(apr_pool_t *p, const struct stat *st)
{
    return apr_psprintf(p, "owner uid %ld, group gid %ld, mode %04o", (long)st->st_uid,
                        (long)st->st_gid, (unsigned)(st->st_mode & 07777));
}

apr_status_t og_store_open(og_store_t **pst, const char **perr, apr_pool_t *p,
                           const char *dir, uid_t uid, gid_t gid, int prepare)
{
    og_store_t *st = apr_pcalloc(p, sizeof(*st));
    char *path = apr_pstrdup(p, dir), *slash;
    const char *parent, *base;
    struct stat ps, ds;
    int pfd = -1, dfd = -1, is_root = geteuid() == 0;
    apr_status_t rv = APR_EINVAL;

    *pst = NULL;
    *perr = NULL;
    while (strlen(path) > 1 && path[strlen(path) - 1] == '/') {
        path[strlen(path) - 1] = '\0';
    }
    slash = strrchr(path, '/');
    if (path[0] != '/' || !slash || !slash[1]) {
        *perr = "is not an absolute path to a directory below /";
        return APR_EINVAL;
    }
    base = slash + 1;
    parent = slash == path ? "/" : apr_pstrmemdup(p, path, (apr_size_t)(slash - path));
    if (!strcmp(base, ".") || !strcmp(base, "..")) {
        *perr = "must name the directory itself, not '.' or '..'";
        return APR_EINVAL;
    }
    pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (pfd < 0 || fstat(pfd, &ps) != 0) {
        *perr = apr_psprintf(p, "its parent %s cannot be opened: %s", parent, strerror(errno));
        rv = APR_FROM_OS_ERROR(errno);
        goto cleanup;
    }
    /* root must not work below a directory the User can rearrange */
    if (is_root && uid != 0 && user_can_write(&ps, uid, gid)) {
        *perr = apr_psprintf(p, "its parent %s is writable by the server's User (%s), who "
                             "could replace the store with a link anywhere", parent,
                             mode_desc(p, &ps));
        goto cleanup;
    }
    dfd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 && errno == ENOENT && !prepare) {
        rv = APR_ENOENT;
        goto cleanup;
    }
    if (dfd < 0 && errno == ENOENT) {
        if (mkdirat(pfd, base, 0700) != 0 && errno != EEXIST) {
            *perr = apr_psprintf(p, "cannot be created: %s", strerror(errno));
            rv = APR_FROM_OS_ERROR(errno);
            goto cleanup;
        }
        dfd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (dfd < 0) {
        int err = errno;
        struct stat ls;

        if (fstatat(pfd, base, &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(ls.st_mode)) {
            *perr = "is a symbolic link (the store must be a real directory)";
        }
        else if (err == ENOTDIR || err == ELOOP) {
            *perr = "is not a directory";
        }
        else {
            *perr = apr_psprintf(p, "cannot be opened: %s", strerror(err));
        }
        rv = APR_FROM_OS_ERROR(err);
        goto cleanup;
    }
    if (fstat(dfd, &ds) != 0 || !S_ISDIR(ds.st_mode)) {
        *perr = "is not a directory";
        goto cleanup;
    }
    if (ds.st_mode & (S_IWGRP | S_IWOTH)) {
        *perr = apr_psprintf(p, "is writable by others than its owner (%s)", mode_desc(p, &ds));
        goto cleanup;
    }
    if (ds.st_uid != uid && ds.st_uid != geteuid()) {
        *perr = apr_psprintf(p, "belongs to neither the server's User (uid %ld) nor this "
                             "process (%s)", (long)uid, mode_desc(p, &ds));
        goto cleanup;
    }
    if (prepare && is_root && (ds.st_uid != uid || ds.st_gid != gid || (ds.st_mode & 0777) != 0700)) {
        /* through the descriptor: never a path that could have become a link */
        if (fchown(dfd, uid, gid) != 0 || fchmod(dfd, 0700) != 0) {
            *perr = apr_psprintf(p, "cannot be given to the server's User: %s", strerror(errno));
            rv = APR_FROM_OS_ERROR(errno);
            goto cleanup;
        }
    }
    st->dir = path;
    st->parent = parent;
    st->dfd = dfd;
    st->pfd = -1;
    st->uid = uid;
    st->gid = gid;
    st->floors_name = apr_pstrcat(p, base, ".floors", NULL);
    if (is_root && uid != 0) {
        st->pfd = pfd; /* checked above: the User cannot write there */
        pfd = -1;
    }
    dfd = -1;
    apr_pool_cleanup_register(p, st, dfd_cleanup, apr_pool_cleanup_null);
    *pst = st;
    rv = APR_SUCCESS;

cleanup:
    if (pfd >= 0) {
        close(pfd);
    }
    if (dfd >= 0) {
        close(dfd);
    }
    return rv;
}

const char *og_store_dir(const og_store_t *st)
{
    return st->dir;
}

const char *og_store_path(const og_store_t *st, apr_pool_t *p, const unsigned char *id)
{
    return apr_pstrcat(p, st->dir, "/", og_hex(p, id, OG_CERT_ID_LEN), OG_STORE_SUFFIX, NULL);
}

apr_size_t og_store_encode(unsigned char *buf, const unsigned char *id,
                           const og_record_t *rec, const og_floor_t *floor)
{
    apr_size_t rlen;

    memset(buf, 0, OG_STORE_HDR);
    rlen = og_record_encode(buf + OG_STORE_HDR, OG_RECORD_MAX, rec);
    if (!rlen) {
        return 0;
    }
    memcpy(buf, OG_STORE_MAGIC, 4);
    buf[4] = OG_STORE_VERSION;
    memcpy(buf + 8, id, OG_CERT_ID_LEN);
    og_put32(buf + 28, 0);
    og_put64(buf + 32, floor->newest_this_update);
    og_put64(buf + 40, floor->revoked_this_update);
    og_put64(buf + 48, floor->revoked_at);
    og_put32(buf + 56, (apr_uint32_t)rlen);
    if (!sha256(buf + OG_STORE_HDR + rlen, buf, OG_STORE_HDR + rlen)) {
        return 0;
    }
    return OG_STORE_HDR + rlen + OG_STORE_HASH;
}

/* Put buf in place as `name` inside the directory dfd (shown as `dir`): an
 * O_CREAT|O_EXCL|O_NOFOLLOW temp file with a random name, fchmod 0600 (and,
 * when `give` and this process is root, fchown to uid/gid), fsync, renameat
 * over name (which replaces whatever is there, a planted link included,
 * without following it), fsync of the directory. */
static apr_status_t replace_file(const char **perr, apr_pool_t *p, int dfd, const char *dir,
                                 const char *name, const unsigned char *buf, apr_size_t len,
                                 int give, uid_t uid, gid_t gid, int sync)
{
    unsigned char rnd[8];
    const char *tmp;
    apr_size_t off = 0;
    int fd, err = 0;

    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS) {
        *perr = "no random bytes for a temp file name";
        return APR_EGENERAL;
    }
    tmp = apr_pstrcat(p, ".", name, ".", og_hex(p, rnd, sizeof(rnd)), ".tmp", NULL);
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC
                | O_NOCTTY, 0600);
    if (fd < 0) {
        *perr = apr_psprintf(p, "cannot create %s/%s: %s", dir, tmp, strerror(errno));
        return APR_FROM_OS_ERROR(errno);
    }
    while (off < len && !err) {
        ssize_t n = write(fd, buf + off, len - off);

        if (n > 0) {
            off += (apr_size_t)n;
        }
        else if (n == 0 || errno != EINTR) {
            err = n < 0 ? errno : EIO;
        }
    }
    if (!err && (fchmod(fd, 0600) != 0 || (give && geteuid() == 0 && fchown(fd, uid, gid) != 0)
                 || (sync && fsync(fd) != 0))) {
        err = errno;
    }
    if (close(fd) != 0 && !err) {
        err = errno;
    }
    if (err) {
        *perr = apr_psprintf(p, "cannot write %s/%s: %s", dir, tmp, strerror(err));
    }
    else if (renameat(dfd, tmp, dfd, name) != 0) {
        err = errno;
        *perr = apr_psprintf(p, "cannot rename %s/%s to %s: %s", dir, tmp, name, strerror(err));
    }
    if (err) {
        unlinkat(dfd, tmp, 0);
        return APR_FROM_OS_ERROR(err);
    }
    if (sync) {
        fsync(dfd); /* make the rename itself durable */
    }
    return APR_SUCCESS;
}

void og_store_batch(og_store_t *st, int on)
{
    if (!st) {
        return;
    }
    if (on) {
        st->batch = 1;
        st->batch_written = 0;
        return;
    }
    if (st->batch && st->batch_written) {
        /* one flush of the whole file system instead of two per file */
#ifdef __linux__
        if (syncfs(st->dfd) != 0)
#endif
        {
            fsync(st->dfd);
        }
    }
    st->batch = st->batch_written = 0;
}

apr_status_t og_store_save(const char **perr, apr_pool_t *p, og_store_t *st,
                           const unsigned char *id, const og_record_t *rec,
                           const og_floor_t *floor)
{
    st->batch_written |= st->batch;
    return save(perr, p, st, id, rec, floor, !st->batch);
}

apr_status_t og_store_save_unsynced(const char **perr, apr_pool_t *p, const og_store_t *st,
                                    const unsigned char *id, const og_record_t *rec,
                                    const og_floor_t *floor)
{
    return save(perr, p, st, id, rec, floor, 0);
}

static apr_status_t save(const char **perr, apr_pool_t *p, const og_store_t *st,
                         const unsigned char *id, const og_record_t *rec,
                         const og_floor_t *floor, int sync)
{
    /* malloc'ed: 16 KiB per save in a long-lived pool would pile up */
    unsigned char *buf = malloc(OG_STORE_MAX);
    apr_size_t total = buf ? og_store_encode(buf, id, rec, floor) : 0;
    apr_status_t rv;

    *perr = NULL;
    if (!total) {
        unsigned long e = ERR_get_error();

        *perr = !buf ? "out of memory"
                : !rec->der || rec->der_len > OG_OCSP_MAX_STAPLE
                ? "response too large for the store"
                : apr_psprintf(p, "cannot compute the file's SHA-256 (%s)",
                               e ? ERR_reason_error_string(e) : "no OpenSSL error");
        ERR_clear_error();
        free(buf);
        return APR_EINVAL;
    }
    rv = replace_file(perr, p, st->dfd, st->dir,
                      apr_pstrcat(p, og_hex(p, id, OG_CERT_ID_LEN), OG_STORE_SUFFIX, NULL),
                      buf, total, 1, st->uid, st->gid, sync);
    free(buf);
    return rv;
}

apr_status_t og_store_parse(og_record_t *rec, og_floor_t *floor, const char **perr,
                            apr_pool_t *p, const unsigned char *data, apr_size_t len,
                            const unsigned char *id)
{
    unsigned char hash[OG_STORE_HASH];
    apr_size_t hdr, rlen;
    og_record_t r;
    og_floor_t f;

    *perr = NULL;
    memset(&f, 0, sizeof(f));
    if (len < OG_STORE_V1_HDR + OG_STORE_HASH || memcmp(data, OG_STORE_MAGIC, 4) != 0
        || data[5] || data[6] || data[7]) {
        *perr = "not a mod_ocsp_guard store file";
        return APR_EINVAL;
    }
    if (data[4] == 1) {
        hdr = OG_STORE_V1_HDR;
        rlen = og_get32(data + 28);
    }
    else if (data[4] == OG_STORE_VERSION && len < OG_STORE_HDR + OG_STORE_HASH) {
        *perr = "truncated or padded";
        return APR_EINVAL;
    }
    else if (data[4] == OG_STORE_VERSION && og_get32(data + 28) != 0) {
        *perr = apr_psprintf(p, "unknown flags 0x%x", (unsigned)og_get32(data + 28));
        return APR_EINVAL;
    }
    else if (data[4] == OG_STORE_VERSION) {
        hdr = OG_STORE_HDR;
        rlen = og_get32(data + 56);
        f.newest_this_update = og_get64(data + 32);
        f.revoked_this_update = og_get64(data + 40);
        f.revoked_at = og_get64(data + 48);
    }
    else {
        *perr = apr_psprintf(p, "store format version %d, this module reads 1 and %d",
                             data[4], OG_STORE_VERSION);
        return APR_EINVAL;
    }
    if (rlen > OG_RECORD_MAX || len != hdr + rlen + OG_STORE_HASH) {
        *perr = "truncated or padded";
        return APR_EINVAL;
    }
    if (!sha256(hash, data, hdr + rlen) || memcmp(hash, data + hdr + rlen, OG_STORE_HASH) != 0) {
        *perr = "checksum mismatch (corrupt)";
        return APR_EINVAL;
    }
    if (memcmp(data + 8, id, OG_CERT_ID_LEN) != 0) {
        *perr = "written for another certificate";
        return APR_EINVAL;
    }
    if (og_record_decode(&r, data + hdr, rlen) != 0) {
        *perr = "record unreadable";
        return APR_EINVAL;
    }
    if (data[4] == 1) {
        f.newest_this_update = r.this_update;
        if (r.cert_status == OG_STATUS_REVOKED) {
            f.revoked_this_update = r.this_update;
        }
    }
    r.der = apr_pmemdup(p, r.der, r.der_len);
    *rec = r;
    *floor = f;
    return APR_SUCCESS;
}

/* Read `name` in the directory dfd, as hostile ground: opened with
 * O_NOFOLLOW|O_NONBLOCK (a planted FIFO opens at once), then fstat-checked
 * before a byte is read: a regular file of `user`'s or this process', at
 * most `max` bytes (a `what`, for messages). APR_ENOENT when there is none,
 * OG_STORE_UNSAFE with the reason when the name is anything else. */
static apr_status_t read_checked(unsigned char **pbuf, apr_size_t *plen, const char **perr,
                                 apr_pool_t *p, int dfd, const char *name, uid_t user,
                                 apr_size_t max, const char *what)
{
    unsigned char *buf;
    apr_size_t len = 0, cap;
    struct stat fs;
    const char *why = NULL;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

    if (fd < 0) {
        int err = errno;

        if (err == ENOENT) {
            return APR_ENOENT;
        }
        *perr = err == ELOOP ? "a symbolic link: skipped, never followed"
                             : apr_psprintf(p, "cannot open: %s", strerror(err));
        return err == ELOOP ? OG_STORE_UNSAFE : APR_FROM_OS_ERROR(err);
    }
    if (fstat(fd, &fs) != 0) {
        why = apr_psprintf(p, "cannot stat: %s", strerror(errno));
    }
    else if (!S_ISREG(fs.st_mode)) {
        why = S_ISFIFO(fs.st_mode) ? "a FIFO, not a regular file: skipped"
            : S_ISDIR(fs.st_mode) ? "a directory, not a regular file: skipped"
            : "a device or socket, not a regular file: skipped";
    }
    else if (fs.st_uid != user && fs.st_uid != geteuid()) {
        why = apr_psprintf(p, "owned by uid %ld, neither the server's User nor this "
                           "process: skipped", (long)fs.st_uid);
    }
    else if (fs.st_size > (off_t)max) {
        why = apr_psprintf(p, "%ld bytes, larger than any %s: skipped", (long)fs.st_size,
                           what);
    }
    if (why) {
        *perr = why;
        close(fd);
        return OG_STORE_UNSAFE;
    }
    cap = (apr_size_t)fs.st_size + 1; /* one more: a file that grew is caught below */
    buf = apr_palloc(p, cap);
    while (len < cap) {
        ssize_t n = read(fd, buf + len, cap - len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            *perr = apr_psprintf(p, "cannot read: %s", strerror(errno));
            close(fd);
            return APR_FROM_OS_ERROR(errno);
        }
        if (n == 0) {
            break;
        }
        len += (apr_size_t)n;
    }
    close(fd);
    if (len > max || len == cap) {
        *perr = apr_psprintf(p, "%s changed size while read", what);
        return APR_EINVAL;
    }
    *pbuf = buf;
    *plen = len;
    return APR_SUCCESS;
}

apr_status_t og_store_load(og_record_t *rec, og_floor_t *floor, const char **perr,
                           apr_pool_t *p, og_store_t *st, const unsigned char *id)
{
    unsigned char *buf;
    apr_size_t len;
    apr_status_t rv;

    *perr = NULL;
    rv = read_checked(&buf, &len, perr, p, st->dfd,
                      apr_pstrcat(p, og_hex(p, id, OG_CERT_ID_LEN), OG_STORE_SUFFIX, NULL),
                      st->uid, OG_STORE_MAX, "store file");
    return rv == APR_SUCCESS ? og_store_parse(rec, floor, perr, p, buf, len, id) : rv;
}

const char *og_store_floors_path(const og_store_t *st, apr_pool_t *p)
{
    return apr_pstrcat(p, st->dir, ".floors", NULL);
}

apr_status_t og_store_floors_parse(apr_hash_t *floors, const char **perr,
                                   const unsigned char *data, apr_size_t len)
{
    apr_pool_t *hp = apr_hash_pool_get(floors);
    unsigned char hash[OG_STORE_HASH];
    apr_size_t n, i;

    *perr = NULL;
    if (len < OG_FLOORS_HDR + OG_STORE_HASH || memcmp(data, "OGFL", 4) != 0 || data[4] != 1
        || data[5] || data[6] || data[7]) {
        *perr = "not a mod_ocsp_guard floors file";
        return APR_EINVAL;
    }
    n = og_get32(data + 8);
    if (n > OG_FLOORS_MAX_ENTRIES || len != OG_FLOORS_HDR + n * OG_FLOORS_ENTRY + OG_STORE_HASH) {
        *perr = "truncated or padded";
        return APR_EINVAL;
    }
    if (!sha256(hash, data, len - OG_STORE_HASH)
        || memcmp(hash, data + len - OG_STORE_HASH, OG_STORE_HASH) != 0) {
        *perr = "checksum mismatch (corrupt)";
        return APR_EINVAL;
    }
    for (i = 0; i < n; i++) {
        const unsigned char *e = data + OG_FLOORS_HDR + i * OG_FLOORS_ENTRY;
        og_floor_t f, *have = apr_hash_get(floors, e, OG_CERT_ID_LEN);

        f.newest_this_update = og_get64(e + 20);
        f.revoked_this_update = og_get64(e + 28);
        f.revoked_at = og_get64(e + 36);
        if (!have) {
            have = apr_pcalloc(hp, sizeof(*have));
            apr_hash_set(floors, apr_pmemdup(hp, e, OG_CERT_ID_LEN), OG_CERT_ID_LEN, have);
        }
        og_floor_merge(have, &f);
    }
    return APR_SUCCESS;
}

apr_status_t og_store_floors_load(og_store_t *st, apr_hash_t *floors, const char **perr,
                                  apr_pool_t *p)
{
    unsigned char *buf;
    apr_size_t len;
    apr_status_t rv;

    *perr = NULL;
    if (st->pfd < 0) {
        return APR_ENOTIMPL;
    }
    /* root's own file: no other owner will do */
    rv = read_checked(&buf, &len, perr, p, st->pfd, st->floors_name, geteuid(),
                      OG_FLOORS_HDR + (apr_size_t)OG_FLOORS_MAX_ENTRIES * OG_FLOORS_ENTRY
                      + OG_STORE_HASH, "floors file");
    if (rv == OG_STORE_UNSAFE) {
        return APR_EINVAL; /* not believed; written again by the caller */
    }
    return rv == APR_SUCCESS ? og_store_floors_parse(floors, perr, buf, len) : rv;
}

apr_status_t og_store_floors_save(og_store_t *st, apr_hash_t *floors, const char **perr,
                                  apr_pool_t *p)
{
    apr_size_t n = apr_hash_count(floors), total, i = 0;
    unsigned char *buf;
    apr_hash_index_t *hi;

    *perr = NULL;
    if (st->pfd < 0) {
        return APR_ENOTIMPL;
    }
    if (n > OG_FLOORS_MAX_ENTRIES) {
        n = OG_FLOORS_MAX_ENTRIES;
    }
    total = OG_FLOORS_HDR + n * OG_FLOORS_ENTRY + OG_STORE_HASH;
    buf = apr_pcalloc(p, total);
    memcpy(buf, "OGFL", 4);
    buf[4] = 1;
    for (hi = apr_hash_first(p, floors); hi && i < n; hi = apr_hash_next(hi), i++) {
        const void *key;
        apr_ssize_t klen;
        void *val;
        unsigned char *e = buf + OG_FLOORS_HDR + i * OG_FLOORS_ENTRY;
        const og_floor_t *f;

        apr_hash_this(hi, &key, &klen, &val);
        f = val;
        memcpy(e, key, OG_CERT_ID_LEN);
        og_put64(e + 20, f->newest_this_update);
        og_put64(e + 28, f->revoked_this_update);
        og_put64(e + 36, f->revoked_at);
    }
    og_put32(buf + 8, (apr_uint32_t)i);
    total = OG_FLOORS_HDR + i * OG_FLOORS_ENTRY + OG_STORE_HASH;
    if (!sha256(buf + total - OG_STORE_HASH, buf, total - OG_STORE_HASH)) {
        *perr = "cannot hash";
        return APR_EGENERAL;
    }
    /* root's own file, in the directory only root can write */
    return replace_file(perr, p, st->pfd, st->parent, st->floors_name,
                        buf, total, 0, 0, 0, 1);
}
