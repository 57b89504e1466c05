#!/usr/bin/python3
"""demo.py: show mod_ocsp_guard stapling, end to end, on this machine only.

Builds a throw-away test PKI, starts the OCSP front (a real `openssl ocsp` behind a small HTTP
server on 127.0.0.1), starts httpd with mod_ssl and the freshly built module on a loopback port,
and shows what `openssl s_client -status` receives on the very first handshake. Everything it
starts, it stops; everything it writes lives in one temp directory, removed at the end.
"""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, 'integration'))

from ogtest.clients import s_client  # noqa: E402
from ogtest.httpd import Httpd  # noqa: E402
from ogtest.pki import PKI  # noqa: E402
from ogtest.responder import OcspFront  # noqa: E402
from ogtest.util import LOOPBACK, free_port, world_readable_tempdir  # noqa: E402


def main():
    module_so = os.path.join(os.path.dirname(HERE), '.libs', 'mod_ocsp_guard.so')
    if not os.path.exists(module_so):
        sys.exit(f'{module_so} is missing: run make -f Makefile.apxs first')
    base = world_readable_tempdir('og-demo-')
    front = httpd = None
    try:
        port = free_port()
        print('1. test PKI: root, intermediate, delegated OCSP responder, leaf good.localhost')
        pki = PKI(os.path.join(base, 'pki'), f'http://{LOOPBACK}:{port}')
        front = OcspFront(pki, port)
        front.start()
        print(f'2. OCSP responder (openssl ocsp behind a loopback front) at {front.url}')
        httpd = Httpd(base, module_so, pki)
        httpd.write_config(httpd.vhost('good', 'good.localhost'),
                           f'SSLSessionCache shmcb:{httpd.root}/run/ssl_scache(512000)\n')
        rc, out = httpd.start()
        if rc != 0:
            sys.exit(f'httpd did not start:\n{out}')
        print(f'3. httpd with mod_ssl + mod_ocsp_guard on https://good.localhost:{httpd.https_port} '
              f'(127.0.0.1), up in {httpd.start_time_s:.2f} s; responder requests so far: {front.count}')
        for line in httpd.error_log().splitlines():
            if 'OG000' in line and ('OG00015' in line or 'OG00020' in line):
                print('   log: ' + line.split('] ', 3)[-1])
        r = s_client(httpd.https_port, 'good.localhost', pki.root_pem)
        print('4. first handshake, openssl s_client -status:')
        show = False
        for line in r.raw.splitlines():
            if 'OCSP response:' in line or 'OCSP Response Data' in line:
                show = True
            if show:
                print('   ' + line)
            if show and 'Next Update' in line:
                break
        print(f'   -> stapled: {r.stapled}, response status: {r.response_status}, '
              f'cert status: {r.cert_status}, chain verified: {r.verify_ok}')
        print(f'5. responder requests after the handshake: {front.count} (the handshake asked nobody)')
        return 0 if r.stapled and r.cert_status == 'good' else 1
    finally:
        if httpd:
            httpd.stop()
        if front:
            front.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
