"""Httpd: one throw-away Apache httpd 2.4 instance (Debian's /usr/sbin/apache2) for the integration tests.

It owns a fresh, world-readable ServerRoot under the temp dir, two loopback ports (HTTPS and plain HTTP),
the generated conf/httpd.conf, and the lifecycle (configtest, start, graceful, restart, stop) of the
processes started from that config.  Every wait is polled with a bound.
"""
import os
import re
import signal
import subprocess
import time
import urllib.request

from .util import LOOPBACK, free_port, pid_alive, proc_stats, wait_until, world_readable_tempdir, write_file

APACHE = '/usr/sbin/apache2'
MODULE_DIR = '/usr/lib/apache2/modules'
# (module name, file); mod_unixd, mod_watchdog, mod_log_config, mod_logio are compiled into Debian's apache2.
STANDARD_MODULES = [('mpm_event_module', 'mod_mpm_event.so'), ('authz_core_module', 'mod_authz_core.so'),
                    ('ssl_module', 'mod_ssl.so'), ('socache_shmcb_module', 'mod_socache_shmcb.so'),
                    ('status_module', 'mod_status.so'), ('mime_module', 'mod_mime.so'),
                    ('alias_module', 'mod_alias.so'), ('setenvif_module', 'mod_setenvif.so'),
                    ('dir_module', 'mod_dir.so')]  # mod_dir: / serves htdocs/index.html
GENERATION_UP = 'resuming normal operations'  # AH00489, logged by every (re)started generation
LOG_TAG = re.compile(r'OG\d{5}')
SANITIZER_REPORT = re.compile(r'ERROR: AddressSanitizer|runtime error: |ERROR: LeakSanitizer|exit signal (Segmentation|Abort|Bus|Illegal)')
SANITIZER_RUNTIMES = '/usr/lib/x86_64-linux-gnu/libasan.so.8:/usr/lib/x86_64-linux-gnu/libubsan.so.1'


def _apache_env():
    """The environment of apache2: with OG_SANITIZE=1, the module was built with ASan/UBSan and
    Debian's uninstrumented apache2 needs the runtimes preloaded."""
    env = dict(os.environ)
    if os.environ.get('OG_SANITIZE') == '1':
        env['LD_PRELOAD'] = SANITIZER_RUNTIMES
        env['ASAN_OPTIONS'] = 'detect_leaks=0:abort_on_error=0:log_path=stderr'
        env['UBSAN_OPTIONS'] = 'print_stacktrace=1'
    return env


def _listening(port):
    """True if a socket is in LISTEN state on 127.0.0.1:port or 0.0.0.0:port (read from /proc/net/tcp)."""
    wanted = {f'0100007F:{port:04X}', f'00000000:{port:04X}'}
    with open('/proc/net/tcp') as f:
        return any(cols[1] in wanted and cols[3] == '0A' for cols in (line.split() for line in f))


