#!/usr/bin/env bash
# make run: build the module, start the dev PostgreSQL (unless CUSTOMER_DB
# names an existing one), migrate, start the stand-ins for the Auth, Order,
# Complaint and Notification services (docker/peers/server.py, the program
# compose runs) on 127.0.0.1, and run nginx in the foreground on
# http://127.0.0.1:8001/. Ctrl-C (or SIGTERM) stops nginx, the stand-ins
# and the cluster this script started. Data persists in $RUN_DIR/pgdata
# between runs.
#
# Ports: CUSTOMER_RUN_PORT (nginx, 8001), CUSTOMER_AUTH_PORT (3001),
# CUSTOMER_ORDER_PORT (8002), CUSTOMER_COMPLAINT_PORT (8003),
# CUSTOMER_NOTIFY_PORT (3004), CUSTOMER_PG_PORT (the dev cluster, 54329);
# the runtime directory: CUSTOMER_RUN_DIR (see scripts/env.sh). Several runs side by side need
# all of them distinct.
set -euo pipefail
. "$(dirname "$0")/env.sh"

port=${CUSTOMER_RUN_PORT:-8001}
declare -A peer_port=(
    [auth]=${CUSTOMER_AUTH_PORT:-3001}
    [orders]=${CUSTOMER_ORDER_PORT:-8002}
    [complaints]=${CUSTOMER_COMPLAINT_PORT:-8003}
    [notifications]=${CUSTOMER_NOTIFY_PORT:-3004}
)
for p in "$port" "${peer_port[@]}"; do
    if [[ ! $p =~ ^[1-9][0-9]{0,4}$ ]] || ((p > 65535)); then
        echo "run: '$p' is not a port" >&2
        exit 2
    fi
done

"$ROOT/scripts/deps.sh"
"$ROOT/scripts/build.sh"

started_pg=0
nginx_pid=
declare -A peer_pid=()

cleanup() {
    local pid
    trap - EXIT
    if [[ -n $nginx_pid ]] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill -QUIT "$nginx_pid"
        wait "$nginx_pid" || true
    fi
    # started in the background, they ignore the terminal's Ctrl-C
    for pid in "${peer_pid[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" || true
    done
    if [[ $started_pg -eq 1 ]]; then
        "$ROOT/scripts/pg.sh" stop dev
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The stand-ins, before anything else is started: a port that is taken
# stops the run here. Each is ready once it printed its listening line.
mkdir -p "$RUN_DIR/peers"
for role in auth orders complaints notifications; do
    log=$RUN_DIR/peers/$role.log
    : >"$log"
    python3 "$ROOT/docker/peers/server.py" "$role" "${peer_port[$role]}" \
        127.0.0.1 >>"$log" 2>&1 &
    peer_pid[$role]=$!
    while ! grep -q 'stand-in on' "$log"; do
        if ! kill -0 "${peer_pid[$role]}" 2>/dev/null; then
            echo "run: the $role stand-in did not start:" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.05
    done
done

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
# in the repository): an HS256 secret, one service key and the secret
# that signs the events (whsec_<base64>, as customer_notification_secret
# takes it).
keys=$RUN_DIR/keys
mkdir -p "$keys"
if [[ ! -s $keys/jwt.secret ]]; then
    openssl rand -hex 32 >"$keys/jwt.secret"
fi
if [[ ! -s $keys/service.keys ]]; then
    openssl rand -hex 24 >"$keys/service.keys"
fi
if [[ ! -s $keys/notification.secret ]]; then
    echo "whsec_$(openssl rand -base64 24)" >"$keys/notification.secret"
fi
chmod 644 "$keys/jwt.secret" "$keys/service.keys" "$keys/notification.secret"

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
conf=${conf//@PORT@/$port}
conf=${conf//@AUTH_PORT@/${peer_port[auth]}}
conf=${conf//@ORDER_PORT@/${peer_port[orders]}}
conf=${conf//@COMPLAINT_PORT@/${peer_port[complaints]}}
conf=${conf//@NOTIFY_PORT@/${peer_port[notifications]}}
conf=${conf//@NOTIFY_SECRET@/$(<"$keys/notification.secret")}
mkdir -p "$RUN_DIR/nginx"
printf '%s\n' "$conf" >"$RUN_DIR/nginx/nginx.conf"
# its includes (the compatibility paths), relative to the rendered file
rm -rf "$RUN_DIR/nginx/compat"
cp -r "$ROOT/conf/compat" "$RUN_DIR/nginx/compat"
# A root master runs its workers as nobody: let them write here.
if [[ $EUID -eq 0 ]]; then
    chown nobody: "$RUN_DIR/nginx"
fi

/usr/sbin/nginx -t -q -p "$RUN_DIR/nginx" -c "$RUN_DIR/nginx/nginx.conf"
admin=$("$ROOT/scripts/token.sh" admin-dev Administrator)
customer=$("$ROOT/scripts/token.sh" customer-dev Customer)
url=http://127.0.0.1:$port
cat <<INFO
run: $url/ (health: $url/health)
run: API document $url/api/openapi.json, Swagger UI $url/docs/
run: stand-ins (docker/peers/server.py; logs in $RUN_DIR/peers/):
  auth service       127.0.0.1:${peer_port[auth]} (pid ${peer_pid[auth]})
  order service      127.0.0.1:${peer_port[orders]} (pid ${peer_pid[orders]})
  complaint service  127.0.0.1:${peer_port[complaints]} (pid ${peer_pid[complaints]})
  notifications      127.0.0.1:${peer_port[notifications]} \
(pid ${peer_pid[notifications]}): POST /events
  every customer has a few made-up orders and complaints, none active
run: development credentials (secret and key in $keys/):
  admin:    -H 'Authorization: Bearer $admin'
  customer: -H 'Authorization: Bearer $customer'   (sub customer-dev)
  service:  -H 'X-Service-API-Key: $(head -n1 "$keys/service.keys")'
INFO
echo "run: logs in $RUN_DIR/nginx/; Ctrl-C to stop"
/usr/sbin/nginx -p "$RUN_DIR/nginx" -c "$RUN_DIR/nginx/nginx.conf" &
nginx_pid=$!
wait "$nginx_pid"
