#!/usr/bin/env bash
# Install the Debian packages the project needs, only those missing.
# Usage: scripts/deps.sh [bench|test|asan|fuzz|deb|lint]...
# chromium is for t/51-docs-browser.t (Swagger UI rendered headless);
# python3 runs the peer stand-ins (docker/peers/server.py) for make run.
# deb: what scripts/deb.sh builds the Debian package with (debhelper;
# nginx-dev brings dh-sequence-nginx); lint: lintian, to check it.
# asan (scripts/asan.sh) builds nginx itself with clang: the sanitizer
# runtimes are a package of their own, and llvm-14 has the symbolizer.
# fuzz (scripts/fuzz.sh) needs the same: libFuzzer is in libclang-rt-14-dev.
#
# Debian's postgresql package may create and start a system cluster
# ("15 main", port 5432, socket in /var/run/postgresql). We never use it:
# our clusters have their own data directories, ports and socket
# directories, and every client call names host and port explicitly.
set -euo pipefail

pkgs=(nginx nginx-dev libpq-dev libyajl-dev libssl-dev libpcre2-dev
      zlib1g-dev postgresql-15 postgresql-contrib build-essential pkg-config
      openssl perl python3)
# npm fetches Swagger UI (scripts/swagger.sh); a Node.js that came with
# its own npm (not from Debian) is kept
if ! command -v npm >/dev/null; then
    pkgs+=(nodejs npm)
fi
for extra in "$@"; do
    case $extra in
    test)  pkgs+=(chromium) ;;
    asan|fuzz) pkgs+=(clang-14 llvm-14 libclang-rt-14-dev) ;;
    bench) pkgs+=(wrk curl) ;;
    deb)   pkgs+=(debhelper dpkg-dev) ;;
    lint)  pkgs+=(lintian) ;;
    *)     echo "deps: unknown set '$extra'" >&2; exit 2 ;;
    esac
done

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg -s "$p" 2>/dev/null | grep -q '^Status: install ok installed'
    then
        missing+=("$p")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

echo "deps: installing ${missing[*]}"
if [[ $EUID -ne 0 ]]; then
    echo "deps: not root; install them with: apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
