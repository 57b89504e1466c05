"""Small shared helpers: bounded polling, free loopback ports, world-readable temp dirs, /proc process checks."""
import os
import socket
import tempfile
import time

LOOPBACK = '127.0.0.1'


def wait_until(predicate, timeout, interval=0.05):
    """Poll predicate() until it returns a truthy value or timeout seconds pass; return the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def _port_range():
    try:
        with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
            low, high = (int(v) for v in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, then close).

    With OG_PORT_HALF=0 or 1 (make check runs two pytest sessions at once, the plain and the
    sanitized build), only ports from the lower or the upper half of the kernel's ephemeral range:
    one session never picks a port the other just picked. (Not by parity: Linux hands bind() to
    port 0 odd ports only, keeping the even ones for connect().)
    """
    half = os.environ.get('OG_PORT_HALF')
    low, high = _port_range()
    mid = (low + high) // 2
    for _ in range(500):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = s.getsockname()[1]
        if half not in ('0', '1') or (port < mid) == (half == '0'):
            return port
    raise OSError(f'no free port in half {half} of {low}-{high} in 500 tries')


def world_readable_tempdir(prefix, parent=None):
    """A fresh directory under parent (default: the system temp dir) with mode 0755."""
    path = tempfile.mkdtemp(prefix=prefix, dir=parent or tempfile.gettempdir())
    os.chmod(path, 0o755)
    return path


def write_file(path, data, mode=0o644):
    """Write bytes or str to path atomically (temp file + rename) and chmod it."""
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            state = f.read().rsplit(')', 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != 'Z'


def proc_stats():
    """Yield (pid, ppid, argv) for every live, non-zombie process visible in /proc."""
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
            with open(f'/proc/{entry}/cmdline', 'rb') as f:
                argv = f.read().decode(errors='replace').split('\0')
        except (FileNotFoundError, ProcessLookupError):
            continue
        if fields[0] != 'Z':
            yield int(entry), int(fields[1]), argv
