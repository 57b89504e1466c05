#!/usr/bin/python3
"""fleet.py: how many OCSP responder requests a fleet of servers causes: one server, two servers each asking for
itself, and two servers sharing one fleet cache (OCSPGuardFleetCache) in redis-server and in memcached.

Everything runs on this machine, on 127.0.0.1 only: a throw-away test PKI (--certs leaves c0..c<N-1>, one
name-based vhost c<i>.localhost each, one HTTPS port per httpd), the OCSP front from tests/integration/ogtest
answering with responses valid for --validity seconds (mode 'short'), Debian's redis-server / memcached started
by tests/integration/ogtest/fleet.py on a free loopback port, and fresh httpd instances (own ServerRoots, empty
stores) per scenario, each with `OCSPGuardRetryDelay 1` and the default OCSPGuardRenewWindow (50%).  Each
scenario runs for --seconds from the first start, then everything is stopped.  It is a benchmark: it prints what
it measured as one markdown table and asserts nothing.  Everything it starts, it stops; everything it writes
lives in one temp dir, removed at the end.

usage: bench/fleet.py [--certs N] [--validity S] [--seconds T] [--seed X] [--module PATH]
"""
import argparse
import os
import random
import re
import shlex
import shutil
import signal
import sys
import time
import warnings

sys.dont_write_bytecode = True  # write nothing outside bench/ (no __pycache__ in tests/integration or bench)
BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))
sys.path.insert(0, BENCH)

from ogtest.clients import staple  # noqa: E402
from ogtest.fleet import Memcached, Redis  # noqa: E402
from ogtest.httpd import APACHE, Httpd  # noqa: E402
from ogtest.pki import PKI  # noqa: E402
from ogtest.responder import OcspFront  # noqa: E402
from ogtest.util import LOOPBACK, free_port, world_readable_tempdir  # noqa: E402
from restarts import log_findings, start, stop, summarize  # noqa: E402
from scale import copy_module, version  # noqa: E402

warnings.filterwarnings('ignore', message='Properties that return a na')  # pki.py's not_valid_after
MODULE_SO = os.path.join(REPO, '.libs', 'mod_ocsp_guard.so')
# (label, servers, fleet cache class or None)
SCENARIOS = [('1 one server, no fleet cache', 1, None),
             ('2 two servers, no fleet cache', 2, None),
             ('3 two servers, one redis-server', 2, Redis),
             ('4 two servers, one memcached', 2, Memcached)]
HANDSHAKES = 5  # vhosts per server handshaken at the end of the observation
STOP_TIMEOUT_S = 60
POLL_S = 0.5  # front.count sampled this often during the observation (for the per-period timeline)
# warn and above, and OG00075 (info): `LogLevel warn` would hide the responses taken from the fleet
LOG_LEVEL = 'warn ocsp_guard:info'
LOG_STAMP = re.compile(r'^\[\w{3} (\w{3} \d{2} \d{2}:\d{2}:\d{2})\.(\d+) (\d{4})\]')
DOUBLES_SHOWN = 2  # certificates asked twice in a fleet scenario whose error-log lines are printed
LINE_CUT = 400


def make_httpd(base, module_so, pki, names, cache):
    httpd = Httpd(base, module_so, pki)
    httpd.loglevel = LOG_LEVEL
    body = ''.join(httpd.vhost(name, f'{name}.localhost') for name in names) + httpd.status_vhost()
    httpd.write_site(body, 'OCSPGuardRetryDelay 1\n' + (cache.config() if cache else ''))
    return httpd


