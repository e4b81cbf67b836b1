#!/usr/bin/env bash
# Lints the repository's protos with buf (configuration: buf.yaml at the
# repository root), using the buf binary from the @bufbuild/buf npm package.
# Installs node_modules first when it is missing or stale.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source ./ensure-deps.sh
ensure_node_deps
npm run lint --silent
echo "buf lint: proto/ passes the STANDARD rules (buf.yaml)"
