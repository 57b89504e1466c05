#!/usr/bin/python3
"""tools/package_test.py DEB: the check of the Debian package, run by tools/package-test.sh (root, CI).

Installs DEB with apt-get, makes a test PKI and an OCSP responder on 127.0.0.1 (the integration tests'
ogtest helpers), enables ssl, ocsp_guard and the default-ssl site of the system's /etc/apache2 on two
free loopback ports, checks `apache2ctl -t`, starts Debian's apache2 with `apache2ctl start`, checks one
`openssl s_client -status` handshake (stapled, successful, good) and the store directory, stops
apache2, purges the package and checks that the module and the store are gone.

It changes the real system configuration: ports.conf and sites-available/default-ssl.conf are backed
up first and restored at the end, and every module and site it enabled is disabled again, whatever
happened. Everything it starts it stops; every wait is bounded.
"""
import grp
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests', 'integration'))

from ogtest.clients import s_client  # noqa: E402
from ogtest.pki import PKI  # noqa: E402
from ogtest.responder import OcspFront  # noqa: E402
from ogtest.util import LOOPBACK, free_port, pid_alive, proc_stats, wait_until  # noqa: E402

PACKAGE = 'libapache2-mod-ocsp-guard'
MODULE_SO = '/usr/lib/apache2/modules/mod_ocsp_guard.so'
STORE = '/var/lib/apache2/ocsp_guard'
FLOORS = STORE + '.floors'
ETC = '/etc/apache2'
PORTS_CONF = os.path.join(ETC, 'ports.conf')
SITE_CONF = os.path.join(ETC, 'sites-available', 'default-ssl.conf')
SNAKEOIL = '/etc/ssl/certs/ssl-cert-snakeoil.pem'
SNAKEOIL_KEY = '/etc/ssl/private/ssl-cert-snakeoil.key'
MOD_FILES = [os.path.join(ETC, 'mods-available', 'ocsp_guard.load'),
             os.path.join(ETC, 'mods-available', 'ocsp_guard.conf')]
# a2enmod/a2dismod and the package's maintainer scripts keep who enabled what here
# (enabled_by_admin/ssl, disabled_by_admin/...): restored as they were, too.
A2_STATE = ['/var/lib/apache2/module', '/var/lib/apache2/site', '/var/lib/apache2/conf']
PID_FILE = '/var/run/apache2/apache2.pid'
ERROR_LOG = '/var/log/apache2/error.log'
APACHE = '/usr/sbin/apache2'
WAIT_S = 30
LEAF = 'good'
# A line of the module (its log tag or its name) and the level it was logged at.
MODULE_LINE = re.compile(r'ocsp_guard|OG\d{5}')
LEVEL = re.compile(r'\[(?:[\w.]*:)?(emerg|alert|crit|error|warn|notice|info|debug|trace\d)\]')
QUIET_LEVELS = ('info', 'debug') + tuple(f'trace{i}' for i in range(1, 9))
ENV = dict(os.environ, DEBIAN_FRONTEND='noninteractive', LC_ALL='C')


class Failure(Exception):
    pass


def step(text):
    print(f'package test: {text}', flush=True)


def run(cmd, timeout=WAIT_S * 10, check=True, env=None):
    """Run cmd (bounded), return (rc, stdout+stderr); raise Failure when check and rc != 0."""
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=timeout, env=env or ENV)
    except subprocess.TimeoutExpired as e:
        raise Failure(f'{" ".join(cmd)}: timed out after {timeout}s\n{e.output or ""}') from None
    if check and proc.returncode != 0:
        raise Failure(f'{" ".join(cmd)}: exit {proc.returncode}\n{proc.stdout}')
    return proc.returncode, proc.stdout


def package_installed():
    rc, out = run(['dpkg-query', '-W', '-f', '${Status}', PACKAGE], check=False)
    return rc == 0 and out.strip().endswith(' installed')


def package_known():
    """Installed or with configuration files left: something purge still has to remove."""
    rc, out = run(['dpkg-query', '-W', '-f', '${Status}', PACKAGE], check=False)
    return rc == 0 and 'not-installed' not in out


def enabled(kind):
    """Names enabled in mods-enabled (.load files) or sites-enabled (.conf files)."""
    directory, suffix = {'mods': ('mods-enabled', '.load'), 'sites': ('sites-enabled', '.conf')}[kind]
    path = os.path.join(ETC, directory)
    return {name[:-len(suffix)] for name in os.listdir(path) if name.endswith(suffix)}


