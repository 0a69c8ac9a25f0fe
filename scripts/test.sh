#!/usr/bin/env bash
# make test: build, start the test cluster, rebuild customer_template with
# the migrations, run the Perl tests in parallel, stop the cluster.
#
# CT_NGINX and CT_MODULE, when set, are the nginx binary and module the
# tests run (scripts/asan.sh points them at the sanitizer build); with
# CUSTOMER_TEST_NO_BUILD=1 the stock module is not built. NGINX_VERSION
# (e.g. 1.26.3) runs the suite against that nginx release, built here.
set -euo pipefail
. "$(dirname "$0")/env.sh"

# A mistyped file in TESTS: say so before anything starts. prove would
# stop at it with the other files already running, and leave their nginx
# behind holding this checkout's lock.
for f in ${TESTS:-}; do
    if [[ ! -e $ROOT/$f && ! -e $f ]]; then
        echo "test: no such test file: $f" >&2
        exit 2
    fi
done

# Tests must never touch a database named by the developer's environment.
unset CUSTOMER_DB

# One run at a time per checkout: a run drops the other's databases and
# stops the test cluster when it ends (make test-asan runs this too).
exec 9>"$RUN_DIR/test.lock"
if ! flock -n 9; then
    echo "test: another test run of this checkout is under way; waiting"
    flock 9
fi

"$ROOT/scripts/deps.sh" test

# NGINX_VERSION=1.26.3: nginx of that release and the module, both built
# from source with Debian's flags (scripts/nginx-build.sh), instead of the
# stock binary and the module built against nginx-dev
installed=$(dpkg-query -W -f='${Version}' nginx-dev | sed 's/-.*//')
if [[ -n ${NGINX_VERSION:-} && $NGINX_VERSION != "$installed" ]]; then
    "$ROOT/scripts/nginx-build.sh" "v$NGINX_VERSION" "$NGINX_VERSION" gcc \
        "-g -O2 -fPIC -Wall -Werror -Wno-deprecated-declarations" "-fPIC"
    export CT_NGINX=$BUILD_DIR/v$NGINX_VERSION/nginx
    export CT_MODULE=$BUILD_DIR/v$NGINX_VERSION/$(basename "$MODULE")
    CUSTOMER_TEST_NO_BUILD=1
fi
echo "test: $("${CT_NGINX:-/usr/sbin/nginx}" -v 2>&1)," \
     "module ${CT_MODULE:-$MODULE}"

if [[ ${CUSTOMER_TEST_NO_BUILD:-} == 1 ]]; then
    # the tests serve Swagger UI from build/swagger-ui
    "$ROOT/scripts/swagger.sh"
else
    "$ROOT/scripts/build.sh"
fi

trap '"$ROOT/scripts/pg.sh" stop test' EXIT
"$ROOT/scripts/pg.sh" start test

# Fresh template; drop leftovers of interrupted runs too.
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_TEST_PORT" \
    -U customer -d postgres <<'SQL'
SELECT format('DROP DATABASE %I WITH (FORCE)', datname)
FROM pg_database
WHERE datname = 'customer_template' OR datname LIKE 't\_%'
\gexec
CREATE DATABASE customer_template OWNER customer;
SQL
"$ROOT/scripts/pg.sh" migrate customer_template test

export CT_PGHOST=127.0.0.1
export CT_PGPORT=$PG_TEST_PORT
export CT_PGUSER=customer
export CT_MODULE=${CT_MODULE:-$MODULE}
export CT_NGINX=${CT_NGINX:-/usr/sbin/nginx}
export CT_RUN_DIR=$RUN_DIR
export CT_PG_BIN=$PG_BIN

# Runtime directories that failed tests kept last time.
rm -rf "$RUN_DIR/t"

cd "$ROOT"
rc=0
# TESTS="t/60-notes.t t/82-documents.t" runs only those files.
prove -I t/lib -j "$(nproc)" ${PROVE_FLAGS:-} -r ${TESTS:-t/} || rc=$?
exit "$rc"
