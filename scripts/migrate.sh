#!/usr/bin/env bash
# Apply every NNN_*.sql of the migrations directory not yet recorded in
# schema_migrations, in order, each file and its bookkeeping row in one
# transaction. The only implementation: `scripts/pg.sh migrate` runs it,
# the Debian package installs it as /usr/sbin/nginx-customer-migrate and
# the Docker set-up as customer-migrate.
#
# Usage: migrate.sh [--sql-dir DIR] [CONNINFO]
#
# CONNINFO is a libpq connection string or URL ("host=... dbname=..." or
# postgresql://user@host/db); without it CUSTOMER_DB, and without that
# psql's own defaults and PG* variables (PGHOST, PGPORT, PGDATABASE,
# PGUSER, PGPASSFILE, ...). DIR: --sql-dir, else CUSTOMER_SQL_DIR, else
# the package's /usr/share/libnginx-mod-http-customer/sql. PSQL names the
# psql to run (default: psql on PATH).
set -euo pipefail

usage() {
    echo "usage: ${0##*/} [--sql-dir DIR] [CONNINFO]" >&2
    exit 2
}

sql_dir=${CUSTOMER_SQL_DIR:-/usr/share/libnginx-mod-http-customer/sql}
conn=
while [[ $# -gt 0 ]]; do
    case $1 in
    --sql-dir)   [[ $# -ge 2 ]] || usage; sql_dir=$2; shift 2 ;;
    --sql-dir=*) sql_dir=${1#*=}; shift ;;
    -h|--help)   sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'
                 exit 0 ;;
    -*)          usage ;;
    *)           [[ -z $conn ]] || usage; conn=$1; shift ;;
    esac
done
conn=${conn:-${CUSTOMER_DB:-}}

psql=${PSQL:-psql}
if ! command -v "$psql" >/dev/null; then
    echo "migrate: $psql not found (Debian: apt-get install" \
         "postgresql-client)" >&2
    exit 1
fi
export LC_ALL=C

# Without a connection string psql takes PG* and its defaults.
db=()
if [[ -n $conn ]]; then
    db=(-d "$conn")
fi
psql_db() {
    "$psql" -X -q -v ON_ERROR_STOP=1 "${db[@]}" "$@"
}

shopt -s nullglob
files=("$sql_dir"/[0-9][0-9][0-9]_*.sql)
if [[ ${#files[@]} -eq 0 ]]; then
    echo "migrate: no $sql_dir/NNN_*.sql" >&2
    exit 1
fi

psql_db <<'SQL'
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz DEFAULT now()
);
SQL
applied=$(psql_db -At -c 'SELECT version FROM schema_migrations')

n=0
for f in "${files[@]}"; do
    version=$(basename "$f" .sql)
    grep -qxF "$version" <<<"$applied" && continue
    # The file and its bookkeeping row commit together or not at all.
    psql_db -v file="$f" -v version="$version" <<'SQL'
BEGIN;
\i :file
INSERT INTO schema_migrations (version) VALUES (:'version');
COMMIT;
SQL
    echo "migrate: applied $version"
    n=$((n + 1))
done
if [[ $n -eq 0 ]]; then
    echo "migrate: up to date"
fi
