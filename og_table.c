/* og_table.c: the sequence-locked slot table of og_table.h. The layout is a
 * header (magic, slot count, slot size) and then slots of that size:
 * sequence (odd while written), length, checksum, id, record. Ordering uses
 * the compiler's __atomic builtins (acquire/release), the seqlock pattern:
 * writer: seq odd, release fence, bytes, seq even (release); reader: seq
 * (acquire), bytes, acquire fence, seq again. Core (APR only). */
#include <string.h>

#include "og_table.h"

#define OG_TABLE_MAGIC    0x4f475431u  /* "OGT1" */
#define OG_TABLE_TRIES    8            /* reads retried when a write overlaps */
#define OG_TABLE_WAIT     (1u << 20)   /* spins before a writer takes a slot over */
#define OG_TABLE_OVERFLOW 0xffffffffu  /* len of a slot whose record did not fit */

typedef struct og_slot_t {
    apr_uint32_t seq;
    apr_uint32_t len;                  /* 0: empty; OG_TABLE_OVERFLOW: too long */
    apr_uint64_t sum;
    unsigned char id[OG_TABLE_ID_LEN];
    unsigned char pad[OG_TABLE_SLOT_HDR - 16 - OG_TABLE_ID_LEN];
    unsigned char data[];              /* slot_size - OG_TABLE_SLOT_HDR bytes */
} og_slot_t;

struct og_table_t {
    apr_uint32_t magic;
    apr_uint32_t nslots;
    apr_uint32_t slot_size;
    unsigned char pad[OG_TABLE_HDR_SIZE - 12];
};

static og_slot_t *slot_at(const og_table_t *t, unsigned int i);
static apr_uint64_t checksum(const unsigned char *id, const unsigned char *p, apr_size_t len);
static apr_uint32_t write_begin(og_slot_t *sl);

typedef char og_table_slot_hdr_check[sizeof(og_slot_t) == OG_TABLE_SLOT_HDR ? 1 : -1];
typedef char og_table_hdr_size_check[sizeof(og_table_t) == OG_TABLE_HDR_SIZE ? 1 : -1];

static og_slot_t *slot_at(const og_table_t *t, unsigned int i)
{
    return (og_slot_t *)((char *)t + OG_TABLE_HDR_SIZE + (apr_size_t)i * t->slot_size);
}

/* FNV-1a, 64 bits, over the id, the length and the bytes: a torn copy that
 * slipped past the sequence check does not survive it. */
static apr_uint64_t checksum(const unsigned char *id, const unsigned char *p, apr_size_t len)
{
    apr_uint64_t h = 0xcbf29ce484222325ULL;
    apr_size_t i;

    for (i = 0; i < OG_TABLE_ID_LEN; i++) {
        h = (h ^ id[i]) * 0x100000001b3ULL;
    }
    for (i = 0; i < 8; i++) {
        h = (h ^ ((len >> (8 * i)) & 0xff)) * 0x100000001b3ULL;
    }
    for (i = 0; i < len; i++) {
        h = (h ^ p[i]) * 0x100000001b3ULL;
    }
    return h;
}

apr_size_t og_table_slot_size(apr_size_t longest)
{
    apr_size_t want;

    if (longest > OG_TABLE_SLOT_MAX_SIZE) {
        return OG_TABLE_SLOT_MAX_SIZE;
    }
    want = OG_TABLE_SLOT_HDR + longest + longest / 4;
    want = (want + 63) & ~(apr_size_t)63;
    return want < OG_TABLE_SLOT_MIN ? OG_TABLE_SLOT_MIN
           : want > OG_TABLE_SLOT_MAX_SIZE ? OG_TABLE_SLOT_MAX_SIZE : want;
}

apr_size_t og_table_size(unsigned int nslots, apr_size_t slot_size)
{
    return OG_TABLE_HDR_SIZE + (apr_size_t)nslots * slot_size;
}

