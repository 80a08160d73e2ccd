"""Reverse capture and rollback: what the reverse trigger costs a PostgreSQL write, how fast the
reverse applier drains a backlog into SQLite, and how long writers pause during a rollback.

One throwaway PostgreSQL cluster (pgferry.pg.cluster: loopback, fsync off). The SQLite file (WAL)
holds `events` (INTEGER PRIMARY KEY, 10,000 rows) and `counters` (TEXT key, WITHOUT ROWID, 1,000
rows); `pgferry migrate start --until-caught-up` copies it, then `pgferry migrate cutover` switches it
to PostgreSQL (installing reverse capture with the flip).

1. trigger cost: on a second copy of the file (schema `cost`), `--writes` single-row autocommit writes
   on PostgreSQL (3 of 4 INSERT an event, 1 of 4 UPDATE a counter), alternately with the reverse
   triggers installed and without (uninstalled, in the same run), `--rounds` rounds each; wall time
   per write, median of the rounds, as a ratio.
2. drain: `--backlog` such writes made with the triggers on, then the reverse applier until caught
   up (in process): entries applied per second.
3. rollback: `--writers` threads writing through `pgferry.runtime.routed.Router` on route `postgres`;
   after `--seconds` of it, `rollback()`, then `--seconds` more on SQLite. The p99 and longest write
   before the rollback (on PostgreSQL), the longest one begun during it, the longest after it (on
   SQLite, four writers contending for its lock), the rollback's own pause (freeze to flip) and
   whether every acknowledged write is in SQLite. Then `migrate follow` carries the writes made on SQLite
   since, and verify compares both sides.

    .venv/bin/python bench/reverse.py --writes 2000 --rounds 5 --backlog 50000 --writers 4 --seconds 3
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from applier import make_source  # bench/applier.py's file: events and counters
from pgferry.capture import reverse
from pgferry.capture.copied import captured_tables
from pgferry.capture.cutover import cutover
from pgferry.capture.migration import follow, start
from pgferry.capture.reverse import ReverseApplier
from pgferry.capture.rollback import rollback
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.verify import verify_copy
from pgferry.pg.cluster import throwaway_cluster
from pgferry.runtime import Backend, Dialect, Statements
from pgferry.runtime.postgres import PostgresDatabase, PostgresPolicy
from pgferry.runtime.route import RouteReader
from pgferry.runtime.routed import Router
from pgferry.runtime.sqlite import SqliteDatabase, SqlitePolicy


@dataclass(frozen=True)
class EventSql(Statements):
    EVENT_ADD: str


HOME = Dialect.load("sqlite", EventSql, {"EVENT_ADD": "INSERT INTO events (at, kind, payload) VALUES (?, ?, 'r')"})
OTHER = Dialect.load(
    "postgresql", EventSql, {"EVENT_ADD": "INSERT INTO events (at, kind, payload) VALUES ($1, $2, 'r')"}
)


def pg_writes(dsn: str, count: int, offset: int = 0, schema: str = "public") -> float:
    """`count` single-row autocommit writes into `schema`; seconds per write."""
    with psycopg.connect(dsn, autocommit=True, options=f"-c search_path={schema}") as pg:
        began = time.perf_counter()
        for i in range(offset, offset + count):
            if i % 4 == 3:
                pg.execute("UPDATE counters SET n = n + 1 WHERE name = %s", (f"c{i % 1000}",))
            else:
                pg.execute("INSERT INTO events (at, kind, payload) VALUES (%s, 'w', 'x')", (time.time(),))
        return (time.perf_counter() - began) / count


def trigger_cost(tmp: Path, dsn: str, writes: int, rounds: int) -> dict[str, Any]:
    """On a second copy (schema `cost`), so that the rounds without triggers leave the first alone."""
    path = tmp / "cost.db"
    make_source(path, events=10_000)
    start(path, dsn, CopyOptions(jobs=1, schema="cost"))
    on: list[float] = []
    off: list[float] = []
    with psycopg.connect(dsn) as pg:
        tables = captured_tables(sqlite3.connect(path), pg, "cost").tables
    for r in range(rounds):
        for installed in (True, False) if r % 2 == 0 else (False, True):
            with psycopg.connect(dsn) as pg:  # one transaction each
                if installed:
                    reverse.install(pg, "cost", tables)
                else:
                    reverse.uninstall(pg, "cost")
            (on if installed else off).append(pg_writes(dsn, writes, r * writes, "cost"))
    with psycopg.connect(dsn) as pg:
        reverse.uninstall(pg, "cost")
    with_us, without_us = statistics.median(on) * 1e6, statistics.median(off) * 1e6
    return {
        "write_us_with_trigger": round(with_us, 1),
        "write_us_without": round(without_us, 1),
        "ratio": round(with_us / without_us, 3),
    }


def drain(path: Path, dsn: str, backlog: int) -> dict[str, Any]:
    pg_writes(dsn, backlog, 10**6)
    applier = ReverseApplier(path, dsn, "public")
    try:
        began = time.perf_counter()
        applied = applier.run(until_caught_up=True)
        seconds = time.perf_counter() - began
    finally:
        applier.close()
    return {"entries": applied, "seconds": round(seconds, 2), "applied_per_s": round(applied / seconds)}


class Writers:
    def __init__(self, router: Router[Any], n: int) -> None:
        self.router = router
        self.stop = threading.Event()
        self.samples: list[tuple[float, float]] = []  # (start, seconds)
        self.acked: list[str] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(n)]

    def run(self, i: int) -> None:
        k = 0
        while not self.stop.is_set():
            kind = f"r{i}-{k}"
            t = time.perf_counter()
            try:
                self.router.run(HOME.sql.EVENT_ADD, (time.time(), kind))
            except Exception as exc:
                self.errors.append(repr(exc))
                continue
            with self.lock:
                self.samples.append((t, time.perf_counter() - t))
                self.acked.append(kind)
            k += 1


def rollback_pause(path: Path, dsn: str, writers: int, seconds: float) -> dict[str, Any]:
    home = Backend(SqliteDatabase(path, SqlitePolicy(busy_timeout_ms=5000)), HOME)
    pg = Backend(PostgresDatabase(dsn, PostgresPolicy(pool_min=0, pool_max=writers, pool_wait_s=5)), OTHER)
    router = Router(home, pg, RouteReader(path))
    running = Writers(router, writers)
    try:
        for t in running.threads:
            t.start()
        time.sleep(seconds)
        began = time.perf_counter()
        report = rollback(path, dsn)
        took = time.perf_counter() - began
        time.sleep(seconds)
        running.stop.set()
        for t in running.threads:
            t.join(30)
    finally:
        router.close()
    before = sorted(s for at, s in running.samples if at < began)
    with sqlite3.connect(path) as conn:
        kinds = {k for (k,) in conn.execute("SELECT kind FROM events WHERE payload = 'r'")}
    return {
        "writes": len(running.samples),
        "errors": len(running.errors),
        "write_p99_ms_before": round(before[int(0.99 * len(before))] * 1000, 2),
        "write_max_ms_before": round(before[-1] * 1000, 1),
        "write_max_ms_after_on_sqlite": round(max(s for at, s in running.samples if at > began + took) * 1000, 1),
        "write_max_ms_around_rollback": round(
            max(s for at, s in running.samples if began - 0.1 <= at <= began + took) * 1000, 1
        ),
        "rollback_s": round(took, 3),
        "pause_ms": round(report.pause_s * 1000, 1),
        "lock_wait_ms": round(report.lock_wait_s * 1000, 1),
        "applied_before_freeze": report.applied_before,
        "drained_under_lock": report.drained,
        "every_acked_write_in_sqlite": set(running.acked) <= kinds,
    }


def verify_summary(path: Path, dsn: str) -> dict[str, Any]:
    report = verify_copy(path, dsn)
    return {
        "identical": report.identical,
        "tables": {t.table: [t.missing_in_target, t.extra_in_target, t.differing_keys] for t in report.tables},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reverse-bench-") as tmp, throwaway_cluster() as cluster:
        path = Path(tmp) / "app.db"
        make_source(path, events=10_000)
        dsn = cluster.dsn()
        start(path, dsn, CopyOptions(jobs=1))
        cutover(path, dsn)  # reverse capture armed by the flip
        result = {
            "load": round(os.getloadavg()[0], 2),
            "trigger_cost": trigger_cost(Path(tmp), dsn, args.writes, args.rounds),
            "drain": drain(path, dsn, args.backlog),
            "rollback": rollback_pause(path, dsn, args.writers, args.seconds),
            "forward_after_rollback": follow(path, dsn).applied,  # the writes made on SQLite after the flip
            "verify": verify_summary(path, dsn),
        }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
