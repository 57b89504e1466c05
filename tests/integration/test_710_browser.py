"""The HTML status page in a real browser: Debian's chromium, headless, driven by its own command line
(no Selenium or other packages), loads http://127.0.0.1:<port>/ocsp-status as any browser would (its
navigation Accept header names text/html, so the module answers with the HTML table), and the test
checks the DOM Chromium built: one row per certificate, every state written as text and not only as
colour, and no script error in Chromium's console log.  tools/screenshot-status.py makes the README's
screenshot with the same helpers.

Without /usr/bin/chromium the test is skipped, unless the environment variable CI is set (non-empty):
then it fails.
"""
import json
import os
import re
import signal
import struct
import subprocess
from html.parser import HTMLParser

import pytest

from ogtest.util import LOOPBACK, wait_until, write_file

CHROMIUM = '/usr/bin/chromium'
CHROMIUM_TIMEOUT_S = 60
SCREENSHOT_WINDOW = (2400, 340)  # the table's 13 columns need about 2300 px; 3 rows end near y=310
LEAVES = ['good', 'revoked', 'muststaple']
FAST = 'OCSPGuardRetryDelay 1\n'
# What Chromium writes to stderr (--enable-logging=stderr --v=0) for the page's console, checked by hand
# with Debian's chromium 156 on a local file whose script calls console.error("...") and then an
# undefined function:
#   [10779:10779:1202/035454.619021:INFO:CONSOLE:1] "deliberate console.error", source: file:///...html (1)
#   [10779:10779:1202/035454.619111:INFO:CONSOLE:1] "Uncaught ReferenceError: undefinedFunctionXyz is not
#   defined", source: file:///...html (1)
# and neither line for the same file without the error.  Every console message, whatever its level, is
# logged at INFO with the CONSOLE tag; uncaught exceptions are console messages starting "Uncaught".  The
# many ERROR:dbus/... lines (no system bus in a container) are not the page's, and are not looked at.
# test_status_page_in_chromium repeats that check at every run on such a file (console_canary), so the
# assertion cannot silently become vacuous when a later Chromium words its log differently.
CONSOLE_LINE = re.compile(r':CONSOLE(?::\d+)?\]|\bUncaught\b')
CANARY_HTML = ('<!DOCTYPE html><html><head><title>canary</title></head><body><p>canary</p>'
               '<script>console.error("og canary"); ogUndefinedFunction();</script></body></html>\n')


def require_chromium():
    if os.access(CHROMIUM, os.X_OK):
        return
    if os.environ.get('CI'):
        pytest.fail(f'{CHROMIUM} is missing and CI is set: install Debian\'s chromium '
                    '(apt-get install --no-install-recommends chromium)')
    pytest.skip(f'{CHROMIUM} is not installed (Debian package chromium); under CI=true this fails')


def chromium(profile_dir, *args, timeout=CHROMIUM_TIMEOUT_S):
    """(stdout, stderr) of headless Chromium with a fresh profile in profile_dir and --enable-logging=stderr.

    Chromium runs as root in CI, hence --no-sandbox.  It is started in a session of its own; when it
    outlives timeout its whole process group is killed and AssertionError raised, and any process of
    that group still alive after a normal exit is killed too.
    """
    argv = [CHROMIUM, '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
            '--force-device-scale-factor=1', f'--user-data-dir={profile_dir}',
            '--enable-logging=stderr', '--v=0', *args]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        raise AssertionError(f'chromium did not finish within {timeout}s (killed): {argv}\n'
                             f'stderr:\n{err.decode(errors="replace")[-4000:]}')
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers of its group, if any
        except ProcessLookupError:
            pass
    err = err.decode(errors='replace')
    assert proc.returncode == 0, f'chromium exited {proc.returncode}: {argv}\nstderr:\n{err[-4000:]}'
    return out.decode(errors='replace'), err


def console_lines(stderr):
    """The lines of Chromium's log that report a console message or an uncaught exception of the page."""
    return [line for line in stderr.splitlines() if CONSOLE_LINE.search(line)]


def png_size(path):
    """(width, height) from a PNG file's IHDR; AssertionError if it is no PNG."""
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n' and head[12:16] == b'IHDR', f'{path} is not a PNG'
    return struct.unpack('>II', head[16:24])


def serve_status(httpd):
    """The three leaves on their own vhosts plus the plain-HTTP status vhost; returns the status URL once
    every certificate has its response (stapled) according to the JSON page."""
    body = ''.join(httpd.vhost(name, f'{name}.localhost') for name in LEAVES) + httpd.status_vhost()
    httpd.serve(body, FAST)

    def all_stapled():
        certs = json.loads(httpd.get('/ocsp-status', accept='application/json')[1])['certificates']
        return len(certs) == len(LEAVES) and all(c['stapled'] for c in certs) and certs

    certs = wait_until(all_stapled, 20, 0.2)
    assert certs, httpd.get('/ocsp-status', accept='application/json')[1]
    return f'http://{LOOPBACK}:{httpd.http_port}/ocsp-status', certs


