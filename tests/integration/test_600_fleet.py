"""Fleet (issue 10): OCSPGuardFleetCache through httpd's own mod_socache_redis and mod_socache_memcache,
with Debian's redis-server and memcached started on loopback by the tests and stopped by PID.

Two httpd instances (own ServerRoots, own ports) share one cache: the second one's start asks no responder,
renewals of both together cost one request per certificate per renew period, the cache failing changes
nothing for clients, and whatever is written into the cache is verified before use.
"""
import json
import time

import pytest

from ogtest.clients import staple
from ogtest.fleet import Memcached, Redis, fleet_key
from ogtest.util import wait_until

FAST = 'OCSPGuardRetryDelay 1\n'
LEAVES = ('good', 'revoked', 'muststaple')


@pytest.fixture(params=['redis', 'memcache'])
def cache(request, session_dir):
    server = (Redis if request.param == 'redis' else Memcached)(session_dir)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis(session_dir):
    server = Redis(session_dir)
    server.start()
    yield server
    server.stop()


def vhosts(httpd):
    return ''.join(httpd.vhost(name, f'{name}.localhost') for name in LEAVES) + httpd.status_vhost()


def serve(httpd, cache, extra=''):
    return httpd.serve(vhosts(httpd), FAST + cache.config() + extra)


def by_serial(front):
    counts = {}
    for _method, _plen, _der, serial in front.requests:
        counts[serial] = counts.get(serial, 0) + 1
    return counts


def sources(httpd):
    _ctype, body = httpd.get('/ocsp-status?json')
    return {c['subject']: c['source'] for c in json.loads(body)['certificates']}


FAILED_HANDSHAKES = []


def all_stapled(httpd, pki):
    """Every certificate's handshake stapled (all are tried; the failures are kept for the message)."""
    results = [staple(httpd, pki, f'{name}.localhost') for name in LEAVES]
    FAILED_HANDSHAKES.extend(r.raw[:700] for r in results if not r.stapled)
    return all(r.stapled for r in results)


def test_second_server_takes_the_fleets_responses_and_renewals_cost_one_request(httpd_factory, pki, front, cache):
    # setup: responses valid 12 s, renewed in the second half of their validity; server A starts, then B
    # with an empty store. expectation: B's start sends no request and B staples from its first handshake
    # (its responses come from the fleet, verified); over the next renewals the responder sees at most one
    # request per certificate per renew period for the two servers together
    front.mode = 'short'
    front.short_seconds = 12
    a = httpd_factory()
    serve(a, cache)
    assert front.count == len(LEAVES)
    assert wait_until(lambda: all(cache.get(fleet_key(pki.leaves[n])) for n in LEAVES), 10)
    b = httpd_factory()
    serve(b, cache)
    assert front.count == len(LEAVES), 'the second server asked the responder'
    assert all_stapled(b, pki)
    assert len(b.log_lines('OG00075')) == len(LEAVES) - 1
    assert 'fleet cache' in b.log_lines('OG00014')[0]
    assert set(sources(b).values()) == {'fleet'}
    assert f'{len(LEAVES)} from the fleet cache' in b.log_lines('OG00020')[-1]
    assert json.loads(b.get('/ocsp-status?json')[1])['fleet']['state'] == 'reachable'
    start = time.monotonic()
    seen = []

    def both_stapled():
        seen.append(all_stapled(a, pki) and all_stapled(b, pki))
        return time.monotonic() - start > 22

    wait_until(both_stapled, 30, 1)
    assert all(seen), 'a handshake went unstapled: ' + '\n'.join(FAILED_HANDSHAKES[-2:])
    # 12 s responses renewed after 6-9 s: 3 or 4 renewals in 22 s, plus the first fetch
    counts = by_serial(front)
    periods = 1 + int((time.monotonic() - start) / 6) + 1
    assert all(2 <= counts.get(pki.leaves[n].serial, 0) <= periods for n in LEAVES), counts
    # both servers renewed from the fleet at least once
    assert a.log_lines('OG00075') or b.log_lines('OG00075')
    assert not a.log_lines('OG00071') and not b.log_lines('OG00071')


def test_two_servers_without_a_fleet_cache_ask_twice(httpd_factory, pki, front):
    # the baseline of the test above: each server asks for itself
    front.mode = 'short'
    front.short_seconds = 12
    a = httpd_factory()
    a.serve(vhosts(a), FAST)
    b = httpd_factory()
    b.serve(vhosts(b), FAST)
    assert front.count == 2 * len(LEAVES)


