#!/usr/bin/env bash
# make deb: build/libnginx-mod-http-customer_<version>_<arch>.deb, built
# the way Debian 12 builds its own libnginx-mod-* packages (debian/: dh
# with the nginx addon of nginx-dev), then checked with lintian.
# Usage: scripts/deb.sh [--no-lint]   (t/58-deb.t builds without lintian)
#
# The version is debian/changelog's first entry, its only source.
# The package is built in a copy of what it is made from
# (build/deb/libnginx-mod-http-customer-<version>/), so debhelper's files
# never land in the checkout; dpkg-buildpackage's other outputs (.changes,
# .buildinfo, the -dbgsym .deb) and its log stay in build/deb/.
set -euo pipefail
. "$(dirname "$0")/env.sh"

lint=1
case ${1:-} in
--no-lint) lint=0 ;;
"")        ;;
*)         echo "usage: scripts/deb.sh [--no-lint]" >&2; exit 2 ;;
esac

if [[ $lint == 1 ]]; then
    "$ROOT/scripts/deps.sh" deb lint
else
    "$ROOT/scripts/deps.sh" deb
fi

mkdir -p "$BUILD_DIR"
# One build at a time per checkout: each starts from an empty build/deb.
exec 8>"$BUILD_DIR/deb.lock"
flock 8

pkg=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -SSource)
version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -SVersion)
arch=$(dpkg --print-architecture)
work=$BUILD_DIR/deb
src=$work/$pkg-$version
deb=${pkg}_${version}_$arch.deb

rm -rf "$work"
mkdir -p "$src"
# What the package is made from (not .run/, build/ or the tests).
(cd "$ROOT" && cp -r --parents config src sql conf/customer.conf.example \
    scripts/migrate.sh README.md debian "$src/")

echo "deb: building $deb (log: $work/build.log)"
if ! (cd "$src" && dpkg-buildpackage -b --no-sign -jauto) \
        >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    exit 1
fi
mv -f "$work/$deb" "$BUILD_DIR/$deb"
echo "deb: $BUILD_DIR/$deb"

if [[ $lint == 1 ]]; then
    # Informational tags too; errors fail the build. lintian warns when
    # run as root: as root, run it as nobody where nobody can read the file.
    as=()
    if [[ $EUID -eq 0 ]] && runuser -u nobody -- test -r "$BUILD_DIR/$deb"
    then
        as=(runuser -u nobody -- env HOME=/tmp)
    fi
    echo "deb: lintian $deb"
    "${as[@]}" lintian --info --display-info --fail-on error \
        "$BUILD_DIR/$deb"
fi
