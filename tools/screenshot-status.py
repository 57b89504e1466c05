#!/usr/bin/python3
"""tools/screenshot-status.py [OUTPUT.png]: the README's screenshot of the HTML status page (default
docs/status-page.png), made the way tests/integration/test_710_browser.py loads the page: the test PKI
and OCSP front of the integration tests, an httpd with the 'good', 'revoked' and 'muststaple' leaves and
the status vhost, and headless Debian chromium run by that test's chromium() helper.

The module is OG_MODULE_SO, or <repo>/.libs/mod_ocsp_guard.so.  Everything started here (front, httpd)
is stopped and the temp dir removed before it exits, also on failure.  Run it as root (CI's user), like
the tests.
"""
import os
import shutil
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))

from ogtest.httpd import Httpd  # noqa: E402
from ogtest.pki import PKI  # noqa: E402
from ogtest.responder import OcspFront  # noqa: E402
from ogtest.util import LOOPBACK, free_port, world_readable_tempdir  # noqa: E402
from test_710_browser import (CHROMIUM, SCREENSHOT_WINDOW, chromium, console_lines, png_size,  # noqa: E402
                              serve_status)


def main():
    output = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, 'docs', 'status-page.png'))
    module_so = os.environ.get('OG_MODULE_SO') or os.path.join(REPO, '.libs', 'mod_ocsp_guard.so')
    if not os.access(CHROMIUM, os.X_OK):
        sys.exit(f'{CHROMIUM} is missing: apt-get install --no-install-recommends chromium')
    work = world_readable_tempdir('ogshot-')
    front = httpd = None
    try:
        port = free_port()
        pki = PKI(os.path.join(work, 'pki'), f'http://{LOOPBACK}:{port}')
        front = OcspFront(pki, port)
        front.start()
        httpd = Httpd(work, module_so, pki)
        url, _ = serve_status(httpd)
        tmp = os.path.join(work, 'status-page.png')
        _, err = chromium(os.path.join(work, 'profile'), f'--screenshot={tmp}',
                          '--window-size={},{}'.format(*SCREENSHOT_WINDOW), '--hide-scrollbars', url)
        if console_lines(err):
            sys.exit('console messages or script errors:\n' + '\n'.join(console_lines(err)))
        width, height = png_size(tmp)
        shutil.copyfile(tmp, output)
        print(f'{output}: {width}x{height} PNG of {url}')
    finally:
        if httpd:
            httpd.stop()
        if front:
            front.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
