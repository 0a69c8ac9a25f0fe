#!/usr/bin/env bash
# Upstream nginx source for the sanitizer build and the fuzz targets: the
# .orig.tar.gz of Debian's nginx source package (the same upstream release
# as the installed nginx-dev), unpacked into build/nginx-<version>.
# Prints that directory. Adds a deb-src entry for bookworm and
# bookworm-security once (the .orig.tar.gz downloads even where the .dsc
# of the security suite does not).
set -euo pipefail
. "$(dirname "$0")/env.sh"

upstream=$(dpkg-query -W -f='${Version}' nginx-dev | sed 's/-.*//')
dir=$BUILD_DIR/nginx-$upstream
if [[ -f $dir/src/core/nginx.c ]]; then
    echo "$dir"
    exit 0
fi

list=/etc/apt/sources.list.d/customer-deb-src.sources
if [[ ! -f $list ]]; then
    sudo=()
    [[ $EUID -ne 0 ]] && sudo=(sudo)
    "${sudo[@]}" tee "$list" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
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
tarball=$(ls "$dl"/nginx_"$upstream".orig.tar.gz 2>/dev/null || true)
if [[ -z $tarball ]]; then
    # The .dsc may fail to verify or download; the tarball is what we need.
    (cd "$dl" && apt-get source --download-only -qq nginx >&2) || true
    tarball=$(ls "$dl"/nginx_"$upstream".orig.tar.gz 2>/dev/null || true)
fi
if [[ -z $tarball ]]; then
    echo "nginx-src: nginx_$upstream.orig.tar.gz not found in Debian's" \
         "archive" >&2
    exit 1
fi
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
tar -xzf "$tarball" -C "$dir.tmp" --strip-components=1
mv "$dir.tmp" "$dir"
echo "$dir"
