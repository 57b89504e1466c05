#!/usr/bin/python3
"""cpu.py: full-handshake rate and server CPU time per handshake, RSA and ECDSA, without stapling, with mod_ssl's
stapling and with mod_ocsp_guard, in paired rounds.

Everything runs on this machine, on 127.0.0.1 only: a throw-away test PKI and the OCSP front from
tests/integration/ogtest, three httpd instances (own ServerRoots and ports, event MPM, 2 servers x 4 threads,
LogLevel warn) started once each and kept running for the whole benchmark, each with two name-based vhosts on its
HTTPS port (rsa.localhost: an RSA 2048 leaf, ec.localhost: an ECDSA P-256 leaf), and bench/hsclient as the load
generator (two processes in parallel, fresh full handshakes with status_request).  Each round measures every
configuration once per key type, in an order that changes from round to round; a measurement gives handshakes/s
and the CPU time (utime + stime from /proc) the httpd instance used, so per round the ratios to no stapling are
taken between measurements a few seconds apart.  It is a benchmark: it prints one markdown table and asserts no
figure.  Everything it starts, it stops; everything it writes (hsclient included) lives in one temp dir, removed at
the end.

usage: bench/cpu.py [--rounds N] [--seconds S] [--module PATH]
"""
import argparse
import os
import re
import resource
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
from run import CFLAGS, CLIENTS, HSCLIENT_SRC, run_clients  # noqa: E402
from scale import copy_module, version  # noqa: E402

warnings.filterwarnings('ignore', message='Properties that return a na')  # pki.py's not_valid_after
MODULE_SO = os.path.join(REPO, '.libs', 'mod_ocsp_guard.so')
CONFIGS = [('none', 'no stapling'), ('modssl', 'mod_ssl stapling'), ('guard', 'mod_ocsp_guard')]
# key type, label, leaf name, server name (good and good-ec share good.localhost, and hsclient checks the name
# against its SNI: so two leaves of the same kinds with names of their own)
KEYS = [('rsa', 'RSA 2048', 'cpu-rsa', 'rsa.localhost'), ('ec', 'ECDSA P-256', 'cpu-ec', 'ec.localhost')]
# the orders of the three configurations, round after round: the three rotations, then the three reversed ones
ORDERS = [(0, 1, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0), (0, 2, 1), (1, 0, 2)]
WARMUP_S = 1.0
S_CLIENT_TIMEOUT_S = 30
TICK = os.sysconf('SC_CLK_TCK')
LOG_LEVEL = re.compile(r'^\[[^]]*\] \[[^]:]*:(warn|error|crit|alert|emerg)\]')
OG20 = re.compile(r'OG00020: mod_ocsp_guard (\S+):')


def build_hsclient(base):
    """Compile bench/hsclient.c into the temp dir (nothing is built in the repository); its path."""
    path = os.path.join(base, 'hsclient')
    cmd = ['cc', *CFLAGS, '-o', path, HSCLIENT_SRC, '-lssl', '-lcrypto']
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        sys.exit(f'building hsclient failed ({" ".join(cmd)}):\n{proc.stdout}{proc.stderr}')
    return path


def make_httpd(base, module_so, pki, kind):
    """An Httpd (not started) for 'none', 'modssl' or 'guard', serving both key types."""
    httpd = Httpd(base, module_so if kind == 'guard' else None, pki)
    httpd.loglevel = 'warn'
    extra = ''
    vhost_extra = ''
    if kind == 'modssl':
        extra = f'SSLStaplingCache shmcb:{httpd.root}/run/stapling(1024000)\n'
        vhost_extra = '    SSLUseStapling on'
    body = ''.join(httpd.vhost(leaf, name, extra=vhost_extra) for _, _, leaf, name in KEYS)
    httpd.write_site(body, extra)  # SSLSessionCache shmcb:...(512000), as run.py has it
    return httpd


def _proc_table():
    """pid -> (ppid, utime + stime + cutime + cstime in ticks) for every process in /proc (zombies included:
    a zombie's time is not in its parent's cutime until it is reaped)."""
    table = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        # fields[0] is field 3 (state): ppid is field 4, utime/stime/cutime/cstime are fields 14-17
        table[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))
    return table


def server_cpu(httpd):
    """CPU seconds used so far by the instance: the main process (with its reaped children, cutime + cstime)
    plus every live descendant; and the set of descendant pids (to see whether children came or went)."""
    table = _proc_table()
    if httpd.pid not in table:
        raise RuntimeError(f'httpd {httpd.pid} ({httpd.root}) is gone')
    ticks = table[httpd.pid][1]
    found, todo = set(), [httpd.pid]
    while todo:
        parent = todo.pop()
        for pid, (ppid, t) in table.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                ticks += t
                todo.append(pid)
    return ticks / TICK, frozenset(found)


