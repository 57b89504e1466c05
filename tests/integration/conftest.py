"""pytest fixtures for the mod_ocsp_guard integration tests.

Session scope: a world-readable temp dir (removed at the end unless OG_KEEP_TMP is set), the test PKI
whose AIA points at the OCSP front, and the started front.  Function scope: the front back to its
defaults before each test, and httpd_factory, which makes Httpd instances and stops them all afterwards.
"""
import os
import shutil

import pytest

from ogtest.httpd import Httpd
from ogtest.pki import PKI
from ogtest.responder import (DEFAULT_DELAY_S, DEFAULT_SHORT_SECONDS, DEFAULT_STALE_SECONDS,
                              DEFAULT_VALIDITY_MINUTES, OcspFront)
from ogtest.util import LOOPBACK, free_port, world_readable_tempdir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope='session')
def session_dir():
    path = world_readable_tempdir('ogtest-')
    yield path
    if not os.environ.get('OG_KEEP_TMP'):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope='session')
def front_port():
    """The OCSP front's port, fixed before the PKI is made so that the leaves' AIA can name it."""
    return free_port()


@pytest.fixture(scope='session')
def pki(session_dir, front_port):
    return PKI(os.path.join(session_dir, 'pki'), f'http://{LOOPBACK}:{front_port}')


@pytest.fixture(scope='session')
def front(pki, front_port):
    ocsp_front = OcspFront(pki, front_port)
    ocsp_front.start()
    yield ocsp_front
    ocsp_front.stop()


@pytest.fixture(autouse=True)
def _front_defaults(front):
    """Each test starts with a listening front in mode 'ok', default settings, and zero counts."""
    front.start()
    front.mode = 'ok'
    front.delay = DEFAULT_DELAY_S
    front.validity_minutes = DEFAULT_VALIDITY_MINUTES
    front.short_seconds = DEFAULT_SHORT_SECONDS
    front.stale_seconds = DEFAULT_STALE_SECONDS
    front.far_days = 20
    front.signer = 'delegated'
    front.builder = 'openssl'
    front.embed_chain = False
    front.keepalive = False
    front.answer_delay = 0
    front.reset()


@pytest.fixture
def module_so():
    return os.environ.get('OG_MODULE_SO') or os.path.join(REPO, '.libs', 'mod_ocsp_guard.so')


@pytest.fixture
def httpd_factory(session_dir, pki, module_so):
    """make(module_so=<the module_so fixture>) -> a new Httpd; all are stopped at teardown.

    Their error logs are printed at teardown (pytest shows them for failed tests only).
    """
    instances = []
    default_so = module_so

    def make(module_so=default_so):
        httpd = Httpd(session_dir, module_so, pki)
        instances.append(httpd)
        return httpd

    yield make
    reports = []
    for httpd in instances:
        httpd.stop()
        print(f'{httpd!r} error log (tail):\n{httpd.error_log()[-4000:]}')
        reports += httpd.sanitizer_reports()
    assert not reports, 'sanitizer reports in the error log:\n' + '\n'.join(reports)
