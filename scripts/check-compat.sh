#!/usr/bin/env bash
# make check-compat NGINX=/path/to/nginx [MODULE=build/...so]: whether a
# built module can be loaded by that nginx binary, checked the way nginx
# checks it at load_module, before an operator tries: the module's
# nginx_version must equal the binary's, and its signature (word sizes
# and the compile-time features that change nginx's structures, e.g.
# --with-compat, threads, http2) must equal the one built into the
# binary. Needs only binutils (readelf, strings), not the nginx sources.
set -euo pipefail
nginx=${NGINX:-/usr/sbin/nginx}
module=${MODULE:-}
. "$(dirname "$0")/env.sh"
module=${module:-$MODULE}
if [[ ! -x $nginx ]]; then
    echo "check-compat: $nginx is not executable" >&2
    exit 2
fi
if [[ ! -f $module ]]; then
    echo "check-compat: no module at $module (make build)" >&2
    exit 2
fi

# the binary's version: nginx -v prints "nginx version: nginx/1.22.1"
bver=$("$nginx" -v 2>&1 | sed -n 's|.*nginx/\([0-9.]*\).*|\1|p')
IFS=. read -r ma mi pa <<<"$bver"
bnum=$((ma * 1000000 + mi * 1000 + pa))

# the module's: the version member of ngx_http_customer_module (the 6th
# word of ngx_module_t: ctx_index, index, name, spare0, spare1, version),
# a constant the file holds as it is
read -r value ndx < <(readelf -sW "$module" \
    | awk '$8 == "ngx_http_customer_module" { print $2, $7; exit }')
read -r addr off < <(readelf -SW "$module" | sed 's/\[ */[/' \
    | awk -v n="[$ndx]" '$1 == n { print $4, $5; exit }')
pos=$(( 0x$value - 0x$addr + 0x$off + 5 * 8 ))
mnum=$(od -An -t u8 -j "$pos" -N 8 "$module" | tr -d ' ')

sig='^[0-9]+,[0-9]+,[0-9]+,[01]{20,}$'
bsig=$(strings -n 20 "$nginx" | grep -E "$sig" | head -n 1)
msig=$(strings -n 20 "$module" | grep -E "$sig" | head -n 1)

echo "nginx:  $nginx: version $bnum ($bver), signature $bsig"
echo "module: $module: version $mnum, signature $msig"
rc=0
if [[ $mnum != "$bnum" ]]; then
    echo "check-compat: version differs: nginx is $bnum, the module was" \
         "built for $mnum; build it against this nginx's source" >&2
    rc=1
fi
if [[ $msig != "$bsig" ]]; then
    echo "check-compat: signature differs: configure the module with this" \
         "nginx's own flags (nginx -V) plus --with-compat" \
         "--add-dynamic-module" >&2
    rc=1
fi
[[ $rc -eq 0 ]] && echo "check-compat: the module can be loaded by $nginx"
exit "$rc"