def run_scenario(base, module_so, pki, front, names, servers, cache_cls, args, rng, started, caches):
    """One scenario: fresh cache (if any) and fresh httpd instances; a dict of results."""
    front.mode = 'short'
    front.short_seconds = args.validity
    front.reset()
    r = {'servers': servers, 'b_start': None, 'timeline': []}
    cache = None
    httpds = []
    try:
        if cache_cls:
            cache = cache_cls(base)
            caches.append(cache)
            cache.start()
        httpds = [make_httpd(base, module_so, pki, names, cache) for _ in range(servers)]
        t0 = time.monotonic()
        start(httpds[0], started)
        r['a_start'] = front.count
        r['a_start_s'] = httpds[0].start_time_s
        if servers > 1:
            before = front.count
            start(httpds[1], started)
            r['b_start'] = front.count - before
            r['b_start_s'] = httpds[1].start_time_s
        end = t0 + args.seconds
        wall0 = time.time() - (time.monotonic() - t0)
        r['wall0'], r['asked_at'] = wall0, []  # asked_at: (serial, seconds since t0, at the poll that saw it)
        while True:
            now = time.monotonic()
            requests = front.requests
            r['asked_at'] += [(serial, now - t0) for _m, _l, _d, serial in requests[len(r['asked_at']):]]
            r['timeline'].append((now - t0, len(requests)))
            if now >= end:
                break
            time.sleep(min(POLL_S, end - now))  # the observation is the point: waiting, bounded by `end`
        r['total'] = front.count
        r['observed_s'] = time.monotonic() - t0
        r['per_serial'] = {}
        for _method, _plen, _der, serial in front.requests:
            r['per_serial'][serial] = r['per_serial'].get(serial, 0) + 1
        r['stapled'], r['tried'], r['hs_failed'] = [], [], []
        for httpd in httpds:
            sample = rng.sample(names, min(HANDSHAKES, len(names)))
            ok = 0
            for name in sample:
                res = staple(httpd, pki, f'{name}.localhost')
                ok += res.stapled
                if res.rc != 0 or not res.verify_ok or not res.stapled:
                    r['hs_failed'].append(f'{name}: rc={res.rc} stapled={res.stapled} verify_ok={res.verify_ok} '
                                          f'status={res.response_status}')
            r['stapled'].append(ok)
            r['tried'].append(len(sample))
        r['after_handshakes'] = front.count
    finally:
        for httpd in httpds:
            stop(httpd, started)
        if cache:
            cache.stop()
            caches.remove(cache)
    r['og75'] = [len(h.log_lines('OG00075')) for h in httpds]
    r['doubles'] = doubles(r, pki, names, args.validity / 4) if cache_cls else []
    r['double_lines'] = [double_lines(httpds, r, d) for d in r['doubles'][:DOUBLES_SHOWN]]
    r['log'] = [log_findings(h) for h in httpds]
    r['summary'] = [[line.split('] ', 3)[-1] for line in h.log_lines('OG00020')] for h in httpds]
    for httpd in httpds:
        shutil.rmtree(httpd.root, ignore_errors=True)
    return r


def doubles(r, pki, names, gap):
    """Certificates the responder was asked about twice within `gap` seconds (with a fleet cache, the servers
    should share one answer per renewal): [(name, t1, t2)], seconds since the first start."""
    name_of = {pki.leaves[n].serial: n for n in names}
    times = {}
    for serial, t in r['asked_at']:
        times.setdefault(serial, []).append(t)
    out = []
    for serial, ts in times.items():
        out += [(name_of.get(serial, f'serial {serial:X}'), a, b) for a, b in zip(ts, ts[1:]) if b - a < gap]
    return sorted(out, key=lambda d: d[1])


def log_time(line):
    """The wall-clock time of an error-log line ('[Wed Dec 02 03:41:05.123456 2026] ...'), or None."""
    match = LOG_STAMP.match(line)
    if not match:
        return None
    try:
        return time.mktime(time.strptime(f'{match.group(1)} {match.group(3)}', '%b %d %H:%M:%S %Y')) + float('0.' + match.group(2))
    except ValueError:
        return None


