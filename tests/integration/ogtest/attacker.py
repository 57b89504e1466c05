"""Acting as the server's User (www-data), as a compromised child or a CGI could: plant symlinks, FIFOs
and forged files in the store it owns.  Every action runs in a subprocess that has dropped to www-data,
so the kernel, not the test, decides what that user may do."""
import os
import subprocess

USER = 'www-data'


def run_as_user(*argv, data=None, timeout=10):
    """Run argv as www-data (uid/gid and no supplementary groups); returns CompletedProcess, raises on error."""
    return subprocess.run(list(argv), input=data, user=USER, group=USER, extra_groups=[], check=True,
                          capture_output=True, timeout=timeout)


def plant_symlink(path, target):
    """As www-data: replace path (if any) with a symlink to target."""
    run_as_user('/bin/sh', '-c', 'rm -f -- "$1" && ln -s -- "$2" "$1"', 'sh', path, target)


def plant_fifo(path):
    run_as_user('/bin/sh', '-c', 'rm -f -- "$1" && mkfifo -m 600 -- "$1"', 'sh', path)


def write_file(path, data):
    """As www-data: replace path with a regular file holding data (bytes)."""
    run_as_user('/bin/sh', '-c', 'rm -f -- "$1" && cat > "$1"', 'sh', path, data=data)


def owner_and_bytes(path):
    st = os.lstat(path)
    with open(path, 'rb') as f:
        return st.st_uid, st.st_gid, st.st_mode & 0o7777, f.read()
