#!/bin/sh
# tools/deps.sh: install every Debian 12 package that building, testing and
# demonstrating mod_ocsp_guard needs. Safe to run again: apt-get skips what is
# already installed. Needs root (or sudo).
set -eu
PACKAGES="
  build-essential make
  apache2 apache2-dev libapr1-dev libaprutil1-dev
  openssl libssl-dev
  libcmocka-dev
  python3 python3-pytest python3-cryptography
  curl gnutls-bin
"
if [ "$(id -u)" -ne 0 ]; then
    echo "tools/deps.sh: run as root (sudo tools/deps.sh)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $PACKAGES
