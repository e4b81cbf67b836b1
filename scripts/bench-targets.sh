#!/usr/bin/env bash
# `make bench-targets`: every scenario on a fresh release server, with the
# server flags BENCHMARKS.md reports each target row with: one completion
# queue throughout (the CPU floor on a 2-core machine shared with the load
# generator), and `--write-delay 20ms` for the two fan-out-heavy rows. Runs
# `make bench`'s script once per row, so memory figures start from a fresh
# server every time.
#   RUNS       how many times to run each row (default 1)
#   BENCH_OUT  where the JSON lines go (default target/bench/targets.jsonl)
# Exits non-zero if any run lost, duplicated or reordered a message.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export BENCH_OUT=${BENCH_OUT:-${CARGO_TARGET_DIR:-$root/target}/bench/targets.jsonl}
rows=(
  "--threads 1|direct"
  "--threads 1 --write-delay 20ms|fanout"
  "--threads 1|connections --connections 5000"
  "--threads 1|connections --connections 19000"
  "--threads 1 --write-delay 20ms|mixed"
  "--threads 1|pingpong"
)
status=0
for run in $(seq "${RUNS:-1}"); do
  for row in "${rows[@]}"; do
    echo "bench-targets: run $run: server ${row%%|*}: ${row#*|}"
    SERVER_FLAGS="${row%%|*}" BENCH_CMD="${row#*|}" "$root/scripts/bench.sh" || status=1
  done
done
exit "$status"
