#!/usr/bin/env bash
# Private PostgreSQL clusters for `make run` (dev) and `make test` (test).
# Usage: scripts/pg.sh start|stop|status [dev|test]
#        scripts/pg.sh migrate [DBNAME] [dev|test]
# migrate applies $SQL_DIR/NNN_*.sql not yet listed in schema_migrations;
# with CUSTOMER_DB set it migrates that database instead.
set -euo pipefail
. "$(dirname "$0")/env.sh"

cmd=${1:?usage: pg.sh start|stop|status|migrate ...}
if [[ $cmd == migrate ]]; then
    dbname=${2:-customer}
    cluster=${3:-dev}
else
    cluster=${2:-dev}
fi

case $cluster in
dev)
    data=$PG_DEV_DATA
    port=$PG_DEV_PORT
    opts=()
    ;;
test)
    data=$PG_TEST_DATA
    port=$PG_TEST_PORT
    opts=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off
          -c max_connections=300)
    ;;
*)
    echo "pg.sh: unknown cluster '$cluster' (dev or test)" >&2
    exit 2
    ;;
esac
sock=$RUN_DIR/$cluster-sock
log=$RUN_DIR/$cluster-pg.log

psql_admin() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" \
        -U postgres -d postgres "$@"
}

pg_running() {
    [[ -f $data/PG_VERSION ]] && as_pg "$PG_BIN/pg_ctl" status -D "$data" \
        >/dev/null 2>&1
}

pg_start() {
    if [[ ! -f $data/PG_VERSION ]]; then
        local initdb_opts=(--auth=trust -U postgres -E UTF8 --locale=C.UTF-8)
        if [[ $cluster == test ]]; then
            initdb_opts+=(--no-sync)
        fi
        mkdir -p "$data"
        if [[ $EUID -eq 0 ]]; then
            chown postgres: "$data"
        fi
        chmod 700 "$data"
        as_pg "$PG_BIN/initdb" -D "$data" "${initdb_opts[@]}" >/dev/null
    fi
    if pg_running; then
        echo "pg: $cluster cluster already running on port $port"
    else
        mkdir -p "$sock"
        touch "$log"
        if [[ $EUID -eq 0 ]]; then
            chown postgres: "$sock" "$log"
        fi
        as_pg "$PG_BIN/pg_ctl" start -w -s -D "$data" -l "$log" \
            -o "-c listen_addresses=127.0.0.1 -c port=$port" \
            -o "-c unix_socket_directories='$sock' ${opts[*]}"
        echo "pg: $cluster cluster started on port $port (log: $log)"
    fi
    psql_admin <<'SQL'
SELECT 'CREATE ROLE customer LOGIN SUPERUSER'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'customer')
\gexec
SELECT 'CREATE DATABASE customer OWNER customer'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'customer')
\gexec
SQL
}

pg_stop() {
    if pg_running; then
        as_pg "$PG_BIN/pg_ctl" stop -w -s -m fast -D "$data"
        echo "pg: $cluster cluster stopped"
    fi
}

# The logic lives in scripts/migrate.sh (also the Debian package's
# nginx-customer-migrate and the Docker set-up's customer-migrate).
migrate() {
    local conn
    if [[ -n ${CUSTOMER_DB:-} ]]; then
        conn=$CUSTOMER_DB
    else
        conn="host=127.0.0.1 port=$port dbname=$dbname user=customer"
        conn+=" sslmode=disable gssencmode=disable"
    fi
    PSQL=$PG_BIN/psql "$ROOT/scripts/migrate.sh" --sql-dir "$SQL_DIR" \
        "$conn"
}

case $cmd in
start)   pg_start ;;
stop)    pg_stop ;;
status)  pg_running ;;
migrate) migrate ;;
*)       echo "pg.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
