#!/usr/bin/env bash
# Entrypoint of the api image. Makes the development credentials once, in
# the keys directory (a volume in docker/compose.yaml): an HS256 secret and
# one service key, as `make run` does in .run/keys/. Then, before nginx
# starts, prints tokens ready for curl, like scripts/run.sh.
#
#   customer-entrypoint nginx -g 'daemon off;'    (the image's CMD)
#   customer-entrypoint token SUB ROLE [SECONDS]  (one more token, e.g.
#       docker compose exec api customer-entrypoint token alice Customer)
#
# For trying the API out, never for production: there, mount the Auth
# Service's public key and a real service keys file, and configure
# customer_jwt RS256 (conf/customer.conf.example).
set -euo pipefail

keys=${CUSTOMER_KEYS_DIR:-/var/lib/customer/keys}
secret_file=$keys/jwt.secret

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# token SUB ROLE [SECONDS]: an HS256 token, as scripts/token.sh mints it.
token() {
    local sub=$1 role=$2 ttl=${3:-86400} now header claims secret sig
    now=$(date +%s)
    header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
    claims=$(printf '{"sub":"%s","role":"%s","iat":%d,"exp":%d}' \
        "$sub" "$role" "$now" $((now + ttl)) | b64url)
    secret=$(head -n1 "$secret_file")
    sig=$(printf '%s' "$header.$claims" \
        | openssl dgst -sha256 -mac HMAC -macopt "key:$secret" -binary \
        | b64url)
    printf '%s.%s.%s\n' "$header" "$claims" "$sig"
}

umask 077
if [[ ! -s $secret_file ]]; then
    openssl rand -hex 32 >"$secret_file"
fi
if [[ ! -s $keys/service.keys ]]; then
    openssl rand -hex 24 >"$keys/service.keys"
fi

if [[ ${1:-} == token ]]; then
    shift
    token "${1:?usage: token SUB ROLE [SECONDS]}" \
        "${2:?usage: token SUB ROLE [SECONDS]}" "${3:-86400}"
    exit 0
fi

if [[ ${1:-} == nginx || ${1:-} == */nginx ]]; then
    # The configuration as this command line would load it: fail here,
    # with nginx's message, before printing credentials.
    "$@" -t -q
    cat <<INFO
api: http://127.0.0.1:8001/ (health: http://127.0.0.1:8001/health)
api: development credentials (secret and key in the volume at $keys/):
  admin:    -H 'Authorization: Bearer $(token admin-dev Administrator)'
  customer: -H 'Authorization: Bearer $(token customer-dev Customer)'   (sub customer-dev)
  service:  -H 'X-Service-API-Key: $(head -n1 "$keys/service.keys")'
INFO
fi

exec "$@"
