"""The summary of `make bench-compare`: reads the per-run JSON lines (each
with "server": "ours" or "tonic"), and prints per figure the median of
each server's runs and the ratio ours / tonic, first as a table, then as
one JSON line per figure. Lower is better for every figure but throughput,
where the ratio says how much more we achieved. A second argument names
the baseline when it is not the tonic yardstick (bench-compare's
AGAINST=ours-off: this server with history and resume off). Runs under
each load generator (chat-bench, chatload) get a table of their own.

    python3 scripts/bench_compare_report.py target/bench/compare.jsonl [BASELINE]
"""

import json
import statistics
import sys

# (scenario, label, how to read the figure from a run, unit)
FIGURES = [
    ("direct", "server CPU per message", lambda r: r.get("server_cpu_us_per_unit"), "us"),
    ("direct", "msgs/s", lambda r: r.get("throughput"), "msgs/s"),
    ("fanout", "server CPU per delivery", lambda r: r.get("server_cpu_us_per_unit"), "us"),
    ("fanout", "deliveries/s", lambda r: r.get("throughput"), "deliveries/s"),
    ("connections", "RSS per connection", lambda r: r.get("kb_per_connection"), "KB"),
    ("connections", "server CPU per connect", lambda r: r.get("server_cpu_us_per_unit"), "us"),
    ("connections-shared", "RSS per stream", lambda r: r.get("kb_per_stream"), "KB"),
    ("connections-shared", "server CPU per stream", lambda r: r.get("stream_cpu_us_per_connect"), "us"),
    ("mixed", "server CPU per delivery", lambda r: r.get("server_cpu_us_per_unit"), "us"),
    ("mixed", "messages/s achieved", lambda r: r.get("throughput"), "msgs/s"),
    ("mixed-saturated", "server CPU per delivery", lambda r: r.get("server_cpu_us_per_unit"), "us"),
    ("mixed-saturated", "messages/s achieved", lambda r: r.get("throughput"), "msgs/s"),
    ("pingpong", "p50", lambda r: (r.get("latency_us") or {}).get("p50"), "us"),
    ("pingpong", "p99", lambda r: (r.get("latency_us") or {}).get("p99"), "us"),
    ("pingpong", "server CPU per message", lambda r: r.get("server_cpu_us_per_unit"), "us"),
]


def main(path: str, baseline: str = "tonic") -> int:
    runs = [json.loads(line) for line in open(path) if line.strip()]
    generators = []
    for r in runs:
        generator = r.setdefault("generator", "chat-bench")
        if generator not in generators:
            generators.append(generator)
    for generator in generators:
        report(generator, [r for r in runs if r["generator"] == generator], baseline)
    clean = all(r.get("ok", False) for r in runs)
    print(f"bench-compare: {len(runs)} runs, every run clean: {clean}")
    return 0 if clean else 1


def report(generator: str, runs: list, baseline: str) -> None:
    """Prints the table and JSON lines of the runs under one generator."""
    rows = []
    for scenario, label, read, unit in FIGURES:
        values = {}
        for server in ("ours", baseline):
            got = [read(r) for r in runs if r.get("scenario") == scenario and r.get("server") == server]
            got = [v for v in got if isinstance(v, (int, float))]
            values[server] = got
        if not values["ours"] or not values[baseline]:
            continue
        ours = statistics.median(values["ours"])
        tonic = statistics.median(values[baseline])
        ratio = ours / tonic if tonic else None
        rows.append({
            "generator": generator,
            "scenario": scenario,
            "figure": label,
            "unit": unit,
            "ours": round(ours, 3),
            "tonic": round(tonic, 3),
            "ratio": None if ratio is None else round(ratio, 3),
            "ours_runs": values["ours"],
            "tonic_runs": values[baseline],
        })
    print()
    print(f"Under {generator}:")
    print()
    print(f"| scenario | figure | ours | {baseline} | ratio (ours / {baseline}) | runs |")
    print(f"| --- | --- | --- | --- | --- | --- |")
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        print(f"| {row['scenario']} | {row['figure']} ({row['unit']}) | {row['ours']:g} | "
              f"{row['tonic']:g} | {ratio} | {len(row['ours_runs'])} + {len(row['tonic_runs'])} |")
    print()
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
