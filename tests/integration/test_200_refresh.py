"""Never lose a good staple (issue 3): background refresh, persistence, restarts, responder
trouble, proxy, status page.

Time is driven with short-lived responses from the front ('short': valid for short_seconds;
'ok' with validity_minutes=1) and small timing knobs (OCSPGuardRetryDelay 1, a large
OCSPGuardRenewWindow), never by sleeping for hours. Every wait is polled and bounded.
"""
import json
import os
import re
import time

import pytest

from ogtest.clients import staple
from ogtest.proxy import CountingProxy
from ogtest.util import wait_until

FAST = 'OCSPGuardRetryDelay 1\n'




def test_renewal_inside_window_serves_new_this_update(httpd_factory, pki, front):
    # setup: responses valid 12 s, renew window 50%; expectation: the refresher renews
    # after ~6 s, before expiry, and a client then sees a newer thisUpdate; never unstapled
    front.mode = 'short'
    front.short_seconds = 12
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'), FAST + 'OCSPGuardRenewWindow 50%\n')
    first = staple(httpd, pki)
    assert first.stapled and first.cert_status == 'good'
    seen = []

    def renewed():
        r = staple(httpd, pki)
        seen.append(r)
        return r.stapled and r.this_update != first.this_update

    assert wait_until(renewed, 20, 0.5)
    assert all(r.stapled for r in seen), 'a handshake went unstapled during renewal'
    assert 2 <= front.count <= 3
    assert len(httpd.log_lines('OG00015')) >= 2


def test_outage_during_validity_keeps_stapling_without_request_storm(httpd_factory, pki, front):
    # setup: 60 s responses, renew after 3 s; then HTTP 500 for every request; expectation:
    # the old response keeps being stapled, retries back off (few requests), and the failure
    # is logged at warn level once, not once per retry
    front.validity_minutes = 1
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'), FAST + 'OCSPGuardRenewWindow 95%\n')
    first = staple(httpd, pki)
    started = time.monotonic()
    front.mode = 'http500'
    assert front.wait_for_count(3, 20)
    end = time.monotonic() + 8
    while time.monotonic() < end:
        r = staple(httpd, pki)
        assert r.stapled and r.this_update == first.this_update
        time.sleep(1)
    # backoff 1, 2, 4, 8 s... from ~3 s after start: a handful of requests in ~15 s, not dozens
    print(f'outage: {front.count} responder requests in {time.monotonic() - started:.1f} s')
    assert front.count <= 7, front.count
    assert len(httpd.log_lines('OG00010', 'warn', 'error')) == 1, httpd.log_lines('OG00010')
    assert 'HTTP error status' in httpd.log_lines('OG00010', 'warn', 'error')[0]
    assert 'stays stapled' in httpd.log_lines('OG00010', 'warn', 'error')[0]


def test_outage_past_next_update_then_recovery(httpd_factory, pki, front):
    # setup: 8 s responses, then the responder fails; expectation: at nextUpdate the staple
    # stops (never an expired one) with an error line; when the responder is back, stapling
    # resumes without a restart
    front.mode = 'short'
    front.short_seconds = 8
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'), FAST + 'OCSPGuardRenewWindow 50%\n')
    assert staple(httpd, pki).stapled
    front.mode = 'trylater'
    assert httpd.wait_for_log(r'OG00029', timeout=20)
    assert ':error]' in httpd.log_lines('OG00029')[0]
    r = staple(httpd, pki)
    assert not r.stapled, r.raw
    front.mode = 'short'
    front.short_seconds = 60
    assert wait_until(lambda: staple(httpd, pki).stapled, 40, 0.5)
    assert 'recovered after' in httpd.log_lines('OG00015')[-1]


@pytest.mark.parametrize('how', ['graceful', 'stop-start'])
def test_restart_with_responder_down_makes_no_request_and_staples(httpd_factory, pki, front, how):
    # setup: a stapled server; the responder then fails (HTTP 500, counted); a graceful or a
    # full restart; expectation: zero responder requests, first handshake stapled from the store
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'), FAST)
    assert front.count == 1
    first = staple(httpd, pki)
    front.mode = 'http500'
    if how == 'graceful':
        rc, out = httpd.graceful()
    else:
        httpd.stop()
        rc, out = httpd.start()
    assert rc == 0, out
    r = staple(httpd, pki)
    assert r.stapled and r.cert_status == 'good' and r.this_update == first.this_update
    print(f'{how}: {front.count - 1} responder requests after the restart')
    assert front.count == 1
    assert '1 from the store' in httpd.log_lines('OG00020')[-1]


