"""The forum in legacy vs optimized mode under the same simulated traffic, at several user counts.

For each user count and mode: a fresh copy of one scale-0.1 seeded database, `forum serve` in its own
process on a free loopback port, `forum traffic` (the library call) for a fixed duration with the
same seed, then the server's own counters of refused requests (/metrics: database locked, no free
connection). Prints one JSON line per run, then a Markdown table with the optimized/legacy ratios.

    .venv/bin/python bench/forum_modes.py --users 10,50,200 --duration 15
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from forum.seed import generate
from forum.seed.indexes import PLAN_DAY_1_2
from forum.traffic import TrafficOptions, run_traffic
from forum.traffic.mix import WRITES
from forum.web.process import running_server

_UNAVAILABLE = re.compile(r'^forum_db_unavailable_total\{kind="([a-z_]+)"\} ([0-9.e+]+)$', re.M)
_SUM = re.compile(r"^(forum_[a-z_]+)_sum\{[^}]*\} ([0-9.e+-]+)$", re.M)


def server_seconds(metrics: str) -> dict[str, float]:
    """Seconds summed over all requests: in the handler, in statements, waiting for a connection/writer."""
    total: dict[str, float] = {}
    for name, value in _SUM.findall(metrics):
        total[name] = total.get(name, 0.0) + float(value)
    return {
        "request_s": round(total.get("forum_http_request_duration_seconds", 0.0), 2),
        "db_s": round(total.get("forum_db_time_per_request_seconds", 0.0), 2),
        "wait_s": round(total.get("forum_db_wait_per_request_seconds", 0.0), 2),
    }


def one_run(
    seeded: Path, workdir: Path, mode: str, users: int, duration: float, seed: int, busy_ms: int | None
) -> dict[str, Any]:
    db = workdir / f"{mode}-{users}.db"
    shutil.copy(seeded, db)
    extra = ("--busy-timeout-ms", str(busy_ms)) if busy_ms is not None and mode == "legacy" else ()
    with running_server(db, mode, extra_args=extra) as server:
        report = run_traffic(server.url, TrafficOptions(users=users, duration_s=duration, seed=seed)).to_dict()
        metrics = server.metrics()
        refused = {kind: int(float(n)) for kind, n in _UNAVAILABLE.findall(metrics)}
        server_time = server_seconds(metrics)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    ends = report["by_endpoint"]
    write_requests = sum(e["requests"] for n, e in ends.items() if n in WRITES)
    write_errors = sum(e["errors"] for n, e in ends.items() if n in WRITES)
    return {
        "mode": mode + (f" busy_timeout={busy_ms}" if extra else ""),
        "users": users,
        "duration_s": duration,
        "requests": report["requests"],
        "throughput_rps": report["throughput_rps"],
        "p50_ms": report["latency_ms"]["p50"],
        "p95_ms": report["latency_ms"]["p95"],
        "p99_ms": report["latency_ms"]["p99"],
        "errors": report["errors"],
        "ok_rps": round(report["throughput_rps"] * (1 - report["errors"] / max(report["requests"], 1)), 2),
        "errors_by_status": report["errors_by_status"],
        "write_requests": write_requests,
        "write_errors": write_errors,
        "read_errors": report["errors"] - write_errors,
        "refused_by_server": refused,
        "server_time": server_time,
        "topic_view_queries": ends.get("topic_view", {}).get("queries_per_request"),
        "topic_view_p95_ms": ends.get("topic_view", {}).get("latency_ms", {}).get("p95"),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def add_plan_indexes(path: Path) -> None:
    """The indexes the legacy database lacks (forum_replies by topic, sessions by token...)."""
    import sqlite3

    from pgferry.sqltext import quote_ident as q

    conn = sqlite3.connect(path)
    try:
        for index in PLAN_DAY_1_2:
            keys = ", ".join(q(c.split()[0]) + (" DESC" if c.endswith(" DESC") else "") for c in index.columns)
            conn.execute(f"CREATE INDEX {q(index.name)} ON {q(index.table)} ({keys})")
        conn.execute("ANALYZE")
        conn.commit()
    finally:
        conn.close()


def table(runs: list[dict[str, Any]]) -> str:
    by = {(r["mode"], r["users"]): r for r in runs}
    lines = [
        "| users | mode | req/s | ok req/s | p50 ms | p95 ms | errors (of requests) | writes failed"
        " | refused: locked / no connection | topic view queries |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    modes = list(dict.fromkeys(r["mode"] for r in runs))
    for users in sorted({r["users"] for r in runs}):
        for mode in modes:
            r = by.get((mode, users))
            if r is None:
                continue
            refused = r["refused_by_server"]
            lines.append(
                f"| {users} | {mode} | {r['throughput_rps']:.1f} | {r['ok_rps']:.1f} | {r['p50_ms']:.0f}"
                f" | {r['p95_ms']:.0f} |"
                f" {r['errors']:,} ({r['requests']:,}) | {r['write_errors']:,} of {r['write_requests']:,} |"
                f" {refused.get('locked', 0):,} / {refused.get('pool_timeout', 0):,} | {r['topic_view_queries']} |"
            )
        legacy_mode = next((m for m in modes if m.startswith("legacy")), "legacy")
        if (legacy := by.get((legacy_mode, users))) and (opt := by.get(("optimized", users))):
            ratio = opt["throughput_rps"] / legacy["throughput_rps"] if legacy["throughput_rps"] else float("inf")
            ok = opt["ok_rps"] / legacy["ok_rps"] if legacy["ok_rps"] else float("inf")
            p95 = opt["p95_ms"] / legacy["p95_ms"] if legacy["p95_ms"] else float("inf")
            lines.append(f"| {users} | optimized / legacy | {ratio:.2f}x | {ok:.2f}x | | {p95:.2f}x | | | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="10,50,200", help="comma-separated user counts")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per run")
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--modes", default="legacy,optimized")
    parser.add_argument(
        "--indexes",
        action="store_true",
        help="add the plan's Day 1-2 indexes to the seeded copy first (as a tune would)",
    )
    parser.add_argument(
        "--legacy-busy-timeout-ms", type=int, default=None, help="give legacy mode a busy timeout (it has none)"
    )
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="forum-modes-") as tmp:
        workdir = Path(tmp)
        seeded = workdir / "seed.db"
        generate(seeded, scale=args.scale, seed=args.seed)
        if args.indexes:
            add_plan_indexes(seeded)
        for users in (int(u) for u in args.users.split(",")):
            for mode in args.modes.split(","):
                run = one_run(seeded, workdir, mode, users, args.duration, args.seed, args.legacy_busy_timeout_ms)
                print(json.dumps({**run, "indexes": args.indexes}), flush=True)
                runs.append(run)
    print()
    print(table(runs))


if __name__ == "__main__":
    main()
