#!/usr/bin/python3
"""week.py: OCSP responder requests over a simulated week, time compressed by short responses, with graceful and
full restarts spread over it: no stapling (a reference), mod_ssl's stapling and mod_ocsp_guard, one after the other.

Everything runs on this machine, on 127.0.0.1 only: a throw-away test PKI (--certs RSA leaves w0..w<N-1>, one
name-based vhost w<i>.localhost each, one HTTPS port) and the OCSP front from tests/integration/ogtest answering
every request with a response valid for --validity seconds (mode 'short'), one fresh httpd per configuration
(event MPM, LogLevel warn), observed for --periods validity periods from its `-k start`, while the script does
--graceful `-k graceful` and --full stop + start spread evenly over the span and one `openssl s_client -status`
to a random vhost about every --interval seconds.  It is a benchmark: it prints what it measured as one markdown
table and asserts nothing about counts.  Everything it starts, it stops; everything it writes lives in one temp
dir, removed at the end.

usage: bench/week.py [--certs N] [--validity S] [--periods P] [--graceful N] [--full N] [--interval S] [--seed X]
                     [--modssl-cache-timeout S] [--skip-baseline] [--module PATH]
"""
import argparse
import os
import random
import re
import shlex
import shutil
import signal
import statistics
import sys
import threading
import time
import warnings

sys.dont_write_bytecode = True  # write nothing outside bench/ (no __pycache__ in tests/integration or bench)
BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))
sys.path.insert(0, BENCH)

from ogtest.clients import staple  # noqa: E402
from ogtest.httpd import APACHE, Httpd  # noqa: E402
from ogtest.pki import PKI  # noqa: E402
from ogtest.responder import OcspFront  # noqa: E402
from ogtest.util import LOOPBACK, free_port, world_readable_tempdir  # noqa: E402
from restarts import log_findings, start, stop, summarize  # noqa: E402
from scale import copy_module, version  # noqa: E402

warnings.filterwarnings('ignore', message='Properties that return a na')  # pki.py's not_valid_after
MODULE_SO = os.path.join(REPO, '.libs', 'mod_ocsp_guard.so')
CONFIGS = [('baseline', 'no stapling (reference)'), ('modssl', 'mod_ssl stapling'), ('guard', 'mod_ocsp_guard')]
RENEW_WINDOW = 0.5  # OCSPGuardRenewWindow's default: renewed when less than 50% of the validity remains
AFTER_RESTART_S = 1.0  # "within 1 s after a restart": from the restart's command until 1 s after it completed
RESTART_TIMEOUT_S = 60
CLIENT_JOIN_S = 30  # the client's s_client is bounded by 15 s (ogtest.clients), so this is plenty
EARLY_SHOWN = 8
EARLY_SLACK_S = 1.0  # the front truncates thisUpdate to whole seconds: a renewal may come up to 1 s before V/2
STAMP = re.compile(r'^\[[^]]*\] ')
OG20 = re.compile(r'OG00020: mod_ocsp_guard (\S+): .*?(\d+) stapled \((\d+) revoked, (\d+) from the store.*?'
                  r'prefetch took (\d+) ms')