def steal_s():
    """CPU seconds the hypervisor took from this machine's vCPUs so far (steal, the 8th value of /proc/stat's cpu
    line, summed over the CPUs)."""
    with open('/proc/stat') as f:
        return int(f.readline().split()[8]) / TICK


def children_cpu():
    """User + system seconds of this script's reaped children (the hsclient processes), microsecond resolution."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def measure(hsclient, httpd, key, cafile, seconds):
    """One measurement: the clients' results plus the server CPU seconds and the client CPU seconds it took."""
    _, _, _, name = key
    cpu0, pids0 = server_cpu(httpd)
    client0 = children_cpu()
    steal0 = steal_s()
    r = run_clients(httpd.https_port, cafile, seconds, servername=name, hsclient=hsclient)
    steal1 = steal_s()
    client1 = children_cpu()
    cpu1, pids1 = server_cpu(httpd)
    r['steal_s'] = steal1 - steal0
    r['server_cpu_s'] = cpu1 - cpu0
    r['client_cpu_s'] = client1 - client0
    r['children_changed'] = pids0 != pids1
    r['cpu_ms'] = 1000 * r['server_cpu_s'] / r['handshakes'] if r['handshakes'] else None
    r['client_ms'] = 1000 * r['client_cpu_s'] / r['handshakes'] if r['handshakes'] else None
    return r


def log_findings(httpd):
    """The warn-and-above lines of the error log, without the timestamp and pid part."""
    return [line.split('] ', 3)[-1] for line in httpd.error_log().splitlines() if LOG_LEVEL.search(line)]


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, spec):
    return '-' if value is None else format(value, spec)


