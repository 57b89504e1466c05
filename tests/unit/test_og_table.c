/* test_og_table.c: the handshake's lock-free slot table. A record written is
 * read back exactly; an empty slot, another certificate's id, a slot caught
 * half-written (odd sequence) or bytes changed behind the checksum are never
 * returned; a writer that died half-way does not lock the slot for ever; and
 * under a writer in another process rewriting the slot as fast as it can, a
 * reader only ever gets one of the whole records, never a mix. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "og_table.h"

#define NSLOTS 4
#define SLOT   OG_TABLE_SLOT_MAX_SIZE
#define SLOT_MAX (SLOT - OG_TABLE_SLOT_HDR)

static unsigned char *mem;
static og_table_t *table;
static const unsigned char id_a[OG_TABLE_ID_LEN] = "certificate-a-000001";
static const unsigned char id_b[OG_TABLE_ID_LEN] = "certificate-b-000002";

static int setup(void **state)
{
    (void)state;
    mem = mmap(NULL, og_table_size(NSLOTS, SLOT), PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    memset(mem, 0x5a, og_table_size(NSLOTS, SLOT)); /* init must not rely on zeroed memory */
    table = og_table_init(mem, og_table_size(NSLOTS, SLOT), NSLOTS, SLOT);
    assert_non_null(table);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    munmap(mem, og_table_size(NSLOTS, SLOT));
    return 0;
}

static unsigned char *slot_bytes(unsigned int i)
{
    return mem + OG_TABLE_HDR_SIZE + (size_t)i * SLOT;
}

