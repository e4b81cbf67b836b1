#!/usr/bin/env bash
# Starts a chat server on a free loopback port, runs `chat-client demo`
# against it, stops the server with SIGTERM, and writes both logs to the file
# given as $1 (default logs.txt). Exits non-zero if the demo saw any
# unexpected outcome or the server did not stop cleanly.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-logs.txt}
cd "$root"

cargo build --quiet --bin chat-server && cargo build --quiet -p chat-client --bin chat-client
target=${CARGO_TARGET_DIR:-$root/target}/debug

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill "$server_pid"; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$target/chat-server" --listen 127.0.0.1:0 --threads 2 2>"$work/server.log" &
server_pid=$!
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening.*port: \([0-9]*\).*/\1/p' "$work/server.log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "demo: the server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

demo_status=0
"$target/chat-client" --server "127.0.0.1:$port" demo >"$work/client.log" 2>&1 || demo_status=$?

kill -TERM "$server_pid"
server_status=0
wait "$server_pid" || server_status=$?
server_pid=""

{
  echo "# make demo: one chat-server run with chat-client's scripted demo against it"
  echo "# (server on 127.0.0.1:$port, stopped with SIGTERM; demo exit $demo_status, server exit $server_status)"
  echo
  echo "== chat-client demo =="
  cat "$work/client.log"
  echo
  echo "== chat-server log =="
  cat "$work/server.log"
} >"$out"
cat "$work/client.log"
echo "demo: wrote $out"
[ "$demo_status" -eq 0 ] && [ "$server_status" -eq 0 ]