class Httpd:
    """An httpd whose ServerRoot is a fresh 0755 dir under base_dir (default: the system temp dir).

    module_so: path of mod_ocsp_guard.so to LoadModule, or None for a plain httpd.
    mpm: 'event' (default), 'worker' or 'prefork'.
    Attributes: root, conf_path, error_log_path, pid_file, https_port, http_port, loglevel, pid, start_time_s.
    """

    def __init__(self, base_dir, module_so, pki):
        self.pki = pki
        self.module_so = module_so
        self.root = world_readable_tempdir('httpd-', base_dir)
        for sub in ('conf', 'logs', 'run', 'htdocs'):
            os.makedirs(os.path.join(self.root, sub), mode=0o755)
        write_file(os.path.join(self.root, 'htdocs', 'index.html'), '<html><body>ocsp guard test</body></html>\n')
        write_file(os.path.join(self.root, 'conf', 'mime.types'), 'text/html html\n')
        self.conf_path = os.path.join(self.root, 'conf', 'httpd.conf')
        self.error_log_path = os.path.join(self.root, 'logs', 'error.log')
        self.pid_file = os.path.join(self.root, 'run', 'httpd.pid')
        self.https_port = free_port()
        self.http_port = free_port()
        while self.http_port == self.https_port:
            self.http_port = free_port()
        self.loglevel = 'info ssl:info' + (' ocsp_guard:trace2' if module_so else '')
        self.pid = None
        self.start_time_s = None
        self.mpm = 'event'

    def __repr__(self):
        return f'<Httpd root={self.root} https={self.https_port} http={self.http_port} pid={self.pid}>'

    # ---- configuration -------------------------------------------------------------------------

    def write_config(self, body, global_extra=''):
        """Write conf/httpd.conf: the fixed server part, then global_extra, then body."""
        mpm = [(f'mpm_{self.mpm}_module', f'mod_mpm_{self.mpm}.so')]
        modules = [f'LoadModule {name} {MODULE_DIR}/{so}' for name, so in mpm + STANDARD_MODULES[1:]
                   if os.path.exists(os.path.join(MODULE_DIR, so))]
        if self.module_so:
            modules.append(f'LoadModule ocsp_guard_module {self.module_so}')
        root = self.root
        lines = [
            f'ServerRoot "{root}"',
            f'DefaultRuntimeDir "{root}/run"',
            f'PidFile "{root}/run/httpd.pid"',
            f'Mutex file:{root}/run default',
            'ServerName localhost',
            'User www-data',
            'Group www-data',
            f'ErrorLog "{self.error_log_path}"',
            f'LogLevel {self.loglevel}',
            *modules,
            *(['StartServers 2', 'ServerLimit 4', 'ThreadLimit 4', 'ThreadsPerChild 4',
               'MinSpareThreads 4', 'MaxSpareThreads 16', 'MaxRequestWorkers 16'] if self.mpm != 'prefork'
              else ['StartServers 2', 'MinSpareServers 2', 'MaxSpareServers 8', 'ServerLimit 16',
                    'MaxRequestWorkers 16']),
            f'Listen {LOOPBACK}:{self.https_port} https',
            f'Listen {LOOPBACK}:{self.http_port}',
            f'TypesConfig "{root}/conf/mime.types"',
            f'DocumentRoot "{root}/htdocs"',
            f'<Directory "{root}/htdocs">', '    Require all granted', '</Directory>',
            'SSLProtocol -all +TLSv1.2 +TLSv1.3',
            global_extra,
            body,
        ]
        write_file(self.conf_path, '\n'.join(lines) + '\n')

    def write_site(self, body, extra=''):
        """write_config with mod_ssl's session cache (as a real site has), then extra, then body."""
        self.write_config(body, f'SSLSessionCache shmcb:{self.root}/run/ssl_scache(512000)\n' + extra)

    def serve(self, body, extra=''):
        """write_site, then start; returns httpd's output, raises AssertionError with it if it does not come up."""
        self.write_site(body, extra)
        rc, out = self.start()
        if rc != 0:
            raise AssertionError(f'httpd did not start (rc {rc}):\n{out}')
        return out

    def status_vhost(self, location='/ocsp-status'):
        """A plain-HTTP virtual host with the ocsp-guard-status handler at `location` and server-status."""
        return '\n'.join([f'<VirtualHost {LOOPBACK}:{self.http_port}>', '    ServerName status.localhost',
                          f'    <Location {location}>', '        SetHandler ocsp-guard-status', '    </Location>',
                          '    <Location /server-status>', '        SetHandler server-status', '    </Location>',
                          '</VirtualHost>']) + '\n'

    def get(self, path, accept=None, raw=False, timeout=10):
        """(Content-Type, body) of GET http://127.0.0.1:<http_port><path>: the body as UTF-8 text (strict),
        or as bytes with raw=True."""
        req = urllib.request.Request(f'http://{LOOPBACK}:{self.http_port}{path}')
        if accept:
            req.add_header('Accept', accept)
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read()
            return resp.headers.get('Content-Type'), body if raw else body.decode()

    @property
    def store_dir(self):
        """The default OCSPGuardStore of this instance: <ServerRoot>/ocsp_guard."""
        return os.path.join(self.root, 'ocsp_guard')

    def vhost(self, leaves, server_name, extra=''):
        """A <VirtualHost> on the HTTPS port serving the given leaves (names or Leaf objects, or one of them)."""
        if isinstance(leaves, str) or not isinstance(leaves, (list, tuple)):
            leaves = [leaves]
        certs = []
        for leaf in leaves:
            leaf = self.pki.leaves[leaf] if isinstance(leaf, str) else leaf
            certs += [f'    SSLCertificateFile "{leaf.chain}"', f'    SSLCertificateKeyFile "{leaf.key}"']
        return '\n'.join([f'<VirtualHost {LOOPBACK}:{self.https_port}>',
                          f'    ServerName {server_name}',
                          f'    DocumentRoot "{self.root}/htdocs"',
                          '    SSLEngine on',
                          *certs,
                          extra,
                          '</VirtualHost>']) + '\n'

    # ---- lifecycle -----------------------------------------------------------------------------

    def configtest(self):
        """(rc, output) of `apache2 -t` on this config."""
        return self._apache('-t')

    def start(self, timeout=30):
        """`-k start`, then poll until the pid file's process lives and the HTTPS port listens.

        Returns (rc, output); on failure rc != 0 (1 if httpd died or did not come up in time) and the
        output ends with the error log's tail.
        """
        started = time.monotonic()
        rc, out = self._apache('-k', 'start', timeout=timeout)
        if rc == 0:
            wait_until(lambda: self._up() or not self._instance_pids(),
                       max(0.0, timeout - (time.monotonic() - started)))
            if self._up():
                self.pid = self._pid_from_file()
                self.start_time_s = time.monotonic() - started
                return 0, out
            rc, out = 1, f'{out}\nhttpd did not come up within {timeout}s'
        return rc, f'{out}\nerror log:\n{self.error_log()[-4000:]}'

    def graceful(self, timeout=30):
        """`-k graceful`, then wait until a new generation logs 'resuming normal operations'."""
        return self._new_generation('graceful', timeout)

    def restart(self, timeout=30):
        """`-k restart`, then wait until a new generation logs 'resuming normal operations'."""
        return self._new_generation('restart', timeout)

    def stop(self, timeout=30):
        """`-k stop`, poll until all processes of this instance are gone; SIGKILL leftovers after timeout.

        Safe to call when start() failed or stop() already ran.
        """
        if not self._instance_pids():
            return
        self._apache('-k', 'stop', timeout=timeout)
        if not wait_until(lambda: not self._instance_pids(), timeout):
            if self.pid and pid_alive(self.pid):
                os.killpg(self.pid, signal.SIGKILL)  # the daemon is its own process-group leader (setsid)
            for pid in self._instance_pids():
                os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not self._instance_pids(), 5)

    def children(self):
        """PIDs of the processes whose parent is the main httpd process."""
        return [pid for pid, ppid, _ in proc_stats() if self.pid and ppid == self.pid]

    # ---- error log -----------------------------------------------------------------------------

    def error_log(self):
        try:
            with open(self.error_log_path, errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def log_mark(self):
        """The current end of the error log, to pass as wait_for_log(since=...)."""
        return len(self.error_log())

    def wait_for_log(self, regex, timeout=20, since=0):
        """Poll the error log (from offset `since`) until regex matches (re.M); the Match or None."""
        pattern = re.compile(regex, re.M)
        return wait_until(lambda: pattern.search(self.error_log(), since), timeout, 0.1)

    def log_tags(self):
        """The OGnnnnn message tags in the error log, in order of appearance."""
        return LOG_TAG.findall(self.error_log())

    def log_lines(self, tag, *levels):
        """Error-log lines carrying tag, at one of the given levels ('warn', 'error'...) if any are given."""
        return [line for line in self.error_log().splitlines()
                if tag in line and (not levels or any(f':{level}]' in line for level in levels))]

    # ---- internals -----------------------------------------------------------------------------

    def sanitizer_reports(self):
        """ASan/UBSan reports and child crashes found in the error log (empty when clean or not sanitized)."""
        return [line for line in self.error_log().splitlines() if SANITIZER_REPORT.search(line)]

    def _apache(self, *args, timeout=30):
        try:
            proc = subprocess.run([APACHE, '-d', self.root, '-f', self.conf_path, *args], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                                  env=_apache_env())
        except subprocess.TimeoutExpired as e:
            return 124, f'{APACHE} {" ".join(args)} timed out after {timeout}s: {e.output or ""}'
        return proc.returncode, proc.stdout

    def _new_generation(self, action, timeout):
        mark = self.log_mark()
        rc, out = self._apache('-k', action, timeout=timeout)
        if rc != 0:
            return rc, out
        found = wait_until(lambda: GENERATION_UP in self.error_log()[mark:] or not pid_alive(self.pid), timeout, 0.1)
        if not found or not pid_alive(self.pid):
            return 1, f'{out}\nno new generation after {action} in {timeout}s; error log:\n{self.error_log()[mark:]}'
        return 0, out

    def _pid_from_file(self):
        try:
            with open(self.pid_file) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _up(self):
        pid = self._pid_from_file()
        return bool(pid and pid_alive(pid) and _listening(self.https_port))

    def _instance_pids(self):
        """Live processes started from this instance's config file (main process and children)."""
        return [pid for pid, _, argv in proc_stats() if self.conf_path in argv]
