"""Partitioned against plain: a time-ordered events table copied both ways, recent-window queries timed as
a ratio in the same run, EXPLAIN showing partition pruning, and a BRIN against a btree on created_at.

    .venv/bin/python bench/partitions.py --rows 1500000 --repeat 25

One throwaway PostgreSQL cluster; two databases filled from one SQLite file by `pgferry copy` (the
library call), one plain and one `--partition events=created_at:month --partition-widen-keys`, each
verified. Each query runs `--repeat` times per database, alternating plain and partitioned, after one
warm-up each; the figure is the median, and the ratio partitioned/plain is taken within this run. The
machine is shared: the 1-minute load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_and_verify
from pgferry.pg.cluster import throwaway_cluster

DAYS = 730  # two years of events, the newest about now


def make_source(path: Path, rows: int) -> tuple[str, str]:
    """events(id, user_id, kind, created_at, payload), created_at growing with id; a btree on created_at
    (the copy carries it). Returns the newest day and the start of its last 7 days, as ISO text."""
    conn = sqlite3.connect(path)
    conn.executescript(
        "PRAGMA journal_mode=WAL; CREATE TABLE events (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, "
        "kind TEXT NOT NULL, created_at TEXT NOT NULL, payload TEXT);"
    )
    step = DAYS * 86400.0 / rows
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO events SELECT i, abs(random()) % 50000, "
        "CASE i % 4 WHEN 0 THEN 'view' WHEN 1 THEN 'reply' WHEN 2 THEN 'like' ELSE 'login' END, "
        "datetime(unixepoch('now') - ? + CAST(i * ? AS INTEGER), 'unixepoch'), "
        'printf(\'{"ip": "10.0.%d.%d", "agent": "bench"}\', i % 256, i % 200) FROM n',
        [rows, DAYS * 86400, step],
    )
    conn.execute("CREATE INDEX events_created_at ON events (created_at)")
    conn.commit()
    newest = conn.execute("SELECT max(created_at) FROM events").fetchone()[0]
    week = conn.execute("SELECT datetime(?, '-7 days')", [newest]).fetchone()[0]
    conn.close()
    return newest, week


QUERIES = {
    "count_last_7_days": "SELECT count(*) FROM events WHERE created_at >= %(week)s",
    "by_kind_last_7_days": "SELECT kind, count(*) FROM events WHERE created_at >= %(week)s GROUP BY kind",
    "feed_newest_50": "SELECT id, kind, created_at FROM events WHERE created_at >= %(week)s "
    "ORDER BY created_at DESC LIMIT 50",
    "one_day_payloads": "SELECT sum(length(payload::text)) FROM events WHERE created_at >= %(week)s "
    "AND created_at < %(week)s::timestamp + interval '1 day'",
}


def timed(pg: psycopg.Connection, query: str, params: dict[str, str]) -> float:
    start = time.perf_counter()
    pg.execute(query, params).fetchall()  # type: ignore[arg-type]
    return time.perf_counter() - start


def plan_lines(pg: psycopg.Connection, query: str, params: dict[str, str]) -> list[str]:
    rows = pg.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + query, params).fetchall()  # type: ignore[operator]
    return [r[0] for r in rows]


def index_sizes(pg: psycopg.Connection) -> dict[str, int]:
    """Bytes of the table and of each index on created_at (summed over partitions for a partitioned one)."""
    tree = "SELECT relid FROM pg_partition_tree('events') WHERE isleaf UNION SELECT 'events'::regclass"
    table = pg.execute(f"SELECT sum(pg_table_size(relid)) FROM ({tree}) t").fetchone()
    out = {"table": int(table[0]) if table else 0}
    for method in ("btree", "brin"):
        row = pg.execute(
            "SELECT coalesce(sum(pg_relation_size(i.indexrelid)), 0) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
            f"JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            f"WHERE i.indrelid IN ({tree}) AND am.amname = %s AND a.attname = 'created_at' AND i.indnatts = 1",
            [method],
        ).fetchone()
        out[method] = int(row[0]) if row else 0
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out: dict[str, Any] = {"rows": args.rows, "repeat": args.repeat, "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp, throwaway_cluster() as cluster:
        source = Path(tmp) / "events.db"
        newest, week = make_source(source, args.rows)
        params = {"week": week}
        dsns = {}
        for name, extra in (("plain", {}), ("partitioned", {"partitions": ("events=created_at:month",)})):
            with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
                admin.execute(f"CREATE DATABASE {name}")
            dsns[name] = cluster.dsn(name)
            options = CopyOptions(jobs=2, partition_widen_keys=bool(extra), **extra)  # type: ignore[arg-type]
            start = time.perf_counter()
            job = copy_and_verify(source, dsns[name], options)
            out[f"copy_and_verify_s_{name}"] = round(time.perf_counter() - start, 1)
            assert job.identical, f"{name}: verify found differences"
        conns = {name: psycopg.connect(dsn, autocommit=True) for name, dsn in dsns.items()}
        with conns["plain"].transaction():  # a BRIN beside the btree, for its size (and a timing below)
            conns["plain"].execute("CREATE INDEX events_created_at_brin ON events USING brin (created_at)")
        conns["plain"].execute("VACUUM ANALYZE events")
        conns["partitioned"].execute("VACUUM ANALYZE events")
        out["sizes"] = {name: index_sizes(pg) for name, pg in conns.items()}
        out["partitions"] = (
            conns["partitioned"]
            .execute("SELECT count(*) - 1 FROM pg_inherits WHERE inhparent = 'events'::regclass")
            .fetchone()[0]
        )
        results: dict[str, dict[str, float]] = {}
        for label, query in QUERIES.items():
            times: dict[str, list[float]] = {"plain": [], "partitioned": []}
            for name in times:
                timed(conns[name], query, params)  # warm-up
            for _ in range(args.repeat):
                for name in times:
                    times[name].append(timed(conns[name], query, params))
            medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
            results[label] = {
                "plain_ms": round(medians["plain"], 3),
                "partitioned_ms": round(medians["partitioned"], 3),
                "ratio": round(medians["partitioned"] / medians["plain"], 2),
            }
        # the plain table with its BRIN only (the btree dropped inside a transaction, rolled back)
        brin: dict[str, float] = {}
        pg = conns["plain"]
        with pg.transaction(force_rollback=True):
            pg.execute("DROP INDEX events_created_at")
            for label, query in QUERIES.items():
                timed(pg, query, params)
                brin[label] = round(statistics.median(timed(pg, query, params) for _ in range(args.repeat)) * 1000, 3)
            out["brin_only_plan"] = plan_lines(pg, QUERIES["count_last_7_days"], params)
        for label in QUERIES:
            results[label]["plain_brin_only_ms"] = brin[label]
        # no index on created_at at all: the plain table is scanned whole, the partitioned one by partition
        for name, drops in (
            ("plain", "events_created_at, events_created_at_brin"),
            ("partitioned", "events_created_at"),
        ):
            pg = conns[name]
            with pg.transaction(force_rollback=True):
                pg.execute(f"DROP INDEX {drops}")
                for label, query in QUERIES.items():
                    timed(pg, query, params)
                    median = statistics.median(timed(pg, query, params) for _ in range(args.repeat))
                    results[label][f"{name}_no_index_ms"] = round(median * 1000, 3)
                if name == "partitioned":
                    out["explain_partitioned_no_index"] = plan_lines(pg, QUERIES["count_last_7_days"], params)
        for r in results.values():
            r["no_index_ratio"] = round(r["partitioned_no_index_ms"] / r["plain_no_index_ms"], 3)
        # run-time pruning: a bound PostgreSQL knows only when the query runs
        out["explain_runtime_pruning"] = plan_lines(
            conns["partitioned"],
            "SELECT count(*) FROM events WHERE created_at >= %(week)s::timestamp + interval '0 s'"
            " AND created_at < statement_timestamp()::timestamp",
            params,
        )
        out["queries"] = results
        out["explain_partitioned"] = plan_lines(conns["partitioned"], QUERIES["count_last_7_days"], params)
        out["explain_plain"] = plan_lines(conns["plain"], QUERIES["count_last_7_days"], params)
        for conn in conns.values():
            conn.close()
    out["window"] = [week, newest]
    out["load_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{args.rows:,} events, {out['partitions']} monthly partitions; window {week} .. {newest}")
    print(f"load {out['load_before']:.1f} -> {out['load_after']:.1f} (shared machine)")
    print(
        f"copy + verify: plain {out['copy_and_verify_s_plain']} s, partitioned {out['copy_and_verify_s_partitioned']} s"
    )
    for name, sizes in out["sizes"].items():
        print(f"sizes {name}: " + ", ".join(f"{k} {v / 1024 / 1024:.2f} MiB" for k, v in sizes.items()))
    print("query                 plain ms  partitioned ms  ratio  plain(BRIN only) ms  no index: plain  part.  ratio")
    for label, r in results.items():
        figures = f"{r['plain_ms']:8.3f} {r['partitioned_ms']:14.3f} {r['ratio']:6.2f} {r['plain_brin_only_ms']:10.3f}"
        bare = f"{r['plain_no_index_ms']:10.3f} {r['partitioned_no_index_ms']:8.3f} {r['no_index_ratio']:6.3f}"
        print(f"{label:22} {figures}          {bare}")
    print("EXPLAIN partitioned (count_last_7_days):")
    print("\n".join("  " + line for line in out["explain_partitioned"]))
    print("EXPLAIN partitioned, no index:")
    print("\n".join("  " + line for line in out["explain_partitioned_no_index"]))
    print("EXPLAIN partitioned, bound known at run time:")
    print("\n".join("  " + line for line in out["explain_runtime_pruning"]))
    print("EXPLAIN plain:")
    print("\n".join("  " + line for line in out["explain_plain"]))
    print("EXPLAIN plain, BRIN only:")
    print("\n".join("  " + line for line in out["brin_only_plan"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
