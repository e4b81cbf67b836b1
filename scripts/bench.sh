#!/usr/bin/env bash
# `make bench`: builds release binaries, starts a chat-server on a free
# loopback port, runs every chat-bench scenario against it, and stops it;
# then the `history` scenario against a fresh server started with
# `--resume-window 0` (its memory figure needs a server whose allocator has
# not yet held an earlier scenario's peak, and no resume rings); then the
# `presence` scenario (membership events: joins into a group at the events'
# threshold, a mass rejoin of 1,000 members) against another fresh server.
# With NODES=2 (or more) it starts its own redis-server on a free loopback
# port instead (no persistence) and that many chat-server nodes joined to it
# under a prefix of their own, and runs the cluster scenarios (`cluster`:
# direct, fanout and pingpong with users placed across nodes), then
# `history` and `presence` each on a fresh Redis and fresh nodes
# (`cluster-history`, `cluster-presence`). `make bench` ends with
# NODES=3 BENCH_CMD=streams: 18,000 users on each of 3 nodes
# (`cluster-streams`).
#   NODES         how many server nodes (default 1: one server, no Redis)
#   SERVER_FLAGS  extra server flags, e.g. "--threads 1" or "--write-delay 1ms"
#   BENCH_ARGS    extra flags after `all` (or `cluster`), `history` and
#                 `presence`, e.g. "--scale 0.1"
#   BENCH_CMD     what to run instead of `all --with-19k ${BENCH_ARGS}`
#                 (`cluster ${BENCH_ARGS}` with NODES > 1) and the history
#                 and presence rounds, e.g. "mixed --duration-secs 5"
#                 (scripts/bench-targets.sh uses it)
#   BENCH_OUT     where the JSON lines go (default target/bench/results.jsonl)
# A command starting with `history` gets the server flag `--resume-window 0`
# unless SERVER_FLAGS sets --resume-window; one starting with `presence` gets
# `--events-max-members N` when SERVER_FLAGS sets
# --membership-events-max-members N. Everything it starts it stops by
# PID on exit. Exits non-zero if any scenario lost, duplicated or reordered
# a message, or found a group's history other than what was sent.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
nodes=${NODES:-1}
if [ "$nodes" -gt 1 ]; then
  "$root/scripts/install-deps.sh" cmake redis
else
  "$root/scripts/install-deps.sh" cmake
fi
cargo build --quiet --release --bin chat-server
cargo build --quiet --release -p chat-bench
built=${CARGO_TARGET_DIR:-$root/target}/release
out=${BENCH_OUT:-${CARGO_TARGET_DIR:-$root/target}/bench/results.jsonl}
mkdir -p "$(dirname "$out")"

logs=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill "$pid"; fi
  done
  rm -rf "$logs"
}
trap cleanup EXIT
# Run copies of what this checkout just built: a shared target directory may
# get another checkout's build while the bench runs.
target="$logs/bin"
mkdir -p "$target"
cp "$built/chat-server" "$built/chat-bench" "$target/"

# Waits up to 10 s for `pattern` (a sed expression printing the port) in
# log file $1; prints the port, or nothing if it never appeared.
port_in_log() {
  local found=""
  for _ in $(seq 100); do
    found=$(sed -n "$2" "$1" | head -1)
    [ -n "$found" ] && break
    sleep 0.1
  done
  echo "$found"
}

redis_pid=""
redis_port=""
servers=()
server_pids=()
# Starts a redis-server on a free port when NODES > 1 (sets redis_pid and
# redis_port), then the nodes with the extra server flags "$1" (sets
# servers and server_pids).
start_servers() {
  local cluster_flags=() node port
  redis_pid=""
  redis_port=""
  if [ "$nodes" -gt 1 ]; then
    # A free port: a random one above the usual services and below the
    # kernel's ephemeral range, tried again if redis cannot bind it.
    for _ in 1 2 3 4 5; do
      port=$((20000 + RANDOM % 12000))
      redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --protected-mode no --logfile "$logs/redis.log" &
      redis_pid=$!
      for _ in $(seq 50); do
        if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then redis_port=$port; break 2; fi
        kill -0 "$redis_pid" 2>/dev/null || break
        sleep 0.1
      done
      kill "$redis_pid" 2>/dev/null || true
      wait "$redis_pid" 2>/dev/null || true
      redis_pid=""
    done
    [ -n "$redis_pid" ] && pids+=("$redis_pid")
    [ -n "$redis_port" ] || { echo "bench: redis-server did not start" >&2; cat "$logs/redis.log" >&2; exit 1; }
    cluster_flags=(--redis "redis://127.0.0.1:$redis_port" --redis-prefix "bench$$" --node-lease-secs 5)
  fi
  servers=()
  server_pids=()
  for node in $(seq "$nodes"); do
    # shellcheck disable=SC2086
    "$target/chat-server" --listen 127.0.0.1:0 --max-connections 30000 "${cluster_flags[@]}" \
      $1 2>"$logs/node$node.log" &
    pids+=("$!")
    server_pids+=("$!")
    port=$(port_in_log "$logs/node$node.log" 's/.*listening.*port: \([0-9]*\).*/\1/p')
    [ -n "$port" ] || { echo "bench: server node $node did not start" >&2; cat "$logs/node$node.log" >&2; exit 1; }
    servers+=("127.0.0.1:$port")
  done
}

# Stops what start_servers started, nodes first (a scenario may have
# stopped a node already: `streams` times a node's SIGTERM).
stop_servers() {
  for pid in "${server_pids[@]}" $redis_pid; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || true
  done
  pids=()
}

join() { local IFS=,; echo "$*"; }
if [ "$nodes" -gt 1 ]; then
  default_cmd="cluster ${BENCH_ARGS:-}"
else
  default_cmd="all --with-19k ${BENCH_ARGS:-}"
fi
status=0
# One round: fresh servers (and Redis), the chat-bench command "$1", stopped.
run_round() {
  local flags=${SERVER_FLAGS:-} what redis_args=()
  case "$1" in
    history*) [[ " $flags " == *" --resume-window"* ]] || flags="--resume-window 0${flags:+ $flags}" ;;
  esac
  local cmd=$1
  if [[ "$cmd" == presence* && " $flags " =~ \ --membership-events-max-members[\ =]([0-9]+)\  ]]; then
    cmd="$cmd --events-max-members ${BASH_REMATCH[1]}"
  fi
  start_servers "$flags"
  if [ "$nodes" -gt 1 ]; then
    what="$nodes nodes and redis-server (pid $redis_pid)"
    redis_args=(--redis-pid "$redis_pid" --redis-addr "127.0.0.1:$redis_port")
  else
    what="one server"
  fi
  echo "bench: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; $what; server flags: ${flags:-(defaults)}; results: $out"
  # shellcheck disable=SC2086
  "$target/chat-bench" --server "$(join "${servers[@]}")" --server-pid "$(join "${server_pids[@]}")" \
    "${redis_args[@]}" --json-out "$out" $cmd || status=$?
  stop_servers
}

if [ -n "${BENCH_CMD:-}" ]; then
  run_round "$BENCH_CMD"
else
  run_round "$default_cmd"
  run_round "history ${BENCH_ARGS:-}"
  run_round "presence ${BENCH_ARGS:-}"
fi
exit "$status"
