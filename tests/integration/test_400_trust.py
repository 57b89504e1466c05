"""Trust (issue 7): nothing the server's User or a network peer sends reaches root or undoes a revocation.

Attacks come from the User's side (www-data plants links, FIFOs and forged files in the store it owns,
through a subprocess that really is www-data) and from the network (the front replays older, still-valid
answers, lifts a revocation, or claims validity for centuries).  Each test asserts what a real client
receives and what the error log says.
"""
import json
import os
import pwd
import stat
import time

import pytest

from ogtest import attacker
from ogtest.clients import staple
from ogtest.store import cert_id, encode_file, ocsp_request, response_times, store_path
from ogtest.util import wait_until, world_readable_tempdir
from ogtest.responder import OcspFront

FAST = 'OCSPGuardRetryDelay 1\n'
WWW = pwd.getpwnam('www-data')


@pytest.fixture
def victim(session_dir):
    """A root-owned 0644 file outside any store, with known bytes: what an attacker wants root to write."""
    path = os.path.join(world_readable_tempdir('victim-', session_dir), 'passwd-like')
    with open(path, 'wb') as f:
        f.write(b'root:x:0:0:root:/root:/bin/bash\n')
    os.chmod(path, 0o644)
    return path


def assert_untouched(path):
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 0 and st.st_gid == 0 and st.st_mode & 0o777 == 0o644
    with open(path, 'rb') as f:
        assert f.read() == b'root:x:0:0:root:/root:/bin/bash\n'


@pytest.mark.parametrize('how', ['graceful', 'stop-start'])
def test_planted_links_and_fifo_never_reach_root(httpd_factory, pki, front, victim, how):
    # setup: three stapled certificates with stored responses; as www-data: a symlink to a root-owned
    # file at one certificate's store file, a FIFO at another's, and symlinks at every temp name 0.1.0's
    # parent used (<id>.ocsp.tmp.<parent pid>) for the third, whose store file is deleted so that the
    # parent must fetch and persist it; then a graceful or full restart.
    # expectation: the restart completes within seconds, the root-owned file keeps its bytes, owner and
    # mode, each planted store file is named in a warning (OG00050), every certificate is stapled at
    # the first handshake, and afterwards the store holds regular files of www-data's only
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost') + httpd.vhost('good-ec', 'ec.localhost')
          + httpd.vhost('revoked', 'revoked.localhost'), FAST)
    good, ec, rev = (pki.leaves[n] for n in ('good', 'good-ec', 'revoked'))
    sdir = httpd.store_dir
    assert all(os.path.isfile(store_path(sdir, leaf)) for leaf in (good, ec, rev))
    attacker.plant_symlink(store_path(sdir, good), victim)
    attacker.plant_fifo(store_path(sdir, ec))
    attacker.run_as_user('/bin/rm', '-f', store_path(sdir, rev))
    for pid in [httpd.pid, *httpd.children()]:
        attacker.plant_symlink(f'{store_path(sdir, rev)}.tmp.{pid}', victim)
    front.reset()
    started = time.monotonic()
    if how == 'graceful':
        rc, out = httpd.graceful(timeout=20)
    else:
        httpd.stop()
        rc, out = httpd.start(timeout=20)
    assert rc == 0, out
    assert time.monotonic() - started < 10
    assert_untouched(victim)
    warned = '\n'.join(httpd.log_lines('OG00050'))
    assert store_path(sdir, good) in warned and 'symbolic link' in warned
    assert store_path(sdir, ec) in warned and 'FIFO' in warned
    for name, leaf in (('good.localhost', good), ('ec.localhost', ec), ('revoked.localhost', rev)):
        r = staple(httpd, pki, name)
        assert r.stapled, (name, r.raw)
    assert staple(httpd, pki, 'revoked.localhost').cert_status == 'revoked'
    assert front.count == 3  # the three unusable store entries were fetched again
    for leaf in (good, ec, rev):
        st = os.lstat(store_path(sdir, leaf))
        assert stat.S_ISREG(st.st_mode) and st.st_uid == WWW.pw_uid, leaf.name
    assert_untouched(victim)


def test_root_never_writes_into_the_store(httpd_factory, pki, front):
    # setup: a start that fetches and persists a response; expectation: the store file is www-data's
    # (written by a process that became www-data, not by root), mode 0600; the floors file beside the
    # store is root's, mode 0600
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'))
    st = os.lstat(store_path(httpd.store_dir, pki.leaves['good']))
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (WWW.pw_uid, WWW.pw_gid, 0o600)
    floors = os.lstat(httpd.store_dir + '.floors')
    assert (floors.st_uid, floors.st_mode & 0o777) == (0, 0o600)


