#!/usr/bin/env bash
# Apply every sql/NNN_*.sql not yet recorded in schema_migrations, in
# order, each file and its bookkeeping row in one transaction: what
# `scripts/pg.sh migrate` does, for a database named by a libpq connection
# string. docker/compose.yaml runs it once (service migrate) before the API
# starts; the api image carries it as /usr/local/bin/customer-migrate.
#
#   CUSTOMER_DB="host=... dbname=customer user=..." [CUSTOMER_SQL_DIR=dir] \
#       migrate.sh
#
# Needs psql (the postgres image has it; the api image does not).
set -euo pipefail

conn=${CUSTOMER_DB:?CUSTOMER_DB: a libpq connection string}
sql_dir=${CUSTOMER_SQL_DIR:-/usr/share/customer/sql}
export LC_ALL=C

psql_db() {
    psql -X -q -v ON_ERROR_STOP=1 -d "$conn" "$@"
}

psql_db <<'SQL'
SET client_min_messages = warning;
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text PRIMARY KEY,
    applied_at  timestamptz DEFAULT now()
);
SQL
applied=$(psql_db -At -c 'SELECT version FROM schema_migrations')

shopt -s nullglob
files=("$sql_dir"/[0-9][0-9][0-9]_*.sql)
if [[ ${#files[@]} -eq 0 ]]; then
    echo "migrate: no $sql_dir/NNN_*.sql" >&2
    exit 1
fi
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
