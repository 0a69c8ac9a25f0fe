#!/usr/bin/env bash
# Build the dynamic module against Debian's nginx (nginx-dev sources).
# Configure runs again only when $ROOT/config changed or nginx-dev was
# upgraded (the module is tied to the exact nginx version).
set -euo pipefail
. "$(dirname "$0")/env.sh"

NGX_SRC=/usr/share/nginx/src
NGX_BUILD=$BUILD_DIR/nginx
STAMP=$NGX_BUILD/.configured
ngx_version=$(dpkg-query -W -f='${Version}' nginx-dev)

if [[ ! -f $ROOT/config ]]; then
    echo "build: $ROOT/config is missing" >&2
    exit 1
fi

if [[ -d $NGX_BUILD && $(cat "$STAMP" 2>/dev/null) != "$ngx_version" ]]; then
    rm -rf "$NGX_BUILD"
fi
if [[ ! -d $NGX_BUILD ]]; then
    mkdir -p "$BUILD_DIR"
    cp -r "$NGX_SRC" "$NGX_BUILD"
fi

cd "$NGX_BUILD"
if [[ ! -f $STAMP || $ROOT/config -nt $STAMP ]]; then
    . ./conf_flags
    cc_opt="-g -O2 -fPIC -Wall -Werror -Wno-deprecated-declarations"
    ./configure \
        --with-cc-opt="$cc_opt" \
        --with-ld-opt="-fPIC" \
        "${NGX_CONF_FLAGS[@]}" \
        --add-dynamic-module="$ROOT" >configure.log \
        || { tail -n 30 configure.log >&2; exit 1; }
    echo "$ngx_version" >"$STAMP"
fi

make -s -f objs/Makefile -j "$(nproc)" modules
# Replace by rename: overwriting a loaded .so in place crashes running nginx.
cp objs/ngx_http_customer_module.so "$MODULE.tmp"
mv -f "$MODULE.tmp" "$MODULE"
echo "build: $MODULE"

# Swagger UI for /docs/ (static files in build/swagger-ui)
"$ROOT/scripts/swagger.sh"
