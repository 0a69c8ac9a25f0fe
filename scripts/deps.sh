#!/usr/bin/env bash
# Install the Debian packages the project needs, only those missing.
# Usage: scripts/deps.sh [bench|test|asan|fuzz]
# chromium is for t/51-docs-browser.t (Swagger UI rendered headless).
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
      openssl perl)
# npm fetches Swagger UI (scripts/swagger.sh); a Node.js that came with
# its own npm (not from Debian) is kept
if ! command -v npm >/dev/null; then
    pkgs+=(nodejs npm)
fi
if [[ ${1:-} == test ]]; then
    pkgs+=(chromium)
fi
if [[ ${1:-} == asan || ${1:-} == fuzz ]]; then
    pkgs+=(clang-14 llvm-14 libclang-rt-14-dev)
fi
if [[ ${1:-} == bench ]]; then
    pkgs+=(wrk curl)
fi

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
