#!/usr/bin/env bash
# `make bench-targets`: every scenario on a fresh release server, with the
# server flags BENCHMARKS.md reports its target row with: one completion
# queue throughout (the CPU floor on a 2-core machine shared with the load
# generator), and `--write-delay 20ms` for the two fan-out-heavy rows; then
# the cluster rows, each on a fresh Redis and two fresh nodes with the same
# flags. Runs `make bench`'s script once per row, so memory figures start
# from a fresh server every time.
#   RUNS       how many times to run each row (default 1)
#   ROWS       "single", "cluster" or "all" (default)
#   BENCH_OUT  where the JSON lines go (default target/bench/targets.jsonl)
# Exits non-zero if any run lost, duplicated or reordered a message.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BENCH_OUT=${BENCH_OUT:-${CARGO_TARGET_DIR:-$root/target}/bench/targets.jsonl}
# nodes|server flags|scenario
single=(
  "1|--threads 1|direct"
  "1|--threads 1 --write-delay 20ms|fanout"
  "1|--threads 1|connections --connections 5000"
  "1|--threads 1|connections --connections 19000"
  "1|--threads 1 --write-delay 20ms|mixed"
  "1|--threads 1|pingpong"
)
cluster=(
  "2|--threads 1|direct"
  "2|--threads 1 --write-delay 20ms|fanout"
  "2|--threads 1|pingpong"
)
case "${ROWS:-all}" in
  single) rows=("${single[@]}") ;;
  cluster) rows=("${cluster[@]}") ;;
  all) rows=("${single[@]}" "${cluster[@]}") ;;
  *) echo "bench-targets: ROWS must be single, cluster or all" >&2; exit 2 ;;
esac
status=0
for run in $(seq "${RUNS:-1}"); do
  for row in "${rows[@]}"; do
    nodes=${row%%|*}
    rest=${row#*|}
    echo "bench-targets: run $run: $nodes node(s), server ${rest%%|*}: ${rest#*|}"
    NODES="$nodes" SERVER_FLAGS="${rest%%|*}" BENCH_CMD="${rest#*|}" "$root/scripts/bench.sh" || status=1
  done
done
exit "$status"