def listening(port):
    """True if something listens on 127.0.0.1:port (or the wildcard address), from /proc/net/tcp."""
    wanted = {f'0100007F:{port:04X}', f'00000000:{port:04X}'}
    with open('/proc/net/tcp') as f:
        return any(cols[1] in wanted and cols[3] == '0A' for cols in (line.split() for line in f))


def apache_pids():
    """Pids of the system apache2: /usr/sbin/apache2 processes started without -d or -f (as apache2ctl
    starts it). Instances with a ServerRoot of their own (the integration tests', the benchmarks')
    are not this test's business and are left alone."""
    return {pid for pid, _ppid, argv in proc_stats()
            if argv and argv[0] in (APACHE, 'apache2') and '-d' not in argv and '-f' not in argv}


def read_pid():
    try:
        with open(PID_FILE) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def log_size():
    try:
        return os.path.getsize(ERROR_LOG)
    except OSError:
        return 0


def log_since(offset):
    try:
        with open(ERROR_LOG, errors='replace') as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return ''


def loud_module_lines(text, allowed=QUIET_LEVELS):
    """The module's lines above info (by default): any line naming ocsp_guard or an OGnnnnn tag whose
    level is not in allowed, or that has no level at all (a syntax error, a failed LoadModule)."""
    loud = []
    for line in text.splitlines():
        if not MODULE_LINE.search(line):
            continue
        level = LEVEL.search(line)
        if not level or level.group(1) not in allowed:
            loud.append(line)
    return loud


def replace_once(text, pattern, replacement, what):
    new, count = re.subn(pattern, replacement, text, flags=re.M)
    if count != 1:
        raise Failure(f'{SITE_CONF}: expected one {what}, found {count}')
    return new