def test_graceful_restart_during_a_renewal_asks_once(httpd_factory, pki, front):
    # setup: 10 s responses, renewed at 5 s; the responder takes 0.3 s to answer; a graceful
    # restart the moment the renewal's request arrives (the old generation's exchange is in
    # flight, the new one loads the previous response from the store); expectation: the new
    # generation takes the old one's answer from the store (OG00082) instead of asking again:
    # one request per renewal, and every handshake stapled, with the renewed response in the end
    front.mode = 'short'
    front.short_seconds = 10
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'), FAST + 'OCSPGuardRenewWindow 50%\n')
    first = staple(httpd, pki)
    assert first.stapled and front.count == 1
    front.answer_delay = 0.3
    assert front.wait_for_count(2, 15), 'no renewal'
    rc, out = httpd.graceful()
    assert rc == 0, out
    seen = []

    def renewed():
        r = staple(httpd, pki)
        seen.append(r)
        return r.stapled and r.this_update != first.this_update

    assert wait_until(renewed, 10, 0.3)
    assert all(r.stapled for r in seen), 'a handshake went unstapled across the restart'
    assert httpd.wait_for_log(r'OG00082', timeout=5), httpd.log_lines('OG00015')
    print(f'requests: {front.count}; OG00082: {httpd.log_lines("OG00082")}')
    assert front.count == 2, [r[1] for r in front.requests]


def test_restart_with_responder_refusing(httpd_factory, pki, front):
    # setup: stapled server, then the responder is down (connections refused), full restart;
    # expectation: up at once, first handshake stapled from the store
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'), FAST)
    httpd.stop()
    front.stop()
    rc, out = httpd.start()
    assert rc == 0, out
    assert staple(httpd, pki).stapled
    assert not httpd.log_lines('OG00010', 'warn', 'error')


def test_store_is_private_and_owned_by_the_user(httpd_factory, pki, front):
    # expectation: the store directory is 0700 and belongs to www-data; one file per certificate
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'))
    st = os.stat(httpd.store_dir)
    assert st.st_mode & 0o777 == 0o700
    import pwd
    assert pwd.getpwuid(st.st_uid).pw_name == 'www-data'
    files = [f for f in os.listdir(httpd.store_dir) if f.endswith('.ocsp')]
    assert len(files) == 1


@pytest.mark.parametrize('damage', ['garbage', 'truncated', 'foreign'])
def test_corrupt_store_file_is_ignored_with_a_warning(httpd_factory, pki, front, damage):
    # setup: a stored response damaged between two runs; expectation: a warning names the
    # file, a fresh response is fetched and stapled, no crash
    httpd = httpd_factory()
    httpd.serve(httpd.vhost(['good', 'good-ec'], 'good.localhost'))
    httpd.stop()
    files = sorted(os.path.join(httpd.store_dir, f) for f in os.listdir(httpd.store_dir))
    assert len(files) == 2
    data = open(files[0], 'rb').read()
    if damage == 'garbage':
        data = os.urandom(len(data))
    elif damage == 'truncated':
        data = data[:len(data) // 2]
    else:
        data = open(files[1], 'rb').read()
    with open(files[0], 'wb') as f:
        f.write(data)
    front.reset()
    rc, out = httpd.start()
    assert rc == 0, out
    lines = httpd.log_lines('OG00025')
    assert lines and files[0] in lines[0]
    assert front.count == 1
    assert staple(httpd, pki).stapled


BAD_MODES = {
    'http500': ('OG00010', 'HTTP error status: received error: code=500'),
    'redirect': ('OG00010', 'redirect'),
    'wrongtype': ('OG00010', 'wrong content type: unexpected content type: expected=application/ocsp-response, actual=text/html'),
    'oversize': ('OG00010', ''),
    'garbage': ('OG000', ''),
    'trylater': ('OG00011', 'trylater'),
    'internalerror': ('OG00011', 'internalerror'),
    'unauthorized': ('OG00011', 'unauthorized'),
    'othercert': ('OG00011', 'another certificate'),
    'wrongsigner': ('OG00011', 'OCSPSigning'),
    'lookalike': ('OG00011', 'signer'),
    'otherca': ('OG00011', 'signer'),
    'expired': ('OG00011', 'expired'),
    'future': ('OG00011', 'future'),
    'hang': ('OG00010', 'timeout'),
    'down': ('OG00010', 'connection failed'),
}


@pytest.mark.parametrize('mode', sorted(BAD_MODES))
def test_bad_responder_never_replaces_a_good_response(httpd_factory, pki, front, mode):
    # setup: a good 60 s response, renewal due after 3 s, then the responder turns bad in
    # one way; expectation: the refresh is logged with the reason and the responder URL,
    # and clients keep getting the original good response
    front.validity_minutes = 1
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'),
          FAST + 'OCSPGuardRenewWindow 95%\nOCSPGuardResponderTimeout 2\n')
    first = staple(httpd, pki)
    assert first.stapled
    if mode == 'down':
        front.stop()  # connections refused
    else:
        front.mode = mode
    tag, reason = BAD_MODES[mode]
    assert httpd.wait_for_log(tag + r'\d*: .*' + re.escape(front.url) + '.*' + re.escape(reason),
                              timeout=20), httpd.error_log()[-3000:]
    r = staple(httpd, pki)
    assert r.stapled and r.cert_status == 'good' and r.this_update == first.this_update, r.raw
    if mode == 'redirect':
        assert front.redirects_followed == 0