@pytest.mark.parametrize('shape', ['symlink', 'world-writable', 'user-parent'])
def test_unsafe_store_directory_is_refused(httpd_factory, pki, front, session_dir, shape):
    # setup: OCSPGuardStore is a symlink to a real directory, a directory with mode 0777, or a
    # directory inside one www-data owns; expectation: apachectl -t names it at error level (OG00049,
    # with the directive's file:line and the fix); the server still starts and staples, writes nothing
    # there, and changes neither owner nor mode (never chmod/chown through a link)
    httpd = httpd_factory()
    base = world_readable_tempdir('store-', session_dir)
    if shape == 'symlink':
        real = os.path.join(base, 'real')
        os.mkdir(real, 0o700)
        path = os.path.join(base, 'link')
        os.symlink(real, path)
        watched = real
    elif shape == 'world-writable':
        path = watched = os.path.join(base, 'open')
        os.mkdir(path)
        os.chmod(path, 0o777)
    else:
        parent = os.path.join(base, 'wwwdata')
        os.mkdir(parent, 0o755)
        os.chown(parent, WWW.pw_uid, WWW.pw_gid)
        path = watched = os.path.join(parent, 'store')
        os.mkdir(path, 0o700)
    before = os.lstat(watched)
    httpd.write_site(httpd.vhost('good', 'good.localhost'), f'OCSPGuardStore {path}\n')
    rc, out = httpd.configtest()
    assert rc == 0, out  # warn: an error-level finding, not fatal
    assert 'OG00049' in out and path in out and 'httpd.conf:' in out, out
    rc, out = httpd.start()
    assert rc == 0, out
    lines = httpd.log_lines('OG00049', 'error')
    assert lines and path in lines[0], httpd.log_lines('OG00049')
    assert staple(httpd, pki).stapled
    assert os.listdir(watched) == []
    after = os.lstat(watched)
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)
    httpd.stop()
    httpd.write_site(httpd.vhost('good', 'good.localhost'), f'OCSPGuardStore {path}\nOCSPGuardEnforce strict\n')
    rc, out = httpd.configtest()
    assert rc != 0 and 'OG00049' in out, out


@pytest.mark.parametrize('how', ['graceful', 'stop-start'])
def test_replayed_older_response_never_replaces_a_newer_one(httpd_factory, pki, front, how):
    # setup: a fresh good response (60 s validity, renewal due after 3 s); then the path replays a
    # correctly signed answer whose thisUpdate is 6 h old; expectation: it is refused (OG00053, naming
    # the responder), clients keep the fresh response's thisUpdate, before and after a restart
    front.validity_minutes = 1
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'), FAST + 'OCSPGuardRenewWindow 95%\n')
    first = staple(httpd, pki)
    assert first.stapled
    front.mode = 'stale'
    assert httpd.wait_for_log(r'OG00053: .*' + front.url + '.*older than the newest accepted', timeout=20)
    r = staple(httpd, pki)
    assert r.stapled and r.this_update == first.this_update, r.raw
    mark = httpd.log_mark()
    if how == 'graceful':
        rc, out = httpd.graceful()
    else:
        httpd.stop()
        rc, out = httpd.start()
    assert rc == 0, out
    r = staple(httpd, pki)
    assert r.stapled and r.this_update == first.this_update, r.raw
    assert httpd.wait_for_log(r'OG00053', timeout=20, since=mark)
    assert not httpd.log_lines('OG00015')[1:], 'a replayed response was accepted'


def test_replayed_good_response_never_unrevokes(httpd_factory, pki, front):
    # setup: a revoked certificate, stapled revoked; then the path replays a correctly signed 'good'
    # answer from before the revocation; expectation: refused at error level (OG00054), the staple stays
    # revoked, also after a full restart; a newer 'good' answer (a CA lifting a hold) is accepted and
    # logged at error level (OG00055)
    front.validity_minutes = 1
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('revoked', 'revoked.localhost'), FAST + 'OCSPGuardRenewWindow 95%\n')
    assert staple(httpd, pki, 'revoked.localhost').cert_status == 'revoked'
    front.mode = 'goodstale'
    assert httpd.wait_for_log(r'OG00054', timeout=20)
    assert httpd.log_lines('OG00054', 'error')
    assert staple(httpd, pki, 'revoked.localhost').cert_status == 'revoked'
    httpd.stop()
    rc, out = httpd.start()
    assert rc == 0, out
    r = staple(httpd, pki, 'revoked.localhost')
    assert r.stapled and r.cert_status == 'revoked', r.raw
    front.mode = 'liar'
    assert wait_until(lambda: staple(httpd, pki, 'revoked.localhost').cert_status == 'good', 20, 0.5)
    assert httpd.log_lines('OG00055', 'error')


def _one_second_later():
    now = int(time.time())
    wait_until(lambda: int(time.time()) > now, 2, 0.05)


