#!/usr/bin/python3
"""scale.py: httpd with N certificates (one name-based vhost each), without stapling, with mod_ssl's stapling,
with mod_ocsp_guard, and with mod_ocsp_guard again after a full stop + start on its filled store.

Everything runs on this machine, on 127.0.0.1 only: a throw-away test PKI (N ECDSA P-256 leaves from the one
intermediate) and the OCSP front from tests/integration/ogtest, answering every request after --delay seconds,
and one httpd (event MPM, one HTTPS port, N vhosts <leaf>.localhost) per configuration, started one after the
other.  It is a benchmark: it prints what it measured as one markdown table and asserts no timing.  Everything it
starts, it stops; everything it writes lives in one temp dir, removed at the end.

usage: bench/scale.py [--certs N] [--sample K] [--delay S] [--seed X] [--max-wait S] [--module PATH]
"""
import argparse
import json
import os
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import warnings

sys.dont_write_bytecode = True  # write nothing outside bench/ (no __pycache__ in tests/integration)
BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))

from ogtest.clients import s_client  # noqa: E402
from ogtest.httpd import APACHE, Httpd  # noqa: E402
from ogtest.pki import PKI  # noqa: E402
from ogtest.responder import OcspFront  # noqa: E402
from ogtest.util import LOOPBACK, free_port, wait_until, world_readable_tempdir  # noqa: E402

warnings.filterwarnings('ignore', message='Properties that return a na')  # pki.py's not_valid_after
MODULE_SO = os.path.join(REPO, '.libs', 'mod_ocsp_guard.so')
STATUS_PATH = '/ocsp-status?json'
SETTLE_S = 10.0  # the memory point: at least this long after the start returned (and after 100% for the guard)
LOG_LEVEL = re.compile(r'^\[[^]]*\] \[[^]:]*:(warn|error|crit|alert|emerg)\]')
CONFIGS = [('baseline', '1 no stapling'), ('modssl', '2 mod_ssl stapling'), ('guard', '3 mod_ocsp_guard'),
           ('guard-restart', '4 mod_ocsp_guard, stop + start, store filled')]


def machine():
    model = mem = '?'
    with open('/proc/cpuinfo') as f:
        for line in f:
            if line.startswith('model name'):
                model = line.split(':', 1)[1].strip()
                break
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemTotal:'):
                mem = ' '.join(line.split()[1:])
                break
    return f'nproc {len(os.sched_getaffinity(0))}, {model}, MemTotal {mem}'


def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return '?'
    return out.strip().splitlines()[0] if out.strip() else '?'


def copy_module(src, base):
    """Copy the module under test into base (the original may be rebuilt while a benchmark runs):
    (path of the copy, its build time as text)."""
    module_so = os.path.join(base, 'mod_ocsp_guard.so')
    try:
        shutil.copy2(src, module_so)
    except OSError as e:
        sys.exit(f'cannot copy {src}: {e} (make -f Makefile.apxs builds it)')
    os.chmod(module_so, 0o755)
    return module_so, time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(os.path.getmtime(module_so)))


def pss_kb(httpd):
    """Pss over the main process of this instance and its children, in KB: (total, processes, detail).

    detail: 'parent P + children C1 C2 ...; anon A, file F, shmem S' (MB), from /proc/<pid>/smaps_rollup.
    """
    pids = sorted({httpd.pid} | set(httpd.children()) | set(httpd._instance_pids()), key=lambda p: p != httpd.pid)
    per, kinds = [], {'Pss_Anon:': 0, 'Pss_File:': 0, 'Pss_Shmem:': 0}
    for pid in pids:
        try:
            with open(f'/proc/{pid}/smaps_rollup') as f:
                fields = dict(line.split()[:2] for line in f if line.endswith('kB\n'))
        except (FileNotFoundError, ProcessLookupError):
            continue
        per.append(int(fields.get('Pss:', 0)))
        for key in kinds:
            kinds[key] += int(fields.get(key, 0))
    mb = [f'{kb / 1024:.1f}' for kb in per]
    detail = (f'parent {mb[0] if mb else "?"} + children {" ".join(mb[1:])}; anon {kinds["Pss_Anon:"] / 1024:.1f}, '
              f'file {kinds["Pss_File:"] / 1024:.1f}, shmem {kinds["Pss_Shmem:"] / 1024:.1f}')
    return sum(per), len(per), detail


