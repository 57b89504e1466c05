#!/bin/sh
# tools/deps.sh: install every Debian 12 package that building, testing and
# demonstrating mod_ocsp_guard needs. Safe to run again: apt-get skips what is
# already installed. Runs as root, or re-runs itself through sudo.
set -eu
PACKAGES="
  build-essential make
  apache2 apache2-dev libapr1-dev libaprutil1-dev
  openssl libssl-dev
  libcmocka-dev valgrind
  clang libclang-rt-14-dev
  iproute2 util-linux
  python3 python3-pytest python3-cryptography
  curl gnutls-bin
  redis-server memcached prometheus chromium
  debhelper dpkg-dev fakeroot ssl-cert
"
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo "$0" "$@"
    fi
    echo "tools/deps.sh: needs root to install packages (run it as root)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $PACKAGES