def test_proxy_carries_responder_traffic(httpd_factory, pki, front):
    # setup: OCSPGuardProxy at a counting forward proxy on loopback; expectation: the
    # prefetch goes through the proxy (one request there, one at the responder), stapled
    proxy = CountingProxy().start()
    try:
        httpd = httpd_factory()
        httpd.serve(httpd.vhost('good', 'good.localhost'), f'OCSPGuardProxy {proxy.url}\n')
        assert proxy.count == 1 and front.count == 1
        assert proxy.requests[0][1].startswith(front.url + '/')
        assert staple(httpd, pki).stapled
    finally:
        proxy.stop()


def test_prefetch_timeout_zero_fetches_in_background(httpd_factory, pki, front):
    # setup: OCSPGuardPrefetchTimeout 0 and a 2 s responder; expectation: startup does not
    # wait; the refresher fetches right after, and handshakes are stapled soon
    front.mode = 'slow'
    front.delay = 2
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'), 'OCSPGuardPrefetchTimeout 0\n')
    assert httpd.start_time_s < 2
    assert wait_until(lambda: staple(httpd, pki).stapled, 15, 0.5)


def test_status_page_reports_every_certificate(httpd_factory, pki, front):
    # setup: good, revoked, no-URL and a failing certificate (override to a closed port);
    # expectation: JSON by default with the contract's fields; HTML for browsers; a section
    # in server-status and its ?auto form
    httpd = httpd_factory()
    body = (httpd.vhost('good', 'good.localhost') + httpd.vhost('revoked', 'revoked.localhost')
            + httpd.vhost('nourl', 'nourl.localhost')
            + httpd.vhost('good-ec', 'ec.localhost', extra='OCSPGuardResponderOverride http://127.0.0.1:9/\n')
            + httpd.status_vhost())
    httpd.serve(body)
    ctype, text = httpd.get('/ocsp-status')
    assert ctype.startswith('application/json')
    doc = json.loads(text)
    certs = {c['subject'].split(',')[0]: c for c in doc['certificates']}
    assert len(doc['certificates']) == 4
    fields = {'id', 'subject', 'serial', 'vhosts', 'responder', 'cert_status', 'this_update', 'next_update',
              'renew_at', 'last_fetch', 'consecutive_failures', 'source', 'stapled', 'not_after'}
    for c in doc['certificates']:
        assert fields <= set(c), set(c)
        assert set(c['last_fetch']) == {'time', 'outcome', 'ms'}
    good = certs['CN=good.localhost']
    good_ec = [c for c in doc['certificates'] if c['responder'] == 'http://127.0.0.1:9/'][0]
    assert good['cert_status'] == 'good' and good['stapled'] is True and good['source'] == 'prefetch'
    assert good['vhosts'] == [f'good.localhost:{httpd.https_port}']
    assert good['this_update'] and good['next_update'] and good['renew_at']
    assert good['last_fetch']['outcome'] == 'ok: good' and good['consecutive_failures'] == 0
    assert len(good['id']) == 40 and good['serial'] == pki.leaves['good'].serial_hex
    assert good['not_after'] == pki.leaves['good'].not_after.strftime('%Y-%m-%dT%H:%M:%SZ')
    revoked = certs['CN=revoked.localhost']
    assert revoked['cert_status'] == 'revoked' and revoked['stapled'] is True
    nourl = certs['CN=nourl.localhost']
    assert nourl['responder'] is None and nourl['cert_status'] == 'none yet' and nourl['stapled'] is False
    assert good_ec['stapled'] is False and good_ec['consecutive_failures'] >= 1
    assert 'connection failed' in good_ec['last_fetch']['outcome']
    ctype, html = httpd.get('/ocsp-status', accept='text/html,application/xhtml+xml')
    assert ctype.startswith('text/html') and '<table>' in html and 'good.localhost' in html
    ctype, text = httpd.get('/ocsp-status?json', accept='text/html')
    assert ctype.startswith('application/json')
    _, page = httpd.get('/server-status')
    assert 'mod_ocsp_guard' in page
    _, auto = httpd.get('/server-status?auto')
    assert 'OCSPGuardCertificates: 4' in auto and 'OCSPGuardStapled: 2' in auto
