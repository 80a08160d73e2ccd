"""The reverse applier killed with SIGKILL before and after its SQLite commit, and a rollback killed
after its flip: resuming leaves SQLite equal to PostgreSQL, and resuming once more changes nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from capture_util import assert_same, caught_up, changes, write
from pgferry.capture.reverse import log
from pgferry.capture.rollback import read_flip, rollback
from pgferry.capture.status import read_status
from pgferry.killpoints import ENV
from pgferry.runtime.route import Route
from reverse_fixtures import cut_over, pg_write, reverse_caught_up, reverse_entries, route_of

BATCH = 40


def pgferry(*args: str, kill_at: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, ENV: kill_at} if kill_at else {k: v for k, v in os.environ.items() if k != ENV}
    return subprocess.run([sys.executable, "-m", "pgferry", *args], env=env, capture_output=True, timeout=120)


def follow(path: Path, dsn: str, kill_at: str | None = None) -> subprocess.CompletedProcess[bytes]:
    return pgferry("migrate", "follow", str(path), dsn, "--until-caught-up", "--batch", str(BATCH), kill_at=kill_at)


def sqlite_digest(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        rows = [
            (t, conn.execute(f'SELECT * FROM "{t}" ORDER BY 1, 2').fetchall())
            for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")
        ]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.mark.parametrize(("point", "batches_done"), [("reverse:before_commit@3", 2), ("reverse:after_commit@3", 2)])
def test_a_killed_reverse_applier_resumes_and_resuming_again_changes_nothing(
    tmp_path: Path, pg_dsn: str, point: str, batches_done: int
) -> None:
    path = cut_over(tmp_path / "app.db", pg_dsn)
    pg_write(pg_dsn, changes(60, "%s"))
    total = reverse_entries(pg_dsn)
    assert total > 4 * BATCH

    killed = follow(path, pg_dsn, kill_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    # deleted: only the batches whose SQLite commit and PostgreSQL delete both happened
    assert reverse_entries(pg_dsn) == total - batches_done * BATCH

    resumed = follow(path, pg_dsn)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert reverse_entries(pg_dsn) == 0
    assert_same(path, pg_dsn)
    before = sqlite_digest(path)
    assert reverse_caught_up(path, pg_dsn, BATCH) == 0
    assert follow(path, pg_dsn).returncode == 0
    assert sqlite_digest(path) == before


def test_a_rollback_killed_after_its_flip_is_finished_by_running_it_again(tmp_path: Path, pg_dsn: str) -> None:
    path = cut_over(tmp_path / "app.db", pg_dsn)
    pg_write(pg_dsn, changes(20, "%s"))
    killed = pgferry("migrate", "rollback", str(path), pg_dsn, kill_at="rollback:after_flip")
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert route_of(path) is Route.SQLITE  # the flip committed: writers are on SQLite
    with sqlite3.connect(path) as conn:
        assert read_flip(conn) is not None
    assert read_status(path, pg_dsn, "public").rollback_unfinished
    assert_same(path, pg_dsn)  # with every change made on PostgreSQL
    with psycopg.connect(pg_dsn) as pg:
        assert log.installed_tables(pg, "public") != []  # its PostgreSQL half rolled back
    write(path, [("INSERT INTO item VALUES (5000, 'after the flip', 1, NULL, NULL)", ())])

    report = rollback(path, pg_dsn)
    assert report.resumed and report.reverse_removed and report.late_entries == 0
    with psycopg.connect(pg_dsn) as pg:
        assert log.installed_tables(pg, "public") == [] and not log.exists(pg)
    with sqlite3.connect(path) as conn:
        assert read_flip(conn) is None
    assert caught_up(path, pg_dsn) == 1  # the write made after the flip, and only it
    assert_same(path, pg_dsn)
