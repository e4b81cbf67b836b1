#!/usr/bin/env bash
# `make bench`: builds release binaries, starts a chat-server on a free
# loopback port, runs every chat-bench scenario against it, and stops it.
#   SERVER_FLAGS  extra server flags, e.g. "--threads 1" or "--write-delay 1ms"
#   BENCH_ARGS    extra flags after `all`, e.g. "--scale 0.1"
#   BENCH_CMD     what to run instead of `all --with-19k ${BENCH_ARGS}`, e.g.
#                 "mixed --duration-secs 5" (scripts/bench-targets.sh uses it)
#   BENCH_OUT     where the JSON lines go (default target/bench/results.jsonl)
# Exits non-zero if any scenario lost, duplicated or reordered a message.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
"$root/scripts/install-deps.sh" cmake
cargo build --quiet --release --bin chat-server
cargo build --quiet --release -p chat-bench
target=${CARGO_TARGET_DIR:-$root/target}/release
out=${BENCH_OUT:-${CARGO_TARGET_DIR:-$root/target}/bench/results.jsonl}
mkdir -p "$(dirname "$out")"

log=$(mktemp)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill "$server_pid"; fi
  rm -f "$log"
}
trap cleanup EXIT

# shellcheck disable=SC2086
"$target/chat-server" --listen 127.0.0.1:0 --max-connections 30000 ${SERVER_FLAGS:-} 2>"$log" &
server_pid=$!
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening.*port: \([0-9]*\).*/\1/p' "$log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "bench: the server did not start" >&2; cat "$log" >&2; exit 1; }

echo "bench: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; server flags: ${SERVER_FLAGS:-(defaults)}; results: $out"
status=0
# shellcheck disable=SC2086
"$target/chat-bench" --server "127.0.0.1:$port" --server-pid "$server_pid" --json-out "$out" \
  ${BENCH_CMD:-all --with-19k ${BENCH_ARGS:-}} || status=$?
kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=""
exit "$status"
