"""The applier under a sustained writer: lag per change, and how fast it drains a backlog.

One throwaway PostgreSQL cluster (pgferry.pg.cluster: loopback, fsync off). The SQLite file (WAL,
synchronous NORMAL) holds `events` (INTEGER PRIMARY KEY, 50,000 rows) and `counters` (TEXT key,
WITHOUT ROWID, 1,000 rows); `pgferry migrate start --until-caught-up` copies it. Then:

1. sustained: `pgferry migrate follow` runs as its own process while a writer process makes `--rate`
   single-row autocommit writes per second for `--seconds` (paced on an absolute schedule): 3 of 4
   INSERT an event stamped with the wall-clock time before the write, 1 of 4 UPDATEs a counter.
   PostgreSQL's `events` gets an extra column, `applied_at DEFAULT clock_timestamp()`, which the
   applier's upsert leaves to its default: lag = applied_at - the stamp, for every inserted event
   (the time from the write to the applier's INSERT, inside the batch's transaction; its COMMIT
   follows within the same batch). The applier is stopped (SIGTERM) once the status says lag 0.
2. backlog: with no applier running, the writer makes `--backlog` writes as fast as it can; then
   `pgferry migrate follow --until-caught-up` drains them: changes applied per second = entries /
   that process's wall time (start-up, about 0.5 s, included).

    .venv/bin/python bench/applier.py --rate 2000 --seconds 30 --backlog 100000
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from pgferry.capture.status import read_status
from pgferry.pg.cluster import throwaway_cluster

PGFERRY = [sys.executable, "-m", "pgferry"]


def make_source(path: Path, events: int = 50_000) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, at REAL NOT NULL, kind TEXT, payload TEXT)")
        conn.execute("CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID")
        conn.executemany(
            "INSERT INTO events (at, kind, payload) VALUES (?, ?, ?)",
            ((0.0, f"k{i % 7}", "p" * (i % 200)) for i in range(events)),
        )
        conn.executemany("INSERT INTO counters VALUES (?, 0)", ((f"c{i}",) for i in range(1000)))


def writer(path: str, rate: float, count: int) -> None:
    """`count` writes at `rate` per second (0: as fast as possible); prints how it went as JSON."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.execute("PRAGMA synchronous = NORMAL")
    began = time.perf_counter()
    late = 0
    latencies = []
    for i in range(count):
        if rate:
            due = began + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            elif wait < -0.01:
                late += 1
        t = time.perf_counter()
        if i % 4 == 3:
            conn.execute("UPDATE counters SET n = n + 1 WHERE name = ?", (f"c{i % 1000}",))
        else:
            conn.execute("INSERT INTO events (at, kind, payload) VALUES (?, 'w', 'x')", (time.time(),))
        latencies.append(time.perf_counter() - t)
    seconds = time.perf_counter() - began
    latencies.sort()
    print(
        json.dumps(
            {
                "writes": count,
                "seconds": round(seconds, 2),
                "writes_per_s": round(count / seconds),
                "late_over_10ms": late,
                "write_p99_ms": round(latencies[int(0.99 * len(latencies))] * 1000, 3),
            }
        )
    )


def run_writer(path: Path, rate: float, count: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--writer", str(path), "--rate", str(rate), "--count", str(count)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout))


def wait_caught_up(path: Path, dsn: str, deadline_s: float) -> float:
    began = time.perf_counter()
    while time.perf_counter() - began < deadline_s:
        if read_status(path, dsn, "public").lag_changes == 0:
            return time.perf_counter() - began
        time.sleep(0.05)
    raise SystemExit("the applier did not catch up in time")


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--writer", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        writer(args.writer, args.rate, args.count)
        return 0
    with tempfile.TemporaryDirectory(prefix="applier-bench-") as tmp, throwaway_cluster() as cluster:
        path = Path(tmp) / "app.db"
        make_source(path)
        dsn = cluster.dsn()
        started = subprocess.run(
            [*PGFERRY, "migrate", "start", str(path), dsn, "--until-caught-up", "--json"],
            capture_output=True,
            text=True,
        )
        if started.returncode != 0:
            raise SystemExit(started.stderr)
        with psycopg.connect(dsn, autocommit=True) as pg:
            pg.execute("ALTER TABLE events ADD COLUMN applied_at timestamptz DEFAULT clock_timestamp()")
        # 1. sustained
        follow = subprocess.Popen(
            [*PGFERRY, "migrate", "follow", str(path), dsn, "--batch", str(args.batch), "--json"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.5)  # its start-up
        wrote = run_writer(path, args.rate, int(args.rate * args.seconds))
        settle = wait_caught_up(path, dsn, 120)
        status = read_status(path, dsn, "public")
        follow.send_signal(signal.SIGTERM)
        follow.wait(30)
        with psycopg.connect(dsn) as pg:
            lags = [
                float(r[0])
                for r in pg.execute(
                    "SELECT extract(epoch FROM applied_at) - at FROM events WHERE kind = 'w' AND applied_at IS NOT NULL"
                )
            ]
        inserted = sum(1 for i in range(int(args.rate * args.seconds)) if i % 4 != 3)
        # 2. backlog
        backlog_write = run_writer(path, 0, args.backlog)
        began = time.perf_counter()
        drained = subprocess.run(
            [*PGFERRY, "migrate", "follow", str(path), dsn, "--until-caught-up", "--batch", str(args.batch), "--json"],
            capture_output=True,
            text=True,
        )
        drain_s = time.perf_counter() - began
        if drained.returncode != 0:
            raise SystemExit(drained.stderr)
        applied = json.loads(drained.stdout)["applied"]
        verify = subprocess.run([*PGFERRY, "verify", str(path), dsn, "--json"], capture_output=True, text=True)
    result = {
        "load": round(os.getloadavg()[0], 2),
        "batch": args.batch,
        "sustained": {
            "writer": wrote,
            "events_checked": len(lags),
            "events_expected": inserted,
            "lag_p50_s": round(statistics.median(lags), 3),
            "lag_p99_s": round(percentile(lags, 0.99), 3),
            "lag_max_s": round(max(lags), 3),
            "caught_up_after_writer_s": round(settle, 2),
            "applier_rate_reported_per_s": status.applied_per_s,
        },
        "backlog": {
            "writer": backlog_write,
            "entries_applied": applied,
            "follow_wall_s": round(drain_s, 2),
            "applied_per_s": round(applied / drain_s),
        },
        "verify_identical": verify.returncode == 0,
    }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
