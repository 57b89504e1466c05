"""Stapling core: from LoadModule to a stapled first handshake (issue 2).

Each case starts a real httpd (event MPM, several children) with mod_ssl and mod_ocsp_guard over
the session PKI, the OCSP front in front of a real `openssl ocsp`, and asserts on what real
clients receive and what the error log says.
"""
import os
import re
import time

import pytest

from ogtest.clients import curl_cert_status, gnutls_ocsp, s_client
from ogtest.pki import ec_leaves
from ogtest.util import wait_until


def first_tags(httpd, tag):
    return httpd.log_lines(tag)


def test_first_handshake_is_stapled_and_verifies(httpd_factory, pki, front):
    # setup: one vhost with the good RSA leaf; expectation: the very first
    # handshake carries a good, successful response; openssl and curl verify it
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'))
    assert front.count == 1
    r = s_client(httpd.https_port, 'good.localhost', pki.root_pem)
    assert r.stapled, r.raw
    assert r.response_status == 'successful'
    assert r.cert_status == 'good'
    rc, out = curl_cert_status(httpd.https_port, 'good.localhost', pki.root_pem)
    assert rc == 0, out
    # the handshakes themselves asked the responder nothing
    assert front.count == 1
    # a SHA-1 CertID request is short: RFC 5019 GET
    assert front.requests[0][0] == 'GET'
    assert httpd.log_lines('OG00015'), httpd.error_log()
    summary = httpd.log_lines('OG00020')
    assert summary and '1 stapled' in summary[0]


def test_gnutls_sees_the_staple(httpd_factory, pki, front):
    # setup: good leaf; expectation: gnutls-cli --ocsp succeeds without fetching
    # from the responder itself (the front sees only the prefetch)
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'))
    rc, out = gnutls_ocsp(httpd.https_port, 'good.localhost', pki.root_pem)
    assert rc == 0, out
    assert front.count == 1, out


def test_every_child_staples(httpd_factory, pki, front):
    # setup: event MPM with several children; expectation: 30 connections,
    # spread over the children, are all stapled
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'))
    assert len(httpd.children()) >= 2
    results = [s_client(httpd.https_port, 'good.localhost', pki.root_pem) for _ in range(30)]
    assert all(r.stapled and r.cert_status == 'good' for r in results)
    assert front.count == 1


def test_rsa_and_ecdsa_on_one_vhost(httpd_factory, pki, front):
    # setup: RSA and ECDSA certificates on the same vhost; expectation: both
    # are fetched at start and a client of each kind gets its own staple
    httpd = httpd_factory()
    httpd.serve(httpd.vhost(['good', 'good-ec'], 'good.localhost'))
    assert front.count == 2
    ec = s_client(httpd.https_port, 'good.localhost', pki.root_pem,
                  extra=('-tls1_2', '-sigalgs', 'ECDSA+SHA256'))
    rsa = s_client(httpd.https_port, 'good.localhost', pki.root_pem,
                   extra=('-tls1_2', '-sigalgs', 'RSA+SHA256:RSA-PSS+SHA256'))
    assert ec.stapled and ec.cert_status == 'good', ec.raw
    assert rsa.stapled and rsa.cert_status == 'good', rsa.raw
    assert 'good.localhost' in ec.raw


def test_revoked_is_stapled_and_logged_as_error(httpd_factory, pki, front):
    # setup: the revoked leaf; expectation: the revoked staple is served (it is
    # the truth) and an error-level line says to replace the certificate
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('revoked', 'revoked.localhost'))
    r = s_client(httpd.https_port, 'revoked.localhost', pki.root_pem)
    assert r.stapled and r.cert_status == 'revoked', r.raw
    lines = httpd.log_lines('OG00014')
    assert lines and ':error]' in lines[0] and 'REVOKED' in lines[0]


def test_no_url_leaf_runs_unstapled_with_one_info_line(httpd_factory, pki, front):
    # setup: a leaf without AIA OCSP URL; expectation: server runs, no staple,
    # one info line, no responder request, no warning or error from us
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('nourl', 'nourl.localhost'))
    r = s_client(httpd.https_port, 'nourl.localhost', pki.root_pem)
    assert r.verify_ok and not r.stapled, r.raw
    lines = httpd.log_lines('OG00018')
    assert len(lines) == 1 and ':info]' in lines[0]
    assert front.count == 0
    assert not re.search(r'\[ocsp_guard:(warn|error)', httpd.error_log())