static void test_round_trip_and_refusals(void **state)
{
    unsigned char rec[1000], buf[SLOT_MAX], big[SLOT_MAX + 1];
    apr_size_t len = 0;

    (void)state;
    assert_int_equal(og_table_slots(table), NSLOTS);
    assert_null(og_table_init(mem, og_table_size(NSLOTS, SLOT) - 1, NSLOTS, SLOT));
    assert_null(og_table_init(mem, og_table_size(NSLOTS, SLOT), NSLOTS, 1000)); /* not a multiple of 64 */
    assert_int_equal(og_table_slot_max(table), SLOT_MAX);
    memset(rec, 'r', sizeof(rec));
    /* empty */
    assert_int_equal(og_table_get(table, 0, id_a, buf, sizeof(buf), &len), -1);
    assert_int_equal(og_table_put(table, 0, id_a, rec, sizeof(rec)), 0);
    assert_int_equal(og_table_get(table, 0, id_a, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, sizeof(rec));
    assert_memory_equal(buf, rec, sizeof(rec));
    /* the slot of another certificate, or out of range */
    assert_int_equal(og_table_get(table, 0, id_b, buf, sizeof(buf), &len), -1);
    assert_int_equal(og_table_get(table, NSLOTS, id_a, buf, sizeof(buf), &len), -1);
    assert_int_equal(og_table_put(table, NSLOTS, id_a, rec, sizeof(rec)), -1);
    /* a buffer too small is a miss, not a truncated copy */
    assert_int_equal(og_table_get(table, 0, id_a, buf, sizeof(rec) - 1, &len), -1);
    /* too long for a slot: the slot says so, for this id only */
    memset(big, 'b', sizeof(big));
    assert_int_equal(og_table_put(table, 0, id_a, big, sizeof(big)), 1);
    assert_int_equal(og_table_get(table, 0, id_a, buf, sizeof(buf), &len), 1);
    assert_int_equal(og_table_get(table, 0, id_b, buf, sizeof(buf), &len), -1);
    assert_int_equal(og_table_put(table, 0, id_a, rec, sizeof(rec)), 0);
    assert_int_equal(og_table_get(table, 0, id_a, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, sizeof(rec));
    /* the longest that fits */
    assert_int_equal(og_table_put(table, 1, id_b, big, SLOT_MAX), 0);
    assert_int_equal(og_table_get(table, 1, id_b, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, SLOT_MAX);
    /* cleared: gone */
    assert_int_equal(og_table_clear(table, 0), 0);
    assert_int_equal(og_table_get(table, 0, id_a, buf, sizeof(buf), &len), -1);
}

static void test_half_written_or_corrupt_is_never_read(void **state)
{
    unsigned char rec[200], buf[SLOT_MAX];
    apr_size_t len = 0;
    uint32_t seq;

    (void)state;
    memset(rec, 'x', sizeof(rec));
    assert_int_equal(og_table_put(table, 2, id_a, rec, sizeof(rec)), 0);
    /* a writer stopped half-way leaves the sequence odd */
    memcpy(&seq, slot_bytes(2), sizeof(seq));
    assert_int_equal(seq % 2, 0);
    seq++;
    memcpy(slot_bytes(2), &seq, sizeof(seq));
    assert_int_equal(og_table_get(table, 2, id_a, buf, sizeof(buf), &len), -1);
    seq++;
    memcpy(slot_bytes(2), &seq, sizeof(seq));
    assert_int_equal(og_table_get(table, 2, id_a, buf, sizeof(buf), &len), 0);
    /* one byte of the record changed behind the writer's back */
    slot_bytes(2)[OG_TABLE_SLOT_HDR + 100] ^= 0x01;
    assert_int_equal(og_table_get(table, 2, id_a, buf, sizeof(buf), &len), -1);
    slot_bytes(2)[OG_TABLE_SLOT_HDR + 100] ^= 0x01;
    assert_int_equal(og_table_get(table, 2, id_a, buf, sizeof(buf), &len), 0);
    /* a length beyond the slot is refused before any copy */
    slot_bytes(2)[4] = 0xff;
    slot_bytes(2)[5] = 0xff;
    assert_int_equal(og_table_get(table, 2, id_a, buf, sizeof(buf), &len), -1);
}

static void test_dead_writer_does_not_lock_the_slot(void **state)
{
    unsigned char rec[64], buf[SLOT_MAX];
    apr_size_t len = 0;
    uint32_t seq = 7; /* odd: someone began and never finished */

    (void)state;
    memset(rec, 'd', sizeof(rec));
    memcpy(slot_bytes(3), &seq, sizeof(seq));
    alarm(20);
    assert_int_equal(og_table_put(table, 3, id_b, rec, sizeof(rec)), 0);
    alarm(0);
    assert_int_equal(og_table_get(table, 3, id_b, buf, sizeof(buf), &len), 0);
    assert_memory_equal(buf, rec, sizeof(rec));
    memcpy(&seq, slot_bytes(3), sizeof(seq));
    assert_int_equal(seq % 2, 0);
}

/* Another process rewrites slot 0 with two records of different lengths as
 * fast as it can; every successful read here is exactly one of them. */
static void test_concurrent_writer_never_gives_a_torn_record(void **state)
{
    static unsigned char ra[600], rb[3000];
    unsigned char buf[SLOT_MAX];
    apr_size_t len;
    long got_a = 0, got_b = 0, misses = 0, i;
    volatile int *stop = (volatile int *)(mem + og_table_size(NSLOTS, SLOT) - SLOT / 2);
    pid_t pid;
    int status;

    (void)state;
    memset(ra, 'a', sizeof(ra));
    memset(rb, 'b', sizeof(rb));
    /* the last slot's far end is unused by the records below: the stop flag */
    *stop = 0;
    assert_int_equal(og_table_put(table, 0, id_a, ra, sizeof(ra)), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        for (i = 0; i < 50000000 && !*stop; i++) {
            og_table_put(table, 0, id_a, (i & 1) ? rb : ra, (i & 1) ? sizeof(rb) : sizeof(ra));
        }
        _exit(0);
    }
    for (i = 0; i < 300000; i++) {
        if (og_table_get(table, 0, id_a, buf, sizeof(buf), &len) != 0) {
            misses++;
            continue;
        }
        if (len == sizeof(ra) && memcmp(buf, ra, len) == 0) {
            got_a++;
        }
        else if (len == sizeof(rb) && memcmp(buf, rb, len) == 0) {
            got_b++;
        }
        else {
            *stop = 1;
            fail_msg("torn record of %zu bytes read", (size_t)len);
        }
    }
    *stop = 1;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    printf("# reads: %ld of A, %ld of B, %ld retried out\n", got_a, got_b, misses);
    assert_true(got_a + got_b > 0);
}

/* Slot sizes follow the responses (a quarter more, 64-byte steps, 256 to
 * 4096); small slots are packed and independent: writing one never
 * disturbs its neighbours. */
static void test_slot_size_follows_the_records_and_slots_are_packed(void **state)
{
    unsigned char rec[300], buf[4096];
    apr_size_t len, sz;
    og_table_t *t;
    unsigned int i;

    (void)state;
    assert_int_equal(og_table_slot_size(0), OG_TABLE_SLOT_MIN);
    assert_int_equal(og_table_slot_size(1000), 1344); /* 48 + 1000 + 250, rounded up to 64 */
    assert_int_equal(og_table_slot_size(1000) % 64, 0);
    assert_int_equal(og_table_slot_size(3500), OG_TABLE_SLOT_MAX_SIZE);
    assert_int_equal(og_table_slot_size(100000), OG_TABLE_SLOT_MAX_SIZE);
    sz = og_table_slot_size(sizeof(rec));
    assert_true(sz - OG_TABLE_SLOT_HDR >= sizeof(rec));
    assert_int_equal(og_table_size(NSLOTS, sz), OG_TABLE_HDR_SIZE + NSLOTS * sz);
    t = og_table_init(mem, og_table_size(NSLOTS, sz), NSLOTS, sz);
    assert_non_null(t);
    for (i = 0; i < NSLOTS; i++) {
        memset(rec, 'a' + (int)i, sizeof(rec));
        assert_int_equal(og_table_put(t, i, id_a, rec, sizeof(rec)), 0);
    }
    for (i = 0; i < NSLOTS; i++) {
        memset(rec, 'a' + (int)i, sizeof(rec));
        assert_int_equal(og_table_get(t, i, id_a, buf, sizeof(buf), &len), 0);
        assert_int_equal(len, sizeof(rec));
        assert_memory_equal(buf, rec, sizeof(rec));
    }
    /* longer than this table's slots: said, not truncated */
    assert_int_equal(og_table_put(t, 1, id_a, buf, sz), 1);
    assert_int_equal(og_table_get(t, 1, id_a, buf, sizeof(buf), &len), 1);
    assert_int_equal(og_table_get(t, 2, id_a, buf, sizeof(buf), &len), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_and_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_written_or_corrupt_is_never_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dead_writer_does_not_lock_the_slot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_writer_never_gives_a_torn_record, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_slot_size_follows_the_records_and_slots_are_packed,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