class TimedFront(OcspFront):
    """The OCSP front, also noting when each request arrived: times [(time.monotonic(), serial)]."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.times = []
        self._times_lock = threading.Lock()

    def record(self, method, path, der, serial, mode):
        with self._times_lock:
            self.times.append((time.monotonic(), serial))
        super().record(method, path, der, serial, mode)

    def reset(self):
        with self._times_lock:
            self.times.clear()
        super().reset()

    def timed(self):
        with self._times_lock:
            return list(self.times)


class Client(threading.Thread):
    """One `openssl s_client -status` (ogtest.clients.staple) to a random vhost every `interval` seconds, one at a
    time; `lock` is held around each handshake, so that a full restart (which takes it) never cuts one short.

    samples: (start since t0, seconds, name, stapled (a successful OCSPResponse), ok (rc 0, chain verified),
    OCSP response status, cert status)."""

    def __init__(self, httpd, pki, names, interval, seed, t0):
        super().__init__(daemon=True, name='week-client')
        self.httpd, self.pki, self.names, self.interval, self.t0 = httpd, pki, names, interval, t0
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.samples = []
        self.errors = []

    def run(self):
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            name = self.rng.choice(self.names)
            with self.lock:
                if self.stop_event.is_set():
                    break
                h0 = time.monotonic()
                try:
                    res = staple(self.httpd, self.pki, f'{name}.localhost')
                except Exception as e:  # noqa: BLE001 -- a benchmark: note it and go on
                    res = None
                    if len(self.errors) < 5:
                        self.errors.append(f'{name} at {h0 - self.t0:.1f} s: {e!r}')
                h1 = time.monotonic()
            ok = res is not None and res.rc == 0 and res.verify_ok
            self.samples.append((h0 - self.t0, h1 - h0, name, res is not None and res.response_status == 'successful',
                                 ok, res and res.response_status, res and res.cert_status))
            if res is not None and not ok and len(self.errors) < 5:
                self.errors.append(f'{name} at {h0 - self.t0:.1f} s: rc={res.rc} verify_ok={res.verify_ok} '
                                   + ' | '.join(res.raw.strip().splitlines()[-2:]))
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay <= 0:
                next_at = time.monotonic()  # late (a full restart held the lock): go on, do not catch up in a burst
            else:
                self.stop_event.wait(delay)


def make_httpd(base, module_so, pki, names, kind, args):
    httpd = Httpd(base, module_so if kind == 'guard' else None, pki)
    httpd.loglevel = 'warn'
    extra, vextra = '', ''
    if kind == 'modssl':
        extra = f'SSLStaplingCache shmcb:{httpd.root}/run/stapling(1024000)\n'
        vextra = '\n'.join(f'    {line}' for line in [
            'SSLUseStapling on', f'SSLStaplingStandardCacheTimeout {args.modssl_cache_timeout:g}',
            f'SSLStaplingErrorCacheTimeout {args.modssl_cache_timeout:g}'])
    elif kind == 'guard':
        extra = 'OCSPGuardRetryDelay 1\n'
    body = ''.join(httpd.vhost(name, f'{name}.localhost', extra=vextra) for name in names) + httpd.status_vhost()
    httpd.write_site(body, extra)
    return httpd


def schedule(span, graceful, full):
    """[(seconds since t0, 'graceful'|'full')]: graceful + full restarts at span x k / (n + 1), k = 1..n, the full
    ones spread evenly among them (for 20 + 2: the 8th and the 15th)."""
    n = graceful + full
    full_ks = set()
    for j in range(1, full + 1):
        k = max(1, min(n, round((n + 1) * j / (full + 1))))
        while k in full_ks:
            k = k % n + 1
        full_ks.add(k)
    return [(span * k / (n + 1), 'full' if k in full_ks else 'graceful') for k in range(1, n + 1)]


def run_config(kind, base, module_so, pki, front, names, args, started):
    """One configuration: a fresh httpd, the observation with its restarts and client; a dict of results."""
    span = args.validity * args.periods
    front.mode = 'short'
    front.short_seconds = args.validity
    front.reset()
    httpd = make_httpd(base, module_so, pki, names, kind, args)
    rc, out = httpd.configtest()
    if rc != 0:
        raise RuntimeError(f'{kind}: apache2 -t failed (rc {rc}):\n{out}')
    r = {'restarts': [], 'restart_errors': [], 'paused_s': 0.0}
    client = None
    try:
        t0 = time.monotonic()
        start(httpd, started)
        r['start_s'] = httpd.start_time_s
        client = Client(httpd, pki, names, args.interval, args.seed, t0)
        client.start()
        for at, what in schedule(span, args.graceful, args.full):
            wait = t0 + at - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # the restarts are spread over the span: waiting is the point
            b = time.monotonic()
            if what == 'graceful':
                rc, out = httpd.graceful(timeout=RESTART_TIMEOUT_S)
                if rc != 0:
                    r['restart_errors'].append(f'graceful at {b - t0:.1f} s: rc {rc}: '
                                               + ' | '.join(out.strip().splitlines()[-3:]))
            else:
                with client.lock:  # no handshake is cut short; the client waits and goes on after the start
                    p0 = time.monotonic()
                    stop(httpd, started)
                    try:
                        start(httpd, started)
                    except RuntimeError as e:
                        r['restart_errors'].append(f'full restart at {b - t0:.1f} s: {e}')
                        raise
                    r['paused_s'] += time.monotonic() - p0
            r['restarts'].append((what, b - t0, time.monotonic() - t0))
        wait = t0 + span - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # the observation ends at t0 + span
        r['observed_s'] = time.monotonic() - t0
        r['times'] = [(t - t0, serial) for t, serial in front.timed()]
    finally:
        if client:
            client.stop_event.set()
            client.join(timeout=CLIENT_JOIN_S)
        stop(httpd, started)
    r['after_end'] = sum(1 for t, _ in r['times'] if t > span)
    r['times'] = [(t, serial) for t, serial in r['times'] if t <= span]
    r['samples'] = list(client.samples) if client else []
    r['client_errors'] = list(client.errors) if client else []
    r['log'] = log_findings(httpd)
    r['og20'] = [m.groups() for m in (OG20.search(line) for line in httpd.log_lines('OG00020')) if m]
    shutil.rmtree(httpd.root, ignore_errors=True)
    return r


def analyse(r, pki, names, args):
    """Add the derived figures to r."""
    span = args.validity * args.periods
    period = args.validity * RENEW_WINDOW
    serials = {pki.leaves[n].serial: n for n in names}
    r['total'] = len(r['times'])
    per = {s: [] for s in serials}
    for t, serial in r['times']:
        per.setdefault(serial, []).append(t)
    r['per_cert'] = {serials.get(s, f'serial {s}'): ts for s, ts in per.items()}
    counts = [len(ts) for ts in r['per_cert'].values()]
    r['max_per_cert'] = max(counts) if counts else 0
    r['min_per_cert'] = min(counts) if counts else 0
    r['periods_plus_one'] = span / period + 1
    r['per_period'] = r['total'] / len(names) / r['periods_plus_one']
    # requests earlier than the renew point: less than V/2 (minus the front's rounding) after the previous request
    # for the same certificate
    gaps = [b - a for ts in r['per_cert'].values() for a, b in zip(ts, ts[1:])]
    r['gaps'] = sorted(gaps)
    early = {(n, b): a for n, ts in r['per_cert'].items() for a, b in zip(ts, ts[1:]) if b - a < period - EARLY_SLACK_S}
    r['early'] = len(early)
    r['early_list'] = sorted(((b, n, a) for (n, b), a in early.items()))
    windows = [(b, e + AFTER_RESTART_S) for _what, b, e in r['restarts']]
    in_window = [(n, t) for n, ts in r['per_cert'].items() for t in ts if any(lo <= t <= hi for lo, hi in windows)]
    r['in_window'] = len(in_window)
    r['in_window_early'] = sum(1 for x in in_window if x in early)
    merged, covered = [], 0.0
    for lo, hi in sorted(windows):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    covered = sum(min(hi, span) - lo for lo, hi in merged if lo < span)
    r['window_share'] = covered / span if span else 0.0
    # per restart: requests within its window
    r['per_restart'] = [sum(1 for _n, t in in_window if lo <= t <= hi) for lo, hi in windows]
    # the client's handshakes
    s = r['samples']
    r['handshakes'] = len(s)
    r['stapled'] = sum(1 for x in s if x[3])
    r['failed'] = sum(1 for x in s if not x[4])
    r['not_good'] = sum(1 for x in s if x[3] and x[6] != 'good')
    # handshakes during which a request for their own certificate reached the responder (mod_ssl fetches there)
    fetched_in = []
    for t, dt, name, stapled, _ok, _rs, _cs in s:
        if any(t <= x <= t + dt for x in r['per_cert'].get(name, [])):
            fetched_in.append((dt, stapled))
    r['fetched_in'] = len(fetched_in)
    r['fetched_in_stapled'] = sum(1 for _dt, st in fetched_in if st)
    r['hs_median_ms'] = statistics.median(x[1] for x in s) * 1000 if s else 0.0
    r['hs_fetch_median_ms'] = statistics.median(dt for dt, _ in fetched_in) * 1000 if fetched_in else None
    r['hs_max_ms'] = max(x[1] for x in s) * 1000 if s else 0.0
    # responder requests per renew period since the start
    buckets = [0] * max(1, int(-(-span // period)))
    for t, _serial in r['times']:
        buckets[min(len(buckets) - 1, int(t // period))] += 1
    r['buckets'] = buckets


def table(results, names, args):
    span = args.validity * args.periods
    head = ['configuration', 'certs', 'validity', 'simulated span', 'graceful/full restarts', 'handshakes',
            'unstapled', 'responder requests', 'per cert per renew period', 'max per cert',
            'requests within 1 s after a restart']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for kind, label in CONFIGS:
        r = results.get(kind)
        if r is None:
            continue
        done_g = sum(1 for what, _b, _e in r['restarts'] if what == 'graceful')
        done_f = sum(1 for what, _b, _e in r['restarts'] if what == 'full')
        unstapled = 'n/a' if kind == 'baseline' else str(r['handshakes'] - r['stapled'])
        within = f'{r["in_window"]} ({r["in_window_early"]} early)'
        lines.append(f'| {label} | {len(names)} | {args.validity:g} s | {args.periods:g} validity periods '
                     f'({span:g} s) | {done_g}/{done_f} | {r["handshakes"]} | {unstapled} | {r["total"]} | '
                     f'{r["per_period"]:.2f} | {r["max_per_cert"]} | {within} |')
    return '\n'.join(lines)


def details(kind, label, r, args):
    period = args.validity * RENEW_WINDOW
    out = [f'- {label}: httpd start {r["start_s"]:.2f} s; requests per certificate min {r["min_per_cert"]} / max '
           f'{r["max_per_cert"]}; per renew period since the start ({period:g} s each): '
           + ', '.join(str(b) for b in r['buckets'])]
    if r['gaps']:
        g = r['gaps']
        out.append(f'    time between two requests for one certificate: min {g[0]:.1f} s, median '
                   f'{statistics.median(g):.1f} s, max {g[-1]:.1f} s; early (less than {period - EARLY_SLACK_S:g} s '
                   f'after the previous one): {r["early"]}; not early: {r["total"] - r["early"]} '
                   f'({(r["total"] - r["early"]) / max(1, len(r["per_cert"])):.1f} per certificate)')
    if r['early_list'] and kind == 'guard':
        def near(t):
            what, b, e = min(r['restarts'], key=lambda x: abs(x[1] - t)) if r['restarts'] else ('-', 0, 0)
            return f'{what} {b:.1f}-{e:.1f} s'
        shown = [f'{n} at {b:.1f} s (previous {a:.1f} s; nearest restart: {near(b)})'
                 for b, n, a in r['early_list'][:EARLY_SHOWN]]
        out.append('    early requests: ' + '; '.join(shown)
                   + (f'; ... {len(r["early_list"]) - EARLY_SHOWN} more' if len(r['early_list']) > EARLY_SHOWN else ''))
    out.append(f'    restart windows (from the command until {AFTER_RESTART_S:g} s after it completed) cover '
               f'{r["window_share"]:.0%} of the span; requests in them per restart: '
               + ' '.join(str(x) for x in r['per_restart']))
    durations = [e - b for _w, b, e in r['restarts']]
    g = [e - b for w, b, e in r['restarts'] if w == 'graceful']
    f = [e - b for w, b, e in r['restarts'] if w == 'full']
    if durations:
        out.append(f'    restarts took: graceful median {statistics.median(g) if g else 0:.2f} s / max '
                   f'{max(g) if g else 0:.2f} s; full (stop + start, client held meanwhile) '
                   + ', '.join(f'{x:.2f} s' for x in f))
    fetch_ms = '-' if r['hs_fetch_median_ms'] is None else f'{r["hs_fetch_median_ms"]:.0f} ms'
    out.append(f'    client: {r["handshakes"]} handshakes, {r["stapled"]} stapled (successful), {r["failed"]} failed, '
               f'{r["not_good"]} stapled but not good; median {r["hs_median_ms"]:.0f} ms, max {r["hs_max_ms"]:.0f} ms '
               f'(s_client included); handshakes during which their certificate was fetched: {r["fetched_in"]} '
               f'({r["fetched_in_stapled"]} of them stapled, median {fetch_ms})')
    if r['after_end']:
        out.append(f'    requests after the span ended (the last handshake, the stop): {r["after_end"]}')
    if r['og20']:
        ver = r['og20'][0][0]
        store = [int(x[3]) for x in r['og20']]
        took = [int(x[4]) for x in r['og20']]
        out.append(f'    OG00020 (mod_ocsp_guard {ver}) x{len(r["og20"])}: from the store per start: '
                   + ' '.join(str(x) for x in store) + f'; prefetch took max {max(took)} ms')
    return '\n'.join(out)


def _terminate(signum, _frame):
    raise KeyboardInterrupt(f'signal {signum}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--certs', type=int, default=20, help='certificates = vhosts (default 20)')
    parser.add_argument('--validity', type=float, default=20.0, help='seconds each OCSP response is valid: one '
                        'simulated day (default 20)')
    parser.add_argument('--periods', type=float, default=7.0, help='validity periods observed per configuration: '
                        'simulated days (default 7: a week)')
    parser.add_argument('--graceful', type=int, default=20, help='graceful restarts over the span (default 20)')
    parser.add_argument('--full', type=int, default=2, help='full restarts (stop + start) over the span (default 2)')
    parser.add_argument('--interval', type=float, default=0.2, help='seconds between two client handshakes '
                        '(default 0.2)')
    parser.add_argument('--seed', type=int, default=1, help='seed of the client\'s vhost choice (default 1)')
    parser.add_argument('--modssl-cache-timeout', type=float, default=5.0, help='mod_ssl: '
                        'SSLStaplingStandardCacheTimeout and SSLStaplingErrorCacheTimeout, seconds (default 5)')
    parser.add_argument('--skip-baseline', action='store_true', help='leave out the no-stapling reference row')
    parser.add_argument('--module', default=MODULE_SO, help=f'mod_ocsp_guard.so to copy and load (default {MODULE_SO})')
    args = parser.parse_args()
    span = args.validity * args.periods
    if (args.certs < 1 or args.validity < 4 or not 5.0 <= span <= 1800.0 or args.graceful < 0 or args.full < 0
            or not 0.05 <= args.interval <= 60 or args.modssl_cache_timeout < 1):
        parser.error('--certs >= 1, --validity >= 4, validity x periods 5-1800 s, --graceful/--full >= 0, '
                     '--interval 0.05-60, --modssl-cache-timeout >= 1')
    if (args.graceful + args.full) and span / (args.graceful + args.full + 1) < 2.0:
        parser.error('restarts less than 2 s apart: lower --graceful/--full or raise --validity/--periods')
    signal.signal(signal.SIGTERM, _terminate)

    began = time.monotonic()
    command = ' '.join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]])
    base = world_readable_tempdir('og-week-')
    front = None
    started = []
    try:
        module_so, built = copy_module(args.module, base)
        print(f'{time.strftime("%Y-%m-%d %H:%M:%S %Z")}: {command}; module {args.module} (built {built}, copied to '
              f'the temp dir); load average {" ".join(f"{x:.2f}" for x in os.getloadavg())}', flush=True)
        port = free_port()
        pki = PKI(os.path.join(base, 'pki'), f'http://{LOOPBACK}:{port}')
        names = [f'w{i}' for i in range(args.certs)]
        for name in names:
            pki.add_leaf(name)
        front = TimedFront(pki, port)
        front.mode = 'short'
        front.short_seconds = args.validity
        front.start()

        results = {}
        for kind, label in CONFIGS:
            if kind == 'baseline' and args.skip_baseline:
                continue
            c0 = time.monotonic()
            r = results[kind] = run_config(kind, base, module_so, pki, front, names, args, started)
            analyse(r, pki, names, args)
            print(f'  {label}: done in {time.monotonic() - c0:.0f} s ({len(r["restarts"])} restarts, '
                  f'{r["handshakes"]} handshakes, {r["total"]} responder requests)', flush=True)

        period = args.validity * RENEW_WINDOW
        n_restarts = args.graceful + args.full
        full_at = [f'{at:.0f} s' for at, what in schedule(span, args.graceful, args.full) if what == 'full']
        print(f'\n{args.certs} certificates (RSA 2048), one name-based vhost each, event MPM, LogLevel warn. Time '
              f'compression: the OCSP front answers with responses valid for V = {args.validity:g} s (thisUpdate = '
              f'the answer), and one validity period stands for one day: {args.periods:g} periods = '
              f'{span:g} s stand for {args.periods:g} days (a week of 1-day responses renewed every 12 h; the same '
              f'run read with 7-day responses is {args.periods:g} weeks). Each configuration: a fresh httpd '
              f'(empty store), observed from its `-k start` for {span:g} s, while the script does {args.graceful} '
              f'`-k graceful` and {args.full} full restarts (`-k stop` until every process is gone, then `-k start`; '
              f'at {", ".join(full_at) or "-"}) at {span:g} s x k/{n_restarts + 1}, and one `openssl s_client '
              f'-status` to a random vhost every ~{args.interval:g} s (held during the full restarts). '
              f'mod_ocsp_guard: `OCSPGuardRetryDelay 1`, defaults otherwise (`OCSPGuardRenewWindow 50%`). mod_ssl: '
              f'`SSLUseStapling on`, `SSLStaplingCache shmcb:...(1024000)`, `SSLStaplingStandardCacheTimeout '
              f'{args.modssl_cache_timeout:g}` and `SSLStaplingErrorCacheTimeout {args.modssl_cache_timeout:g}` '
              f'(their defaults, 3600 s and 600 s, would outlive the {args.validity:g} s responses), '
              f'`SSLStaplingResponseMaxAge` unset.\n')
        print(table(results, names, args))
        print(f'\n`unstapled`: handshakes without a successful OCSP response (n/a without stapling). Renew period P = '
              f'V x 50% = {period:g} s; a certificate fetched once at the start and renewed once per P is asked '
              f'1 + span/P = {span / period + 1:g} times, so `per cert per renew period` = requests / certs / '
              f'(span/P + 1) is 1.00 when every certificate cost exactly one request per renew period plus the first '
              f'fetch (less when the last renewal falls after the end). `requests within 1 s after a restart`: '
              f'requests from a restart\'s command until {AFTER_RESTART_S:g} s after it completed; `early`: of '
              f'those, the ones that came less than P - {EARLY_SLACK_S:g} s after the previous request for the same '
              f'certificate (not due: caused by the restart, not by the renewal schedule).\n')
        for kind, label in CONFIGS:
            if kind in results:
                print(details(kind, label, results[kind], args))
        findings = []
        for kind, label in CONFIGS:
            r = results.get(kind)
            if r is None:
                continue
            lines = r['log'] + r['client_errors'] + r['restart_errors']
            if lines:
                findings.append(f'- {label}: {summarize(lines)}')
        if findings:
            print('\nwarnings and errors (error log at warn and above, client errors, failed restarts):')
            print('\n'.join(findings))
        guard = results.get('guard', {}).get('og20')
        print(f'\ndate: {time.strftime("%Y-%m-%d %H:%M:%S %Z")}; {version(["uname", "-srm"])}; nproc '
              f'{len(os.sched_getaffinity(0))}; version: {version([APACHE, "-v"]).split(": ", 1)[-1]}, '
              f'{version(["openssl", "version"])}, mod_ocsp_guard {guard[0][0] if guard else "?"} ({args.module}, built '
              f'{built}); command: {command}')
        print(f'total time {time.monotonic() - began:.0f} s; load average at end '
              + ' '.join(f'{x:.2f}' for x in os.getloadavg()))
        bad = any(r['failed'] or r['restart_errors'] or r['client_errors'] for r in results.values())
        return 1 if bad else 0
    finally:
        for httpd in list(started):
            httpd.stop(timeout=RESTART_TIMEOUT_S)
        if front:
            front.mode = 'ok'
            front.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        sys.exit(f'interrupted ({e or "SIGINT"}); everything started was stopped and the temp dir removed')