def test_responder_down_at_start(httpd_factory, pki, front):
    # setup: the front refuses connections; expectation: httpd is up quickly
    # (well within the prefetch timeout), serves without staple, and a warning
    # names the responder URL and says what to check
    front.stop()
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'), 'OCSPGuardPrefetchTimeout 5\n')
    assert httpd.start_time_s < 5 + 3
    r = s_client(httpd.https_port, 'good.localhost', pki.root_pem)
    assert r.verify_ok and not r.stapled
    lines = httpd.log_lines('OG00010')
    assert lines and front.url in lines[0] and 'connection failed' in lines[0]
    assert 'firewall' in lines[0]


def test_hanging_responder_is_bounded_by_prefetch_timeout(httpd_factory, pki, front):
    # setup: the front accepts and never answers, prefetch timeout 3 s, responder timeout 10 s;
    # expectation: httpd is up within 3 s plus a margin, no staple, one warning that the prefetch
    # ran out with the exchange still waiting (not a responder failure: its own 10 s had not passed)
    front.mode = 'hang'
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'),
          'OCSPGuardPrefetchTimeout 3\nOCSPGuardResponderTimeout 10\n')
    assert httpd.start_time_s < 3 + 3, httpd.start_time_s
    r = s_client(httpd.https_port, 'good.localhost', pki.root_pem)
    assert not r.stapled
    lines = httpd.log_lines('OG00017', 'warn')
    assert len(lines) == 1 and '1 of them were asked and had no answer yet' in lines[0], lines
    assert not httpd.log_lines('OG00010', 'warn')


def test_trickling_responder_is_bounded_by_one_deadline(httpd_factory, pki, front):
    # setup: the front sends its body one byte a second, responder timeout 2 s;
    # expectation: the exchange is cut at the deadline although bytes keep coming
    front.mode = 'trickle'
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'), 'OCSPGuardResponderTimeout 2\n')
    assert httpd.start_time_s < 2 + 3, httpd.start_time_s
    lines = httpd.log_lines('OG00010')
    assert lines and 'timeout' in lines[0]


def test_two_sni_vhosts_sharing_a_certificate_make_one_request(httpd_factory, pki, front):
    # setup: a.localhost and b.localhost with the same certificate; expectation:
    # one responder request, both names stapled
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('shared', 'a.localhost') + httpd.vhost('shared', 'b.localhost'))
    assert front.count == 1
    for name in ('a.localhost', 'b.localhost'):
        r = s_client(httpd.https_port, name, pki.root_pem)
        assert r.stapled and r.cert_status == 'good', r.raw


def test_ocspguard_off_vhost_is_left_to_mod_ssl(httpd_factory, pki, front):
    # setup: OCSPGuard Off on the only vhost, mod_ssl stapling not enabled;
    # expectation: the module fetches nothing and no staple is sent
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost', extra='OCSPGuard Off\n'))
    r = s_client(httpd.https_port, 'good.localhost', pki.root_pem)
    assert not r.stapled
    assert front.count == 0
    assert httpd.log_lines('OG00048') and not httpd.log_lines('OG00020')
    assert not os.path.exists(os.path.join(httpd.root, 'ocsp_guard'))


def test_ocspguard_off_vhost_with_mod_ssl_stapling(httpd_factory, pki, front):
    # setup: OCSPGuard Off plus mod_ssl's own SSLUseStapling; expectation:
    # mod_ssl staples (it fetches on the handshake path), we stay out
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost', extra='OCSPGuard Off\nSSLUseStapling on\n'),
          'SSLStaplingCache shmcb:{}/run/stapling(128000)\n'.format(httpd.root))
    assert front.count == 0
    r = s_client(httpd.https_port, 'good.localhost', pki.root_pem)
    assert r.stapled
    assert front.count >= 1
    assert not httpd.log_lines('OG00015')


def test_bad_directive_value_refuses_to_start(httpd_factory, pki):
    # setup: OCSPGuardResponderTimeout with a word; expectation: configtest and
    # start fail, naming the directive, the value and what is accepted
    httpd = httpd_factory()
    httpd.write_site(httpd.vhost('good', 'good.localhost'), 'OCSPGuardResponderTimeout soon\n')
    rc, out = httpd.configtest()
    assert rc != 0
    assert "OCSPGuardResponderTimeout: 'soon' is not a number of seconds from 1 to 300" in out
    rc, out = httpd.start()
    assert rc != 0 and 'OCSPGuardResponderTimeout' in out


