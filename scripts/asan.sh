#!/usr/bin/env bash
# make test-asan: nginx itself (the upstream source of Debian's nginx-dev
# version, scripts/nginx-src.sh) and the module, built in one configure
# with clang's AddressSanitizer and UndefinedBehaviorSanitizer and
# NGX_DEBUG_PALLOC (every pool allocation is a malloc of its own, so ASan
# sees its bounds), then the whole test suite against that binary.
#
# Usage: scripts/asan.sh [build|test]   (default: test)
#   build  only build build/asan/nginx and build/asan/<module>.so
#   test   build, then scripts/test.sh with CT_NGINX/CT_MODULE pointed at
#          them; any sanitizer report written meanwhile fails the run and
#          is printed
#
# Configure runs again only when its arguments, the compiler, the nginx
# version, $ROOT/config or the sanitizer lists in scripts/asan/ changed;
# otherwise make rebuilds what changed (only the module, usually).
set -euo pipefail
. "$(dirname "$0")/env.sh"

what=${1:-test}
ASAN_DIR=$BUILD_DIR/asan
CC=clang-14
SYMBOLIZER=/usr/lib/llvm-14/bin/llvm-symbolizer
NGINX_ASAN=$ASAN_DIR/nginx
MODULE_ASAN=$ASAN_DIR/$(basename "$MODULE")

"$ROOT/scripts/deps.sh" asan

build() {
    local src ver dir stamp sum patches p t0=$SECONDS
    src=$("$ROOT/scripts/nginx-src.sh")
    ver=$(basename "$src")
    # a copy of its own (configure and make write into the source tree),
    # with scripts/asan/*.patch applied; copied again when they change
    dir=$ASAN_DIR/$ver
    stamp=$dir/.configured
    patches=("$ROOT"/scripts/asan/*.patch)
    sum=$(cat "${patches[@]}" | sha1sum | cut -d' ' -f1)
    if [[ $(cat "$dir/.patched" 2>/dev/null) != "$sum" ]]; then
        rm -rf "$ASAN_DIR"
        mkdir -p "$ASAN_DIR"
        cp -r "$src" "$dir.tmp"
        for p in "${patches[@]}"; do
            patch -s -p1 -d "$dir.tmp" <"$p"
        done
        echo "$sum" >"$dir.tmp/.patched"
        mv "$dir.tmp" "$dir"
    fi

    # Debian's configure flags (the same modules and paths as the stock
    # binary: ssl, v2, threads, stub_status, realip, ...); -p and -c are
    # passed by the tests anyway.
    . /usr/share/nginx/src/conf_flags
    local san="-fsanitize=address,undefined"
    # recover is compiled in so that ASAN_OPTIONS/UBSAN_OPTIONS decide:
    # halt_on_error=1 (below) stops at the first report
    san+=" -fsanitize-recover=address,undefined"
    san+=" -fsanitize-ignorelist=$ROOT/scripts/asan/ignorelist.txt"
    local cc_opt="-g -O1 -fno-omit-frame-pointer $san -DNGX_DEBUG_PALLOC=1"
    cc_opt+=" -Wno-deprecated-declarations"
    # -z nodelete: a module unloaded on reload keeps its symbols for
    # reports made later
    local ld_opt="-fsanitize=address,undefined -Wl,-z,nodelete"
    local args=(--with-cc="$CC" --with-cc-opt="$cc_opt"
        --with-ld-opt="$ld_opt" "${NGX_CONF_FLAGS[@]}"
        --add-dynamic-module="$ROOT")

    sum=$( { printf '%s\n' "${args[@]}"; "$CC" --version
             cat "$ROOT/config" "$ROOT/scripts/asan/ignorelist.txt"; } \
           | sha1sum | cut -d' ' -f1)
    cd "$dir"
    if [[ $(cat "$stamp" 2>/dev/null) != "$sum" ]]; then
        echo "asan: configuring $ver (about a minute)"
        rm -f "$stamp"
        ./configure "${args[@]}" >configure.log 2>&1 \
            || { tail -n 30 configure.log >&2; exit 1; }
        echo "$sum" >"$stamp"
    fi
    make -s -f objs/Makefile -j "$(nproc)" >make.log 2>&1 \
        || { cat make.log >&2; exit 1; }
    # by rename: overwriting a binary or .so in use crashes it
    cp objs/nginx "$NGINX_ASAN.tmp"
    mv -f "$NGINX_ASAN.tmp" "$NGINX_ASAN"
    cp objs/ngx_http_customer_module.so "$MODULE_ASAN.tmp"
    mv -f "$MODULE_ASAN.tmp" "$MODULE_ASAN"
    echo "asan: $NGINX_ASAN and $MODULE_ASAN ($((SECONDS - t0)) s)"
    cd "$ROOT"
}

build
[[ $what == build ]] && exit 0

# Reports go to files: nginx's stderr is a log file the harness deletes
# when a test passes. Each process writes <dir>/report.<pid> (ASan, UBSan
# and LeakSanitizer alike) at its first report. The options are read when
# a process starts; nginx's workers are forks of the master and keep them
# although nginx clears its workers' environment (the env directive, and
# setproctitle overwrites /proc/self/environ), which is also why the
# symbolizer is named here rather than found through PATH. Workers run
# as nobody under a root master: the directory is writable by all.
reports=$RUN_DIR/asan-reports
rm -rf "$reports"
mkdir -p "$reports"
chmod 1777 "$reports"

# CUSTOMER_ASAN_HALT=0 goes on past reports (to collect all of them in
# one run; the run still fails)
halt=${CUSTOMER_ASAN_HALT:-1}
# abort_on_error: a process that reports dies of SIGABRT, so the master's
# "[alert] worker process ... exited on signal 6" also fails the test
# file that caused it (the harness checks error.log)
common="halt_on_error=$halt:abort_on_error=1:print_stacktrace=1"
common+=":external_symbolizer_path=$SYMBOLIZER"
# one log_path for both: in one process the last one parsed wins anyway
common+=":log_path=$reports/report"
export UBSAN_OPTIONS=$common
# LeakSanitizer is on: every nginx process (master, workers, nginx -t)
# checks at exit. nginx destroys its cycle pool on exit and
# NGX_DEBUG_PALLOC makes each pool allocation a malloc of its own, so
# what is left is what nobody freed: libpq connections, results, yajl
# trees, OpenSSL objects the module forgot. nginx 1.22.1's own leaks are
# in scripts/asan/lsan.supp (and one in nginx-init-cycle-leak.patch).
export ASAN_OPTIONS="$common:detect_leaks=1:detect_stack_use_after_return=1"
export LSAN_OPTIONS="suppressions=$ROOT/scripts/asan/lsan.supp"
LSAN_OPTIONS+=":print_suppressions=0"

export CT_NGINX=$NGINX_ASAN
export CT_MODULE=$MODULE_ASAN
export CUSTOMER_TEST_NO_BUILD=1

rc=0
t0=$SECONDS
"$ROOT/scripts/test.sh" || rc=$?
echo "asan: suite took $((SECONDS - t0)) s"

shopt -s nullglob
found=("$reports"/*)
if [[ ${#found[@]} -gt 0 ]]; then
    echo "asan: ${#found[@]} sanitizer report file(s) in $reports:" >&2
    for f in "${found[@]}"; do
        echo "==== $f" >&2
        cat "$f" >&2
    done
    rc=1
fi
exit "$rc"
