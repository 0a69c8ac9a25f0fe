#!/usr/bin/env bash
# make soak: mixed load for SOAK_SECONDS (default 120) against nginx with
# the module while PostgreSQL restarts twice and nginx reloads five times;
# then the invariants, each PASS or FAIL (scripts/soak/soak.pl). Exits
# non-zero when one fails.
#
# The PostgreSQL is a private cluster of the run (fsync on: the run checks
# that no acknowledged write is lost when the server is killed), created
# under the run directory like the tests' private clusters, and removed
# afterwards unless something failed (SOAK_KEEP=1 keeps it anyway).
set -euo pipefail
. "$(dirname "$0")/env.sh"

# never a database named by the developer's environment
unset CUSTOMER_DB

"$ROOT/scripts/deps.sh"
"$ROOT/scripts/build.sh"

# what t/lib/CT.pm reads; the test cluster's port is not used
export CT_PGHOST=127.0.0.1
export CT_PGPORT=$PG_TEST_PORT
export CT_PGUSER=customer
export CT_MODULE=$MODULE
export CT_NGINX=/usr/sbin/nginx
export CT_RUN_DIR=$RUN_DIR
export CT_PG_BIN=$PG_BIN
if [[ ${SOAK_KEEP:-} == 1 ]]; then
    export CT_KEEP=1
fi

cd "$ROOT"
exec perl scripts/soak/soak.pl
