/* og_store.h: responses persisted across restarts, one file per certificate
 * in the OCSPGuardStore directory, written atomically. Core (APR and
 * OpenSSL only): the glue decides where, with which owner, and re-verifies
 * what it loads. */
#ifndef OG_STORE_H
#define OG_STORE_H

#include <apr_pools.h>

#include "og_cert.h"
#include "og_record.h"

#define OG_STORE_MAGIC   "OGST"
#define OG_STORE_VERSION 1
#define OG_STORE_SUFFIX  ".ocsp"

/* <dir>/<id hex>.ocsp */
const char *og_store_path(apr_pool_t *p, const char *dir, const unsigned char *id);

/* Write the record for id: temp file, fsync, rename, fsync of the directory.
 * The file is mode 0600. */
apr_status_t og_store_save(const char **perr, apr_pool_t *p, const char *dir,
                           const unsigned char *id, const og_record_t *rec);

/* Load the record for id. APR_ENOENT when there is none; APR_EINVAL with a
 * reason when the file is corrupt, truncated, foreign or for another id.
 * The DER is allocated from p. */
apr_status_t og_store_load(og_record_t *rec, const char **perr, apr_pool_t *p,
                           const char *dir, const unsigned char *id);

/* Parse a store file's bytes (exposed for tests). */
apr_status_t og_store_parse(og_record_t *rec, const char **perr, apr_pool_t *p,
                            const unsigned char *data, apr_size_t len,
                            const unsigned char *id);

#endif /* OG_STORE_H */
