# Sourced by the other scripts: paths and ports shared by build, run and test.
# Override the ports with CUSTOMER_PG_PORT / CUSTOMER_TEST_PG_PORT, the
# migrations directory with CUSTOMER_SQL_DIR, the runtime directory with
# CUSTOMER_RUN_DIR, and use an existing database for `make run` with
# CUSTOMER_DB (a libpq conninfo string). scripts/run.sh has its own port
# overrides (see there).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=$ROOT/build
MODULE=$BUILD_DIR/ngx_http_customer_module.so
PG_BIN=/usr/lib/postgresql/15/bin
SQL_DIR=${CUSTOMER_SQL_DIR:-$ROOT/sql}

# Runtime state (clusters, nginx prefix, logs) must be reachable by the
# postgres user and by nginx workers (nobody). If the checkout sits below a
# directory they cannot enter, keep it under /var/tmp instead.
can_traverse() {
    [[ $EUID -ne 0 ]] && return 0
    runuser -u postgres -- test -x "$1" && runuser -u nobody -- test -x "$1"
}
if [[ -n ${CUSTOMER_RUN_DIR:-} ]]; then
    # the caller's choice; it must be reachable as said above
    RUN_DIR=$CUSTOMER_RUN_DIR
elif can_traverse "$ROOT"; then
    RUN_DIR=$ROOT/.run
else
    RUN_DIR=/var/tmp/customer-$(printf '%s' "$ROOT" | sha1sum | cut -c1-12)
fi
mkdir -p "$RUN_DIR"
chmod 755 "$RUN_DIR"

PG_DEV_DATA=$RUN_DIR/pgdata
PG_DEV_PORT=${CUSTOMER_PG_PORT:-54329}
PG_TEST_DATA=$RUN_DIR/test-pgdata
PG_TEST_PORT=${CUSTOMER_TEST_PG_PORT:-54339}

# Run a command as the postgres user (initdb and pg_ctl refuse root).
as_pg() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- env -C / "$@"
    else
        "$@"
    fi
}
