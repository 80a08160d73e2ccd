"""The native-schema acceptance run on the scale-1 forum (issue 19): a plain copy, the forum's traffic on it,
`pgferry advise` with its defaults writing the native plan, a second copy carrying the whole plan out,
both verified; then the forum's own queries on the tables the plan partitioned, plain against
partitioned, with EXPLAIN.

    .venv/bin/forum seed --scale 1 --out /tmp/native-run/forum.db
    .venv/bin/python bench/native_forum.py --db /tmp/native-run/forum.db --out /tmp/native-run

One throwaway PostgreSQL 15 cluster (pg_stat_statements preloaded, HypoPG installed), two databases.
Every pgferry step is the CLI itself (`pgferry copy`, `pgferry advise`), run as a subprocess and timed.
The traffic is `forum serve` on the plain copy and `forum traffic` (the library call) against it, so
pg_stat_statements holds the forum's own statements, its search included. The queries are timed
`--repeat` times per database, alternating, after a warm-up; the figure is the median and the ratio
partitioned/plain is taken within this run. The machine is shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from forum.traffic import TrafficOptions, run_traffic
from forum.web.process import running_server
from pgferry.pg.cluster import throwaway_cluster

PGFERRY = [sys.executable, "-m", "pgferry"]

# The forum's statements on the tables the plan partitions (src/forum/store/postgres/queries.py), with how
# to pick a parameter from the data: the heaviest user, a live session.
QUERIES = {
    "notifications of a user, unread first": (
        "SELECT id, type, payload, is_read, created_at FROM notifications WHERE user_id = %s"
        " ORDER BY is_read, created_at DESC, id DESC LIMIT 20",
        "SELECT user_id FROM notifications GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
    ),
    "unread count of a user": (
        "SELECT count(*) AS n FROM notifications WHERE user_id = %s AND NOT is_read",
        "SELECT user_id FROM notifications GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
    ),
    "activity of a user": (
        "SELECT id, action, entity_type, entity_id, metadata, created_at FROM activity_log WHERE user_id = %s"
        " ORDER BY created_at DESC, id DESC LIMIT 20",
        "SELECT user_id FROM activity_log GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
    ),
    "session lookup by token": (
        "SELECT s.id, s.user_id, s.expires_at FROM user_sessions s WHERE s.session_token = %s AND s.is_active",
        "SELECT session_token FROM user_sessions WHERE is_active ORDER BY id DESC LIMIT 1",
    ),
    "notifications of the newest 7 days": (
        "SELECT count(*) FROM notifications WHERE created_at > %s",
        "SELECT max(created_at) - interval '7 days' FROM notifications",
    ),
}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def timed(command: list[str], log: Path) -> tuple[float, int, str]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    log.write_text(done.stdout + done.stderr)
    return seconds, done.returncode, done.stdout


def sizes(dsn: str) -> dict[str, Any]:
    """The database's size, and each BRIN and GIN index's (a partitioned one: summed over its partitions)."""
    with psycopg.connect(dsn) as pg:
        database = pg.execute("SELECT pg_database_size(current_database())").fetchone()
        native = pg.execute(
            "SELECT c.relname, am.amname, coalesce(sum(pg_relation_size(t.relid)), pg_relation_size(c.oid))::bigint"
            " FROM pg_class c JOIN pg_am am ON am.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN LATERAL pg_partition_tree(c.oid) t ON true WHERE n.nspname = 'public'"
            " AND c.relkind IN ('i', 'I') AND NOT c.relispartition AND am.amname IN ('brin', 'gin')"
            " GROUP BY c.oid, 1, 2 ORDER BY 1"
        ).fetchall()
    return {"database_bytes": database[0] if database else None, "indexes": {r[0]: [r[1], r[2]] for r in native}}


def index_bytes(dsn: str, table: str, column: str, method: str) -> int:
    """The size of an index on `column` of the plain copy, built and rolled back: the btree a BRIN
    replaces, and the BRIN on the unpartitioned table."""
    with psycopg.connect(dsn) as pg:
        pg.execute(
            sql.SQL("CREATE INDEX pgferry_bench_index ON {} USING {} ({})").format(
                sql.Identifier(table), sql.Identifier(method), sql.Identifier(column)
            )
        )
        row = pg.execute("SELECT pg_relation_size('pgferry_bench_index')").fetchone()
        pg.rollback()
    return int(row[0]) if row else 0


def explain_and_time(plain: str, native: str, repeat: int) -> list[dict[str, Any]]:
    out = []
    with psycopg.connect(plain) as a, psycopg.connect(native) as b:
        for label, (query, pick) in QUERIES.items():
            row = a.execute(pick).fetchone()
            if row is None:
                continue
            param = [row[0]]
            plans = {}
            for name, pg in (("plain", a), ("partitioned", b)):
                explained = pg.execute(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) {query}", param)
                plans[name] = [r[0] for r in explained]
                pg.execute(query, param).fetchall()  # warm-up
            times: dict[str, list[float]] = {"plain": [], "partitioned": []}
            for _ in range(repeat):
                for name, pg in (("plain", a), ("partitioned", b)):
                    started = time.perf_counter()
                    pg.execute(query, param).fetchall()
                    times[name].append((time.perf_counter() - started) * 1000)
            medians = {k: statistics.median(v) for k, v in times.items()}
            out.append(
                {
                    "query": label,
                    "sql": query,
                    "plain_ms": round(medians["plain"], 3),
                    "partitioned_ms": round(medians["partitioned"], 3),
                    "ratio": round(medians["partitioned"] / medians["plain"], 2),
                    "plans": plans,
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=Path, required=True, help="The seeded forum (forum seed --scale 1).")
    parser.add_argument("--out", type=Path, required=True, help="Directory for the plan, logs and results.")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=25)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"load_start": load()}
    plan_file = args.out / "native.toml"
    with throwaway_cluster() as cluster:
        admin = cluster.dsn()
        with psycopg.connect(admin, autocommit=True) as pg:
            for name in ("plain", "native"):
                pg.execute(f"CREATE DATABASE {name}")
        plain, native = cluster.dsn("plain"), cluster.dsn("native")
        seconds, rc, _ = timed([*PGFERRY, "copy", str(args.db), plain], args.out / "copy-plain.log")
        result["copy_plain"] = {"seconds": round(seconds, 1), "exit": rc}
        print(f"plain copy: {seconds:.1f} s, exit {rc} (load {load()})", flush=True)
        with psycopg.connect(plain, autocommit=True) as pg:
            pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            pg.execute("SELECT pg_stat_statements_reset()")
        with running_server(plain, "optimized") as server:
            traffic = run_traffic(server.url, TrafficOptions(users=args.users, duration_s=args.duration)).to_dict()
        result["traffic"] = {k: traffic.get(k) for k in ("requests", "errors", "errors_by_status", "throughput_rps")}
        print(f"traffic: {traffic.get('requests')} requests, {traffic.get('errors')} errors", flush=True)
        with psycopg.connect(plain, autocommit=True) as pg:
            pg.execute("ANALYZE")
        seconds, rc, _ = timed(
            [*PGFERRY, "advise", plain, "--native-plan-out", str(plan_file)], args.out / "advise.txt"
        )
        result["advise"] = {"seconds": round(seconds, 1), "exit": rc}
        print(f"advise: {seconds:.1f} s, exit {rc}", flush=True)
        entries = tomllib.loads(plan_file.read_text()).get("proposal", []) if plan_file.exists() else []
        result["proposals"] = [f"{e['kind']} {e['table']}.{e['column']}" + (f" {e['unit']}" if "unit" in e else "")
                               for e in entries]  # fmt: skip
        comments = plan_file.read_text().splitlines() if plan_file.exists() else []
        result["refused"] = [line[2:] for line in comments if line.startswith("# not partitioned")]
        seconds, rc, report = timed(
            [*PGFERRY, "copy", str(args.db), native, "--native-plan", str(plan_file), "--json"],
            args.out / "copy-native.json",
        )
        data = json.loads(report) if report.strip().startswith("{") else {}
        verdict = data.get("verify") or {}
        result["copy_native"] = {
            "seconds": round(seconds, 1),
            "exit": rc,
            "identical": verdict.get("identical"),
            "refused_steps": [s for s in data.get("skipped", []) if "refused" in str(s.get("reason", ""))],
        }
        print(f"native copy: {seconds:.1f} s, exit {rc}, identical {verdict.get('identical')}", flush=True)
        seconds, rc, _ = timed([*PGFERRY, "verify", str(args.db), native], args.out / "verify-native.log")
        result["verify_native"] = {"seconds": round(seconds, 1), "exit": rc}
        result["sizes"] = {"plain": sizes(plain), "native": sizes(native)}
        result["plain_btree_brin_bytes"] = {
            f"{e['table']}.{e['column']}": [index_bytes(plain, e["table"], e["column"], m) for m in ("btree", "brin")]
            for e in entries
            if e["kind"] == "brin"
        }
        result["queries"] = explain_and_time(plain, native, args.repeat)
    result["load_end"] = load()
    (args.out / "result.json").write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps({k: v for k, v in result.items() if k != "queries"}, indent=2, default=str))
    for q in result["queries"]:
        print(f"\n{q['query']}: plain {q['plain_ms']} ms, partitioned {q['partitioned_ms']} ms, ratio {q['ratio']}")
        print("  partitioned plan:\n    " + "\n    ".join(q["plans"]["partitioned"][:14]))


if __name__ == "__main__":
    main()
