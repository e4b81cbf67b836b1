#!/usr/bin/env bash
# `make bench-compare`: every chat-bench scenario against this server and
# against the yardstick (../shared/yardstick/tonic-chat, a typical tonic
# implementation of the same contract), both at their default flags,
# alternating A B A B on a fresh server for every run, then the medians and
# the ratios (ours / tonic) per figure, as a table and as JSON lines.
#   ROUNDS         rounds of A B per scenario (default 3, at least 3 for the record)
#   SCENARIOS      which scenarios (default: direct fanout connections
#                  connections-shared mixed mixed-saturated pingpong):
#                  connections is 5,000 users on a connection each, as chat
#                  clients connect; connections-shared is 5,000 streams over
#                  the bench's 64 connections, the cost of a stream alone;
#                  mixed-saturated is mixed offered more than either server
#                  carries, so messages/s achieved is each server's capacity
#                  (at mixed's own rate both carry it all)
#   SATURATED_RATE the offered rate of mixed-saturated (default 30000 msgs/s)
#   AGAINST        the baseline: tonic (default, the yardstick), ours-off
#                  (this server with --history-size 0 --resume-window 0, to
#                  see what history and resume cost at their defaults), or
#                  build:PATH (another build of this server, e.g. an older
#                  commit's, at its defaults)
#   YARDSTICK_DIR  the yardstick's sources (default ../shared/yardstick/tonic-chat)
#   GENERATORS     the load generators every scenario runs under (default
#                  "chat-bench chatload"): chat-bench is this project's, a
#                  C-core client; chatload (../shared/yardstick/chatload,
#                  CHATLOAD_DIR) is an independent one on tonic and tokio,
#                  built here like the yardstick. A server fast for one kind
#                  of client only is not fast.
#   BENCH_OUT      where the per-run JSON lines go (default target/bench/compare.jsonl)
#   PIN            1 (default): each server runs on core SERVER_CORE (default
#                  1) and chat-bench on core BENCH_CORE (default 0), with
#                  taskset, so a server's extra threads cannot take the load
#                  generator's CPU and the figures measure each server's
#                  efficiency, not its share of a shared box; 0: unpinned
# The yardstick is built outside this workspace, from a copy of its sources,
# with its own target directory. Exits non-zero if a run lost, duplicated or
# reordered a message, or a server did not start.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
cache=${CARGO_TARGET_DIR:-$root/target}
yardstick_src=${YARDSTICK_DIR:-$root/../shared/yardstick/tonic-chat}
out=${BENCH_OUT:-$cache/bench/compare.jsonl}
rounds=${ROUNDS:-3}
pin=${PIN:-1}
server_cpu=()
bench_cpu=()
if [ "$pin" = 1 ]; then
  command -v taskset >/dev/null || { echo "bench-compare: PIN=1 needs taskset (util-linux)" >&2; exit 2; }
  server_cpu=(taskset -c "${SERVER_CORE:-1}")
  bench_cpu=(taskset -c "${BENCH_CORE:-0}")
fi
read -r -a generators <<<"${GENERATORS:-chat-bench chatload}"
chatload_src=${CHATLOAD_DIR:-$root/../shared/yardstick/chatload}
read -r -a scenarios <<<"${SCENARIOS:-direct fanout connections connections-shared mixed mixed-saturated pingpong}"
saturated_rate=${SATURATED_RATE:-30000}
against=${AGAINST:-tonic}
baseline_build=""
case "$against" in
  tonic | ours-off) ;;
  build:*)
    baseline_build=${against#build:}
    against=build
    [ -x "$baseline_build" ] || { echo "bench-compare: no server binary at $baseline_build" >&2; exit 2; }
    ;;
  *) echo "bench-compare: AGAINST must be tonic, ours-off or build:PATH, got $against" >&2; exit 2 ;;
esac
mkdir -p "$(dirname "$out")"
: >"$out"

"$root/scripts/install-deps.sh" cmake protoc
[ "$against" != tonic ] || [ -d "$yardstick_src" ] || { echo "bench-compare: no yardstick at $yardstick_src" >&2; exit 1; }
cargo build --quiet --release --bin chat-server
cargo build --quiet --release -p chat-bench
ours="$cache/release/chat-server"
bench="$cache/release/chat-bench"

# The yardstick: its sources copied out of the read-only shared folder, built
# as its own workspace with its own target directory, from the contract it
# implements (bench/yardstick-proto/chat.proto: chat.v1 as it was before
# GetHistory and resume were added; its struct literals do not know the new
# fields). On the wire the two contracts are compatible both ways: the new
# fields are skipped by a client that does not know them.
yardstick_build="$cache/yardstick"
tonic="$yardstick_build/target/release/tonic-chat"
if [ "$against" = tonic ]; then
  mkdir -p "$yardstick_build/src"
  rm -rf "$yardstick_build/src/tonic-chat"
  cp -r "$yardstick_src" "$yardstick_build/src/tonic-chat"
  (
    cd "$yardstick_build/src/tonic-chat"
    CHAT_PROTO_DIR="$root/bench/yardstick-proto" CARGO_TARGET_DIR="$yardstick_build/target" \
      cargo build --quiet --release --locked
  )
