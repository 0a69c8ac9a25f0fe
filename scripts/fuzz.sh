#!/usr/bin/env bash
# make fuzz: libFuzzer targets for the C that parses untrusted bytes (JSON
# bodies and their validators, JWTs, paths, query arguments, cursors,
# file names, peer answers), built with AddressSanitizer and
# UndefinedBehaviorSanitizer, then each run for FUZZ_SECONDS.
#
# Usage: scripts/fuzz.sh [build|run] [target...]   (default: run, all)
#   FUZZ_SECONDS   seconds per target (default 30)
#   FUZZ_KEEP=1    keep what a run found in build/fuzz/corpus/<target>
#                  (a copy of fuzz/corpus/<target> it grows); otherwise
#                  every run starts again from the committed seeds
#
# The module's C uses nginx's core (pools, strings, ngx_http_arg(), base64
# and UTF-8 helpers), so the targets link against nginx's own objects:
# the upstream source of Debian's nginx-dev version (scripts/nginx-src.sh)
# configured with Debian's flags, without the module, compiled by clang
# with -fsanitize=fuzzer-no-link,address,undefined and NGX_DEBUG_PALLOC
# (every pool allocation a malloc of its own, so ASan sees its bounds).
# The module's .c files are compiled with the same flags into an archive:
# a target that #includes one of them (to reach its static functions)
# takes its symbols from there, the archive the rest. nginx.o goes in
# with its main() renamed; libFuzzer brings the main that runs.
#
# Targets run one after another (the machine is shared). A crash, leak,
# timeout or sanitizer report fails the run; the input that caused it is
# left in build/fuzz/crashes/<target>/.
set -euo pipefail
. "$(dirname "$0")/env.sh"