def double_lines(httpds, r, double):
    """The ocsp_guard error-log lines of every server naming the certificate, from 3 s before the first request
    to 1 s after the second (the polls that saw them are up to POLL_S late)."""
    name, t1, t2 = double
    lo, hi = r['wall0'] + t1 - POLL_S - 3, r['wall0'] + t2 + 1
    out = []
    for who, httpd in zip('AB', httpds):
        for line in httpd.error_log().splitlines():
            at = log_time(line)
            if f'CN={name}.localhost,' in line and at is not None and lo <= at <= hi:
                out.append(f'{who} {line[:LINE_CUT]}')
    return out


def per_period(r, period):
    """Responder requests per renew period since the first start: '0-10 s: 20, 10-20 s: 20, ...'."""
    out, last_count, bound = [], 0, period
    samples = r['timeline']
    for i, (t, count) in enumerate(samples):
        if t >= bound or i == len(samples) - 1:
            out.append(f'{bound - period:g}-{min(bound, t):.0f} s: {count - last_count}')
            last_count, bound = count, bound + period
    return ', '.join(out)


def per_server(values):
    return str(values[0]) if len(values) == 1 else f'{sum(values)} (A {values[0]}, B {values[1]})'


def table(results, args):
    periods = args.seconds / (args.validity / 2)
    head = ['scenario', 'servers', 'certs', 'validity', 'observed s', "requests at B's start", 'total requests',
            'requests per cert per renew period', 'taken from fleet (OG00075)', 'stapled at end (x/y)']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for label, _servers, _cls in SCENARIOS:
        r = results.get(label)
        if r is None:
            continue
        rate = r['total'] / args.certs / (periods + 1)
        b_start = 'n/a' if r['b_start'] is None else str(r['b_start'])
        stapled = ', '.join(f'{x}/{y}' for x, y in zip(r['stapled'], r['tried']))
        lines.append(f'| {label} | {r["servers"]} | {args.certs} | {args.validity:g} s | {r["observed_s"]:.1f} | '
                     f'{b_start} | {r["total"]} | {rate:.2f} | {per_server(r["og75"])} | {stapled} |')
    return '\n'.join(lines)