def _terminate(signum, _frame):
    raise KeyboardInterrupt(f'signal {signum}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--rounds', type=int, default=7, help='paired rounds, 1-100 (default 7)')
    parser.add_argument('--seconds', type=float, default=3.0,
                        help='length of each measurement (one configuration, one key type), 1-60 s (default 3)')
    parser.add_argument('--module', default=MODULE_SO, help=f'mod_ocsp_guard.so to copy and load (default {MODULE_SO})')
    parser.add_argument('--response', choices=('delegated', 'issuer-bare'), default='delegated',
                        help="the responder's answers: 'delegated' (default: signed by a delegated responder "
                             "whose certificate is embedded, about 1.5 KB) or 'issuer-bare' (signed by the "
                             "intermediate itself, no certificate embedded, about 0.4 KB, as many CAs answer)")
    args = parser.parse_args()
    if not 1 <= args.rounds <= 100 or not 1.0 <= args.seconds <= 60.0:
        parser.error('--rounds must be 1-100 and --seconds 1-60')
    signal.signal(signal.SIGTERM, _terminate)
    command = ' '.join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]])
    names = dict(CONFIGS)

    began = time.monotonic()
    base = world_readable_tempdir('og-cpu-')
    front = None
    started = []
    try:
        module_so, built = copy_module(args.module, base)
        hsclient = build_hsclient(base)
        print(f'load average at start: {" ".join(f"{x:.2f}" for x in os.getloadavg())}; {args.rounds} rounds x '
              f'{len(KEYS)} key types x {len(CONFIGS)} configurations x {args.seconds:g} s', flush=True)

        port = free_port()
        pki = PKI(os.path.join(base, 'pki'), f'http://{LOOPBACK}:{port}')
        for key, _, leaf, name in KEYS:
            pki.add_leaf(leaf, key_type=key, dns=[name])
        front = OcspFront(pki, port, signer='issuer' if args.response == 'issuer-bare' else 'delegated')
        front.no_certs = args.response == 'issuer-bare'
        front.start()

        servers = {}
        for kind, label in CONFIGS:
            httpd = servers[kind] = make_httpd(base, module_so, pki, kind)
            started.append(httpd)
            rc, out = httpd.start(timeout=60)
            if rc != 0:
                raise RuntimeError(f'{label}: httpd did not start (rc {rc}):\n{out[-4000:]}')
        asked_started = front.count

        # warm-up: one s_client -status per vhost (mod_ssl fetches its response here), then WARMUP_S of load
        warm_errors = []
        for kind, label in CONFIGS:
            for key in KEYS:
                res = s_client(servers[kind].https_port, key[3], pki.root_pem, timeout=S_CLIENT_TIMEOUT_S)
                if res.rc != 0 or not res.verify_ok:
                    warm_errors.append(f'{label} / {key[1]}: warm-up s_client rc={res.rc}: '
                                       + ' | '.join(res.raw.strip().splitlines()[-2:]))
                w = run_clients(servers[kind].https_port, pki.root_pem, WARMUP_S, servername=key[3], hsclient=hsclient)
                warm_errors += [f'{label} / {key[1]} (warm-up): {e}' for e in w['errors']]
                if w['failures']:
                    warm_errors.append(f'{label} / {key[1]}: {w["failures"]} failed warm-up handshakes')
        asked_warm = front.count

        # paired rounds
        results = {(key[0], kind): [] for key in KEYS for kind, _ in CONFIGS}
        for rnd in range(args.rounds):
            order = [CONFIGS[i][0] for i in ORDERS[rnd % len(ORDERS)]]
            keys = KEYS if rnd % 2 == 0 else KEYS[::-1]
            line = []
            for key in keys:
                for kind in order:
                    r = measure(hsclient, servers[kind], key, pki.root_pem, args.seconds)
                    results[(key[0], kind)].append(r)
                last = {kind: results[(key[0], kind)][-1] for kind in order}
                line.append(f'{key[0]}: ' + ', '.join(
                    f'{kind} {last[kind]["rate"]:.0f}/s {fmt(last[kind]["cpu_ms"], ".3f")} ms' for kind in order))
            print(f'  round {rnd + 1}/{args.rounds} (order {" ".join(order)}): ' + '; '.join(line), flush=True)
        asked_rounds = front.count - asked_warm

        # per-round ratios against no stapling (same round, same key type)
        summary = {}
        for key in KEYS:
            none = results[(key[0], 'none')]
            for kind, _ in CONFIGS:
                rs = results[(key[0], kind)]
                rate_ratios = [r['rate'] / n['rate'] if n['rate'] else None for r, n in zip(rs, none)]
                cpu_ratios = [r['cpu_ms'] / n['cpu_ms'] if r['cpu_ms'] and n['cpu_ms'] else None
                              for r, n in zip(rs, none)]
                hs = sum(r['handshakes'] for r in rs)
                summary[(key[0], kind)] = {
                    'rate': med(r['rate'] for r in rs), 'rate_ratio': med(rate_ratios), 'rate_ratios': rate_ratios,
                    'cpu_ms': med(r['cpu_ms'] for r in rs), 'cpu_ratio': med(cpu_ratios), 'cpu_ratios': cpu_ratios,
                    'client_ms': med(r['client_ms'] for r in rs),
                    'pooled_cpu_ms': 1000 * sum(r['server_cpu_s'] for r in rs) / hs if hs else None,
                    'handshakes': hs, 'stapled': sum(r['stapled'] for r in rs),
                    'failures': sum(r['failures'] for r in rs), 'errors': [e for r in rs for e in r['errors']],
                    'changed': [i + 1 for i, r in enumerate(rs) if r['children_changed']]}

        # the stapling check: one openssl s_client -status per configuration and key type
        checks = {}
        for kind, _ in CONFIGS:
            for key in KEYS:
                res = s_client(servers[kind].https_port, key[3], pki.root_pem, timeout=S_CLIENT_TIMEOUT_S)
                want = kind != 'none'
                ok = (res.rc == 0 and res.verify_ok
                      and (res.stapled and res.response_status == 'successful') == want)
                checks[(key[0], kind)] = (res, ok)

        logs = {}
        for kind, _ in CONFIGS:
            servers[kind].stop(timeout=60)
            if not servers[kind]._instance_pids():
                started.remove(servers[kind])
            logs[kind] = log_findings(servers[kind])
        og20 = [m.group(1) for m in (OG20.search(line) for line in servers['guard'].log_lines('OG00020')) if m]

        print()
        print('| key type | configuration | handshakes/s (median) | ratio to none (median of per-round ratios) '
              '| server CPU ms per handshake (median) | CPU ratio to none (median of per-round ratios) | stapled |')
        print('|---|---|---|---|---|---|---|')
        for key in KEYS:
            for kind, label in CONFIGS:
                s = summary[(key[0], kind)]
                res, ok = checks[(key[0], kind)]
                share = s['stapled'] / s['handshakes'] if s['handshakes'] else 0.0
                staple = ('yes' if res.stapled and res.response_status == 'successful' else 'no')
                print(f'| {key[1]} | {label} | {fmt(s["rate"], ".0f")} | {fmt(s["rate_ratio"], ".3f")} | '
                      f'{fmt(s["cpu_ms"], ".3f")} | {fmt(s["cpu_ratio"], ".3f")} | {staple} ({share:.1%}) |')
        print()
        print(f'date: {time.strftime("%Y-%m-%d %H:%M:%S %Z")}; {version(["uname", "-srm"])}; nproc '
              f'{len(os.sched_getaffinity(0))}')
        print(f'software: {version([APACHE, "-v"]).split(": ", 1)[-1]}; {version(["openssl", "version"])}; '
              f'mod_ocsp_guard {og20[0] if og20 else "?"} ({args.module}, built {built}, copied to the temp dir)')
        print(f'command: {command}')
        print()
        print(f'{args.rounds} rounds; per round and key type, each configuration once for {args.seconds:g} s with '
              f'{CLIENTS} hsclient processes in parallel (full handshakes, no resumption, status_request, TLS 1.3), '
              f'in the order {" / ".join(" ".join(CONFIGS[i][0] for i in o) for o in ORDERS[:min(args.rounds, 6)])} '
              f'(round 1, 2, ...), the key types alternating which goes first. handshakes/s: the sum of the clients\' '
              f'rates; server CPU: utime + stime of the httpd instance (main process with cutime + cstime, and its '
              f'children) from /proc/<pid>/stat before and after, {TICK} ticks/s; ratios: this configuration / no '
              f'stapling in the same round. stapled: `openssl s_client -status` after the rounds (yes = a successful '
              f'OCSP response), in parentheses the share of the rounds\' hsclient handshakes that got one.')
        print()
        print('per-round ratios to no stapling (rate; CPU per handshake), other figures:')
        for key in KEYS:
            for kind, label in CONFIGS[1:]:
                s = summary[(key[0], kind)]
                print(f'  {key[1]} / {label}: rate {" ".join(fmt(x, ".3f") for x in s["rate_ratios"])}; '
                      f'CPU {" ".join(fmt(x, ".3f") for x in s["cpu_ratios"])}')
        for key in KEYS:
            for kind, label in CONFIGS:
                s = summary[(key[0], kind)]
                rs = results[(key[0], kind)]
                print(f'  {key[1]} / {label}: rates {" ".join(format(r["rate"], ".0f") for r in rs)} /s; '
                      f'server CPU ms/hs '
                      f'{" ".join(fmt(r["cpu_ms"], ".3f") for r in rs)} (pooled over the rounds '
                      f'{fmt(s["pooled_cpu_ms"], ".3f")}); hsclient CPU ms/hs (median) {fmt(s["client_ms"], ".3f")}; '
                      f'{s["handshakes"]} handshakes, {s["failures"]} failed'
                      + (f'; httpd children came or went during round {", ".join(map(str, s["changed"]))}'
                         if s['changed'] else ''))
        print()
        print('stapling check (openssl s_client -status after the rounds):')
        for kind, label in CONFIGS:
            for key in KEYS:
                res, ok = checks[(key[0], kind)]
                what = (f'OCSP Response Status {res.response_status}, Cert Status {res.cert_status}' if res.stapled
                        else 'no OCSP response')
                print(f'  {label} / {key[1]}: {what}; verify {"ok" if res.verify_ok else "FAILED"} (rc {res.rc}); '
                      f'{"as expected" if ok else "NOT AS EXPECTED"}')
        steals = [r['steal_s'] for rs in results.values() for r in rs]
        print(f'steal time (vCPU time the hypervisor gave to others, both CPUs): {sum(steals):.2f} s during the '
              f'{len(steals)} measurements, at most {max(steals):.2f} s in one')
        print(f'responder requests: {asked_started} during the starts, {asked_warm - asked_started} during the '
              f'warm-up, {asked_rounds} during the rounds')

        findings = warm_errors[:]
        for kind, label in CONFIGS:
            findings += [f'{label}: {line}' for line in logs[kind]]
            for key in KEYS:
                findings += [f'{label} / {key[1]}: {e}' for e in summary[(key[0], kind)]['errors']]
        if findings:
            print(f'\nwarnings and errors (error logs at warn and above, client errors): {len(findings)}, '
                  'the first 10:')
            for line in findings[:10]:
                print(f'  {line[:300]}')
        print(f'\ntotal time {time.monotonic() - began:.0f} s; load average at end '
              + ' '.join(f'{x:.2f}' for x in os.getloadavg()))
        bad = any(s['failures'] or not s['handshakes'] for s in summary.values())
        bad = bad or not all(ok for _, ok in checks.values()) or bool(warm_errors)
        return 1 if bad else 0
    finally:
        for httpd in list(started):
            httpd.stop(timeout=60)
        if front:
            front.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt as e:
        sys.exit(f'interrupted ({e or "SIGINT"}); everything started was stopped and the temp dir removed')
