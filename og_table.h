/* og_table.h: the handshake's read path. One fixed-size slot per certificate
 * in a shared memory block: written by one process at a time (the parent at
 * startup, then the refresher), read by every child with no lock and no
 * system call. A sequence lock: a reader keeps its copy only if the slot's
 * sequence number was even and unchanged around the copy, the certificate
 * id matches and the checksum over the copied bytes holds, so a torn or
 * half-written record is never handed to a handshake. Core (APR only); the
 * memory itself comes from the caller. */
#ifndef OG_TABLE_H
#define OG_TABLE_H

#include <apr.h>
#include <apr_pools.h>

#define OG_TABLE_HDR_SIZE  64     /* the table header, before slot 0 */
#define OG_TABLE_SLOT_HDR  48     /* sequence, length, checksum, id: before each record */
#define OG_TABLE_SLOT_MIN  256
#define OG_TABLE_SLOT_MAX_SIZE 4096
#define OG_TABLE_ID_LEN    20

typedef struct og_table_t og_table_t;

/* The slot size for records of at most `longest` bytes, with room to grow
 * (a quarter more), a multiple of 64 between OG_TABLE_SLOT_MIN and
 * OG_TABLE_SLOT_MAX_SIZE: slots are packed, so memory follows the
 * responses' real size. */
apr_size_t og_table_slot_size(apr_size_t longest);

/* Bytes of shared memory `nslots` slots of `slot_size` need (header included). */
apr_size_t og_table_size(unsigned int nslots, apr_size_t slot_size);

/* Lay out an empty table over `mem` (og_table_size() bytes, zeroed or not);
 * returns it, or NULL if `size` is too small or slot_size not one of
 * og_table_slot_size's. */
og_table_t *og_table_init(void *mem, apr_size_t size, unsigned int nslots,
                          apr_size_t slot_size);

unsigned int og_table_slots(const og_table_t *t);

/* The longest record one slot holds (slot size less its header). */
apr_size_t og_table_slot_max(const og_table_t *t);

/* Write the record of `id` into `slot`. 0 on success; 1 when the record is
 * longer than og_table_slot_max: the slot then says so (og_table_get returns
 * 1: the caller keeps such records elsewhere); -1 for a slot out of range.
 * Writers must not overlap
 * on one slot (one refresher); a second writer waits for the first, briefly,
 * then takes the slot over (a writer that died half-way). */
int og_table_put(og_table_t *t, unsigned int slot, const unsigned char *id,
                 const unsigned char *rec, apr_size_t len);

/* Empty a slot (a response that must not be stapled any more). */
int og_table_clear(og_table_t *t, unsigned int slot);

/* Copy the record of `id` out of `slot` into buf (cap bytes). 0 with *plen
 * set; 1 when the slot says the record was too long for it; -1 when the slot is empty, holds another id, changed under the copy
 * more than a few times in a row, or fails its checksum. */
int og_table_get(const og_table_t *t, unsigned int slot, const unsigned char *id,
                 unsigned char *buf, apr_size_t cap, apr_size_t *plen);

#endif /* OG_TABLE_H */