def test_bad_values_of_each_directive(httpd_factory, pki):
    # setup: one bad value per directive; expectation: each fails -t with its name
    cases = {
        'OCSPGuard maybe': 'OCSPGuard',
        'OCSPGuardCache nosuch:/x': "must be this machine's shared memory",
        'OCSPGuardCache redis:127.0.0.1:6379': "must be this machine's shared memory",
        'OCSPGuardCache memcache:127.0.0.1:11211': "must be this machine's shared memory",
        'OCSPGuardMaxValidity 0': 'is not a duration from 1s to 3650d',
        'OCSPGuardMaxValidity 3651d': 'is not a duration from 1s to 3650d',
        'OCSPGuardMaxValidity 10x': 'is not a duration from 1s to 3650d',
        'OCSPGuardPrefetchTimeout -1': 'OCSPGuardPrefetchTimeout',
        'OCSPGuardRenewWindow 150%': 'OCSPGuardRenewWindow',
        'OCSPGuardResponderOverride ftp://x/': 'is not an http:// URL',
        'OCSPGuardProxy nonsense': 'OCSPGuardProxy',
        'OCSPGuardEnforce loud': 'use warn or strict',
        'OCSPGuardFleetCache shmcb:/x': 'is not a network cache',
    }
    httpd = httpd_factory()
    for line, expected in cases.items():
        httpd.write_site(httpd.vhost('good', 'good.localhost'), line + '\n')
        rc, out = httpd.configtest()
        assert rc != 0 and expected in out, (line, out)


def test_responder_override_is_used(httpd_factory, pki, front):
    # setup: the no-URL leaf with OCSPGuardResponderOverride pointing at the
    # front; expectation: it is fetched and stapled
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('nourl', 'nourl.localhost',
                             extra=f'OCSPGuardResponderOverride {front.url}/\n'))
    assert front.count == 1
    r = s_client(httpd.https_port, 'nourl.localhost', pki.root_pem)
    assert r.stapled and r.cert_status == 'good', r.raw


def test_must_staple_leaf_is_stapled(httpd_factory, pki, front):
    # setup: Must-Staple leaf; expectation: stapled from the first handshake
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('muststaple', 'muststaple.localhost'))
    r = s_client(httpd.https_port, 'muststaple.localhost', pki.root_pem)
    assert r.stapled and r.cert_status == 'good'
    assert not httpd.log_lines('OG00016')


def test_must_staple_without_response_is_an_error(httpd_factory, pki, front):
    # setup: Must-Staple leaf, responder answers tryLater; expectation: error-level line
    front.mode = 'trylater'
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('muststaple', 'muststaple.localhost'))
    lines = httpd.log_lines('OG00016')
    assert lines and ':error]' in lines[0] and 'Must-Staple' in lines[0]
    r = s_client(httpd.https_port, 'muststaple.localhost', pki.root_pem)
    assert not r.stapled


def test_post_is_used_when_get_does_not_fit(httpd_factory, pki, front):
    # setup: a responder URL with a query string (no room for the GET encoding);
    # expectation: the request goes by POST, and the response is stapled
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost',
                             extra=f'OCSPGuardResponderOverride {front.url}/ocsp?tenant=1\n'))
    assert front.count == 1 and front.requests[0][0] == 'POST'
    assert s_client(httpd.https_port, 'good.localhost', pki.root_pem).stapled


def test_must_staple_without_url_is_an_error(httpd_factory, pki, front):
    # setup: a Must-Staple leaf without OCSP URL; expectation: an error-level line saying
    # clients will refuse and how to fix it; no responder request; the server runs
    leaf = pki.leaves.get('ms-nourl') or pki.add_leaf('ms-nourl', key_type='ec', dns=['msnourl.localhost'],
                                                       ocsp_url=None, must_staple=True)
    httpd = httpd_factory()
    httpd.serve(httpd.vhost(leaf, 'msnourl.localhost'))
    lines = httpd.log_lines('OG00036')
    assert len(lines) == 1 and ':error]' in lines[0] and 'OCSPGuardResponderOverride' in lines[0]
    assert front.count == 0
    assert not httpd.log_lines('OG00018')


HOSTILE_AT_START = ['trylater', 'internalerror', 'unauthorized', 'expired', 'future', 'wrongsigner',
                    'lookalike', 'otherca', 'othercert', 'garbage', 'http500', 'redirect', 'wrongtype',
                    'oversize']


@pytest.mark.parametrize('mode', HOSTILE_AT_START)
def test_hostile_responder_at_start_is_never_stapled(httpd_factory, pki, front, mode):
    # setup: the responder misbehaves in one way from the start; expectation: the first
    # handshake carries no staple at all (never an error response, never an unverifiable
    # one), and a warning names the responder URL
    front.mode = mode
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'))
    r = s_client(httpd.https_port, 'good.localhost', pki.root_pem)
    assert r.verify_ok and not r.stapled, r.raw
    lines = httpd.log_lines('OG00010') + httpd.log_lines('OG00011')
    assert lines and front.url in lines[0] and ':warn]' in lines[0]


