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
    local san cc_opt ld_opt
    san="-fsanitize=address,undefined"
    # recover is compiled in so that ASAN_OPTIONS/UBSAN_OPTIONS decide:
    # halt_on_error=1 (below) stops at the first report
    san+=" -fsanitize-recover=address,undefined"
    san+=" -fsanitize-ignorelist=$ROOT/scripts/asan/ignorelist.txt"
    cc_opt="-g -O1 -fno-omit-frame-pointer $san -DNGX_DEBUG_PALLOC=1"
    cc_opt+=" -Wno-deprecated-declarations"
    # a route row's parameters are written { from, name, values, check }
    # and leave the numeric bounds zero: clang's -Wextra (which nginx's
    # configure turns on for clang) names every such row, gcc's does not
    cc_opt+=" -Wno-missing-field-initializers"
    # the ignorelist's own hash, so that editing it configures again
    cc_opt+=" -DCUSTOMER_ASAN_IGNORELIST=$(sha1sum \
        <"$ROOT/scripts/asan/ignorelist.txt" | cut -c1-12)"
    # -z nodelete: a module unloaded on reload keeps its symbols for
    # reports made later
    ld_opt="-fsanitize=address,undefined -Wl,-z,nodelete"
    "$ROOT/scripts/nginx-build.sh" asan "" "$CC" "$cc_opt" "$ld_opt" \
        "$ROOT"/scripts/asan/*.patch
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
