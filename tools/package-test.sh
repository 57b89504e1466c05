#!/bin/sh
# tools/package-test.sh: the CI check of the Debian package, for a disposable
# machine, as root: build the .deb (tools/build-deb.sh), install it with
# apt-get, staple a test PKI's certificate with Debian's own apache2 started by
# apache2ctl (the system /etc/apache2, changed for the test and restored), purge
# it and check that nothing is left (tools/package_test.py does steps b-h).
#
# Needs, beside the project's test packages (apache2, openssl, python3,
# python3-cryptography): dpkg-dev, debhelper, apache2-dev, libssl-dev,
# libapr1-dev, libaprutil1-dev. apache2 must not be running.
# OG_DEB_DIR: where the .deb goes (default: build/deb in the source tree).
set -eu
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "package test: must run as root (it installs a package and starts the system apache2)" >&2
    exit 1
fi
export PYTHONDONTWRITEBYTECODE=1
DEB_DIR=${OG_DEB_DIR:-build/deb}
START=$(date +%s)

echo "package test: (a) building the package with tools/build-deb.sh $DEB_DIR"
DEB=$(tools/build-deb.sh "$DEB_DIR")
[ -f "$DEB" ] || { echo "package test: FAILED: tools/build-deb.sh printed no package file" >&2; exit 1; }
echo "package test: (a) built $DEB in $(( $(date +%s) - START ))s"

/usr/bin/python3 tools/package_test.py "$DEB"
echo "package test: whole run $(( $(date +%s) - START ))s"
echo "package test: OK"