fi

# chatload: built outside this workspace, like the yardstick, against the
# same contract copy (it reads only the fields both contracts share).
chatload_build="$cache/chatload"
chatload="$chatload_build/target/release/chatload"
if [[ " ${generators[*]} " == *" chatload "* ]]; then
  [ -d "$chatload_src" ] || { echo "bench-compare: no chatload at $chatload_src" >&2; exit 1; }
  mkdir -p "$chatload_build/src"
  rm -rf "$chatload_build/src/chatload"
  cp -r "$chatload_src" "$chatload_build/src/chatload"
  (
    cd "$chatload_build/src/chatload"
    CHAT_PROTO_DIR="$root/bench/yardstick-proto" CARGO_TARGET_DIR="$chatload_build/target" \
      cargo build --quiet --release --locked
  )
fi

# run_generator GENERATOR SCENARIO OUT: one run of SCENARIO against the
# server on $port, its JSON in OUT in chat-bench's terms; non-zero on a
# failed or unverified run.
run_generator() {
  local generator=$1 scenario=$2 out=$3 args
  if [ "$generator" = chat-bench ]; then
    case "$scenario" in
      connections) args=(connections --connections 5000 --channels 5000) ;;
      connections-shared) args=(connections --connections 5000) ;;
      mixed-saturated) args=(mixed --rate "$saturated_rate") ;;
      *) args=("$scenario") ;;
    esac
    "${bench_cpu[@]}" "$bench" --server "127.0.0.1:$port" --server-pid "$server_pid" \
      --json-out "$out" "${args[@]}" >/dev/null
    return
  fi
  case "$scenario" in
    direct) args=(direct --pairs 8 --messages 10000) ;;
    fanout) args=(fanout) ;;
    connections) args=(connections --count 5000) ;;
    # chat-bench's 64 connections for 5,000 streams.
    connections-shared) args=(connections --count 5000 --users-per-conn 79) ;;
    mixed) args=(mixed --duration 10 --rate 10000) ;;
    mixed-saturated) args=(mixed --duration 10 --rate "$saturated_rate") ;;
    pingpong) args=(pingpong) ;;
  esac
  local raw status=0
  raw=$(mktemp)
  "${bench_cpu[@]}" "$chatload" "${args[@]}" --addr "127.0.0.1:$port" --server-pid "$server_pid" \
    >"$raw" 2>/dev/null || status=$?
  python3 "$root/scripts/chatload_row.py" "$scenario" <"$raw" >"$out" || status=1
  rm -f "$raw"
  return "$status"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

server_pid=""
log=$(mktemp)
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then kill "$server_pid"; fi
  rm -f "$log"
}
trap cleanup EXIT

# start_server NAME: starts ours or tonic on a free port at default flags;
# sets server_pid and port.
start_server() {
  port=$(free_port)
  case "$1" in
    ours) "${server_cpu[@]}" "$ours" --listen "127.0.0.1:$port" 2>"$log" & ;;
    tonic) "${server_cpu[@]}" "$tonic" --listen "127.0.0.1:$port" 2>"$log" & ;;
    ours-off) "${server_cpu[@]}" "$ours" --listen "127.0.0.1:$port" --history-size 0 --resume-window 0 2>"$log" & ;;
    build) "${server_cpu[@]}" "$baseline_build" --listen "127.0.0.1:$port" 2>"$log" & ;;
  esac
  server_pid=$!
  for _ in $(seq 200); do
    if python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', $port), 0.1)" 2>/dev/null; then
      return 0
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "bench-compare: $1 did not start" >&2
  cat "$log" >&2
  exit 1
}

stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

echo "bench-compare: pinned=$pin, $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $rounds rounds; results: $out"
status=0
for round in $(seq "$rounds"); do
  for generator in "${generators[@]}"; do
    for scenario in "${scenarios[@]}"; do
      # A B in odd rounds, B A in even ones, so neither always goes first.
      order=(ours "$against")
      [ $((round % 2)) -eq 0 ] && order=("$against" ours)
      for server in "${order[@]}"; do
        start_server "$server"
        run_out=$(mktemp)
        if ! run_generator "$generator" "$scenario" "$run_out"; then
          status=1
          echo "bench-compare: round $round $scenario under $generator on $server failed" >&2
        fi
        python3 -c '
import json, sys
server, round_, scenario, generator = sys.argv[1], int(sys.argv[2]), sys.argv[4], sys.argv[5]
for line in open(sys.argv[3]):
    row = json.loads(line)
    row["server"], row["round"], row["scenario"], row["generator"] = server, round_, scenario, generator
    print(json.dumps(row))
' "$server" "$round" "$run_out" "$scenario" "$generator" >>"$out"
        rm -f "$run_out"
        stop_server
        echo "bench-compare: round $round: $scenario under $generator on $server done" >&2
      done
    done
  done
done
python3 "$root/scripts/bench_compare_report.py" "$out" "$against"
exit "$status"
