/* test_og_fetch.c: GET path encoding (RFC 5019) and the errors that need no
 * responder: bad and https URLs, a refused connection on loopback. */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_path_is_url_encoded_base64),
        cmocka_unit_test(test_get_path_refuses_long_requests),
        cmocka_unit_test(test_fetch_rejects_https_and_garbage_urls),
        cmocka_unit_test(test_fetch_reports_refused_connection),
        cmocka_unit_test(test_fetch_reports_dns_failure),
    };
    int rv;

    apr_initialize();
    apr_pool_create(&pool, NULL);
    rv = cmocka_run_group_tests_name("og_fetch", tests, NULL, NULL);
    apr_pool_destroy(pool);
    apr_terminate();
    return rv;
}