class TableParser(HTMLParser):
    """Collects <title>, <style> text and the rows of every <table>: each row a list of
    (tag, class attribute, text) per cell."""

    def __init__(self):
        super().__init__()
        self.title = ''
        self.style = ''
        self.rows = []
        self._cell = None
        self._in = None

    def handle_starttag(self, tag, attrs):
        if tag == 'tr':
            self.rows.append([])
        elif tag in ('td', 'th') and self.rows:
            self._cell = [tag, dict(attrs).get('class') or '', '']
        elif tag in ('title', 'style'):
            self._in = tag

    def handle_endtag(self, tag):
        if tag in ('td', 'th') and self._cell is not None:
            self._cell[2] = ' '.join(self._cell[2].split())
            self.rows[-1].append(tuple(self._cell))
            self._cell = None
        elif tag in ('title', 'style'):
            self._in = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[2] += data
        elif self._in == 'title':
            self.title += data
        elif self._in == 'style':
            self.style += data


def test_status_page_in_chromium(httpd_factory, pki, front, session_dir):
    # setup: good, revoked and Must-Staple leaves, each stapled; the status page loaded by headless
    # Chromium; expectation: the DOM has a header row and one row per certificate naming it, the
    # revoked status reads 'revoked' and is marked bad, every bad-marked cell has a text, 'yes' under
    # stapled for all three, no console message or uncaught exception, and a screenshot is a PNG
    require_chromium()
    work = os.path.join(session_dir, 'browser')
    os.makedirs(work, exist_ok=True)

    # the console check can fail: a page with a deliberate error is seen by it
    canary = os.path.join(work, 'canary.html')
    write_file(canary, CANARY_HTML)
    _, err = chromium(os.path.join(work, 'profile-canary'), '--dump-dom', f'file://{canary}')
    seen = console_lines(err)
    assert any('Uncaught' in line and 'ogUndefinedFunction' in line for line in seen) \
        and any('og canary' in line for line in seen), \
        f'the console check does not see a deliberate script error; Chromium logged:\n{err[-4000:]}'

    httpd = httpd_factory()
    url, certs = serve_status(httpd)
    dom, err = chromium(os.path.join(work, 'profile-dom'), '--dump-dom', url)
    assert not console_lines(err), f'console messages or script errors on {url}:\n' + '\n'.join(console_lines(err))

    page = TableParser()
    page.feed(dom)
    assert page.title == 'mod_ocsp_guard status', f'not the HTML status page:\n{dom[:2000]}'
    assert re.search(r'\.bad\s*\{\s*color\s*:', page.style), page.style  # bad is a colour ...
    header, rows = page.rows[0], page.rows[1:]
    names = [text for tag, _, text in header]
    assert all(tag == 'th' for tag, _, _ in header)
    assert {'certificate', 'serial', 'status', 'stapled'} <= set(names), names
    assert len(rows) == len(LEAVES), f'{len(rows)} rows besides the header:\n{dom}'
    col = {name: i for i, name in enumerate(names)}
    subjects = {c['serial']: c['subject'] for c in certs}
    by_leaf = {}
    for row in rows:
        assert len(row) == len(header) and all(tag == 'td' for tag, _, _ in row), row
        leaf = [n for n in LEAVES if row[col['serial']][2] == pki.leaves[n].serial_hex]
        assert len(leaf) == 1, row
        by_leaf[leaf[0]] = row
    assert set(by_leaf) == set(LEAVES)  # one row per certificate, none twice
    for name, row in by_leaf.items():
        leaf = pki.leaves[name]
        cert_text = row[col['certificate']][2]
        assert cert_text == subjects[leaf.serial_hex] and f'CN={leaf.dns[0]}' in cert_text, row
        _, status_class, status_text = row[col['status']]
        if name == 'revoked':
            assert status_text == 'revoked' and 'bad' in status_class.split(), row
        else:
            assert status_text == 'good' and 'bad' not in status_class.split(), row
        assert row[col['stapled']][1:] == ('', 'yes'), row
        for tag, cls, text in row:  # ... and never the only sign of a bad state
            assert 'bad' not in cls.split() or text, row

    shot = os.path.join(work, 'status-page.png')
    _, err = chromium(os.path.join(work, 'profile-shot'), f'--screenshot={shot}',
                      '--window-size={},{}'.format(*SCREENSHOT_WINDOW), '--hide-scrollbars', url)
    assert not console_lines(err), '\n'.join(console_lines(err))
    assert png_size(shot) == SCREENSHOT_WINDOW
