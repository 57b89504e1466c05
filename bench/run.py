#!/usr/bin/python3
"""run.py: TLS full-handshake rate of httpd without stapling, with mod_ssl's stapling, and with mod_ocsp_guard.

Everything runs on this machine, on 127.0.0.1 only: a throw-away test PKI and the OCSP front (a real
`openssl ocsp` behind a loopback HTTP server) from tests/integration/ogtest, three httpd instances started
one after the other from the same virtual host (leaf 'good', good.localhost, event MPM), and bench/hsclient
as the load generator (two processes in parallel, each doing fresh full handshakes with status_request).
Then, with the OCSP front answering after 2 s, the latency of the first handshake after start for mod_ssl
stapling and for mod_ocsp_guard.  Everything it starts, it stops; everything it writes lives in one temp dir
(removed at the end), except the bench/hsclient binary, which is built next to its source if needed.

usage: bench/run.py [--seconds N]
"""
import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # write nothing outside bench/ (no __pycache__ in tests/integration)
BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))

from ogtest.httpd import Httpd  # noqa: E402
from ogtest.pki import PKI  # noqa: E402
from ogtest.responder import OcspFront  # noqa: E402
from ogtest.util import LOOPBACK, free_port, world_readable_tempdir  # noqa: E402

MODULE_SO = os.path.join(REPO, '.libs', 'mod_ocsp_guard.so')
HSCLIENT_SRC = os.path.join(BENCH, 'hsclient.c')
HSCLIENT = os.path.join(BENCH, 'hsclient')
CFLAGS = ['-O2', '-Wall', '-Wextra', '-Werror']
SERVER_NAME = 'good.localhost'
LEAF = 'good'
CLIENTS = 2
RUNS = 3
WARMUP_S = 2.0
SLOW_DELAY_S = 2.0
CLIENT_GRACE_S = 40  # beyond its own duration, how long one hsclient may take (its socket ops time out at 10 s)
RESULT = re.compile(r'handshakes=(\d+) seconds=([\d.]+) rate=([\d.]+) stapled=(\d+) failures=(\d+)')
LOG_LEVEL = re.compile(r'^\[[^]]*\] \[[^]:]*:(warn|error|crit|alert|emerg)\]')