@pytest.mark.parametrize('forgery', ['wrongkey', 'othercert', 'older'])
def test_forged_store_file_with_valid_checksum_is_never_stapled(httpd_factory, pki, front, forgery):
    # setup: a stapled server is stopped; as www-data, its store file is replaced with a well-formed
    # one (correct SHA-256) holding a response signed by another CA's key, the real response for
    # another certificate, or an older still-valid response of its own; then a full start.
    # expectation: the forged content is logged (OG00051 / OG00052) and never stapled; the response
    # is fetched again and the client gets a verified one with a newer thisUpdate
    good = pki.leaves['good']
    request = ocsp_request(good, pki.inter_cert)
    older = front.answer(request)
    _one_second_later()
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'))
    first = staple(httpd, pki)
    httpd.stop()
    if forgery == 'wrongkey':
        der = front.forge(request, good.serial, 'otherca')
    elif forgery == 'othercert':
        der = front.answer(ocsp_request(pki.leaves['good-ec'], pki.inter_cert))
    else:
        der = older
    attacker.write_file(store_path(httpd.store_dir, good), encode_file(good, der))
    front.reset()
    _one_second_later()
    rc, out = httpd.start()
    assert rc == 0, out
    tag = 'OG00052' if forgery == 'older' else 'OG00051'
    lines = httpd.log_lines(tag)
    assert lines and store_path(httpd.store_dir, good) in lines[-1], httpd.error_log()[-3000:]
    assert front.count == 1
    r = staple(httpd, pki)
    assert r.stapled and r.cert_status == 'good' and r.this_update != first.this_update, r.raw
    _, forged_this, _ = response_times(der)
    assert r.this_update != time.strftime('%b %e %H:%M:%S %Y GMT', time.gmtime(forged_this))


@pytest.mark.parametrize('far', [20, None], ids=['20-days', 'year-9999'])
def test_far_future_next_update_counts_as_max_validity(httpd_factory, pki, front, far):
    # setup: responses claiming validity for 20 days, or until the end of year 9999, with
    # OCSPGuardMaxValidity 20s; expectation: said once at info (OG00056), renewed after ~10 s as if
    # valid for 20 s (a second request), and when the responder then fails, no longer stapled once
    # thisUpdate + 20 s has passed (OG00029); no overflow (the sanitizer build checks every step)
    front.mode = 'farfuture'
    front.far_days = far
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost'),
          FAST + 'OCSPGuardMaxValidity 20s\nOCSPGuardRenewWindow 50%\n')
    assert staple(httpd, pki).stapled
    assert httpd.log_lines('OG00056', 'info')
    assert front.wait_for_count(2, 20), front.count
    front.mode = 'http500'
    assert httpd.wait_for_log(r'OG00029', timeout=40)
    assert not staple(httpd, pki).stapled
    assert len(httpd.log_lines('OG00056')) == 1


def test_ipv6_literal_responder_url(httpd_factory, pki, front):
    # setup: a second front on [::1] and OCSPGuardResponderOverride http://[::1]:port/;
    # expectation: fetched over IPv6 (one request there, none at the IPv4 front), stapled
    front6 = OcspFront(pki, host='::1')
    front6.start()
    try:
        httpd = httpd_factory()
        httpd.serve(httpd.vhost('good', 'good.localhost', extra=f'OCSPGuardResponderOverride {front6.url}/\n'))
        assert front6.count == 1 and front.count == 0
        r = staple(httpd, pki)
        assert r.stapled and r.cert_status == 'good', r.raw
        assert not httpd.log_lines('OG00010')
    finally:
        front6.stop()



def test_hostile_reason_phrase_reaches_no_log_or_page_raw(httpd_factory, pki, front):
    # setup: the responder answers HTTP 500 with a reason phrase holding ESC sequences, bytes >= 0x80
    # and markup; expectation: the error log, the JSON and the HTML status page carry printable ASCII
    # in its place (no ESC, no raw high bytes, no unescaped markup), and the failure is still reported
    front.mode = 'badreason'
    httpd = httpd_factory()
    httpd.serve(httpd.vhost('good', 'good.localhost') + httpd.status_vhost())
    lines = httpd.log_lines('OG00010')
    assert lines and 'HTTP error status' in lines[0], httpd.error_log()[-2000:]
    with open(httpd.error_log_path, 'rb') as f:
        raw_log = f.read()
    assert b'\x1b' not in raw_log and b'\xff' not in raw_log
    doc = json.loads(httpd.get('/ocsp-status', raw=True)[1])
    outcome = doc['certificates'][0]['last_fetch']['outcome']
    assert 'HTTP error status' in outcome and all(0x20 <= ord(c) < 0x7f for c in outcome), outcome
    html = httpd.get('/ocsp-status', accept='text/html', raw=True)[1]
    assert b'\x1b' not in html and b'\xff' not in html and b'<script>' not in html
