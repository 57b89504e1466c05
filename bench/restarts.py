#!/usr/bin/python3
"""restarts.py: handshakes during graceful restarts under load (event, worker, prefork; no stapling, mod_ssl's
stapling, mod_ocsp_guard), and handshake latency while the OCSP responder hangs and every response is due.

Everything runs on this machine, on 127.0.0.1 only: a throw-away test PKI (--certs ECDSA P-256 leaves, one
name-based vhost <leaf>.localhost each, one HTTPS port) and the OCSP front from tests/integration/ogtest, httpd
instances started one after the other, bench/hsclient as the load generator and `openssl s_client` as the timed
client.  It is a benchmark: it prints what it measured as two markdown tables and asserts no timing.  Everything
it starts, it stops; everything it writes lives in one temp dir, removed at the end (except bench/hsclient,
built next to its source if missing or older than it).

usage: bench/restarts.py [--seconds N] [--restarts N] [--certs N] [--mpms event,worker,prefork] [--skip-hang]
                         [--module PATH]
"""
import argparse
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import warnings

sys.dont_write_bytecode = True  # write nothing outside bench/ (no __pycache__ in tests/integration or bench)
BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))
sys.path.insert(0, BENCH)

from ogtest.clients import s_client  # noqa: E402
from ogtest.httpd import APACHE, Httpd  # noqa: E402
from ogtest.pki import PKI  # noqa: E402
from ogtest.responder import OcspFront  # noqa: E402
from ogtest.util import LOOPBACK, free_port, world_readable_tempdir  # noqa: E402
from run import HSCLIENT, build_hsclient, parse_result  # noqa: E402
from scale import copy_module, machine, version  # noqa: E402

warnings.filterwarnings('ignore', message='Properties that return a na')  # pki.py's not_valid_after
MODULE_SO = os.path.join(REPO, '.libs', 'mod_ocsp_guard.so')
MPMS = ('event', 'worker', 'prefork')
CONFIGS = [('baseline', 'no stapling'), ('modssl', 'mod_ssl stapling'), ('guard', 'mod_ocsp_guard')]
CLIENTS = 3  # hsclient processes in parallel, each on its own server name
CLIENT_GRACE_S = 60  # beyond its own duration, how long one hsclient may take (its socket ops time out at 10 s)
GRACEFUL_TIMEOUT_S = 30
# part 2: responses valid for SHORT_S, renewed by the module at 50% of that; the responder hangs from
# right after the start for HANG_WINDOW_S, which covers the due point and the expiry of every response
SHORT_S = 10
HANG_WINDOW_S = 20.0
BUCKET_S = 5.0
MODSSL_RESPONDER_TIMEOUT_S = 5
MODSSL_TIME_SKEW_S = 1  # mod_ssl's default 300 s would keep serving the expired responses for 5 minutes
S_CLIENT_TIMEOUT_S = 30
LOG_LEVEL = re.compile(r'^\[[^]]*\] \[[^]:]*:(warn|error|crit|alert|emerg)\]')
LOG_ID = re.compile(r'\b(AH\d{5}|OG\d{5})\b')


def make_httpd(base, module_so, pki, names, kind, mpm, vhost_extra=(), global_extra=()):
    httpd = Httpd(base, module_so if kind == 'guard' else None, pki)
    httpd.mpm = mpm
    httpd.loglevel = 'warn'
    extra, vextra = list(global_extra), list(vhost_extra)
    if kind == 'modssl':
        extra.append(f'SSLStaplingCache shmcb:{httpd.root}/run/stapling(1048576)')
        vextra.insert(0, 'SSLUseStapling on')
    body = ''.join(httpd.vhost(name, f'{name}.localhost', extra='\n'.join(f'    {line}' for line in vextra))
                   for name in names)
    httpd.write_site(body, ''.join(f'{line}\n' for line in extra))
    return httpd


def start(httpd, started):
    started.append(httpd)
    rc, out = httpd.start(timeout=60)
    if rc != 0:
        raise RuntimeError(f'httpd did not start (rc {rc}):\n{out[-4000:]}')


def stop(httpd, started):
    httpd.stop(timeout=60)
    if httpd in started and not httpd._instance_pids():
        started.remove(httpd)


