"""What change capture costs a single-row write: the same write with and without capture, in one run.

Each variant is its own SQLite file (WAL, synchronous as given, the same schema and 2,000 seeded rows):

- bare:            no triggers
- capture:         pgferry's capture as installed (pgferry.capture.install): changelog seq is an
                   INTEGER PRIMARY KEY without AUTOINCREMENT, entries pruned so the newest stays
- autoincrement:   the same triggers, the changelog's seq AUTOINCREMENT (sqlite_sequence updated per write)
- capture + time:  the same triggers, each entry also stamped with the epoch time by a column default
                   (julianday('now'): SQLite 3.40 has no unixepoch('subsec'))

Writes are autocommit statements from Python's sqlite3, one row each (an application's single-row
write): INSERT and UPDATE on a rowid table (INTEGER PRIMARY KEY, a UNIQUE column) and INSERT on a
WITHOUT ROWID table with a (TEXT, INTEGER) key. Rounds interleave the variants, so a busy moment on
the shared machine hits them all. The figure is the median over rounds of this process's CPU time
(user + system: the write's own work, which other sessions on the 2 shared cores do not inflate) per
write, and the ratio is against bare in the same run; wall-clock medians are printed beside it.

    .venv/bin/python bench/capture_overhead.py --writes 4000 --rounds 7
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
from collections.abc import Callable
from pathlib import Path

from pgferry.capture.changelog import CHANGELOG
from pgferry.capture.install import install

VARIANTS = ("bare", "capture", "autoincrement", "capture + time")
SHAPES = ("insert", "update", "insert without rowid")


def make(path: Path, variant: str, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, email TEXT UNIQUE, n INTEGER, body TEXT)")
    conn.execute("CREATE TABLE pair (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID")
    conn.executemany("INSERT INTO item VALUES (?, ?, ?, ?)", ((i, f"e{i}", i, "x" * 100) for i in range(2000)))
    if variant != "bare":
        install(path, "public")
    if variant in ("autoincrement", "capture + time"):  # the triggers name the changelog: rebuild it in place
        seq = "seq INTEGER PRIMARY KEY AUTOINCREMENT" if variant == "autoincrement" else "seq INTEGER PRIMARY KEY"
        stamp = ", at REAL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)" if variant == "capture + time" else ""
        conn.execute(f'DROP TABLE "{CHANGELOG}"')
        conn.execute(f'CREATE TABLE "{CHANGELOG}" ({seq}, tbl INTEGER, k1, k2{stamp})')
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    return conn


def writes(conn: sqlite3.Connection, shape: str, start: int, n: int) -> Callable[[], None]:
    def run() -> None:
        execute = conn.execute
        if shape == "insert":
            for i in range(start, start + n):
                execute("INSERT INTO item (id, email, n, body) VALUES (?, ?, ?, ?)", (i, f"e{i}", i, "y" * 100))
        elif shape == "update":
            for i in range(n):
                execute("UPDATE item SET n = n + 1 WHERE id = ?", (i % 2000,))
        else:
            for i in range(start, start + n):
                execute("INSERT INTO pair VALUES (?, ?, ?)", (f"k{i % 97}", i, "v"))

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=4000, help="writes per variant, shape and round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--synchronous", default="NORMAL", choices=["OFF", "NORMAL", "FULL"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="capture-bench-") as tmp:
        conns = {v: make(Path(tmp) / f"{i}.db", v, args.synchronous) for i, v in enumerate(VARIANTS)}
        times: dict[tuple[str, str], list[float]] = {(v, s): [] for v in VARIANTS for s in SHAPES}
        walls: dict[tuple[str, str], list[float]] = {(v, s): [] for v in VARIANTS for s in SHAPES}
        for round_ in range(args.rounds):
            start = 10_000 + round_ * args.writes
            for shape in SHAPES:
                order = VARIANTS if round_ % 2 == 0 else tuple(reversed(VARIANTS))
                for variant in order:
                    run = writes(conns[variant], shape, start, args.writes)
                    began, cpu = time.perf_counter(), time.process_time()
                    run()
                    times[(variant, shape)].append((time.process_time() - cpu) / args.writes * 1e6)
                    walls[(variant, shape)].append((time.perf_counter() - began) / args.writes * 1e6)
            for variant in VARIANTS[1:]:  # as the applier does: keep the changelog short, the newest entry kept
                conns[variant].execute(f'DELETE FROM "{CHANGELOG}" WHERE seq < (SELECT max(seq) FROM "{CHANGELOG}")')
        for conn in conns.values():
            conn.close()
    result = {
        "sqlite": sqlite3.sqlite_version,
        "synchronous": args.synchronous,
        "writes": args.writes,
        "rounds": args.rounds,
        "load": os.getloadavg()[0],
        "cpu_us_per_write": {
            f"{v} / {s}": round(statistics.median(times[(v, s)]), 2) for v in VARIANTS for s in SHAPES
        },
        "wall_us_per_write": {
            f"{v} / {s}": round(statistics.median(walls[(v, s)]), 2) for v in VARIANTS for s in SHAPES
        },
        "ratio_to_bare": {
            f"{v} / {s}": round(statistics.median(times[(v, s)]) / statistics.median(times[("bare", s)]), 2)
            for v in VARIANTS[1:]
            for s in SHAPES
        },
        # the fastest round of each: noise from other work on the machine only ever adds time
        "ratio_to_bare_fastest": {
            f"{v} / {s}": round(min(times[(v, s)]) / min(times[("bare", s)]), 2) for v in VARIANTS[1:] for s in SHAPES
        },
    }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
