#!/bin/sh
# tools/build-deb.sh [OUTDIR]: build the Debian package libapache2-mod-ocsp-guard
# (debian/) in a copy of the source tree under /tmp, never in the tree itself,
# and copy the .deb into OUTDIR (default: ./build/deb/). Prints the .deb's path.
#
# The copy holds what git tracks plus untracked files git does not ignore (so
# work in progress is packaged, build output is not); outside a git checkout,
# the tree less .git, .libs, build and object files. Needs dpkg-dev, debhelper,
# fakeroot and debian/control's Build-Depends (apache2-dev, libssl-dev,
# libapr1-dev, libaprutil1-dev). Exits non-zero on any failure.
set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
OUTDIR=${1:-build/deb}

die() { echo "build-deb: $*" >&2; exit 1; }

for tool in dpkg-buildpackage dpkg-parsechangelog dh fakeroot; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool not found (apt-get install dpkg-dev debhelper fakeroot apache2-dev libssl-dev libapr1-dev libaprutil1-dev)"
done
[ -f "$SRC/debian/control" ] || die "no debian/control in $SRC"

PACKAGE=libapache2-mod-ocsp-guard
SOURCE=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Source)
VERSION=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
UPSTREAM=${VERSION%-*}

TMP=$(mktemp -d /tmp/build-deb.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM
WORK="$TMP/$SOURCE-$UPSTREAM"
mkdir "$WORK"

if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked files (less those deleted in the work tree) and untracked, unignored ones.
    git -C "$SRC" ls-files -z --cached --others --exclude-standard | sort -zu >"$TMP/listed"
    git -C "$SRC" ls-files -z --deleted | sort -zu >"$TMP/deleted"
    comm -z -23 "$TMP/listed" "$TMP/deleted" >"$TMP/files"
    [ -s "$TMP/files" ] || die "git ls-files listed no file in $SRC"
    tar -C "$SRC" --null --no-recursion -T "$TMP/files" -cf "$TMP/src.tar"
else
    tar -C "$SRC" --exclude=./.git --exclude=./.libs --exclude=./build --exclude=./fuzz/build \
        --exclude='*.o' --exclude='*.lo' --exclude='*.slo' --exclude='*.la' --exclude=__pycache__ \
        --exclude=./debian/.debhelper --exclude="./debian/$PACKAGE" -cf "$TMP/src.tar" .
fi
tar -C "$WORK" -xf "$TMP/src.tar"

echo "build-deb: building $SOURCE $VERSION in $WORK" >&2
(cd "$WORK" && dpkg-buildpackage -us -uc -b) >"$TMP/build.log" 2>&1 || {
    tail -n 60 "$TMP/build.log" >&2
    die "dpkg-buildpackage failed (last lines above)"
}

ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
DEB="$TMP/${PACKAGE}_${VERSION}_${ARCH}.deb"
[ -f "$DEB" ] || die "dpkg-buildpackage made no $(basename "$DEB")"

mkdir -p "$OUTDIR"
# Only this build's package in OUTDIR, so that ${PACKAGE}_*.deb names one file.
rm -f "$OUTDIR/${PACKAGE}"_*.deb
cp "$DEB" "$OUTDIR/"
OUT=$(cd "$OUTDIR" && pwd)/$(basename "$DEB")
echo "$OUT"
