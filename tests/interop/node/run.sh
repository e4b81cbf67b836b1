#!/usr/bin/env bash
# Runs the Node.js interop tests against a real chat-server binary:
# CHAT_SERVER_BIN, else ${CARGO_TARGET_DIR:-<repo>/target}/debug/chat-server.
# Installs node_modules first when it is missing or stale.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
source ./ensure-deps.sh
ensure_node_deps
npm test --silent
