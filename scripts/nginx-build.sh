#!/usr/bin/env bash
# nginx itself and the module, built together from nginx's upstream source
# (scripts/nginx-src.sh) with Debian's configure flags, into build/<name>/:
# build/<name>/nginx and build/<name>/ngx_http_customer_module.so.
#
# Usage: scripts/nginx-build.sh NAME VERSION CC CC_OPT LD_OPT [PATCH...]
#   NAME     the output directory under build/ (asan, nginx-1.26.3, ...)
#   VERSION  the nginx release; "" for the installed nginx-dev's
#   PATCH    applied to this build's copy of the source (only there)
#
# Configure runs again only when its arguments, the compiler, the patches
# or $ROOT/config changed; otherwise make rebuilds what changed (usually
# only the module). Prints nothing but progress on stderr.
set -euo pipefail
. "$(dirname "$0")/env.sh"

name=$1 version=$2 cc=$3 cc_opt=$4 ld_opt=$5
shift 5
patches=("$@")
out=$BUILD_DIR/$name
t0=$SECONDS

src=$("$ROOT/scripts/nginx-src.sh" $version)
ver=$(basename "$src")

# a copy of its own (configure and make write into the source tree), with
# the patches applied; copied again when they change
dir=$out/$ver
stamp=$dir/.configured
sum=$( { echo "$ver"; cat "${patches[@]}" </dev/null; } | sha1sum \
       | cut -d' ' -f1)
if [[ $(cat "$dir/.patched" 2>/dev/null) != "$sum" ]]; then
    rm -rf "$out"
    mkdir -p "$out"
    cp -r "$src" "$dir.tmp"
    for p in "${patches[@]}"; do
        patch -s -p1 -d "$dir.tmp" <"$p"
    done
    echo "$sum" >"$dir.tmp/.patched"
    mv "$dir.tmp" "$dir"
fi

# Debian's configure flags (the same modules and paths as the stock
# binary: ssl, v2, threads, stub_status, realip, ...); -p and -c are
# passed by whoever runs it anyway.
. /usr/share/nginx/src/conf_flags
args=(--with-cc="$cc" --with-cc-opt="$cc_opt" --with-ld-opt="$ld_opt"
      "${NGX_CONF_FLAGS[@]}" --add-dynamic-module="$ROOT")

sum=$( { printf '%s\n' "${args[@]}"; "$cc" --version; cat "$ROOT/config"; } \
       | sha1sum | cut -d' ' -f1)
cd "$dir"
if [[ $(cat "$stamp" 2>/dev/null) != "$sum" ]]; then
    echo "nginx-build: configuring $ver for $name (about a minute)" >&2
    rm -f "$stamp"
    ./configure "${args[@]}" >configure.log 2>&1 \
        || { tail -n 30 configure.log >&2; exit 1; }
    echo "$sum" >"$stamp"
fi
make -s -f objs/Makefile -j "$(nproc)" >make.log 2>&1 \
    || { cat make.log >&2; exit 1; }
# by rename: overwriting a binary or .so in use crashes it
cp objs/nginx "$out/nginx.tmp"
mv -f "$out/nginx.tmp" "$out/nginx"
cp objs/ngx_http_customer_module.so "$out/ngx_http_customer_module.so.tmp"
mv -f "$out/ngx_http_customer_module.so.tmp" \
    "$out/ngx_http_customer_module.so"
echo "nginx-build: $out/nginx and $out/ngx_http_customer_module.so" \
     "($ver, $((SECONDS - t0)) s)" >&2