what=${1:-run}
[[ $# -gt 0 ]] && shift
FUZZ_DIR=$BUILD_DIR/fuzz
CC=clang-14
SYMBOLIZER=/usr/lib/llvm-14/bin/llvm-symbolizer
SECONDS_PER=${FUZZ_SECONDS:-30}
TARGETS=(json body jwt router args cursor vin disposition peer)

"$ROOT/scripts/deps.sh" fuzz

san="-fsanitize=address,undefined -fno-sanitize-recover=all"
san+=" -fsanitize-ignorelist=$ROOT/scripts/asan/ignorelist.txt"
CFLAGS="-g -O1 -fno-omit-frame-pointer -DNGX_DEBUG_PALLOC=1"
CFLAGS+=" -Wno-deprecated-declarations"

build_nginx() {
    local src ver dir stamp sum args
    src=$("$ROOT/scripts/nginx-src.sh")
    ver=$(basename "$src")
    dir=$FUZZ_DIR/$ver
    if [[ ! -f $dir/src/core/nginx.c ]]; then
        rm -rf "$dir" "$dir.tmp"
        mkdir -p "$FUZZ_DIR"
        cp -r "$src" "$dir.tmp"
        mv "$dir.tmp" "$dir"
    fi

    # configure's feature tests run without the sanitizers (a fifth of
    # the time: every test would link the runtimes); the flags go into
    # the Makefile it writes
    . /usr/share/nginx/src/conf_flags
    args=(--with-cc="$CC" --with-cc-opt="$CFLAGS" "${NGX_CONF_FLAGS[@]}")
    sum=$( { printf '%s\n' "${args[@]}" "$san"; "$CC" --version
             cat "$ROOT/scripts/asan/ignorelist.txt"; } \
           | sha1sum | cut -d' ' -f1)
    stamp=$dir/.configured
    cd "$dir"
    if [[ $(cat "$stamp" 2>/dev/null) != "$sum" ]]; then
        echo "fuzz: configuring $ver"
        rm -f "$stamp"
        ./configure "${args[@]}" >configure.log 2>&1 \
            || { tail -n 30 configure.log >&2; exit 1; }
        sed -i -e "s|^CFLAGS = .*|& $san -fsanitize=fuzzer-no-link|" \
               -e "s|^LINK =.*|& $san|" objs/Makefile
        echo "$sum" >"$stamp"
    fi
    make -s -f objs/Makefile -j "$(nproc)" >make.log 2>&1 \
        || { cat make.log >&2; exit 1; }
    NGX=$dir
    cd "$ROOT"
}

# compile SRC OUT FLAGS...: in the background, at most nproc at once;
# wait_all then fails unless every OUT was made
pending=()
compile() {
    local src=$1 out=$2
    shift 2
    while [[ $(jobs -r | wc -l) -ge $(nproc) ]]; do
        wait -n || true
    done
    pending+=("$out")
    "$CC" $CFLAGS $san -Wall -Werror "${incs[@]}" "$src" "$@" \
        -o "$out.tmp" && mv -f "$out.tmp" "$out" &
}

wait_all() {
    local o
    wait
    for o in "${pending[@]}"; do
        if [[ ! -f $o ]]; then
            echo "fuzz: building $(basename "$o") failed" >&2
            exit 1
        fi
    done
    pending=()
}

build() {
    local t0=$SECONDS f o objs libs t changed
    build_nginx

    incs=(-I "$NGX/src/core" -I "$NGX/src/event" -I "$NGX/src/event/modules"
          -I "$NGX/src/os/unix" -I "$NGX/objs" -I "$NGX/src/http"
          -I "$NGX/src/http/modules" -I "$NGX/src/http/v2"
          -I "$(pg_config --includedir 2>/dev/null \
                || echo /usr/include/postgresql)"
          -I "$ROOT/src" -I "$ROOT/fuzz")
    mkdir -p "$FUZZ_DIR/module" "$FUZZ_DIR/bin"

    # nginx's objects, main() renamed
    objs=()
    while IFS= read -r o; do
        objs+=("$o")
    done < <(find "$NGX/objs/src" -name '*.o' ! -path '*/core/nginx.o' | sort)
    objs+=("$NGX/objs/ngx_modules.o")
    if [[ $NGX/objs/src/core/nginx.o -nt $FUZZ_DIR/nginx-nomain.o ]]; then
        objcopy --redefine-sym main=ngx_http_customer_fuzz_nginx_main \
            "$NGX/objs/src/core/nginx.o" "$FUZZ_DIR/nginx-nomain.o"
    fi
    objs+=("$FUZZ_DIR/nginx-nomain.o")

    # the module, and the harness, into an archive; nproc at a time (the
    # objects of source files that are gone are dropped first)
    changed=0
    for o in "$FUZZ_DIR"/module/*.o; do
        b=$(basename "$o" .o)
        if [[ -f $o && ! -f $ROOT/src/$b.c && ! -f $ROOT/fuzz/$b.c ]]; then
            rm -f "$o"
            changed=1
        fi
    done
    for f in "$ROOT"/src/*.c "$ROOT"/fuzz/harness.c; do
        o=$FUZZ_DIR/module/$(basename "$f" .c).o
        if [[ ! -f $o || $f -nt $o || -n $(find "$ROOT/src" "$ROOT/fuzz" \
                -name '*.h' -newer "$o" | head -n 1) ]]; then
            rm -f "$o"
            changed=1
            compile "$f" "$o" -fsanitize=fuzzer-no-link -c
        fi
    done
    wait_all
    if [[ $changed == 1 || ! -f $FUZZ_DIR/libcustomer.a ]]; then
        rm -f "$FUZZ_DIR/libcustomer.a"
        ar rcs "$FUZZ_DIR/libcustomer.a" "$FUZZ_DIR"/module/*.o
    fi

    libs=(-lpq -lyajl -lcrypt -lpcre2-8 -lssl -lcrypto -lz -lpthread -ldl)
    for t in "${TARGETS[@]}"; do
        f=$ROOT/fuzz/fuzz_$t.c
        o=$FUZZ_DIR/bin/fuzz_$t
        if [[ ! -f $o || $f -nt $o || $FUZZ_DIR/libcustomer.a -nt $o
              || $FUZZ_DIR/nginx-nomain.o -nt $o ]]; then
            rm -f "$o"
            compile "$f" "$o" -fsanitize=fuzzer \
                -DNGX_HTTP_CUSTOMER_FUZZ_DIR="\"$ROOT/fuzz\"" \
                "$FUZZ_DIR/libcustomer.a" "${objs[@]}" "${libs[@]}"
        fi
    done
    wait_all
    echo "fuzz: ${#TARGETS[@]} targets in $FUZZ_DIR/bin ($((SECONDS - t0)) s)"
}

if [[ $# -gt 0 ]]; then
    TARGETS=("$@")
fi

build
[[ $what == build ]] && exit 0

# abort_on_error is libFuzzer's default; leaks are checked by libFuzzer
# itself after inputs that allocated (-detect_leaks=1)
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1"
ASAN_OPTIONS+=":external_symbolizer_path=$SYMBOLIZER"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
UBSAN_OPTIONS+=":external_symbolizer_path=$SYMBOLIZER"

rc=0
summary=()
for t in "${TARGETS[@]}"; do
    corpus=$FUZZ_DIR/corpus/$t
    crashes=$FUZZ_DIR/crashes/$t
    if [[ ${FUZZ_KEEP:-} != 1 ]]; then
        rm -rf "$corpus"
    fi
    mkdir -p "$corpus" "$crashes"
    cp -n "$ROOT/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true
    dict=()
    if [[ -f $ROOT/fuzz/dict/$t.dict ]]; then
        dict=(-dict="$ROOT/fuzz/dict/$t.dict")
    fi
    log=$FUZZ_DIR/$t.log
    echo "fuzz: $t for $SECONDS_PER s"
    trc=0
    "$FUZZ_DIR/bin/fuzz_$t" -max_total_time="$SECONDS_PER" -timeout=10 \
        -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
        -artifact_prefix="$crashes/" "${dict[@]}" "$corpus" \
        >"$log" 2>&1 || trc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    size=$(ls "$corpus" | wc -l)
    if [[ $trc -ne 0 ]] || grep -q -e 'ERROR: ' -e 'runtime error:' "$log"
    then
        echo "fuzz: $t FAILED (exit $trc); its log:" >&2
        tail -n 80 "$log" >&2
        ls -l "$crashes" >&2
        summary+=("$(printf '%-12s FAILED' "$t")")
        rc=1
        continue
    fi
    summary+=("$(printf '%-12s %12s execs  %5s inputs  %s s' "$t" \
        "${execs:-?}" "$size" "$SECONDS_PER")")
done

echo "fuzz: results"
printf '  %s\n' "${summary[@]}"
exit "$rc"