def _terminate(signum, _frame):
    raise KeyboardInterrupt(f'signal {signum}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--certs', type=int, default=20, help='certificates = vhosts per server (default 20)')
    parser.add_argument('--validity', type=float, default=20.0, help='seconds each OCSP response is valid '
                        '(default 20; renewed at 50%%)')
    parser.add_argument('--seconds', type=float, default=60.0, help='observation per scenario, from the first '
                        'start (default 60, 5-600)')
    parser.add_argument('--seed', type=int, default=1, help='seed of the vhosts handshaken at the end (default 1)')
    parser.add_argument('--module', default=MODULE_SO, help=f'mod_ocsp_guard.so to copy and load (default {MODULE_SO})')
    args = parser.parse_args()
    if args.certs < 1 or args.validity < 4 or not 5.0 <= args.seconds <= 600.0:
        parser.error('--certs must be >= 1, --validity >= 4, --seconds 5-600')
    signal.signal(signal.SIGTERM, _terminate)

    began = time.monotonic()
    base = world_readable_tempdir('og-fleet-')
    front = None
    started, caches = [], []
    try:
        module_so, built = copy_module(args.module, base)
        command = ' '.join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]])
        print(f'date: {time.strftime("%Y-%m-%d %H:%M:%S %Z")}; {version(["uname", "-srm"])}; '
              f'nproc {len(os.sched_getaffinity(0))}; command: {command}')
        print(f'software: {version([APACHE, "-v"]).split(": ", 1)[-1]}; {version(["redis-server", "--version"])}; '
              f'{version(["memcached", "-V"])}; module {args.module} (built {built}, copied to the temp dir)')
        print(f'load average at start: {" ".join(f"{x:.2f}" for x in os.getloadavg())}', flush=True)

        port = free_port()
        pki = PKI(os.path.join(base, 'pki'), f'http://{LOOPBACK}:{port}')
        names = [f'c{i}' for i in range(args.certs)]
        for name in names:
            pki.add_leaf(name)
        front = OcspFront(pki, port)
        front.mode = 'short'
        front.short_seconds = args.validity
        front.start()
        rng = random.Random(args.seed)

        results = {}
        for label, servers, cache_cls in SCENARIOS:
            c0 = time.monotonic()
            r = results[label] = run_scenario(base, module_so, pki, front, names, servers, cache_cls, args, rng,
                                              started, caches)
            b = f', B start {r["b_start_s"]:.2f} s ({r["b_start"]} requests)' if servers > 1 else ''
            print(f'  {label}: done in {time.monotonic() - c0:.0f} s (A start {r["a_start_s"]:.2f} s '
                  f'({r["a_start"]} requests){b}, {r["total"]} requests in {r["observed_s"]:.1f} s)', flush=True)

        period = args.validity / 2
        print(f'\n{args.certs} certificates (RSA 2048), one name-based vhost each, the same on every server; '
              f'responses valid for {args.validity:g} s (thisUpdate = the answer), renewed from 50% '
              f'(`OCSPGuardRenewWindow` default, with a fleet cache plus a per-server offset in the first half of '
              f'the window), `OCSPGuardRetryDelay 1`; event MPM, `LogLevel {LOG_LEVEL}`. Per scenario: fresh httpd '
              f'instances (own ServerRoot, empty store) and a fresh cache; A starts, then B right after A is up; '
              f'requests counted from A\'s `-k start` for {args.seconds:g} s. Renew period = validity / 2 = '
              f'{period:g} s, {args.seconds / period:g} periods; requests per cert per renew period = total / certs '
              f'/ (periods + 1), the +1 for the first fetch. At the end, one `openssl s_client -status` to '
              f'{HANDSHAKES} random vhosts of each server (A, B).\n')
        print(table(results, args))
        print()
        for label, _servers, _cls in SCENARIOS:
            r = results[label]
            counts = sorted(r['per_serial'].get(pki.leaves[n].serial, 0) for n in names)
            print(f'- {label}: requests per certificate min {counts[0]} / max {counts[-1]}; per renew period since '
                  f'the first start: {per_period(r, period)}; during the end handshakes '
                  f'{r["after_handshakes"] - r["total"]}')
            if r['doubles'] or _cls:
                shown = ', '.join(f'{n} at {a:.1f} s and {b:.1f} s' for n, a, b in r['doubles'][:10])
                print(f'    asked twice within validity/4 ({args.validity / 4:g} s; times as polled every {POLL_S:g} '
                      f's): {len(r["doubles"])}' + (f': {shown}' if shown else ''))
            for who, summary in zip('AB', r['summary']):
                for line in summary[-1:]:
                    print(f'    {who}: {line[:400]}')
        findings = []
        for label, _servers, _cls in SCENARIOS:
            r = results[label]
            for who, lines in zip('AB', r['log']):
                if lines:
                    findings.append(f'- {label} / {who}: {summarize(lines)}')
            for (name, a, b), lines in zip(r['doubles'], r['double_lines']):
                findings.append(f'- {label}: {name} asked at {a:.1f} s and {b:.1f} s; its error-log lines then:'
                                + ''.join(f'\n    {line}' for line in lines))
            if r['hs_failed']:
                findings.append(f'- {label}: end handshakes not stapled or failed: ' + '; '.join(r['hs_failed']))
        if findings:
            print('\nwarnings and errors (error log at warn and above, end handshakes), certificates asked twice:')
            print('\n'.join(findings))
        print(f'\ntotal time {time.monotonic() - began:.0f} s; load average at end '
              + ' '.join(f'{x:.2f}' for x in os.getloadavg()))
        return 1 if any(r['hs_failed'] for r in results.values()) else 0
    finally:
        for httpd in list(started):
            httpd.stop(timeout=STOP_TIMEOUT_S)
        for cache in list(caches):
            cache.stop()
        if front:
            front.mode = 'ok'
            front.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        sys.exit(f'interrupted ({e or "SIGINT"}); everything started was stopped and the temp dir removed')
