/* og_store.c: the on-disk record. Layout (version 1):
 *    0  "OGST"               4  u8 version, 3 bytes zero
 *    8  certificate id (20 bytes, SHA-1 of the certificate DER)
 *   28  u32 big-endian length L of the cache record (og_record.c layout)
 *   32  the cache record (L bytes)
 * 32+L  SHA-256 of bytes 0 .. 32+L
 * Written to "<id>.ocsp.tmp.<pid>", fsync'ed, renamed over "<id>.ocsp".
 * A file that fails any check is reported, never trusted.
 * Core file: APR and OpenSSL only. */
#include <string.h>

#include <apr_file_io.h>
#include <apr_strings.h>
#include <openssl/evp.h>
#include <unistd.h>
#include <fcntl.h>

#include "og_store.h"

#define OG_STORE_HDR  32
#define OG_STORE_HASH 32
#define OG_STORE_MAX  (OG_STORE_HDR + OG_RECORD_MAX + OG_STORE_HASH)

static int sha256(unsigned char *out, const unsigned char *d, apr_size_t len);

static int sha256(unsigned char *out, const unsigned char *d, apr_size_t len)
{
    unsigned int n = 0;

    return EVP_Digest(d, len, out, &n, EVP_sha256(), NULL) == 1 && n == OG_STORE_HASH;
}

const char *og_store_path(apr_pool_t *p, const char *dir, const unsigned char *id)
{
    return apr_pstrcat(p, dir, "/", og_hex(p, id, OG_CERT_ID_LEN), OG_STORE_SUFFIX, NULL);
}

apr_status_t og_store_save(const char **perr, apr_pool_t *p, const char *dir,
                           const unsigned char *id, const og_record_t *rec)
{
    unsigned char *buf = apr_pcalloc(p, OG_STORE_MAX);
    apr_size_t rlen, total;
    const char *path = og_store_path(p, dir, id);
    const char *tmp = apr_psprintf(p, "%s.tmp.%ld", path, (long)getpid());
    apr_file_t *f = NULL;
    apr_status_t rv;
    int dfd;

    *perr = NULL;
    rlen = og_record_encode(buf + OG_STORE_HDR, OG_RECORD_MAX, rec);
    if (!rlen) {
        *perr = "response too large for the store";
        return APR_EINVAL;
    }
    memcpy(buf, OG_STORE_MAGIC, 4);
    buf[4] = OG_STORE_VERSION;
    memcpy(buf + 8, id, OG_CERT_ID_LEN);
    buf[28] = (unsigned char)(rlen >> 24);
    buf[29] = (unsigned char)(rlen >> 16);
    buf[30] = (unsigned char)(rlen >> 8);
    buf[31] = (unsigned char)rlen;
    if (!sha256(buf + OG_STORE_HDR + rlen, buf, OG_STORE_HDR + rlen)) {
        *perr = "cannot hash";
        return APR_EGENERAL;
    }
    total = OG_STORE_HDR + rlen + OG_STORE_HASH;

    rv = apr_file_open(&f, tmp, APR_FOPEN_WRITE | APR_FOPEN_CREATE | APR_FOPEN_TRUNCATE
                       | APR_FOPEN_BINARY, APR_FPROT_UREAD | APR_FPROT_UWRITE, p);
    if (rv != APR_SUCCESS) {
        *perr = apr_psprintf(p, "cannot create %s", tmp);
        return rv;
    }
    if ((rv = apr_file_write_full(f, buf, total, NULL)) != APR_SUCCESS
        || (rv = apr_file_sync(f)) != APR_SUCCESS) {
        *perr = apr_psprintf(p, "cannot write %s", tmp);
        apr_file_close(f);
        apr_file_remove(tmp, p);
        return rv;
    }
    if ((rv = apr_file_close(f)) != APR_SUCCESS
        || (rv = apr_file_rename(tmp, path, p)) != APR_SUCCESS) {
        *perr = apr_psprintf(p, "cannot rename %s to %s", tmp, path);
        apr_file_remove(tmp, p);
        return rv;
    }
    /* make the rename itself durable */
    if ((dfd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return APR_SUCCESS;
}

apr_status_t og_store_parse(og_record_t *rec, const char **perr, apr_pool_t *p,
                            const unsigned char *data, apr_size_t len,
                            const unsigned char *id)
{
    unsigned char hash[OG_STORE_HASH];
    apr_size_t rlen;
    og_record_t r;

    *perr = NULL;
    if (len < OG_STORE_HDR + OG_STORE_HASH || memcmp(data, OG_STORE_MAGIC, 4) != 0) {
        *perr = "not a mod_ocsp_guard store file";
        return APR_EINVAL;
    }
    if (data[4] != OG_STORE_VERSION) {
        *perr = apr_psprintf(p, "store format version %d, this module reads %d",
                             data[4], OG_STORE_VERSION);
        return APR_EINVAL;
    }
    rlen = ((apr_size_t)data[28] << 24) | ((apr_size_t)data[29] << 16)
           | ((apr_size_t)data[30] << 8) | data[31];
    if (rlen > OG_RECORD_MAX || len != OG_STORE_HDR + rlen + OG_STORE_HASH) {
        *perr = "truncated or padded";
        return APR_EINVAL;
    }
    if (!sha256(hash, data, OG_STORE_HDR + rlen)
        || memcmp(hash, data + OG_STORE_HDR + rlen, OG_STORE_HASH) != 0) {
        *perr = "checksum mismatch (corrupt)";
        return APR_EINVAL;
    }
    if (memcmp(data + 8, id, OG_CERT_ID_LEN) != 0) {
        *perr = "written for another certificate";
        return APR_EINVAL;
    }
    if (og_record_decode(&r, data + OG_STORE_HDR, rlen) != 0) {
        *perr = "record unreadable";
        return APR_EINVAL;
    }
    r.der = apr_pmemdup(p, r.der, r.der_len);
    *rec = r;
    return APR_SUCCESS;
}

apr_status_t og_store_load(og_record_t *rec, const char **perr, apr_pool_t *p,
                           const char *dir, const unsigned char *id)
{
    const char *path = og_store_path(p, dir, id);
    apr_file_t *f = NULL;
    unsigned char *buf = apr_palloc(p, OG_STORE_MAX + 1);
    apr_size_t len = OG_STORE_MAX + 1;
    apr_status_t rv;

    *perr = NULL;
    rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, p);
    if (APR_STATUS_IS_ENOENT(rv)) {
        return APR_ENOENT;
    }
    if (rv != APR_SUCCESS) {
        *perr = apr_psprintf(p, "cannot open %s", path);
        return rv;
    }
    rv = apr_file_read_full(f, buf, len, &len);
    apr_file_close(f);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EOF(rv)) {
        *perr = apr_psprintf(p, "cannot read %s", path);
        return rv;
    }
    if (len > OG_STORE_MAX) {
        *perr = "file too large";
        return APR_EINVAL;
    }
    return og_store_parse(rec, perr, p, buf, len, id);
}
