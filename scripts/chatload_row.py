"""Turns one chatload result (its JSON object on stdin) into one JSON line
in chat-bench's terms, so bench_compare_report.py reads both generators
alike: `server_cpu_us_per_unit`, `throughput`, `kb_per_connection`,
`kb_per_stream`, `stream_cpu_us_per_connect`, `latency_us` and `ok`.

    chatload fanout ... | python3 scripts/chatload_row.py fanout
"""

import json
import sys


def row(scenario: str, result: dict) -> dict:
    f = result.get("figures") or {}
    out = {"ok": bool(result.get("ok")), "chatload": f}
    if scenario in ("direct", "pingpong"):
        out["server_cpu_us_per_unit"] = f.get("server_cpu_us_per_msg")
        out["throughput"] = f.get("msgs_per_s", f.get("hops_per_s"))
    elif scenario == "fanout":
        out["server_cpu_us_per_unit"] = f.get("server_cpu_us_per_delivery")
        out["throughput"] = f.get("deliveries_per_s")
    elif scenario in ("mixed", "mixed-saturated"):
        out["server_cpu_us_per_unit"] = f.get("server_cpu_us_per_delivery")
        out["throughput"] = f.get("msgs_per_s")
    elif scenario in ("connections", "connections-shared"):
        streams = (result.get("params") or {}).get("count") or 0
        grown = (f.get("rss_connected_kb") or 0) - (f.get("rss_before_kb") or 0)
        per_stream = round(grown / streams, 2) if streams else None
        out["kb_per_connection"] = per_stream
        out["kb_per_stream"] = per_stream
        out["server_cpu_us_per_unit"] = f.get("server_cpu_us_per_conn")
        out["stream_cpu_us_per_connect"] = f.get("server_cpu_us_per_conn")
    out["latency_us"] = {"p50": f.get("latency_p50_us"), "p99": f.get("latency_p99_us")}
    return out


def main() -> int:
    text = sys.stdin.read()
    try:
        result = json.loads(text)
    except ValueError:
        print(json.dumps({"ok": False, "error": "chatload printed no result"}))
        return 1
    print(json.dumps(row(sys.argv[1], result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
