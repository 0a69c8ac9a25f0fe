#!/usr/bin/env bash
# make run: build the module, start the dev PostgreSQL (unless CUSTOMER_DB
# names an existing one), migrate, and run nginx in the foreground on
# http://127.0.0.1:8001/. Ctrl-C stops nginx and the cluster this script
# started. Data persists in $RUN_DIR/pgdata between runs.
set -euo pipefail
. "$(dirname "$0")/env.sh"

"$ROOT/scripts/deps.sh"
"$ROOT/scripts/build.sh"

started_pg=0
nginx_pid=

cleanup() {
    trap - EXIT
    if [[ -n $nginx_pid ]] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill -QUIT "$nginx_pid"
        wait "$nginx_pid" || true
    fi
    if [[ $started_pg -eq 1 ]]; then
        "$ROOT/scripts/pg.sh" stop dev
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n ${CUSTOMER_DB:-} ]]; then
    db=$CUSTOMER_DB
else
    if ! "$ROOT/scripts/pg.sh" status dev; then
        started_pg=1
    fi
    "$ROOT/scripts/pg.sh" start dev
    db="host=127.0.0.1 port=$PG_DEV_PORT dbname=customer user=customer"
    db+=" sslmode=disable gssencmode=disable"
fi
"$ROOT/scripts/pg.sh" migrate customer dev

# Development credentials, made once and kept in the run directory (never
# in the repository): an HS256 secret and one service key.
keys=$RUN_DIR/keys
mkdir -p "$keys"
if [[ ! -s $keys/jwt.secret ]]; then
    openssl rand -hex 32 >"$keys/jwt.secret"
fi
if [[ ! -s $keys/service.keys ]]; then
    openssl rand -hex 24 >"$keys/service.keys"
fi
chmod 644 "$keys/jwt.secret" "$keys/service.keys"

# The API document and Swagger UI (/api/openapi.json, /docs/) are read by
# nginx's workers: from the checkout, or from a copy in the run directory
# when they cannot enter the checkout (see scripts/env.sh).
spec=$ROOT/openapi/openapi.json
ui=$BUILD_DIR/swagger-ui
if [[ $RUN_DIR != "$ROOT/.run" ]]; then
    rm -rf "$RUN_DIR/static"
    mkdir -p "$RUN_DIR/static"
    cp "$spec" "$RUN_DIR/static/openapi.json"
    cp -r "$ui" "$RUN_DIR/static/swagger-ui"
    chmod -R a+rX "$RUN_DIR/static"
    spec=$RUN_DIR/static/openapi.json
    ui=$RUN_DIR/static/swagger-ui
fi

# Render the configuration; escape \ and " for nginx's quoted string.
db=${db//\\/\\\\}
db=${db//\"/\\\"}
conf=$(<"$ROOT/conf/nginx.conf")
conf=${conf//@MODULE@/"$MODULE"}
conf=${conf//@RUN_DIR@/"$RUN_DIR"}
conf=${conf//@DB@/"$db"}
conf=${conf//@OPENAPI@/"$spec"}
conf=${conf//@SWAGGER_UI@/"$ui"}
mkdir -p "$RUN_DIR/nginx"
printf '%s\n' "$conf" >"$RUN_DIR/nginx/nginx.conf"
# A root master runs its workers as nobody: let them write here.
if [[ $EUID -eq 0 ]]; then
    chown nobody: "$RUN_DIR/nginx"
fi

/usr/sbin/nginx -t -q -p "$RUN_DIR/nginx" -c "$RUN_DIR/nginx/nginx.conf"
admin=$("$ROOT/scripts/token.sh" admin-dev Administrator)
customer=$("$ROOT/scripts/token.sh" customer-dev Customer)
cat <<INFO
run: http://127.0.0.1:8001/ (health: http://127.0.0.1:8001/health)
run: API document http://127.0.0.1:8001/api/openapi.json, Swagger UI http://127.0.0.1:8001/docs/
run: development credentials (secret and key in $keys/):
  admin:    -H 'Authorization: Bearer $admin'
  customer: -H 'Authorization: Bearer $customer'   (sub customer-dev)
  service:  -H 'X-Service-API-Key: $(head -n1 "$keys/service.keys")'
INFO
echo "run: logs in $RUN_DIR/nginx/; Ctrl-C to stop"
/usr/sbin/nginx -p "$RUN_DIR/nginx" -c "$RUN_DIR/nginx/nginx.conf" &
nginx_pid=$!
wait "$nginx_pid"