def test_response_without_next_update_is_stapled_for_twelve_hours(httpd_factory, pki, front):
    # setup: the responder omits nextUpdate; expectation: stapled (valid 12 h after
    # thisUpdate), the status log line gives that nextUpdate
    front.mode = 'nonextupdate'
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'))
    r = s_client(httpd.https_port, 'good.localhost', pki.root_pem)
    assert r.stapled and r.cert_status == 'good' and not r.next_update, r.raw
    assert httpd.log_lines('OG00015')


def test_sub_second_budgets_hold_for_every_certificate(httpd_factory, pki, front):
    # setup: 40 certificates, a responder that answers each request after 400 ms, and
    # OCSPGuardResponderTimeout 1; OpenSSL's HTTP client counts its own deadline in whole seconds of
    # time(NULL), so an exchange started late in a second used to time out after a few ms.
    # expectation: every certificate is stapled at its first handshake, no timeout is logged
    names = ec_leaves(pki, 40)
    front.mode = 'slow'
    front.delay = 0.4
    httpd = httpd_factory()
    httpd.serve(''.join(httpd.vhost(name, f'{name}.localhost') for name in names),
                'OCSPGuardResponderTimeout 1\n')
    assert front.count == len(names)
    assert not httpd.log_lines('OG00010'), httpd.log_lines('OG00010')[:3]
    assert not httpd.log_lines('OG00017')
    unstapled = [name for name in names if not s_client(httpd.https_port, f'{name}.localhost',
                                                         pki.root_pem).stapled]
    assert not unstapled, unstapled


def test_300_certificates_are_fetched_many_at_once_and_all_stapled(httpd_factory, pki, front):
    # setup: 300 certificates, one responder that answers each request after 300 ms (counting how
    # many it answers at once); default OCSPGuardPrefetchTimeout (10 s).
    # expectation: more than 8 exchanges were in flight at once (0.1.0 had 8 threads: 300 x 0.3 s / 8
    # = 11 s, past the deadline), one request per certificate, all 300 stapled at the first
    # handshake, and no warning at all
    names = ec_leaves(pki, 300)
    front.mode = 'slow'
    front.delay = 0.3
    front.reset()
    httpd = httpd_factory()
    httpd.serve(''.join(httpd.vhost(name, f'{name}.localhost') for name in names))
    assert front.max_inflight > 8, front.max_inflight
    assert front.count == len(names)
    assert not httpd.log_lines('[ocsp_guard:', 'warn', 'error'), httpd.log_lines('[ocsp_guard:', 'warn', 'error')[:3]
    assert f'300 certificate(s), 300 stapled' in httpd.log_lines('OG00020')[0]
    unstapled = [name for name in names if not s_client(httpd.https_port, f'{name}.localhost',
                                                         pki.root_pem).stapled]
    assert not unstapled, unstapled


def test_prefetch_cut_short_says_so_once_and_asks_must_staple_first(httpd_factory, pki, front):
    # setup: 300 certificates plus a Must-Staple one configured last, a responder that answers after
    # 1 s, OCSPGuardPrefetchTimeout 2: at most two rounds of exchanges fit, not all 301.
    # expectation: one OG00017 warning for all those left, with their count and responder (no line
    # per certificate above debug); the Must-Staple certificate was asked first and is stapled at the
    # first handshake; the background refresh then staples every certificate without a restart
    names = ec_leaves(pki, 300)
    front.mode = 'slow'
    front.delay = 1.0
    httpd = httpd_factory()
    httpd.serve(''.join(httpd.vhost(name, f'{name}.localhost') for name in names)
                + httpd.vhost('muststaple', 'muststaple.localhost'),
                'OCSPGuardPrefetchTimeout 2\nOCSPGuardRetryDelay 1\n')
    lines = httpd.log_lines('OG00017', 'warn')
    assert len(lines) == 1, lines
    match = re.search(r'before (\d+) of 301 certificate\(s\) were asked \(responders: (\S+) \((\d+)\);', lines[0])
    assert match, lines[0]
    assert 0 < int(match.group(1)) < 301 and match.group(2) == front.url and match.group(3) == match.group(1)
    assert len(httpd.log_lines('OG00062', 'debug')) == int(match.group(1))
    assert len(httpd.log_lines('[ocsp_guard:', 'warn', 'error')) == 1, httpd.log_lines('[ocsp_guard:', 'warn', 'error')[:3]
    assert s_client(httpd.https_port, 'muststaple.localhost', pki.root_pem).stapled
    front.delay = 0.05

    def all_stapled():
        return all(s_client(httpd.https_port, f'{name}.localhost', pki.root_pem).stapled for name in names)
    assert wait_until(all_stapled, 60, 1.0)