def test_fleet_cache_stopped_while_both_run_changes_nothing_for_clients(httpd_factory, pki, front, redis):
    # setup: two servers sharing a redis-server (the memcache provider fails the same way: the test above
    # covers it working); redis is stopped. expectation: every handshake stays stapled,
    # renewals go to the responder, one warning per server (OG00071) naming the cache; restarted on the same
    # port, publishing resumes (a record appears again) and the recovery is logged (OG00070)
    front.mode = 'short'
    front.short_seconds = 10
    a = httpd_factory()
    serve(a, redis)
    b = httpd_factory()
    serve(b, redis)
    before = front.count
    redis.stop()
    end = time.monotonic() + 10
    while time.monotonic() < end:
        assert all_stapled(a, pki) and all_stapled(b, pki)
        time.sleep(0.5)
    assert front.count > before, 'nothing was renewed while the fleet cache was down'
    for h in (a, b):
        lines = h.log_lines('OG00071')
        assert len(lines) == 1, lines
        assert redis.spec in lines[0]
    assert {json.loads(h.get('/ocsp-status?json')[1])['fleet']['state'] for h in (a, b)} == {'failing'}
    redis.start()  # same port
    assert wait_until(lambda: any(redis.get(fleet_key(pki.leaves[n])) for n in LEAVES), 30, 0.5)
    assert wait_until(lambda: a.log_lines('OG00070') or b.log_lines('OG00070'), 15)
    assert all_stapled(a, pki) and all_stapled(b, pki)


def test_fleet_cache_that_stops_answering_is_not_waited_for(httpd_factory, pki, front, redis):
    # setup: redis accepts connections but answers nothing (SIGSTOP) while a server renews. expectation:
    # handshakes stay stapled, renewals go to the responder (each lookup waits at most half the exchange's
    # deadline, then the cache is not asked until that call returns), one OG00072; SIGCONT: it works again
    front.mode = 'short'
    front.short_seconds = 10
    a = httpd_factory()
    serve(a, redis)
    before = front.count
    redis.pause()
    try:
        end = time.monotonic() + 9
        while time.monotonic() < end:
            assert all_stapled(a, pki)
            time.sleep(0.5)
        assert front.count >= before + len(LEAVES), 'renewals waited for the stalled cache'
        assert len(a.log_lines('OG00072')) == 1
    finally:
        redis.resume()
    assert wait_until(lambda: a.log_lines('OG00070'), 20)
    assert all_stapled(a, pki)


def test_forged_fleet_records_are_verified_and_rejected(httpd_factory, pki, front, redis):
    # setup: server A fills the cache, renews once, stops; then every response key is overwritten: good's with
    # garbage, revoked's with muststaple's response (another certificate), muststaple's with its own older
    # record (valid, but already due). expectation: a server started with an empty store staples only what
    # it verified: each certificate asked from the responder, the right status, and the rejections logged
    front.mode = 'short'
    front.short_seconds = 10
    a = httpd_factory()
    serve(a, redis)
    keys = {n: fleet_key(pki.leaves[n]) for n in LEAVES}
    first = {n: redis.get(k) for n, k in keys.items()}
    assert all(first.values())
    assert wait_until(lambda: all(redis.get(k) != first[n] for n, k in keys.items()), 20, 0.5)
    current = {n: redis.get(k) for n, k in keys.items()}
    a.stop()
    redis.set(keys['good'], b'OGF1' + b'\x30\x82 not a response at all')
    redis.set(keys['revoked'], current['muststaple'])
    redis.set(keys['muststaple'], first['muststaple'])
    front.reset()
    b = httpd_factory()
    serve(b, redis)
    assert front.count == len(LEAVES), 'a forged record was taken instead of asking the responder'
    assert staple(b, pki, 'good.localhost').cert_status == 'good'
    assert staple(b, pki, 'revoked.localhost').cert_status == 'revoked'
    assert staple(b, pki, 'muststaple.localhost').cert_status == 'good'
    assert set(sources(b).values()) == {'prefetch'}
    notes = b.log_lines('OG00073')
    assert len(notes) == 3, notes
    joined = '\n'.join(notes)
    assert 'not a mod_ocsp_guard record' in joined or 'rejected' in joined
    assert 'already due for renewal' in joined
    # what B verified replaced the forged records
    assert wait_until(lambda: redis.get(keys['revoked']) not in (current['muststaple'], None), 10)
