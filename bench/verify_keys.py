"""What recording each batch's keys for verification costs the applier, and how fast a keys pass compares them.

One throwaway PostgreSQL cluster (pgferry.pg.cluster: loopback, fsync off); the SQLite file (WAL,
synchronous NORMAL) holds `events` (INTEGER PRIMARY KEY) and `counters` (TEXT key, WITHOUT ROWID),
copied by `pgferry migrate start`. Then `--rounds` rounds, each draining two backlogs of `--backlog`
writes (3 of 4 INSERT an event, 1 of 4 UPDATE a counter) with the applier in this process, once with
key recording (`INSERT ... SELECT` from the staging tables into pgferry.verify_keys, inside each
batch's transaction) and once without, in alternating order. The recording statement's own time is
also measured around it (drain rates on this shared machine vary by more than its cost). After each
recorded drain a keys pass (`pgferry migrate verify` without --full) compares every recorded key, and
is timed too.

    .venv/bin/python bench/verify_keys.py --backlog 50000 --rounds 3
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

from pgferry.capture import verifystate
from pgferry.capture.applier import Applier
from pgferry.capture.liveverify import LiveVerifier
from pgferry.capture.migration import start
from pgferry.migrate.options import CopyOptions
from pgferry.pg.cluster import throwaway_cluster


def make_source(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, at REAL NOT NULL, kind TEXT, payload TEXT)")
        conn.execute("CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID")
        conn.executemany("INSERT INTO counters VALUES (?, 0)", ((f"c{i}",) for i in range(1000)))


def backlog(path: Path, count: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    for i in range(count):
        if i % 4 == 3:
            conn.execute("UPDATE counters SET n = n + 1 WHERE name = ?", (f"c{i % 1000}",))
        else:
            conn.execute("INSERT INTO events (at, kind, payload) VALUES (?, 'w', 'x')", (time.time(),))
    conn.close()


RECORDING = [0.0]
_record = verifystate.record_batch


def _timed_record(*args: object) -> None:
    began = time.perf_counter()
    _record(*args)  # type: ignore[arg-type]
    RECORDING[0] += time.perf_counter() - began


verifystate.record_batch = _timed_record  # type: ignore[assignment]


def drain(path: Path, dsn: str, record: bool, batch: int) -> tuple[int, float]:
    applier = Applier(path, dsn, "public", batch, record_keys=record)
    try:
        began = time.perf_counter()
        applied = applier.run(until_caught_up=True)
        return applied, time.perf_counter() - began
    finally:
        applier.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2000)
    args = parser.parse_args()
    rates: dict[bool, list[float]] = {True: [], False: []}
    shares: list[float] = []
    per_change_us: list[float] = []
    passes: list[float] = []
    with tempfile.TemporaryDirectory(prefix="verify-keys-bench-") as tmp, throwaway_cluster() as cluster:
        path = Path(tmp) / "app.db"
        make_source(path)
        dsn = cluster.dsn()
        start(path, dsn, CopyOptions(jobs=1))
        for round_ in range(args.rounds):
            for record in (True, False) if round_ % 2 == 0 else (False, True):
                backlog(path, args.backlog)
                RECORDING[0] = 0.0
                applied, seconds = drain(path, dsn, record, args.batch)
                rates[record].append(applied / seconds)
                if record:
                    shares.append(RECORDING[0] / seconds)
                    per_change_us.append(RECORDING[0] / applied * 1e6)
                    verifier = LiveVerifier(path, dsn, "public")
                    try:
                        began = time.perf_counter()
                        report = verifier.keys_pass(grace=0)
                        took = time.perf_counter() - began
                    finally:
                        verifier.close()
                    if report.seen:
                        raise SystemExit(f"the keys pass found {report.seen} differences")
                    passes.append(report.keys_checked / took)
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    result = {
        "load": round(os.getloadavg()[0], 2),
        "backlog": args.backlog,
        "rounds": args.rounds,
        "changes_per_s_recording": [round(r) for r in rates[True]],
        "changes_per_s_not_recording": [round(r) for r in rates[False]],
        "median_ratio_recording_over_not": round(on / off, 3),
        "recording_share_of_drain": [round(x, 3) for x in shares],
        "recording_us_per_change": [round(x, 2) for x in per_change_us],
        "keys_pass_keys_per_s": [round(p) for p in passes],
    }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