def log_findings(httpd):
    """The warn-and-above lines of the error log, without the timestamp and pid part."""
    return [line.split('] ', 3)[-1] for line in httpd.error_log().splitlines() if LOG_LEVEL.search(line)]


def summarize(lines):
    """'N lines: AH00485 x3, OG00029 x20' and, per message id, its first line (cut at 300 characters)."""
    ids = {}
    for line in lines:
        match = LOG_ID.search(line)
        ids.setdefault(match.group(1) if match else 'other', []).append(line)
    counted = ', '.join(f'{k} x{len(v)}' for k, v in sorted(ids.items()))
    firsts = ''.join(f'\n    - {k}: {v[0][:300]}' for k, v in sorted(ids.items()))
    return f'{len(lines)} lines ({counted}); the first of each:{firsts}'


def warm_pass(httpd, pki, names):
    """One `openssl s_client -status` per vhost (mod_ssl fetches here); (successful staples, failed)."""
    stapled = failed = 0
    for name in names:
        res = s_client(httpd.https_port, f'{name}.localhost', pki.root_pem, timeout=S_CLIENT_TIMEOUT_S)
        stapled += res.response_status == 'successful'
        failed += res.rc != 0 or not res.verify_ok
    return stapled, failed


def client_names(names):
    """CLIENTS server names spread over the list (the first, one a third in, one two thirds in)."""
    return [names[(i * len(names)) // CLIENTS % len(names)] for i in range(CLIENTS)]


def load_with_restarts(httpd, pki, names, seconds, restarts):
    """CLIENTS hsclient processes (status mode) for `seconds` while `restarts` graceful restarts are done at
    seconds * k / (restarts + 1); the summed client results and the restarts' durations."""
    total = {'handshakes': 0, 'rate': 0.0, 'stapled': 0, 'failures': 0, 'errors': [], 'graceful_s': [],
             'graceful_errors': []}
    procs = []
    try:
        for name in client_names(names):
            cmd = [HSCLIENT, LOOPBACK, str(httpd.https_port), f'{name}.localhost', pki.root_pem, f'{seconds:g}',
                   'status']
            procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
        t0 = time.monotonic()
        for k in range(1, restarts + 1):
            wait = t0 + seconds * k / (restarts + 1) - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # the restarts are spread over the run: waiting is the point
            g0 = time.monotonic()
            rc, out = httpd.graceful(timeout=GRACEFUL_TIMEOUT_S)
            total['graceful_s'].append(time.monotonic() - g0)
            if rc != 0:
                total['graceful_errors'].append(f'graceful {k}: rc {rc}: ' + ' | '.join(out.strip().splitlines()[-3:]))
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=max(1.0, t0 + seconds + CLIENT_GRACE_S - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate(timeout=10)
                total['errors'].append(f'hsclient pid {proc.pid} timed out and was killed')
            total['errors'] += [line for line in err.splitlines() if line.strip()]
            result = parse_result(out)
            if result is None:
                total['errors'].append(f'hsclient pid {proc.pid} rc={proc.returncode} printed no result: {out!r}')
                continue
            for key in ('handshakes', 'rate', 'stapled', 'failures'):
                total[key] += result[key]
    finally:
        for proc in procs:  # only the processes started here, by their Popen handle
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    return total


def restart_run(base, module_so, pki, front, names, kind, mpm, args, started):
    front.mode = 'ok'
    front.reset()
    httpd = make_httpd(base, module_so, pki, names, kind, mpm)
    try:
        start(httpd, started)
        asked_start = front.count
        warm_stapled, warm_failed = warm_pass(httpd, pki, names)
        asked_warm = front.count
        r = load_with_restarts(httpd, pki, names, args.seconds, args.restarts)
        r['asked_load'] = front.count - asked_warm
        r['asked_start'], r['asked_warm'] = asked_start, asked_warm - asked_start
        r['warm_stapled'], r['warm_failed'] = warm_stapled, warm_failed
        r['start_s'] = httpd.start_time_s
    finally:
        stop(httpd, started)
    r['log'] = log_findings(httpd)
    shutil.rmtree(httpd.root, ignore_errors=True)
    return r


def percentile(sorted_values, p):
    """Nearest-rank percentile of an ascending list (p in 0-100)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def hang_run(base, module_so, pki, front, names, kind, started):
    """Responses valid for SHORT_S; right after the start (and a warm pass), the responder hangs; then
    sequential, individually timed s_client handshakes over the names for HANG_WINDOW_S."""
    front.mode = 'short'
    front.short_seconds = SHORT_S
    front.reset()
    if kind == 'guard':
        httpd = make_httpd(base, module_so, pki, names, kind, 'event',
                           global_extra=['OCSPGuardRenewWindow 50%', 'OCSPGuardRetryDelay 1'])
    else:
        httpd = make_httpd(base, module_so, pki, names, kind, 'event',
                           vhost_extra=[f'SSLStaplingResponderTimeout {MODSSL_RESPONDER_TIMEOUT_S}',
                                        f'SSLStaplingResponseTimeSkew {MODSSL_TIME_SKEW_S}'])
    samples = []  # (seconds since the start returned, handshake seconds, stapled, ok, OCSP response status)
    try:
        start(httpd, started)
        t_up = time.monotonic()
        warm_stapled, warm_failed = warm_pass(httpd, pki, names)
        asked_before = front.count
        front.mode = 'hang'
        t_hang = time.monotonic()
        i = 0
        while time.monotonic() < t_hang + HANG_WINDOW_S:
            name = names[i % len(names)]
            i += 1
            h0 = time.monotonic()
            res = s_client(httpd.https_port, f'{name}.localhost', pki.root_pem, timeout=S_CLIENT_TIMEOUT_S)
            # stapled = a successful OCSPResponse: s_client prints 'OCSP Response Data:' (res.stapled) for
            # mod_ssl's fake tryLater too
            samples.append((h0 - t_up, time.monotonic() - h0, res.response_status == 'successful',
                            res.rc == 0 and res.verify_ok, res.response_status))
        asked_hang = front.count - asked_before
    finally:
        front.mode = 'short'  # releases the hanging requests
        stop(httpd, started)
    r = {'samples': samples, 'warm_stapled': warm_stapled, 'warm_failed': warm_failed, 'asked_before': asked_before,
         'asked_hang': asked_hang, 'hang_from_s': t_hang - t_up, 'log': log_findings(httpd)}
    shutil.rmtree(httpd.root, ignore_errors=True)
    return r


def restarts_table(results, mpms):
    head = ['MPM', 'config', 'handshakes', 'unstapled', 'failed', 'rate/s', 'restarts done (median / max s)',
            'responder requests (start / warm / load)']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for mpm in mpms:
        for kind, label in CONFIGS:
            r = results[(mpm, kind)]
            unstapled = 'n/a' if kind == 'baseline' else str(r['handshakes'] - r['stapled'])
            g = r['graceful_s']
            restarts = (f'{len(g) - len(r["graceful_errors"])} ({statistics.median(g):.2f} / {max(g):.2f})'
                        if g else '0')
            lines.append(f'| {mpm} | {label} | {r["handshakes"]} | {unstapled} | {r["failures"]} | {r["rate"]:.0f} | '
                         f'{restarts} | {r["asked_start"]} / {r["asked_warm"]} / {r["asked_load"]} |')
    return '\n'.join(lines)


def hang_table(results):
    head = ['config', 'handshakes', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'stapled (successful)', 'failed',
            'responder requests during the hang']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for kind, label in CONFIGS[1:]:
        if kind not in results:
            continue
        r = results[kind]
        times = sorted(s[1] * 1000 for s in r['samples'])
        n = len(times)
        stapled = sum(1 for s in r['samples'] if s[2])
        failed = sum(1 for s in r['samples'] if not s[3])
        pct = [percentile(times, p) for p in (50, 90, 99, 100)]
        lines.append(f'| {label} | {n} | ' + ' | '.join('-' if v is None else f'{v:.0f}' for v in pct)
                     + f' | {stapled / n if n else 0:.1%} ({stapled}) | {failed} | {r["asked_hang"]} |')
    return '\n'.join(lines)


def timeline(r):
    """Per BUCKET_S since the hang began: handshakes, successful staples, max ms."""
    buckets = {}
    for t, dt, stapled, _, _ in r['samples']:
        b = int((t - r['hang_from_s']) // BUCKET_S)
        n, k, worst = buckets.get(b, (0, 0, 0.0))
        buckets[b] = (n + 1, k + stapled, max(worst, dt))
    return ', '.join(f'{b * BUCKET_S:g}-{(b + 1) * BUCKET_S:g} s: {n} hs, {k} stapled, max {worst * 1000:.0f} ms'
                     for b, (n, k, worst) in sorted(buckets.items()))


def statuses(r):
    """'OCSP Response Status as s_client printed it: successful x N, ...; handshakes over 1 s started at: T s
    after the hang began (status, ms), ...'"""
    counts = {}
    for sample in r['samples']:
        counts[sample[4] or 'none'] = counts.get(sample[4] or 'none', 0) + 1
    slow = [f'{t - r["hang_from_s"]:.1f} s ({status or "none"}, {dt * 1000:.0f} ms)'
            for t, dt, _, _, status in r['samples'] if dt > 1.0]
    return ('OCSP Response Status as s_client printed it: ' + ', '.join(f'{k} x{v}' for k, v in sorted(counts.items()))
            + '; handshakes over 1 s started at: ' + (', '.join(slow) if slow else 'none'))


def _terminate(signum, _frame):
    raise KeyboardInterrupt(f'signal {signum}')


def parse_mpms(value):
    mpms = [m.strip() for m in value.split(',') if m.strip()]
    bad = [m for m in mpms if m not in MPMS]
    if bad or not mpms:
        raise argparse.ArgumentTypeError(f'MPMs are a comma-separated subset of {",".join(MPMS)}')
    return mpms


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=30.0, help='load per MPM and configuration, 5-600 s '
                        '(default 30)')
    parser.add_argument('--restarts', type=int, default=10, help='graceful restarts during each load run, spread '
                        'evenly (default 10)')
    parser.add_argument('--certs', type=int, default=20, help='certificates = vhosts (default 20)')
    parser.add_argument('--mpms', type=parse_mpms, default=list(MPMS), help='comma-separated MPMs for part 1 '
                        '(default event,worker,prefork)')
    parser.add_argument('--skip-hang', action='store_true', help='skip part 2 (the hanging responder)')
    parser.add_argument('--module', default=MODULE_SO, help=f'mod_ocsp_guard.so to copy and load (default {MODULE_SO})')
    args = parser.parse_args()
    if not 5.0 <= args.seconds <= 600.0 or args.restarts < 0 or args.certs < 1:
        parser.error('--seconds must be 5-600, --restarts >= 0, --certs >= 1')
    signal.signal(signal.SIGTERM, _terminate)

    began = time.monotonic()
    base = world_readable_tempdir('og-restarts-')
    front = None
    started = []
    try:
        module_so, built = copy_module(args.module, base)
        build_hsclient()

        print(f'date: {time.strftime("%Y-%m-%d %H:%M:%S %Z")}')
        print(f'machine: {machine()}')
        print(f'command: {" ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]])}')
        print(f'software: {version([APACHE, "-v"]).split(": ", 1)[-1]}; {version(["openssl", "version"])}; '
              f'module {args.module} (built {built}, copied to the temp dir)')
        print(f'load average at start: {" ".join(f"{x:.2f}" for x in os.getloadavg())}', flush=True)

        port = free_port()
        pki = PKI(os.path.join(base, 'pki'), f'http://{LOOPBACK}:{port}')
        names = [f'r{i:03d}' for i in range(args.certs)]
        for name in names:
            pki.add_leaf(name, key_type='ec')
        front = OcspFront(pki, port)
        front.builder = 'python'  # answers built in Python: cheaper than one `openssl ocsp` per request
        front.start()

        results = {}
        for mpm in args.mpms:
            for kind, label in CONFIGS:
                c0 = time.monotonic()
                r = results[(mpm, kind)] = restart_run(base, module_so, pki, front, names, kind, mpm, args, started)
                print(f'  {mpm} / {label}: done in {time.monotonic() - c0:.0f} s (start {r["start_s"]:.2f} s, warm '
                      f'pass {r["warm_stapled"]}/{len(names)} stapled, {r["rate"]:.0f} handshakes/s)', flush=True)
        hang = {}
        if not args.skip_hang:
            for kind, label in CONFIGS[1:]:
                c0 = time.monotonic()
                r = hang[kind] = hang_run(base, module_so, pki, front, names, kind, started)
                print(f'  hang / {label}: done in {time.monotonic() - c0:.0f} s '
                      f'({len(r["samples"])} timed handshakes)', flush=True)

        print()
        print(f'## Graceful restarts under load\n\n{args.certs} certificates (ECDSA P-256), one name-based vhost each; '
              f'{CLIENTS} bench/hsclient processes in parallel, one server name each '
              f'({", ".join(f"{n}.localhost" for n in client_names(names))}), full handshakes with status_request '
              f'for {args.seconds:g} s, while the script does {args.restarts} graceful restarts (`-k graceful`, '
              f'each until the new generation logs AH00489) at {args.seconds:g} s x k/{args.restarts + 1}; '
              f'2 servers x 4 threads (event, worker) / 2-8 processes (prefork), LogLevel warn; OCSP front answering '
              f'at once. Before the load, one `openssl s_client -status` per vhost (mod_ssl fetches then). '
              f'`unstapled` = handshakes - stapled; `failed` = failed attempts (connect, handshake or '
              f'verification); rate = the sum of the clients\' rates.\n')
        print(restarts_table(results, args.mpms))
        if hang:
            print(f'\n## Responder hangs while everything is due\n\nevent MPM, {args.certs} certificates; responses '
                  f'valid for {SHORT_S} s (thisUpdate = the fetch); mod_ocsp_guard: `OCSPGuardRenewWindow 50%`, '
                  f'`OCSPGuardRetryDelay 1` (due {SHORT_S / 2:g} s after the fetch at start), defaults otherwise '
                  f'(`OCSPGuardResponderTimeout 5`); mod_ssl: `SSLStaplingResponderTimeout '
                  f'{MODSSL_RESPONDER_TIMEOUT_S}`, `SSLStaplingResponseTimeSkew {MODSSL_TIME_SKEW_S}` (its default '
                  f'300 s would staple the expired responses for 5 more minutes), defaults otherwise; mod_ssl '
                  f'fetches inside the handshake that finds its cached response expired. After the start, one '
                  f'`s_client` per vhost, then the responder hangs (accepts, never answers) and for '
                  f'{HANG_WINDOW_S:g} s sequential `openssl s_client -status` handshakes over the vhosts are timed '
                  f'one by one (time.monotonic around the process: includes starting `openssl`, ~10 ms).\n')
            print(hang_table(hang))
            print()
            for kind, label in CONFIGS[1:]:
                r = hang[kind]
                print(f'- {label}: warm pass {r["warm_stapled"]}/{len(names)} stapled; responder requests before the '
                      f'hang {r["asked_before"]}, during it {r["asked_hang"]}; the hang began {r["hang_from_s"]:.2f} s after '
                      f'the start returned; seconds since the hang began: {timeline(r)}; {statuses(r)}')
        findings = []
        for (mpm, kind), r in results.items():
            lines = r['log'] + r['errors'] + r['graceful_errors']
            if r['warm_failed']:
                lines.append(f'{r["warm_failed"]} warm-pass handshakes failed')
            if lines:
                findings.append(f'- {mpm} / {dict(CONFIGS)[kind]}: {summarize(lines)}')
        for kind, r in hang.items():
            lines = r['log'] + ([f'{r["warm_failed"]} warm-pass handshakes failed'] if r['warm_failed'] else [])
            if lines:
                findings.append(f'- hang / {dict(CONFIGS)[kind]}: {summarize(lines)}')
        if findings:
            print('\nwarnings and errors (error log at warn and above, client errors, failed restarts):')
            print('\n'.join(findings))
        print(f'\ntotal time {time.monotonic() - began:.0f} s; load average at end '
              + ' '.join(f'{x:.2f}' for x in os.getloadavg()))
        bad = any(r['failures'] or r['graceful_errors'] or r['warm_failed'] for r in results.values())
        bad = bad or any(not s[3] for r in hang.values() for s in r['samples'])
        return 1 if bad else 0
    finally:
        for httpd in list(started):
            httpd.stop()
        if front:
            front.mode = 'ok'
            front.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        sys.exit(f'interrupted ({e or "SIGINT"}); everything started was stopped and the temp dir removed')
