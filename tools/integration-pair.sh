#!/bin/sh
# tools/integration-pair.sh PYTHON SAN_MODULE_SO: the integration tests twice at once, against
# the plain build (.libs/mod_ocsp_guard.so) and against the ASan/UBSan build given, each in a
# pytest session of its own (own temp dirs, own OCSP front; ports from the lower half of the
# kernel's ephemeral range for one, from the upper half for the other). Both mostly wait on
# httpd and the responders, so together they take about the time of one. Prints each
# session's output when both are done; fails if either failed.
set -u
PYTHON=$1
SAN_SO=$2
cd "$(dirname "$0")/../tests/integration" || exit 1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
OG_SANITIZE=0 OG_PORT_HALF=0 "$PYTHON" -m pytest -q -p no:cacheprovider >"$out/plain" 2>&1 &
plain=$!
OG_SANITIZE=1 OG_PORT_HALF=1 OG_MODULE_SO=$SAN_SO "$PYTHON" -m pytest -q -p no:cacheprovider \
    >"$out/san" 2>&1 &
san=$!
wait $plain
rc_plain=$?
wait $san
rc_san=$?
echo "== integration tests, plain build (exit $rc_plain)"
cat "$out/plain"
echo "== integration tests, ASan/UBSan build $SAN_SO (exit $rc_san)"
cat "$out/san"
[ $rc_plain -eq 0 ] && [ $rc_san -eq 0 ]
