/* og_store.h: responses persisted across restarts, one file per certificate
 * in the OCSPGuardStore directory, written atomically. The directory belongs
 * to the server's User, so for root it is hostile ground: every operation is
 * relative to a directory descriptor checked once at open, files are opened
 * with O_NOFOLLOW|O_NONBLOCK and checked with fstat before a byte is read,
 * and temp files are created O_EXCL under unpredictable names.
 * Core (APR, OpenSSL and POSIX only): the glue decides where, which owner,
 * who writes, and re-verifies what it loads. */
#ifndef OG_STORE_H
#define OG_STORE_H

#include <errno.h>
#include <sys/types.h>
#include <apr_pools.h>
#include <apr_hash.h>

#include "og_admit.h"
#include "og_cert.h"
#include "og_record.h"

#define OG_STORE_MAGIC   "OGST"
#define OG_STORE_VERSION 2
#define OG_STORE_SUFFIX  ".ocsp"

typedef struct og_store_t og_store_t;

/* og_store_load's answer for a name that is not a regular file of the User's */
#define OG_STORE_UNSAFE APR_FROM_OS_ERROR(EPERM)

/* Open the store directory `dir` (absolute) for the server's User uid/gid.
 * Refused, with the reason in *perr: a symlink, not a directory, writable by
 * others than its owner, owned by neither the User nor this process, or (when
 * this process is root) a parent directory the User could write to. With
 * `prepare`, a missing directory is created (0700) and, as root, one it owns
 * is handed to the User through its descriptor; without (apachectl -t), a
 * missing one is APR_ENOENT and nothing changes. The descriptor closes with
 * p; a child forked later keeps using it. */
apr_status_t og_store_open(og_store_t **pst, const char **perr, apr_pool_t *p,
                           const char *dir, uid_t uid, gid_t gid, int prepare);

const char *og_store_dir(const og_store_t *st);

/* <dir>/<id hex>.ocsp, for messages */
const char *og_store_path(const og_store_t *st, apr_pool_t *p, const unsigned char *id);

/* Write the record and floor for id: an O_EXCL temp file with a random name,
 * fsync, fchmod 0600 (and fchown to the User when root), renameat over
 * "<id>.ocsp", fsync of the directory. */
apr_status_t og_store_save(const char **perr, apr_pool_t *p, og_store_t *st,
                           const unsigned char *id, const og_record_t *rec,
                           const og_floor_t *floor);

/* og_store_save without its fsyncs, touching nothing og_store_batch sets, so
 * that any thread may call it while another saves or batches: for making a
 * response visible at once (to a next generation of the server); a later
 * og_store_save makes it durable. */
apr_status_t og_store_save_unsynced(const char **perr, apr_pool_t *p, const og_store_t *st,
                                    const unsigned char *id, const og_record_t *rec,
                                    const og_floor_t *floor);

/* Many saves in a row (the startup writer, a refresher tick): with on, the
 * saves that follow skip their two fsyncs; with off, one syncfs of the
 * store's file system makes them all durable at once (only if any was
 * written). A file torn by a crash meanwhile fails its checksum at load and
 * is fetched again: the store holds public, re-fetchable data. */
void og_store_batch(og_store_t *st, int on);

/* Load the record and floor for id. APR_ENOENT when there is none;
 * OG_STORE_UNSAFE when the name is not a regular file of the User's (a symlink, a
 * FIFO, a device, a directory, another owner) or is too large: never opened
 * for reading, or closed before a byte is read; APR_EINVAL with a reason when
 * the file is corrupt, truncated, foreign or for another id. The DER is
 * allocated from p. */
apr_status_t og_store_load(og_record_t *rec, og_floor_t *floor, const char **perr,
                           apr_pool_t *p, og_store_t *st, const unsigned char *id);

/* Parse a store file's bytes (versions 1 and 2; exposed for tests and the
 * fuzzer). Version 1 files have no floor: it is taken from the record. */
apr_status_t og_store_parse(og_record_t *rec, og_floor_t *floor, const char **perr,
                            apr_pool_t *p, const unsigned char *data, apr_size_t len,
                            const unsigned char *id);

/* Encode a version 2 file into buf (OG_STORE_MAX bytes); returns the length,
 * 0 when the record does not fit (exposed for tests and the fuzzer). */
apr_size_t og_store_encode(unsigned char *buf, const unsigned char *id,
                           const og_record_t *rec, const og_floor_t *floor);

/* The floors file "<dir>.floors", beside the store in its parent directory,
 * which only root can write (og_store_open checked it): what every
 * certificate's newest thisUpdate and revocation were when root last looked.
 * The User cannot roll it back, so a store file replaced by an older one is
 * caught after a full restart too. Kept only when this process is root and
 * the User is not (otherwise APR_ENOTIMPL). The hash maps 20-byte ids to
 * og_floor_t *, allocated from the hash's pool. */
apr_status_t og_store_floors_load(og_store_t *st, apr_hash_t *floors, const char **perr,
                                  apr_pool_t *p);
apr_status_t og_store_floors_save(og_store_t *st, apr_hash_t *floors, const char **perr,
                                  apr_pool_t *p);
const char *og_store_floors_path(const og_store_t *st, apr_pool_t *p);

/* Parse a floors file's bytes into the hash (merging: the newest per field);
 * exposed for tests and the fuzzer. */
apr_status_t og_store_floors_parse(apr_hash_t *floors, const char **perr,
                                   const unsigned char *data, apr_size_t len);

#define OG_FLOORS_MAX_ENTRIES 1000000

#define OG_STORE_HDR  60
#define OG_STORE_HASH 32
#define OG_STORE_MAX  (OG_STORE_HDR + OG_RECORD_MAX + OG_STORE_HASH)

#endif /* OG_STORE_H */
