#!/usr/bin/env bash
# Mint an HS256 token with the dev secret that `make run` created:
#   scripts/token.sh SUB ROLE [SECONDS]    (ROLE: Administrator | Customer)
# Prints the token. For trying the API out, never for production.
set -euo pipefail
. "$(dirname "$0")/env.sh"

sub=${1:?usage: token.sh SUB ROLE [SECONDS]}
role=${2:?usage: token.sh SUB ROLE [SECONDS]}
ttl=${3:-86400}
secret_file=${CUSTOMER_JWT_SECRET_FILE:-$RUN_DIR/keys/jwt.secret}

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

now=$(date +%s)
header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
claims=$(printf '{"sub":"%s","role":"%s","iat":%d,"exp":%d}' \
    "$sub" "$role" "$now" $((now + ttl)) | b64url)
secret=$(head -n1 "$secret_file")
sig=$(printf '%s' "$header.$claims" \
    | openssl dgst -sha256 -mac HMAC -macopt "key:$secret" -binary | b64url)
printf '%s.%s.%s\n' "$header" "$claims" "$sig"