class PackageTest:
    def __init__(self, deb):
        self.deb = os.path.abspath(deb)
        self.tmp = tempfile.mkdtemp(prefix='og-package-test-')
        os.chmod(self.tmp, 0o755)
        self.backup = os.path.join(self.tmp, 'backup')
        os.makedirs(self.backup)
        self.front = None
        self.started_pid = None  # apache2's parent, once we started it
        self.mods_before = enabled('mods')
        self.sites_before = enabled('sites')
        self.backed_up = []
        self.state_backed_up = []
        self.log_mark = log_size()
        self.touched = False  # set once the preflight passed: from then on cleanup() undoes things
        self.snakeoil_made = False  # the stock step generated Debian's snakeoil pair: removed at the end

    # ---- the steps ---------------------------------------------------------------------------

    def run(self):
        self.preflight()
        self.install()
        self.stock()
        pki, front_port = self.make_pki()
        http_port, https_port = self.configure(pki, front_port)
        self.configtest()
        self.start(https_port)
        self.handshake(pki, https_port)
        self.stop()
        self.purge()

    def preflight(self):
        if os.geteuid() != 0:
            raise Failure('must run as root (it installs a package and starts the system apache2)')
        if not os.path.isfile(self.deb):
            raise Failure(f'no package file {self.deb}')
        running = apache_pids()
        pid = read_pid()
        if pid and pid_alive(pid):
            running.add(pid)
        if running:
            raise Failure(f'the system apache2 is already running (pids {sorted(running)}): stop it first, '
                          'this test starts and stops it itself')
        for path in (PORTS_CONF, SITE_CONF):
            if not os.path.isfile(path):
                raise Failure(f'{path} not found (is Debian\'s apache2 package installed?)')
        self.touched = True
        for path in (PORTS_CONF, SITE_CONF):
            shutil.copy2(path, os.path.join(self.backup, os.path.basename(path)))
            self.backed_up.append(path)
        for path in A2_STATE:
            if os.path.isdir(path):
                shutil.copytree(path, os.path.join(self.backup, 'state', os.path.basename(path)), symlinks=True)
            self.state_backed_up.append(path)
        step(f'(0) backed up {PORTS_CONF}, {SITE_CONF} and a2enmod\'s state in /var/lib/apache2; '
             'the system apache2 is not running')

    def install(self):
        run(['apt-get', '-o', 'DPkg::Lock::Timeout=120', 'install', '-y', '--no-install-recommends', self.deb])
        if not package_installed():
            raise Failure(f'{PACKAGE} is not installed after apt-get install')
        for path in [MODULE_SO, *MOD_FILES]:
            if not os.path.isfile(path):
                raise Failure(f'{path} missing after installation')
        self.check_store('after installation')
        step(f'(b) installed {os.path.basename(self.deb)}: {MODULE_SO}, mods-available/ocsp_guard.{{load,conf}}, '
             f'{STORE}')

    def stock(self):
        """Debian's own default-ssl site, as a new user enables it: its self-signed snakeoil
        certificate has nothing to staple, and neither -t nor a start may say anything about it
        above info (the module says OG00076 at info; Debian's LogLevel warn hides it)."""
        if not os.path.exists(SNAKEOIL):
            run(['make-ssl-cert', 'generate-default-snakeoil'])
            self.snakeoil_made = True
        http_port, https_port = free_port(), free_port()
        while https_port == http_port:
            https_port = free_port()
        run(['a2enmod', '-q', 'ssl', 'ocsp_guard'])
        run(['a2ensite', '-q', 'default-ssl'])
        self.write_ports(http_port, https_port)
        with open(SITE_CONF) as f:
            site = f.read()
        if 'ssl-cert-snakeoil' not in site:
            raise Failure(f'{SITE_CONF} does not use the snakeoil certificate: not the stock site')
        with open(SITE_CONF, 'w') as f:
            f.write(replace_once(site, r'^(\s*)<VirtualHost\s+[^>]*:443>',
                                 rf'\1<VirtualHost {LOOPBACK}:{https_port}>', '<VirtualHost ...:443>'))
        for args in (['-t'], ['-t', '-c', 'LogLevel warn ocsp_guard:info']):
            rc, out = run(['apache2ctl', *args], check=False)
            loud = loud_module_lines(out)
            if rc != 0 or 'Syntax OK' not in out or loud:
                raise Failure(f'stock default-ssl: apache2ctl {" ".join(args)}: exit {rc}, module lines above '
                              'info:\n' + '\n'.join(loud) + f'\n{out}')
            if len(args) > 1 and 'OG00076' not in out:
                raise Failure(f'stock default-ssl: no OG00076 (self-signed) at LogLevel ocsp_guard:info:\n{out}')
        self.start(https_port)
        log = log_since(self.log_mark)
        loud = loud_module_lines(log)
        if loud:
            raise Failure(f'stock default-ssl: module lines above info at start:\n' + '\n'.join(loud))
        self.stop()
        shutil.copy2(os.path.join(self.backup, os.path.basename(SITE_CONF)), SITE_CONF)
        step('(s) stock default-ssl (snakeoil, self-signed): apache2ctl -t and a start print no ocsp_guard line '
             'above info; OG00076 at info')

    def write_ports(self, http_port, https_port):
        with open(PORTS_CONF, 'w') as f:
            f.write('# Written by tools/package_test.py for the package test; restored at its end.\n'
                    f'Listen {LOOPBACK}:{http_port}\n'
                    '<IfModule ssl_module>\n'
                    f'\tListen {LOOPBACK}:{https_port}\n'
                    '</IfModule>\n')

    def make_pki(self):
        front_port = free_port()
        pki = PKI(os.path.join(self.tmp, 'pki'), f'http://{LOOPBACK}:{front_port}')
        self.front = OcspFront(pki, front_port)
        self.front.start()
        step(f'(c) test PKI in {pki.dir}, OCSP responder on {self.front.url}')
        return pki, front_port

    def configure(self, pki, front_port):
        ports = {front_port}
        http_port = https_port = None
        while http_port is None or http_port in ports:
            http_port = free_port()
        ports.add(http_port)
        while https_port is None or https_port in ports:
            https_port = free_port()
        run(['a2enmod', '-q', 'ssl', 'ocsp_guard'])
        run(['a2ensite', '-q', 'default-ssl'])
        self.write_ports(http_port, https_port)
        leaf = pki.leaves[LEAF]
        with open(SITE_CONF) as f:
            site = f.read()
        site = replace_once(site, r'^(\s*)<VirtualHost\s+[^>]*:443>', rf'\1<VirtualHost {LOOPBACK}:{https_port}>',
                            '<VirtualHost ...:443>')
        site = replace_once(site, r'^(\s*)SSLCertificateFile\s+.*$', rf'\1SSLCertificateFile {leaf.chain}',
                            'SSLCertificateFile')
        site = replace_once(site, r'^(\s*)SSLCertificateKeyFile\s+.*$', rf'\1SSLCertificateKeyFile {leaf.key}',
                            'SSLCertificateKeyFile')
        with open(SITE_CONF, 'w') as f:
            f.write(site)
        step(f'(d) enabled ssl, ocsp_guard, default-ssl; listening on {LOOPBACK}:{http_port} (http) and '
             f'{LOOPBACK}:{https_port} (https) with {os.path.basename(leaf.chain)} ({leaf.dns[0]})')
        return http_port, https_port

    def configtest(self):
        # Plain -t shows what Debian's LogLevel (warn) lets through. The module's findings at -t are
        # logged at the configured LogLevel (-e does not lower it), so -t runs once more with
        # LogLevel ocsp_guard:info, where a finding at notice or above would show.
        info_lines = 0
        for args in (['-t'], ['-t', '-c', 'LogLevel warn ocsp_guard:info']):
            rc, out = run(['apache2ctl', *args], check=False)
            if rc != 0 or 'Syntax OK' not in out:
                raise Failure(f'apache2ctl {" ".join(args)}: exit {rc}\n{out}')
            loud = loud_module_lines(out)
            if loud:
                raise Failure(f'apache2ctl {" ".join(args)}: module lines above info:\n' + '\n'.join(loud))
            info_lines = len([line for line in out.splitlines() if MODULE_LINE.search(line)])
        step(f'(e) apache2ctl -t: Syntax OK, no ocsp_guard line above info (also with LogLevel '
             f'ocsp_guard:info: {info_lines} module line(s), none above info)')

    def start(self, https_port):
        env = dict(ENV)
        try:
            if 'systemd' in os.readlink('/proc/1/exe'):
                env['APACHE_STARTED_BY_SYSTEMD'] = '1'  # apache2ctl would hand over to systemctl
        except OSError:
            pass
        self.log_mark = log_size()
        started = time.monotonic()
        rc, out = run(['apache2ctl', 'start'], check=False, env=env)
        # Whatever apache2ctl said, a parent it left running is ours to stop.
        wait_until(lambda: read_pid() and pid_alive(read_pid()), 5, 0.1)
        pid = read_pid()
        if pid and pid_alive(pid):
            self.started_pid = pid
        if rc != 0:
            raise Failure(f'apache2ctl start: exit {rc}\n{out}\n{log_since(self.log_mark)}')
        if not wait_until(lambda: listening(https_port), WAIT_S, 0.1):
            raise Failure(f'apache2 does not listen on {LOOPBACK}:{https_port} after {WAIT_S}s\n'
                          f'{log_since(self.log_mark)}')
        if not self.started_pid:
            self.started_pid = read_pid()
        step(f'(f) apache2ctl start: pid {self.started_pid}, listening on {LOOPBACK}:{https_port} '
             f'after {time.monotonic() - started:.1f}s')

    def handshake(self, pki, https_port):
        leaf = pki.leaves[LEAF]
        result = s_client(https_port, leaf.dns[0], pki.root_pem, timeout=WAIT_S)
        if result.response_status != 'successful' or result.cert_status != 'good':
            raise Failure(f'openssl s_client -status: OCSP Response Status {result.response_status!r}, '
                          f'Cert Status {result.cert_status!r} (want successful, good)\n{result.raw}\n'
                          f'error log:\n{log_since(self.log_mark)}')
        if not result.verify_ok:
            raise Failure(f'openssl s_client: the chain did not verify against the test root\n{result.raw}')
        step(f'(g) openssl s_client -servername {leaf.dns[0]} -status: OCSP Response Status: successful, '
             f'Cert Status: good (This Update: {result.this_update}); {self.front.count} responder request(s)')
        self.check_store('while apache2 runs')
        # At run time the one notice is the startup summary (OG00020); nothing may be a warning or worse.
        log = log_since(self.log_mark)
        loud = loud_module_lines(log, QUIET_LEVELS + ('notice',))
        if loud:
            raise Failure(f'{ERROR_LOG}: module lines at warn or above since the start:\n' + '\n'.join(loud))
        summary = re.search(r'OG00020: (.*?); prefetch', log)
        entries = len(os.listdir(STORE))
        step(f'(g) {STORE}: www-data:www-data 0700, {entries} entr{"y" if entries == 1 else "ies"}; '
             f'{ERROR_LOG}: no ocsp_guard line at warn or above; OG00020: '
             f'{summary.group(1) if summary else "(no startup summary)"}')

    def check_store(self, when):
        try:
            st = os.lstat(STORE)
        except FileNotFoundError:
            raise Failure(f'{STORE} does not exist {when}') from None
        owner, group = pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name
        mode = stat.S_IMODE(st.st_mode)
        if not stat.S_ISDIR(st.st_mode) or owner != 'www-data' or group != 'www-data' or mode != 0o700:
            raise Failure(f'{STORE} {when}: {stat.filemode(st.st_mode)} {owner}:{group} (mode {mode:04o}); '
                          'want a directory www-data:www-data 0700')

    def stop(self):
        pid = self.started_pid or read_pid()
        run(['apache2ctl', 'stop'], check=False)
        if not self.wait_apache_gone(pid):
            raise Failure(f'apache2 still running {WAIT_S}s after apache2ctl stop: {sorted(apache_pids())}')
        self.started_pid = None
        floors = 'present' if os.path.exists(FLOORS) else 'absent'
        step(f'(h) apache2ctl stop: apache2 (pid {pid}) and its children are gone ({FLOORS}: {floors})')

    def wait_apache_gone(self, pid):
        return wait_until(lambda: not (pid and pid_alive(pid)) and not apache_pids(), WAIT_S, 0.1)

    def purge(self):
        run(['apt-get', '-o', 'DPkg::Lock::Timeout=120', 'purge', '-y', PACKAGE])
        if package_known():
            raise Failure(f'{PACKAGE} still known to dpkg after purge')
        left = [p for p in [MODULE_SO, STORE, FLOORS, *MOD_FILES] if os.path.lexists(p)]
        if left:
            raise Failure(f'left after apt-get purge: {left}')
        step(f'(h) apt-get purge {PACKAGE}: {MODULE_SO}, {STORE} and mods-available/ocsp_guard.* are gone')

    # ---- whatever happened -------------------------------------------------------------------

    def cleanup(self):
        """Stop what was started, purge, restore the configuration; report, never raise."""
        problems = []
        if self.front:
            self.front.stop()
        if not self.touched:  # the preflight failed: nothing was changed, nothing is ours
            shutil.rmtree(self.tmp, ignore_errors=True)
            return True
        # The system apache2 did not run before (preflight): if it runs now, this test started it.
        pids = apache_pids()
        if pids:
            run(['apache2ctl', 'stop'], check=False)
            if not wait_until(lambda: not apache_pids(), WAIT_S, 0.1):
                for pid in sorted(pids & apache_pids()):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                problems.append(f'apache2 (pids {sorted(pids)}) did not stop in {WAIT_S}s: killed')
            else:
                step('cleanup: stopped apache2')
        try:
            if package_known():
                run(['apt-get', '-o', 'DPkg::Lock::Timeout=120', 'purge', '-y', PACKAGE], check=False)
                step('cleanup: purged the package')
        except Failure as e:
            problems.append(str(e))
        for path in self.backed_up:
            shutil.copy2(os.path.join(self.backup, os.path.basename(path)), path)
        for site in sorted(enabled('sites') - self.sites_before):
            run(['a2dissite', '-q', site], check=False)
        # Modules that depend on others first (a2dismod refuses to disable a dependency).
        for _ in range(5):
            extra = enabled('mods') - self.mods_before
            if not extra:
                break
            for mod in sorted(extra, key=lambda m: (m != 'ocsp_guard', m != 'ssl', m)):
                run(['a2dismod', '-q', mod], check=False)
        extra = enabled('mods') - self.mods_before
        if extra:
            problems.append(f'modules still enabled that were not before: {sorted(extra)}')
        for path in self.state_backed_up:
            saved = os.path.join(self.backup, 'state', os.path.basename(path))
            shutil.rmtree(path, ignore_errors=True)
            if os.path.isdir(saved):
                shutil.copytree(saved, path, symlinks=True)
        if self.snakeoil_made:
            for path in (SNAKEOIL, SNAKEOIL_KEY):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        step('cleanup: restored ports.conf, default-ssl.conf and a2enmod\'s state; disabled what the test enabled'
             + ''.join(f'\npackage test: cleanup problem: {p}' for p in problems))
        return not problems


def main():
    if len(sys.argv) != 2:
        print(f'usage: {sys.argv[0]} path/to/{PACKAGE}_VERSION_ARCH.deb', file=sys.stderr)
        return 2
    started = time.monotonic()
    # SIGTERM/SIGHUP (a CI timeout) still runs the cleanup below.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: sys.exit(128 + signum))
    test = PackageTest(sys.argv[1])
    ok = False
    try:
        test.run()
        ok = True
    except Failure as e:
        print(f'package test: FAILED: {e}', file=sys.stderr, flush=True)
    except Exception:  # a bug here: still clean up
        traceback.print_exc()
    finally:
        clean = test.cleanup()
    if ok and clean:
        print(f'package test: steps b-h passed in {time.monotonic() - started:.1f}s')
        return 0
    return 1


if __name__ == '__main__':
    sys.exit(main())
