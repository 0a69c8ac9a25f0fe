#!/usr/bin/env bash
# Upstream nginx source, unpacked into build/nginx-<version>; prints that
# directory. Usage: scripts/nginx-src.sh [VERSION]
#
# Without VERSION: the release of the installed nginx-dev (Debian 12's
# 1.22.1), for the sanitizer build and the fuzz targets. With one (e.g.
# 1.26.3, Debian 13's): that release, for building and testing the module
# against another nginx. Either way the source is the .orig.tar.gz of a
# Debian source package: deb-src entries for bookworm, bookworm-security
# and trixie are added once (the .orig.tar.gz downloads even where the
# .dsc of a suite does not verify). Only source entries are added: the
# installed packages keep coming from bookworm.
set -euo pipefail
. "$(dirname "$0")/env.sh"

upstream=${1:-$(dpkg-query -W -f='${Version}' nginx-dev | sed 's/-.*//')}
if [[ ! $upstream =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "nginx-src: '$upstream' is not an nginx version (1.26.3)" >&2
    exit 1
fi
dir=$BUILD_DIR/nginx-$upstream
if [[ -f $dir/src/core/nginx.c ]]; then
    echo "$dir"
    exit 0
fi

sudo=()
[[ $EUID -ne 0 ]] && sudo=(sudo)
list=/etc/apt/sources.list.d/customer-deb-src.sources
if ! grep -qs trixie "$list"; then
    "${sudo[@]}" tee "$list" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    "${sudo[@]}" apt-get update -qq >&2
fi

dl=$BUILD_DIR/nginx-src-download
mkdir -p "$dl"
tarball=$dl/nginx_$upstream.orig.tar.gz
if [[ ! -f $tarball ]]; then
    # the newest Debian revision of that upstream release
    debver=$(apt-cache showsrc nginx | sed -n 's/^Version: //p' \
             | grep "^$upstream-" | sort -V | tail -n 1)
    if [[ -z $debver ]]; then
        echo "nginx-src: no nginx $upstream source package in Debian's" \
             "archive (apt-cache showsrc nginx)" >&2
        exit 1
    fi
    # The .dsc may fail to verify or download; the tarball is what we need.
    (cd "$dl" && apt-get source --download-only -qq "nginx=$debver" \
                     >/dev/null 2>&1) || true
fi
if [[ ! -f $tarball ]]; then
    echo "nginx-src: nginx_$upstream.orig.tar.gz not found in Debian's" \
         "archive" >&2
    exit 1
fi
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
tar -xzf "$tarball" -C "$dir.tmp" --strip-components=1
mv "$dir.tmp" "$dir"
echo "$dir"
