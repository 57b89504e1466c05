/*
 * hsclient: a TLS full-handshake rate client for the mod_ocsp_guard benchmark (OpenSSL 3).
 *
 * usage: hsclient host port servername cafile seconds [status|nostatus] [max_handshakes]
 *
 * Repeatedly: connect to host:port (host must be a numeric 127.x.x.x address: no name lookups, loopback
 * only), do one full TLS handshake (fresh SSL object, no session cache, no resumption, OpenSSL's default
 * protocol choice, i.e. TLS 1.3 against httpd here) with SNI = servername, verify the chain against cafile
 * and the name against servername, SSL_shutdown, close.  With `status` the client asks for a stapled OCSP
 * response (status_request) and a status callback notes whether a successful OCSPResponse arrived; the
 * handshake is counted as stapled then.  The loop ends after `seconds` or after `max_handshakes` attempts
 * (successful + failed, default 200000), whichever comes first; each socket operation is bounded by a
 * 10 s timeout.
 *
 * Output, one line on stdout:
 *   handshakes=N seconds=S rate=R stapled=K failures=F
 * N counts successful (verified) handshakes, F failed attempts (connect, handshake or verification),
 * S the wall time of the loop, R = N / S.  The first few failure reasons go to stderr.
 * Exit status: 0 if at least one handshake succeeded, 1 if none did, 2 on usage or setup errors.
 *
 * build: cc -O2 -Wall -Wextra -Werror -o hsclient hsclient.c -lssl -lcrypto
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define DEFAULT_MAX_HANDSHAKES 200000L
#define IO_TIMEOUT_S 10
#define MAX_SECONDS 3600.0
#define MAX_REPORTED_FAILURES 3

static int g_got_status; /* set by the status callback for the handshake in progress (single-threaded) */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s host port servername cafile seconds [status|nostatus] [max_handshakes]\n"
                    "  host: a numeric loopback IPv4 address (127.x.x.x)\n", argv0);
    exit(2);
}

/* Called once the server's certificate flight is in; records whether a successful OCSPResponse came. */
static int status_cb(SSL *ssl, void *arg)
{
    const unsigned char *der = NULL;
    long len = SSL_get_tlsext_status_ocsp_resp(ssl, &der);
    (void)arg;
    if (der != NULL && len > 0) {
        const unsigned char *p = der;
        OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, len);
        if (resp != NULL) {
            if (OCSP_response_status(resp) == OCSP_RESPONSE_STATUS_SUCCESSFUL)
                g_got_status = 1;
            OCSP_RESPONSE_free(resp);
        }
    }
    return 1; /* never fail the handshake for a missing staple: it is counted, not enforced */
}

static int connect_loopback(const struct sockaddr_in *addr)
{
    struct timeval tv = { IO_TIMEOUT_S, 0 };
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* On Linux SO_SNDTIMEO also bounds connect(). */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0
        || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0
        || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0
        || connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static void report_failure(long *reported, const char *what)
{
    unsigned long e;
    char buf[256];
    if (*reported >= MAX_REPORTED_FAILURES) {
        ERR_clear_error();
        return;
    }
    (*reported)++;
    e = ERR_get_error();
    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        fprintf(stderr, "hsclient: %s: %s\n", what, buf);
    } else {
        fprintf(stderr, "hsclient: %s: %s\n", what, errno ? strerror(errno) : "failed");
    }
    ERR_clear_error();
}

int main(int argc, char **argv)
{
    struct sockaddr_in addr;
    const char *servername, *cafile;
    char *end;
    long port, max_handshakes = DEFAULT_MAX_HANDSHAKES;
    double seconds, start, elapsed;
    int want_status = 1;
    long handshakes = 0, stapled = 0, failures = 0, reported = 0;
    SSL_CTX *ctx;

    if (argc < 6 || argc > 8)
        usage(argv[0]);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1 || (ntohl(addr.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "hsclient: host must be a numeric loopback address (127.x.x.x), not '%s'\n", argv[1]);
        return 2;
    }
    errno = 0;
    port = strtol(argv[2], &end, 10);
    if (errno || *end || port < 1 || port > 65535)
        usage(argv[0]);
    addr.sin_port = htons((unsigned short)port);
    servername = argv[3];
    cafile = argv[4];
    errno = 0;
    seconds = strtod(argv[5], &end);
    if (errno || *end || !(seconds > 0.0) || seconds > MAX_SECONDS)
        usage(argv[0]);
    if (argc >= 7) {
        if (strcmp(argv[6], "status") == 0)
            want_status = 1;
        else if (strcmp(argv[6], "nostatus") == 0)
            want_status = 0;
        else
            usage(argv[0]);
    }
    if (argc >= 8) {
        errno = 0;
        max_handshakes = strtol(argv[7], &end, 10);
        if (errno || *end || max_handshakes < 1)
            usage(argv[0]);
    }

    signal(SIGPIPE, SIG_IGN);
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        ERR_print_errors_fp(stderr);
        return 2;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
        fprintf(stderr, "hsclient: cannot load CA file %s\n", cafile);
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return 2;
    }
    if (want_status && SSL_CTX_set_tlsext_status_cb(ctx, status_cb) != 1) {
        fprintf(stderr, "hsclient: cannot set the status callback\n");
        SSL_CTX_free(ctx);
        return 2;
    }

    start = now_s();
    while (handshakes + failures < max_handshakes && now_s() - start < seconds) {
        SSL *ssl;
        int fd = connect_loopback(&addr);
        if (fd < 0) {
            failures++;
            report_failure(&reported, "connect");
            continue;
        }
        ssl = SSL_new(ctx);
        if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 || SSL_set_tlsext_host_name(ssl, servername) != 1
            || SSL_set1_host(ssl, servername) != 1
            || (want_status && SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp) != 1)) {
            failures++;
            report_failure(&reported, "SSL setup");
            SSL_free(ssl);
            close(fd);
            continue;
        }
        g_got_status = 0;
        errno = 0;
        if (SSL_connect(ssl) == 1 && SSL_get_verify_result(ssl) == X509_V_OK) {
            handshakes++;
            if (want_status && g_got_status)
                stapled++;
            SSL_shutdown(ssl); /* send close_notify; do not wait for the server's */
        } else {
            long v = SSL_get_verify_result(ssl);
            failures++;
            if (v != X509_V_OK && reported < MAX_REPORTED_FAILURES) {
                reported++;
                fprintf(stderr, "hsclient: verification failed: %s\n", X509_verify_cert_error_string(v));
                ERR_clear_error();
            } else {
                report_failure(&reported, "handshake");
            }
        }
        SSL_free(ssl);
        close(fd);
    }
    elapsed = now_s() - start;
    SSL_CTX_free(ctx);

    printf("handshakes=%ld seconds=%.3f rate=%.1f stapled=%ld failures=%ld\n", handshakes, elapsed,
           elapsed > 0 ? (double)handshakes / elapsed : 0.0, stapled, failures);
    return handshakes > 0 ? 0 : 1;
}
