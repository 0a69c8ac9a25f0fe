#!/usr/bin/env bash
# Swagger UI for /docs/: the static files of the npm package swagger-ui-dist
# (major version $SWAGGER_UI_VERSION, default 5) in build/swagger-ui, with
# openapi/swagger-initializer.js, which loads /api/openapi.json. The package
# is fetched once (npm pack, no node_modules); delete build/swagger-ui (or
# `make clean`) to fetch it again. Needs npm (scripts/deps.sh installs it).
set -euo pipefail
. "$(dirname "$0")/env.sh"

UI=$BUILD_DIR/swagger-ui
version=${SWAGGER_UI_VERSION:-5}

if [[ ! -f $UI/swagger-ui-bundle.js ]]; then
    if ! command -v npm >/dev/null; then
        echo "swagger: npm is missing (scripts/deps.sh installs it)" >&2
        exit 1
    fi
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    tgz=$(cd "$tmp" && npm pack --silent --loglevel=error \
        "swagger-ui-dist@$version" 2>"$tmp/npm.log" | tail -n 1) \
        || { cat "$tmp/npm.log" >&2; exit 1; }
    if [[ ! -f $tmp/$tgz ]]; then
        echo "swagger: npm pack swagger-ui-dist@$version gave no archive" >&2
        cat "$tmp/npm.log" >&2
        exit 1
    fi
    tar -xzf "$tmp/$tgz" -C "$tmp"
    # source maps and the ES module build are not served
    rm -f "$tmp"/package/*.map "$tmp"/package/swagger-ui-es-bundle*.js
    mkdir -p "$BUILD_DIR"
    rm -rf "$UI.tmp"
    mv "$tmp/package" "$UI.tmp"
    rm -rf "$UI"
    mv "$UI.tmp" "$UI"
    echo "swagger: swagger-ui-dist $(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
        "$UI/package.json" | head -n 1) in $UI"
fi

# The initializer follows the repository's copy on every build.
if ! cmp -s "$ROOT/openapi/swagger-initializer.js" \
        "$UI/swagger-initializer.js"; then
    cp "$ROOT/openapi/swagger-initializer.js" "$UI/swagger-initializer.js"
fi
# nginx's workers run as nobody under a root master
chmod -R a+rX "$UI"
