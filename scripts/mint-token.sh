#!/usr/bin/env bash
# Mints an HS256 token for token mode with nothing but openssl, as a backend
# would: scripts/mint-token.sh SECRET_FILE USERNAME [SECONDS]
# (the token is valid for SECONDS, default 300). The README quotes the lines
# between the markers; tests/readme.rs runs this script against a server.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 SECRET_FILE USERNAME [SECONDS]" >&2; exit 2; }
secret_file=$1 user=$2 ttl=${3:-300}
# --- mint ---
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
secret=$(head -n 1 "$secret_file")
header=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
claims=$(printf '{"sub":"%s","exp":%d}' "$user" $(( $(date +%s) + ttl )) | b64url)
signature=$(printf '%s.%s' "$header" "$claims" |
  openssl dgst -sha256 -mac HMAC -macopt "key:$secret" -binary | b64url)
echo "$header.$claims.$signature"
# --- end ---