og_table_t *og_table_init(void *mem, apr_size_t size, unsigned int nslots,
                          apr_size_t slot_size)
{
    og_table_t *t = mem;
    unsigned int i;

    if (!mem || slot_size % 64 || slot_size < OG_TABLE_SLOT_MIN
        || slot_size > OG_TABLE_SLOT_MAX_SIZE || size < og_table_size(nslots, slot_size)) {
        return NULL;
    }
    memset(t, 0, OG_TABLE_HDR_SIZE);
    t->magic = OG_TABLE_MAGIC;
    t->nslots = nslots;
    t->slot_size = (apr_uint32_t)slot_size;
    for (i = 0; i < nslots; i++) {
        og_slot_t *sl = slot_at(t, i);

        /* headers only: the records' pages are touched when first written */
        memset(sl, 0, OG_TABLE_SLOT_HDR);
    }
    return t;
}

unsigned int og_table_slots(const og_table_t *t)
{
    return t ? t->nslots : 0;
}

apr_size_t og_table_slot_max(const og_table_t *t)
{
    return t ? t->slot_size - OG_TABLE_SLOT_HDR : 0;
}

/* Make the sequence odd: this writer owns the slot until it is even again. */
static apr_uint32_t write_begin(og_slot_t *sl)
{
    apr_uint32_t seq = __atomic_load_n(&sl->seq, __ATOMIC_RELAXED);
    unsigned int spins = 0;

    for (;;) {
        if (!(seq & 1)) {
            if (__atomic_compare_exchange_n(&sl->seq, &seq, seq + 1, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED)) {
                seq++;
                break;
            }
            continue; /* seq was reloaded */
        }
        if (++spins >= OG_TABLE_WAIT) {
            break; /* a writer died half-way: the slot stays odd, ours now */
        }
        seq = __atomic_load_n(&sl->seq, __ATOMIC_RELAXED);
    }
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return seq;
}

int og_table_put(og_table_t *t, unsigned int slot, const unsigned char *id,
                 const unsigned char *rec, apr_size_t len)
{
    og_slot_t *sl;
    apr_uint32_t seq;
    int over;

    if (!t || slot >= t->nslots || (len && !rec)) {
        return -1;
    }
    over = len > og_table_slot_max(t);
    sl = slot_at(t, slot);
    seq = write_begin(sl);
    memcpy(sl->id, id, OG_TABLE_ID_LEN);
    if (len && !over) {
        memcpy(sl->data, rec, len);
    }
    sl->sum = over ? checksum(id, NULL, 0) : checksum(id, rec, len);
    sl->len = over ? OG_TABLE_OVERFLOW : (apr_uint32_t)len;
    __atomic_store_n(&sl->seq, seq + 1, __ATOMIC_RELEASE);
    return over;
}

int og_table_clear(og_table_t *t, unsigned int slot)
{
    static const unsigned char none[OG_TABLE_ID_LEN];

    return og_table_put(t, slot, none, NULL, 0);
}

int og_table_get(const og_table_t *t, unsigned int slot, const unsigned char *id,
                 unsigned char *buf, apr_size_t cap, apr_size_t *plen)
{
    og_slot_t *sl;
    int tries;

    if (!t || slot >= t->nslots) {
        return -1;
    }
    sl = slot_at(t, slot);
    for (tries = 0; tries < OG_TABLE_TRIES; tries++) {
        apr_uint32_t s1 = __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE), s2;
        apr_uint32_t len;
        apr_uint64_t sum;
        unsigned char sid[OG_TABLE_ID_LEN];
        int over = 0;

        if (s1 & 1) {
            continue; /* being written */
        }
        len = sl->len;
        sum = sl->sum;
        memcpy(sid, sl->id, sizeof(sid));
        if (len == OG_TABLE_OVERFLOW) {
            over = 1;
            len = 0;
        }
        else if (len == 0 || len > t->slot_size - OG_TABLE_SLOT_HDR || len > cap) {
            len = 0;
        }
        else {
            memcpy(buf, sl->data, len);
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        s2 = __atomic_load_n(&sl->seq, __ATOMIC_RELAXED);
        if (s1 != s2) {
            continue; /* written meanwhile: copy again */
        }
        if (memcmp(sid, id, OG_TABLE_ID_LEN) != 0 || (len == 0 && !over)
            || checksum(sid, buf, len) != sum) {
            return -1;
        }
        if (over) {
            return 1;
        }
        *plen = len;
        return 0;
    }
    return -1;
}
