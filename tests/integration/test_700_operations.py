"""Operations (issue 11): Prometheus metrics from the status handler, checked by Debian's promtool and
scraped by a real Prometheus server on loopback; the shipped alert rules; the certificate's own expiry;
refresh on demand by POST.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from ogtest.clients import staple
from ogtest.util import LOOPBACK, free_port, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(REPO, 'docs', 'prometheus')
FAST = 'OCSPGuardRetryDelay 1\n'


def serve_two(httpd, extra=''):
    body = httpd.vhost('good', 'good.localhost') + httpd.vhost('muststaple', 'muststaple.localhost') \
        + httpd.status_vhost()
    httpd.serve(body, FAST + extra)


def scrape(httpd, accept=None, query='?format=prometheus'):
    ctype, text = httpd.get('/ocsp-status' + query, accept=accept)
    return ctype, text


def sample(text, name, **labels):
    """The value of the one sample of `name` whose labels include `labels`."""
    found = []
    for line in text.splitlines():
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ''))
        if all(have.get(k) == v for k, v in labels.items()):
            found.append(float(m.group(3)))
    assert len(found) == 1, (name, labels, found)
    return found[0]


def post(httpd, query):
    req = urllib.request.Request(f'http://{LOOPBACK}:{httpd.http_port}/ocsp-status{query}', data=b'',
                                 method='POST')
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors='replace')


def test_prometheus_text_passes_promtool_and_says_what_each_certificate_has(httpd_factory, pki, front):
    # setup: two certificates stapled, some handshakes. expectation: ?format=prometheus and the Accept
    # headers Prometheus sends give the text format, `promtool check metrics` finds nothing to complain
    # about, and the samples say what the certificates have (stapled, timestamps, status, counters)
    httpd = httpd_factory()
    serve_two(httpd)
    for _ in range(3):
        assert staple(httpd, pki).stapled
    ctype, text = scrape(httpd)
    assert ctype.startswith('text/plain; version=0.0.4')
    check = subprocess.run(['promtool', 'check', 'metrics'], input=text, capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), \
        check.stdout + check.stderr
    good = pki.leaves['good']
    labels = {'serial': good.serial_hex, 'vhost': f'good.localhost:{httpd.https_port}'}
    assert sample(text, 'ocsp_guard_stapled', **labels) == 1
    assert sample(text, 'ocsp_guard_response_status', status='good', **labels) == 1
    assert sample(text, 'ocsp_guard_response_status', status='revoked', **labels) == 0
    assert sample(text, 'ocsp_guard_response_source', source='prefetch', **labels) == 1
    assert sample(text, 'ocsp_guard_must_staple', serial=pki.leaves['muststaple'].serial_hex) == 1
    now = time.time()
    assert now - 600 < sample(text, 'ocsp_guard_response_this_update_timestamp_seconds', **labels) <= now + 1
    assert sample(text, 'ocsp_guard_response_next_update_timestamp_seconds', **labels) > now
    assert abs(sample(text, 'ocsp_guard_certificate_not_after_timestamp_seconds', **labels)
               - good.not_after.timestamp()) < 2
    assert sample(text, 'ocsp_guard_fetches_total', outcome='accepted') == 2
    assert sample(text, 'ocsp_guard_handshakes_status_requested_total') >= 3
    assert sample(text, 'ocsp_guard_handshakes_stapled_total') >= 3
    assert sample(text, 'ocsp_guard_handshakes_unstapled_total') == 0
    # the same through content negotiation, as a Prometheus server asks
    for accept in ('application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5',
                   'text/plain; version=0.0.4'):
        ctype, _ = scrape(httpd, accept=accept, query='')
        assert ctype.startswith('text/plain; version=0.0.4'), accept
    # JSON and HTML are unchanged
    assert scrape(httpd, query='?json')[0].startswith('application/json')


def test_a_real_prometheus_scrapes_the_handler_and_sees_a_refresh(httpd_factory, pki, front, session_dir):
    # setup: Debian's prometheus on loopback scraping the status handler every second; responses valid
    # a minute; a POST ?refresh=all. expectation: the target is up, the good certificate's thisUpdate
    # series is there, and after the refresh Prometheus' value moves to the newer response
    front.validity_minutes = 1
    httpd = httpd_factory()
    serve_two(httpd, 'OCSPGuardRenewWindow 10%\n')
    port = free_port()
    pdir = os.path.join(session_dir, f'prometheus-{port}')
    os.makedirs(pdir)
    with open(os.path.join(pdir, 'prometheus.yml'), 'w') as f:
        f.write('global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
                'scrape_configs:\n  - job_name: ocsp_guard\n    metrics_path: /ocsp-status\n'
                '    params: {format: [prometheus]}\n'
                f'    static_configs:\n      - targets: ["{LOOPBACK}:{httpd.http_port}"]\n')
    proc = subprocess.Popen(['prometheus', f'--config.file={pdir}/prometheus.yml', f'--storage.tsdb.path={pdir}/data',
                             f'--web.listen-address={LOOPBACK}:{port}'], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(pdir, 'log'), 'w'), cwd=pdir)
    try:
        def query(expr):
            url = f'http://{LOOPBACK}:{port}/api/v1/query?' + urllib.parse.urlencode({'query': expr})
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    doc = json.loads(resp.read())
            except (OSError, ValueError):
                return []
            return doc.get('data', {}).get('result', []) if doc.get('status') == 'success' else []

        assert wait_until(lambda: [r for r in query('up{job="ocsp_guard"}') if r['value'][1] == '1'], 30, 0.5), \
            open(os.path.join(pdir, 'log')).read()[-2000:]
        series = f'ocsp_guard_response_this_update_timestamp_seconds{{serial="{pki.leaves["good"].serial_hex}"}}'
        assert wait_until(lambda: query(series), 15, 0.5)
        before = float(query(series)[0]['value'][1])
        time.sleep(1.1)  # thisUpdate has a resolution of one second: the next response must differ
        status, body = post(httpd, '?refresh=all')
        assert status == 200, body
        assert {c['subject'].split(',')[0] for c in json.loads(body)['scheduled']} == \
            {'CN=good.localhost', 'CN=muststaple.localhost'}
        assert wait_until(lambda: query(series) and float(query(series)[0]['value'][1]) > before, 20, 0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_refresh_by_post_only_bounded_by_the_retry_delay(httpd_factory, pki, front):
    # setup: one certificate, OCSPGuardRetryDelay 3. expectation: GET ?refresh changes nothing (405), an
    # unknown id is 404, POST ?refresh=<id> makes the refresher ask the responder, and a script POSTing
    # in a loop gets at most one request per retry delay
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost') + httpd.status_vhost(), 'OCSPGuardRetryDelay 3\n')
    good = pki.leaves['good']
    _, doc = httpd.get('/ocsp-status?json')
    cid = json.loads(doc)['certificates'][0]['id']
    assert front.count == 1
    with pytest.raises(urllib.error.HTTPError) as err:
        httpd.get(f'/ocsp-status?refresh={cid}')
    assert err.value.code == 405
    assert post(httpd, '?refresh=' + '0' * 40)[0] == 404
    time.sleep(3)  # past the retry delay since the prefetch
    status, body = post(httpd, f'?refresh={cid}')
    assert status == 200 and json.loads(body)['scheduled'][0]['id'] == cid, body
    assert front.wait_for_count(2, 10)
    start, end = front.count, time.monotonic() + 7
    while time.monotonic() < end:
        assert post(httpd, f'?refresh={cid}')[0] == 200
        time.sleep(0.2)
    assert front.count - start <= 3, 'refresh requests hammered the responder'
    assert httpd.log_lines('OG00080')
    assert all(s == good.serial for _m, _p, _d, s in front.requests)


def test_certificate_expiring_within_14_days_is_a_warning_and_a_metric(httpd_factory, pki, front):
    # setup: a certificate valid 5 more days. expectation: a warning at startup naming it (OG00079), the
    # status page says 'renew it', the not_after metric says when
    leaf = pki.leaves.get('expiring') or pki.add_leaf('expiring', days=5)
    httpd = httpd_factory()
    httpd.serve(httpd.vhost(leaf, 'expiring.localhost') + httpd.status_vhost(), FAST)
    lines = httpd.log_lines('OG00079', 'warn')
    assert len(lines) == 1 and 'expiring.localhost' in lines[0] and 'renew it' in lines[0]
    _, html = httpd.get('/ocsp-status', accept='text/html')
    assert 'renew it' in html
    _, text = scrape(httpd)
    assert abs(sample(text, 'ocsp_guard_certificate_not_after_timestamp_seconds', serial=leaf.serial_hex)
               - leaf.not_after.timestamp()) < 2


def test_shipped_alert_rules_check_and_pass_their_tests():
    assert shutil.which('promtool')
    for args in (['check', 'rules', 'ocsp_guard.rules.yml'], ['test', 'rules', 'ocsp_guard.rules.test.yml']):
        r = subprocess.run(['promtool', *args], cwd=RULES, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr


def test_refresh_post_obeys_the_locations_require(httpd_factory, pki, front):
    # setup: the README's example: GET for 127.0.0.0/8, POST for 127.0.0.1 only. expectation: from
    # 127.0.0.2 the page is readable and a POST refresh is refused (403); from 127.0.0.1 it is accepted
    import http.client
    httpd = httpd_factory()
    loc = (f'<VirtualHost {LOOPBACK}:{httpd.http_port}>\n    ServerName status.localhost\n'
           '    <Location /ocsp-status>\n        SetHandler ocsp-guard-status\n'
           "        <If \"%{REQUEST_METHOD} == 'POST'\">\n            Require ip 127.0.0.1\n        </If>\n"
           '        <Else>\n            Require ip 127.0.0.0/8\n        </Else>\n    </Location>\n</VirtualHost>\n')
    httpd.serve(httpd.vhost('good', 'good.localhost') + loc,
                'LoadModule authz_host_module /usr/lib/apache2/modules/mod_authz_host.so\n' + FAST)

    def ask(method, source):
        conn = http.client.HTTPConnection(LOOPBACK, httpd.http_port, timeout=10, source_address=(source, 0))
        try:
            conn.request(method, '/ocsp-status?refresh=all' if method == 'POST' else '/ocsp-status?json')
            return conn.getresponse().status
        finally:
            conn.close()

    assert ask('GET', '127.0.0.2') == 200
    assert ask('POST', '127.0.0.2') == 403
    assert ask('POST', '127.0.0.1') == 200