def configtest_s(httpd):
    """Time `apache2 -d <root> -f <conf> -t`; (seconds, rc, output)."""
    t0 = time.monotonic()
    proc = subprocess.run([APACHE, '-d', httpd.root, '-f', httpd.conf_path, '-t'], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    return time.monotonic() - t0, proc.returncode, proc.stdout


class StatusPoller(threading.Thread):
    """Polls the ocsp-guard-status JSON until every certificate is stapled or the deadline passes.

    done_s: seconds from t0 until the first poll that saw all `total` stapled (None if never);
    asked: the front's count at that poll; last: (stapled, certificates) of the last good poll.
    """

    def __init__(self, httpd, front, total, t0, max_wait, interval):
        super().__init__(daemon=True)
        self.httpd, self.front, self.total, self.t0 = httpd, front, total, t0
        self.deadline, self.interval = t0 + max_wait, interval
        self.done_s = self.asked = None
        self.last = (0, 0)
        self.errors = []
        self.polls = []  # seconds per status GET + parse
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            now = time.monotonic()
            try:
                _, text = self.httpd.get(STATUS_PATH, timeout=30)
                certs = json.loads(text)['certificates']
                stapled = sum(1 for c in certs if c.get('stapled'))
                self.polls.append(time.monotonic() - now)
                self.last = (stapled, len(certs))
                if len(certs) >= self.total and stapled >= self.total:
                    self.done_s = now - self.t0
                    self.asked = self.front.count
                    return
            except Exception as e:  # noqa: BLE001 -- a benchmark: note it and poll again
                if len(self.errors) < 3:
                    self.errors.append(f'status page: {e!r}')
            if time.monotonic() >= self.deadline:
                return
            self.stop_event.wait(self.interval)


def poll_interval(certs):
    """Seconds between two status polls: the JSON is ~660 bytes per certificate (6.6 MB for 10,000, about
    0.2 s to make and as long to parse), so poll less often with many certificates."""
    return max(0.5, certs / 5000)


def run_config(kind, httpd, front, sample, args, started):
    """Start httpd (already configured), measure, stop; a dict of results."""
    r = {'kind': kind}
    r['t_s'], rc, out = configtest_s(httpd)
    if rc != 0:
        raise RuntimeError(f'{kind}: apache2 -t failed (rc {rc}):\n{out}')
    front.reset()
    guard = kind.startswith('guard')
    if guard:
        store = httpd.store_dir
        r['store_files'] = len([f for f in os.listdir(store) if f.endswith('.ocsp')]) if os.path.isdir(store) else 0
    mark = httpd.log_mark()
    t0 = time.monotonic()
    if httpd not in started:
        started.append(httpd)
    rc, out = httpd.start(timeout=max(60, int(args.certs * 0.03)))
    if rc != 0:
        raise RuntimeError(f'{kind}: httpd did not start (rc {rc}):\n{out[-4000:]}')
    up_at = time.monotonic()
    r['start_s'] = httpd.start_time_s
    r['asked_start'] = front.count
    poller = None
    if guard:
        poller = StatusPoller(httpd, front, args.certs, t0, args.max_wait, poll_interval(args.certs))
        poller.start()
    times, stapled, failed = [], 0, []
    for name in sample:
        h0 = time.monotonic()
        res = s_client(httpd.https_port, f'{name}.localhost', front.pki.root_pem, timeout=30)
        times.append(time.monotonic() - h0)
        stapled += res.stapled
        if res.rc != 0 or not res.verify_ok:
            failed.append(f'{name}: rc={res.rc} ' + ' | '.join(res.raw.strip().splitlines()[-2:]))
    r['sample_s'] = time.monotonic() - up_at
    r['stapled_pct'] = 100.0 * stapled / len(sample) if sample else 0.0
    r['hs_median_ms'] = statistics.median(times) * 1000 if times else 0.0
    r['hs_failed'] = failed
    r['asked_sample'] = front.count - r['asked_start']
    if poller:
        poller.join(timeout=args.max_wait + 60)
        poller.stop_event.set()
        r['done_s'], r['asked_done'], r['last'] = poller.done_s, poller.asked, poller.last
        r['poll_errors'] = poller.errors
        r['polls'] = poller.polls
    wait = SETTLE_S - (time.monotonic() - up_at)
    if wait > 0:
        time.sleep(wait)  # the memory point comes at a fixed time after the start: waiting is the point
    r['asked_total'] = front.count
    r['pss_kb'], r['procs'], r['pss_detail'] = pss_kb(httpd)
    s0 = time.monotonic()
    httpd.stop(timeout=120)
    r['stop_s'] = time.monotonic() - s0
    if httpd in started and not httpd._instance_pids():
        started.remove(httpd)
    log = httpd.error_log()[mark:]
    r['log'] = [line.split('] ', 3)[-1] for line in log.splitlines() if LOG_LEVEL.search(line)]
    r['summary'] = [line.split('] ', 3)[-1] for line in log.splitlines() if 'OG00020' in line]
    return r


def make_httpd(base, module_so, pki, names, kind):
    httpd = Httpd(base, module_so if kind == 'guard' else None, pki)
    httpd.loglevel = 'warn'
    extra = ''
    vhost_extra = ''
    if kind == 'modssl':
        size = len(names) * 4096 + 1024 * 1024
        extra = f'SSLStaplingCache shmcb:{httpd.root}/run/stapling({size})\n'
        vhost_extra = '    SSLUseStapling on'
    body = ''.join(httpd.vhost(name, f'{name}.localhost', extra=vhost_extra) for name in names)
    httpd.write_site(body + httpd.status_vhost(), extra)
    return httpd


def fmt(value, spec, missing='-'):
    return missing if value is None else format(value, spec)


def table(results, n, max_wait):
    base_kb = results['baseline']['pss_kb']
    rows = []

    def row(label, fn):
        rows.append([label] + [fn(results[k]) if k in results else '-' for k, _ in CONFIGS])

    row('`apache2 -t` (s)', lambda r: f'{r["t_s"]:.2f}')
    row('start (s, `Httpd.start_time_s`)', lambda r: f'{r["start_s"]:.2f}')
    row('stapled at first handshake (sample)', lambda r: f'{r["stapled_pct"]:.1f}%')
    row('median first handshake (ms, incl. s_client)', lambda r: f'{r["hs_median_ms"]:.0f}')
    row('sample handshake failures', lambda r: str(len(r['hs_failed'])))
    row('until 100% stapled (s since `-k start`)',
        lambda r: (fmt(r['done_s'], '.2f', f'>{max_wait:g} ({r["last"][0]}/{r["last"][1]})')
                   if 'done_s' in r else 'n/a'))
    row('responder requests during start', lambda r: str(r['asked_start']))
    row('responder requests until 100% (guard) / during the sample (1-2)',
        lambda r: (fmt(r['asked_done'], 'd', f'{r["asked_total"]} (no 100%)') if 'done_s' in r
                   else str(r['asked_start'] + r['asked_sample'])))
    row('responder requests until the memory point', lambda r: str(r['asked_total']))
    row('PSS, all httpd processes (MB)', lambda r: f'{r["pss_kb"] / 1024:.1f} ({r["procs"]} procs)')
    row('PSS - config 1, per certificate (KB)', lambda r: f'{(r["pss_kb"] - base_kb) / n:+.2f}')
    row('`-k stop` (s, `httpd.stop()`)', lambda r: f'{r["stop_s"]:.2f}')
    head = ['metric'] + [label for _, label in CONFIGS]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
    return '\n'.join(lines)


def _terminate(signum, _frame):
    raise KeyboardInterrupt(f'signal {signum}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--certs', type=int, default=1000, help='certificates = vhosts (default 1000)')
    parser.add_argument('--sample', type=int, default=200, help='vhosts handshaken right after each start '
                        '(default 200, capped at --certs)')
    parser.add_argument('--delay', type=float, default=0.05, help='seconds the responder adds to every answer '
                        '(default 0.05)')
    parser.add_argument('--prebuilt', action='store_true',
                        help='the front builds every answer once before the servers start and then '
                             'serves it from memory (after the delay), keeping connections open: '
                             'measures the server, not the responder')
    parser.add_argument('--seed', type=int, default=1, help='seed of the sample (default 1)')
    parser.add_argument('--max-wait', type=float, default=120.0, help='bound on the wait for 100%% stapled, '
                        'seconds since -k start (default 120)')
    parser.add_argument('--module', default=MODULE_SO, help=f'mod_ocsp_guard.so to copy and load (default {MODULE_SO})')
    args = parser.parse_args()
    if args.certs < 1 or args.sample < 0 or args.delay < 0 or args.max_wait <= 0:
        parser.error('--certs must be >= 1, --sample and --delay >= 0, --max-wait > 0')
    signal.signal(signal.SIGTERM, _terminate)

    began = time.monotonic()
    base = world_readable_tempdir('og-scale-')
    front = None
    started = []
    try:
        module_so, built = copy_module(args.module, base)

        print(f'date: {time.strftime("%Y-%m-%d %H:%M:%S %Z")}')
        print(f'machine: {machine()}')
        print(f'command: {" ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]])}')
        print(f'software: {version([APACHE, "-v"]).split(": ", 1)[-1]}; {version(["openssl", "version"])}; '
              f'module {args.module} (built {built}, copied to the temp dir)')
        print(f'load average at start: {" ".join(f"{x:.2f}" for x in os.getloadavg())}', flush=True)

        port = free_port()
        t0 = time.monotonic()
        pki = PKI(os.path.join(base, 'pki'), f'http://{LOOPBACK}:{port}')
        t1 = time.monotonic()
        names = [f'c{i:05d}' for i in range(args.certs)]
        for name in names:
            pki.add_leaf(name, key_type='ec')
        t2 = time.monotonic()
        print(f'PKI: base {t1 - t0:.1f} s, {args.certs} ECDSA leaves in {t2 - t1:.1f} s '
              f'({(t2 - t1) / args.certs * 1000:.1f} ms per leaf)', flush=True)
        front = OcspFront(pki, port)
        front.mode = 'slow'
        front.delay = args.delay
        # built in Python, not by one `openssl ocsp` process per request (8-14 ms of CPU each on
        # the 2 CPUs httpd uses too): the responder, not the server, was the limit at 10,000
        front.builder = 'python'
        if args.prebuilt:
            # every answer built once before the servers start and served from memory: the
            # responder then costs (almost) no CPU of the two the server uses, and the figures
            # are the server's own; without it, the front's signing is the limit at 10,000
            front.builder = 'prebuilt'
            front.keepalive = True  # as CAs' responders (CDNs) answer: no connection and thread per request
            t3 = time.monotonic()
            front.prebuild(pki.leaves[name] for name in names)
            print(f'front: {len(names)} answers built in {time.monotonic() - t3:.1f} s', flush=True)
        front.start()
        sample = random.Random(args.seed).sample(names, min(args.sample, len(names)))

        results = {}
        guard_httpd = None
        for kind, label in CONFIGS:
            c0 = time.monotonic()
            if kind == 'guard-restart':
                httpd = guard_httpd  # same ServerRoot and store: stopped by run_config('guard'), started again
            else:
                httpd = make_httpd(base, module_so, pki, names, kind)
                if kind == 'guard':
                    guard_httpd = httpd
            results[kind] = run_config(kind, httpd, front, sample, args, started)
            r = results[kind]
            extra = f', store files before start {r["store_files"]}' if 'store_files' in r else ''
            print(f'  {label}: done in {time.monotonic() - c0:.0f} s (start {r["start_s"]:.2f} s, '
                  f'sample of {len(sample)} in {r["sample_s"]:.1f} s{extra})', flush=True)
            if kind not in ('guard', 'guard-restart'):
                shutil.rmtree(httpd.root, ignore_errors=True)

        print()
        print(f'{args.certs} certificates (ECDSA P-256, one intermediate), one name-based vhost each on one HTTPS '
              f'port, event MPM (2 servers x 4 threads), LogLevel warn; responder delay {args.delay * 1000:g} ms '
              f'({"answers built before the start and served from memory, keep-alive" if args.prebuilt else "answers built in Python"} by the OCSP front); sample of {len(sample)} vhosts (seed {args.seed}), one '
              f'`openssl s_client -status` each, sequential, right after the start; memory point: '
              f'>= {SETTLE_S:g} s after the start returned, and after 100% for 3-4')
        print()
        print(table(results, args.certs, args.max_wait))
        print()
        for kind, label in CONFIGS:
            polls = results[kind].get('polls')
            if polls:
                print(f'{label}: {len(polls)} status polls every {poll_interval(args.certs):g} s, median '
                      f'{statistics.median(polls) * 1000:.0f} ms each (GET {STATUS_PATH} + json.loads)')
        print('PSS by process (MB):')
        for kind, label in CONFIGS:
            print(f'  {label}: {results[kind]["pss_detail"]}')
        print()
        for kind, label in CONFIGS:
            r = results[kind]
            for line in r.get('summary', []):
                print(f'{label}: {line}')
        findings = []
        for kind, label in CONFIGS:
            r = results[kind]
            lines = r['log'] + r['hs_failed'] + r.get('poll_errors', [])
            if lines:
                findings.append(f'  {label}: {len(lines)} lines; first: ' + ' || '.join(lines[:3]))
        if findings:
            print('\nwarnings and errors (error log at warn and above, failed handshakes, status page errors):')
            print('\n'.join(findings))
        print(f'\ntotal time {time.monotonic() - began:.0f} s; load average at end '
              + ' '.join(f'{x:.2f}' for x in os.getloadavg()))
        bad = any(r['hs_failed'] for r in results.values())
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
