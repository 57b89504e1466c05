#!/usr/bin/python3
"""syscalls.py: system calls per TLS handshake in one httpd child (prefork, one child), counted with
`strace -c -f` while bench/hsclient does N full handshakes with status_request: without stapling, with
mod_ocsp_guard, and optionally with another build of it (--compare PATH, e.g. an older release) side by
side. The handshake path of mod_ocsp_guard should add no system call at all (0.1.0 took the cache's
global mutex: an fcntl lock and unlock per handshake). Loopback only; everything it starts it stops.

usage: bench/syscalls.py [--handshakes N] [--compare PATH_TO_OTHER_mod_ocsp_guard.so]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True
BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))

from ogtest.httpd import Httpd  # noqa: E402
from ogtest.pki import PKI  # noqa: E402
from ogtest.responder import OcspFront  # noqa: E402
from ogtest.util import free_port, world_readable_tempdir  # noqa: E402

ONE_CHILD = 'StartServers 1\nMinSpareServers 1\nMaxSpareServers 1\nServerLimit 1\nMaxRequestWorkers 1\n'
TOTAL = re.compile(r'^100\.00\s+\S+\s+\S+\s+(\d+)\s+(\d*)\s*total', re.M)
ROW = re.compile(r'^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d*)\s*(\w+)$', re.M)


def hsclient():
    path = os.path.join(BENCH, 'hsclient')
    src = os.path.join(BENCH, 'hsclient.c')
    if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(src):
        subprocess.run(['cc', '-O2', '-Wall', '-Wextra', '-Werror', '-o', path, src, '-lssl', '-lcrypto'], check=True)
    return path


def measure(base, pki, label, so, n, client):
    h = Httpd(base, so, pki)
    h.mpm = 'prefork'
    h.loglevel = 'warn'
    h.serve(h.vhost('good', 'good.localhost'), ONE_CHILD)
    try:
        args = [client, '127.0.0.1', str(h.https_port), 'good.localhost', pki.root_pem]
        subprocess.run(args + ['5', 'status', '20'], capture_output=True, timeout=60)  # warm up
        out = os.path.join(base, f'strace-{abs(hash(label))}.txt')
        st = subprocess.Popen(['strace', '-c', '-f', '-o', out] + sum((['-p', str(k)] for k in h.children()), []),
                              stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # strace attaching: nothing to poll for
        r = subprocess.run(args + ['120', 'status', str(n)], capture_output=True, text=True, timeout=180)
        st.terminate()
        st.wait(timeout=30)
        text = open(out).read()
    finally:
        h.stop()
    rows = {m.group(3): int(m.group(1)) for m in ROW.finditer(text)}
    # the refresher's own thread sleeps in pselect6/poll: not the handshake's
    hs = sum(v for k, v in rows.items() if k not in ('pselect6', 'total'))
    return label, r.stdout.strip(), hs / n, rows.get('fcntl', 0) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--handshakes', type=int, default=500)
    ap.add_argument('--compare', help='another mod_ocsp_guard.so to measure side by side')
    a = ap.parse_args()
    client = hsclient()
    base = world_readable_tempdir('og-syscalls-', None)
    port = free_port()
    pki = PKI(os.path.join(base, 'pki'), f'http://127.0.0.1:{port}')
    front = OcspFront(pki, port=port)
    front.start()
    try:
        runs = [('no stapling', None), ('mod_ocsp_guard', os.path.join(REPO, '.libs', 'mod_ocsp_guard.so'))]
        if a.compare:
            runs.append((f'compare: {a.compare}', a.compare))
        results = [measure(base, pki, label, so, a.handshakes, client) for label, so in runs]
    finally:
        front.stop()
        shutil.rmtree(base, ignore_errors=True)
    print(f'{time.strftime("%Y-%m-%d")}, {os.cpu_count()} CPUs; bench/syscalls.py --handshakes {a.handshakes}\n')
    print('| server | system calls per handshake (child) | of which fcntl | hsclient |')
    print('|---|---|---|---|')
    for label, out, per, fcntl in results:
        print(f'| {label} | {per:.2f} | {fcntl:.2f} | {out} |')


if __name__ == '__main__':
    main()
