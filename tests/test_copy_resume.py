"""A copy killed with SIGKILL at random points resumes without a lost or duplicated row."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from pgferry.migrate.verify import verify_copy

pytestmark = pytest.mark.slow


def build_source(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, at TEXT, payload TEXT)")
        conn.execute("CREATE INDEX idx_events_kind ON events (kind)")
        conn.execute("CREATE TABLE pairs (a INTEGER, b TEXT, v REAL, PRIMARY KEY (a, b)) WITHOUT ROWID")
        conn.execute("CREATE TABLE loose (x INTEGER, y TEXT)")
        conn.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?)",
            ((i, f"k{i % 7}", f"2024-01-01 00:{i % 60:02d}:00", "p" * (i % 300)) for i in range(1, 120_001)),
        )
        # events is typed from a sample, which misses this hour PostgreSQL would read as the next day:
        # the copy re-plans events (at becomes text) part-way, and kills land before, in and after that.
        conn.execute("UPDATE events SET at = '2024-01-01 24:00:00' WHERE id = 77777")
        conn.executemany("INSERT INTO pairs VALUES (?, ?, ?)", ((i, f"b{i % 3}", i / 3) for i in range(1, 40_001)))
        conn.executemany("INSERT INTO loose VALUES (?, ?)", ((i % 50, "dup") for i in range(20_000)))
    return path


def run_copy(source: Path, dsn: str, *extra: str, kill_after: float | None = None) -> int | None:
    command = [
        sys.executable,
        "-m",
        "pgferry",
        "copy",
        str(source),
        dsn,
        "--chunk-rows",
        "1500",
        "--jobs",
        "2",
        "--no-verify",
        "--json",
        *extra,
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is None:
        _out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err.decode()
        return 0
    time.sleep(kill_after)
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    return process.returncode


def test_kill_nine_at_random_points_then_resume(tmp_path: Path, pg_dsn: str) -> None:
    source = build_source(tmp_path / "big.db")
    rng = random.Random(20261126)
    killed = 0
    first = True
    for _attempt in range(5):
        code = run_copy(source, pg_dsn, *([] if first else ["--resume"]), kill_after=rng.uniform(0.3, 2.0))
        first = False
        killed += code == -signal.SIGKILL
    run_copy(source, pg_dsn, "--resume")
    assert killed >= 2, "the copy finished before the kills: make the source bigger"
    verdict = verify_copy(source, pg_dsn)
    assert verdict.identical, [t for t in verdict.tables if not t.identical]
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM loose").fetchone() == (20_000,)
        assert conn.execute("SELECT at FROM events WHERE id = 77777").fetchone() == ("2024-01-01 24:00:00",)
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'idx_events_kind'").fetchone() == (1,)
