/* test_og_fetch.c: GET path encoding (RFC 5019), the errors that need no
 * responder (bad and https URLs, a refused connection on loopback, over IPv4
 * and an IPv6 literal), deadlines that hold to the millisecond against a
 * slow loopback responder, and, in network namespaces of their own, a name
 * that does not resolve and a resolver that never answers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "og_fetch.h"

static apr_pool_t *pool;

static void test_get_path_is_url_encoded_base64(void **state)
{
    static const unsigned char der[] = { 0xfb, 0xff, 0xfe };  /* "+//+" */
    const char *path;

    (void)state;
    path = og_fetch_get_path(pool, "/", der, sizeof(der));
    assert_string_equal(path, "/%2B%2F%2F%2B");
    path = og_fetch_get_path(pool, "/ocsp", der, 2);
    assert_string_equal(path, "/ocsp/%2B%2F8%3D");
}

static void test_get_path_refuses_long_requests(void **state)
{
    unsigned char der[200];

    (void)state;
    memset(der, 0xff, sizeof(der));
    assert_null(og_fetch_get_path(pool, "/", der, sizeof(der)));
}

static void test_fetch_rejects_https_and_garbage_urls(void **state)
{
    og_fetch_req_t req;
    og_fetch_res_t res;
    static const unsigned char der[] = { 0x30, 0x00 };

    (void)state;
    memset(&req, 0, sizeof(req));
    req.der = der;
    req.der_len = sizeof(der);
    req.timeout_s = 1;
    req.url = "https://127.0.0.1:1/";
    og_fetch_http(&res, pool, &req);
    assert_int_equal(res.err, OG_FETCH_BAD_URL);
    req.url = "not a url";
    og_fetch_http(&res, pool, &req);
    assert_int_equal(res.err, OG_FETCH_BAD_URL);
}

static void test_fetch_reports_refused_connection(void **state)
{
    og_fetch_req_t req;
    og_fetch_res_t res;
    static const unsigned char der[] = { 0x30, 0x00 };
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)state;
    /* a loopback port that was free a moment ago: nobody listens */
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    getsockname(fd, (struct sockaddr *)&a, &alen);
    close(fd);
    memset(&req, 0, sizeof(req));
    req.der = der;
    req.der_len = sizeof(der);
    req.timeout_s = 2;
    req.url = apr_psprintf(pool, "http://127.0.0.1:%d/", ntohs(a.sin_port));
    og_fetch_http(&res, pool, &req);
    assert_int_equal(res.err, OG_FETCH_REFUSED);
}

/* Only in a network namespace of its own (no interface up, so the lookup of
 * a name cannot leave the machine): `make unit` runs it with unshare -n. */
static void test_fetch_reports_dns_failure(void **state)
{
    og_fetch_req_t req;
    og_fetch_res_t res;
    static const unsigned char der[] = { 0x30, 0x00 };

    (void)state;
    if (!getenv("OG_ISOLATED_NET")) {
        skip();
    }
    memset(&req, 0, sizeof(req));
    req.der = der;
    req.der_len = sizeof(der);
    req.timeout_s = 2;
    req.url = "http://ocsp.example.invalid/";
    og_fetch_http(&res, pool, &req);
    assert_int_equal(res.err, OG_FETCH_DNS);
    assert_non_null(strstr(res.detail, "ocsp.example.invalid"));
}

/* A one-shot HTTP responder on loopback that answers after `delay_ms`. */
typedef struct slow_server_t {
    int fd;
    int port;
    int delay_ms;
} slow_server_t;

static void *slow_server_run(void *data)
{
    slow_server_t *sv = data;
    static const char reply[] = "HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\n"
                                "Content-Length: 5\r\n\r\n\x30\x03\x0a\x01\x03";
    char buf[4096];
    size_t got = 0;
    struct pollfd pfd;
    int c = accept(sv->fd, NULL, NULL);

    if (c < 0) {
        return NULL;
    }
    pfd.fd = c;
    pfd.events = POLLIN;
    while (got < sizeof(buf) - 1 && poll(&pfd, 1, 3000) == 1) {
        ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0) {
            break;
        }
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n")) {
            break;
        }
    }
    usleep((useconds_t)sv->delay_ms * 1000);
    if (write(c, reply, sizeof(reply) - 1) < 0) {
        /* the client gave up: the test says so */
    }
    close(c);
    return NULL;
}

static void slow_server_start(slow_server_t *sv, pthread_t *tid, int delay_ms)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sv->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(sv->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(sv->fd, 1), 0);
    getsockname(sv->fd, (struct sockaddr *)&a, &alen);
    sv->port = ntohs(a.sin_port);
    sv->delay_ms = delay_ms;
    assert_int_equal(pthread_create(tid, NULL, slow_server_run, sv), 0);
}

/* OpenSSL's HTTP client counts its deadline in whole seconds of time(NULL):
 * started 950 ms into a second, a 1 s budget used to end 50 ms later. */