def build_hsclient():
    """Compile bench/hsclient unless it is newer than its source."""
    if os.path.exists(HSCLIENT) and os.path.getmtime(HSCLIENT) >= os.path.getmtime(HSCLIENT_SRC):
        return
    cmd = ['cc', *CFLAGS, '-o', HSCLIENT, HSCLIENT_SRC, '-lssl', '-lcrypto']
    print('building: ' + ' '.join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        sys.exit(f'building hsclient failed:\n{proc.stdout}{proc.stderr}')


def parse_result(out):
    match = RESULT.search(out)
    if not match:
        return None
    hs, secs, rate, stapled, failures = match.groups()
    return {'handshakes': int(hs), 'seconds': float(secs), 'rate': float(rate), 'stapled': int(stapled),
            'failures': int(failures)}


def run_clients(port, cafile, seconds, clients=CLIENTS, max_handshakes=None, servername=SERVER_NAME,
                hsclient=HSCLIENT):
    """Run `clients` hsclient processes in parallel (status mode); their summed results.

    rate is the sum of the per-process rates; errors lists the stderr lines and any process that failed.
    """
    cmd = [hsclient, LOOPBACK, str(port), servername, cafile, f'{seconds:g}', 'status']
    if max_handshakes:
        cmd.append(str(max_handshakes))
    procs = []
    total = {'handshakes': 0, 'seconds': 0.0, 'rate': 0.0, 'stapled': 0, 'failures': 0, 'errors': []}
    try:
        for _ in range(clients):
            procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=seconds + CLIENT_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate(timeout=10)
                total['errors'].append(f'hsclient pid {proc.pid} timed out and was killed')
            result = parse_result(out)
            total['errors'] += [line for line in err.splitlines() if line.strip()]
            if result is None:
                total['errors'].append(f'hsclient pid {proc.pid} rc={proc.returncode} printed no result: {out!r}')
                continue
            for key in ('handshakes', 'rate', 'stapled', 'failures'):
                total[key] += result[key]
            total['seconds'] = max(total['seconds'], result['seconds'])
    finally:
        for proc in procs:  # only the processes started here, by their Popen handle
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    return total


def make_httpd(base, pki, kind):
    """An Httpd (not started) for kind 'baseline', 'modssl' or 'guard', with the shared vhost."""
    httpd = Httpd(base, MODULE_SO if kind == 'guard' else None, pki)
    httpd.loglevel = 'warn'
    global_extra = [f'SSLSessionCache shmcb:{httpd.root}/run/ssl_scache(512000)']
    vhost_extra = ''
    if kind == 'modssl':
        global_extra.append(f'SSLStaplingCache shmcb:{httpd.root}/run/stapling(1024000)')
        vhost_extra = '    SSLUseStapling on'
    httpd.write_config(httpd.vhost(LEAF, SERVER_NAME, vhost_extra), '\n'.join(global_extra) + '\n')
    return httpd


def start(httpd, started):
    started.append(httpd)
    rc, out = httpd.start()
    if rc != 0:
        raise RuntimeError(f'httpd did not start (rc={rc}):\n{out}')


def stop(httpd, started):
    httpd.stop()
    if httpd in started:
        started.remove(httpd)


def log_findings(httpd):
    """The warn-and-above lines of the error log (without the timestamp and pid part)."""
    return [line.split('] ', 3)[-1] for line in httpd.error_log().splitlines() if LOG_LEVEL.search(line)]


def fraction(part, whole):
    return part / whole if whole else 0.0


def throughput(base, pki, kind, seconds, started):
    httpd = make_httpd(base, pki, kind)
    try:
        start(httpd, started)
        warm = run_clients(httpd.https_port, pki.root_pem, WARMUP_S)
        runs = [run_clients(httpd.https_port, pki.root_pem, seconds) for _ in range(RUNS)]
    finally:
        stop(httpd, started)
    return {'warm': warm, 'runs': runs, 'median': statistics.median(r['rate'] for r in runs),
            'handshakes': sum(r['handshakes'] for r in runs), 'stapled': sum(r['stapled'] for r in runs),
            'failures': sum(r['failures'] for r in runs) + warm['failures'],
            'errors': warm['errors'] + [e for r in runs for e in r['errors']], 'log': log_findings(httpd)}


def first_handshake(base, pki, front, kind, started):
    """Start a fresh httpd while the front answers after SLOW_DELAY_S; time one handshake right after."""
    front.reset()
    httpd = make_httpd(base, pki, kind)
    try:
        start(httpd, started)
        asked_at_start = front.count
        t0 = time.monotonic()
        result = run_clients(httpd.https_port, pki.root_pem, 60, clients=1, max_handshakes=1)
        wall = time.monotonic() - t0
    finally:
        stop(httpd, started)
    return {'start_s': httpd.start_time_s, 'asked_at_start': asked_at_start, 'asked_total': front.count,
            'latency_s': result['seconds'], 'wall_s': wall, 'ok': result['handshakes'] == 1,
            'stapled': result['stapled'] == 1, 'errors': result['errors'], 'log': log_findings(httpd)}


def _terminate(signum, _frame):
    raise KeyboardInterrupt(f'signal {signum}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--seconds', type=float, default=5.0,
                        help='length of each measured run, 1-60 (default 5); 3 runs per configuration')
    args = parser.parse_args()
    if not 1.0 <= args.seconds <= 60.0:
        parser.error('--seconds must be between 1 and 60')
    if not os.path.exists(MODULE_SO):
        sys.exit(f'{MODULE_SO} is missing: run make -f Makefile.apxs first')
    signal.signal(signal.SIGTERM, _terminate)
    build_hsclient()

    names = {'baseline': 'baseline', 'modssl': 'mod_ssl stapling', 'guard': 'mod_ocsp_guard'}
    began = time.monotonic()
    base = world_readable_tempdir('og-bench-')
    front = None
    started = []
    try:
        port = free_port()
        pki = PKI(os.path.join(base, 'pki'), f'http://{LOOPBACK}:{port}')
        front = OcspFront(pki, port)
        front.start()
        ossl = subprocess.run(['openssl', 'version'], capture_output=True, text=True, timeout=10).stdout.strip()
        print(f'{ossl}; {os.cpu_count()} CPUs shared by httpd, {CLIENTS} hsclient processes and the OCSP front; '
              f'leaf {LEAF!r} (RSA 2048) as {SERVER_NAME}; event MPM; LogLevel warn')
        built = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(os.path.getmtime(MODULE_SO)))
        print(f'module {MODULE_SO} (built {built}); load average at start '
              + ' '.join(f'{x:.2f}' for x in os.getloadavg()))
        print(f'per configuration: warm-up {WARMUP_S:g} s, then {RUNS} runs of {args.seconds:g} s, '
              f'{CLIENTS} clients in parallel, full handshakes (no resumption) with status_request\n', flush=True)

        results = {}
        for kind in names:
            results[kind] = throughput(base, pki, kind, args.seconds, started)
            r = results[kind]
            runs = ' '.join(f'{x["rate"]:.0f}' for x in r['runs'])
            print(f'  {names[kind]:<17} warm-up {r["warm"]["rate"]:.0f}/s '
                  f'(stapled {fraction(r["warm"]["stapled"], r["warm"]["handshakes"]):.0%}), runs {runs} /s',
                  flush=True)

        front.mode = 'slow'
        front.delay = SLOW_DELAY_S
        latency = {}
        try:
            for kind in ('modssl', 'guard'):
                latency[kind] = first_handshake(base, pki, front, kind, started)
        finally:
            front.mode = 'ok'

        base_rate = results['baseline']['median']
        print()
        print(f'{"config":<18}{"rate/s":>9}{"stapled":>10}{"failures":>10}{"ratio-to-baseline":>19}   runs (/s)')
        for kind, name in names.items():
            r = results[kind]
            print(f'{name:<18}{r["median"]:>9.1f}{fraction(r["stapled"], r["handshakes"]):>10.1%}'
                  f'{r["failures"]:>10}{fraction(r["median"], base_rate):>19.3f}   '
                  + ' '.join(f'{x["rate"]:.1f}' for x in r['runs']))
        print()
        for a, b in (('modssl', 'baseline'), ('guard', 'baseline'), ('guard', 'modssl')):
            print(f'ratio {names[a]} / {names[b]}: '
                  f'{fraction(results[a]["median"], results[b]["median"]):.3f}')
        print()
        print(f'first handshake after start, OCSP responder answering after {SLOW_DELAY_S:g} s:')
        for kind in ('modssl', 'guard'):
            r = latency[kind]
            verdict = ('stapled' if r['stapled'] else 'NOT stapled') if r['ok'] else 'FAILED'
            print(f'  {names[kind]:<17} httpd start {r["start_s"]:.2f} s, first handshake {r["latency_s"] * 1000:.0f} ms, '
                  f'{verdict}; responder requests: {r["asked_at_start"]} during start, '
                  f'{r["asked_total"] - r["asked_at_start"]} after')

        findings = [(names[k], line) for k in names for line in results[k]['log'] + results[k]['errors']]
        findings += [(f'{names[k]} (slow responder)', line) for k in latency
                     for line in latency[k]['log'] + latency[k]['errors']]
        if findings:
            print('\nwarnings and errors (error logs at warn and above, client errors), first 3 per run:')
            seen = {}
            for who, line in findings:
                seen[who] = seen.get(who, 0) + 1
                if seen[who] <= 3:
                    print(f'  {who}: {line}')
            for who, n in seen.items():
                if n > 3:
                    print(f'  {who}: ... {n} lines in all')
        print(f'\ntotal time {time.monotonic() - began:.0f} s; load average at end '
              + ' '.join(f'{x:.2f}' for x in os.getloadavg()))
        bad = any(r['failures'] or not r['handshakes'] for r in results.values())
        bad = bad or not all(r['ok'] for r in latency.values())
        return 1 if bad else 0
    finally:
        for httpd in list(started):
            httpd.stop()
        if front:
            front.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        sys.exit(f'interrupted ({e or "SIGINT"}); everything started was stopped and the temp dir removed')
