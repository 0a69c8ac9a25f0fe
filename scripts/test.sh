#!/usr/bin/env bash
# make test: build, start the test cluster, rebuild customer_template with
# the migrations, run the Perl tests in parallel, stop the cluster.
#
# CT_NGINX and CT_MODULE, when set, are the nginx binary and module the
# tests run (scripts/asan.sh points them at the sanitizer build); with
# CUSTOMER_TEST_NO_BUILD=1 the stock module is not built.
set -euo pipefail
. "$(dirname "$0")/env.sh"

# Tests must never touch a database named by the developer's environment.
unset CUSTOMER_DB

"$ROOT/scripts/deps.sh" test
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