static void test_one_second_deadline_holds_against_a_400ms_responder(void **state)
{
    static const unsigned char der[] = { 0x30, 0x00 };
    int round;

    (void)state;
    if (getenv("OG_ISOLATED_NET")) {
        skip(); /* loopback is down in a fresh namespace: nobody could connect */
    }
    for (round = 0; round < 3; round++) {
        og_fetch_req_t req;
        og_fetch_res_t res;
        slow_server_t sv;
        pthread_t tid;
        apr_time_t now = apr_time_now();

        slow_server_start(&sv, &tid, 400);
        /* start at 950 ms past a second boundary */
        usleep((useconds_t)((1950000 - now % 1000000) % 1000000));
        memset(&req, 0, sizeof(req));
        req.der = der;
        req.der_len = sizeof(der);
        req.timeout_s = 1;
        req.url = apr_psprintf(pool, "http://127.0.0.1:%d/?", sv.port);
        og_fetch_http(&res, pool, &req);
        pthread_join(tid, NULL);
        close(sv.fd);
        assert_int_equal(res.err, OG_FETCH_OK);
        assert_int_equal(res.len, 5);
        assert_true(res.elapsed >= apr_time_from_msec(400));
    }
}

static void test_deadline_ends_a_slower_responder_on_time(void **state)
{
    static const unsigned char der[] = { 0x30, 0x00 };
    og_fetch_req_t req;
    og_fetch_res_t res;
    slow_server_t sv;
    pthread_t tid;

    (void)state;
    if (getenv("OG_ISOLATED_NET")) {
        skip(); /* loopback is down in a fresh namespace: nobody could connect */
    }
    slow_server_start(&sv, &tid, 1500);
    memset(&req, 0, sizeof(req));
    req.der = der;
    req.der_len = sizeof(der);
    req.timeout_s = 5;
    req.deadline = apr_time_now() + apr_time_from_msec(700);
    req.url = apr_psprintf(pool, "http://127.0.0.1:%d/", sv.port);
    og_fetch_http(&res, pool, &req);
    assert_int_equal(res.err, OG_FETCH_TIMEOUT);
    assert_true(res.elapsed >= apr_time_from_msec(690));
    assert_true(res.elapsed < apr_time_from_msec(1000));
    pthread_join(tid, NULL);
    close(sv.fd);
}

static void test_ipv6_literal_is_connected_not_looked_up(void **state)
{
    og_fetch_req_t req;
    og_fetch_res_t res;
    static const unsigned char der[] = { 0x30, 0x00 };

    (void)state;
    if (getenv("OG_ISOLATED_NET")) {
        skip(); /* no ::1 in a fresh namespace */
    }
    memset(&req, 0, sizeof(req));
    req.der = der;
    req.der_len = sizeof(der);
    req.timeout_s = 2;
    req.url = "http://[::1]:1/";
    og_fetch_http(&res, pool, &req);
    assert_int_equal(res.err, OG_FETCH_REFUSED);
    assert_non_null(strstr(res.detail, "::1"));
}

/* Only where OG_BLACKHOLE_DNS is set: `make unit` runs this binary in network
 * and mount namespaces of their own, with lo up and /etc/resolv.conf bound
 * over one that names 127.0.0.1, where this test listens and never answers. */
static void test_silent_resolver_cannot_stretch_the_deadline(void **state)
{
    og_fetch_req_t req;
    og_fetch_res_t res;
    static const unsigned char der[] = { 0x30, 0x00 };
    struct sockaddr_in a;
    int fd;

    (void)state;
    if (!getenv("OG_BLACKHOLE_DNS")) {
        skip();
    }
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons(53);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    memset(&req, 0, sizeof(req));
    req.der = der;
    req.der_len = sizeof(der);
    req.timeout_s = 1;
    req.url = "http://ocsp.blackhole.test/";
    og_fetch_http(&res, pool, &req);
    close(fd);
    assert_int_equal(res.err, OG_FETCH_DNS);
    assert_non_null(strstr(res.detail, "no answer from the resolver"));
    assert_true(res.elapsed < apr_time_from_msec(1300));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_path_is_url_encoded_base64),
        cmocka_unit_test(test_get_path_refuses_long_requests),
        cmocka_unit_test(test_fetch_rejects_https_and_garbage_urls),
        cmocka_unit_test(test_fetch_reports_refused_connection),
        cmocka_unit_test(test_fetch_reports_dns_failure),
        cmocka_unit_test(test_one_second_deadline_holds_against_a_400ms_responder),
        cmocka_unit_test(test_deadline_ends_a_slower_responder_on_time),
        cmocka_unit_test(test_ipv6_literal_is_connected_not_looked_up),
        cmocka_unit_test(test_silent_resolver_cannot_stretch_the_deadline),
    };
    int rv;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rv = cmocka_run_group_tests_name("og_fetch", tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rv;
}
