"""The applier killed with SIGKILL before and after a batch commits (and after it prunes): the saved
position names exactly the batches in PostgreSQL, a resumed follow makes both sides equal, and
resuming once more changes nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from capture_util import assert_same, caught_up, changes, digest, make_source, started, write
from pgferry.killpoints import ENV

BATCH = 40


def follow_process(path: Path, dsn: str, kill_at: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, ENV: kill_at} if kill_at else {k: v for k, v in os.environ.items() if k != ENV}
    command = [sys.executable, "-m", "pgferry", "migrate", "follow", str(path), dsn, "--until-caught-up"]
    return subprocess.run([*command, "--batch", str(BATCH), "--json"], env=env, capture_output=True, timeout=120)


def applied_seq(dsn: str) -> int:
    with psycopg.connect(dsn) as pg:
        row = pg.execute("SELECT applied_seq FROM pgferry.capture_state WHERE target_schema = 'public'").fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    ("point", "batches_in"),
    [("apply:before_commit@3", 2), ("apply:after_commit@3", 3), ("apply:after_prune", 1)],
)
def test_a_killed_applier_resumes_without_losing_or_repeating(
    tmp_path: Path, pg_dsn: str, point: str, batches_in: int
) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    write(path, changes(80))
    start_seq = applied_seq(pg_dsn)
    with sqlite3.connect(path) as conn:
        seqs = [
            s for (s,) in conn.execute("SELECT seq FROM _pgferry_changelog WHERE seq > ? ORDER BY seq", (start_seq,))
        ]
    assert len(seqs) > 4 * BATCH

    killed = follow_process(path, pg_dsn, kill_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    position = applied_seq(pg_dsn)  # the last committed batch, no more, no less (the first prune is after batch 1)
    assert position == seqs[batches_in * BATCH - 1]
    if point == "apply:after_prune":  # the kill came after the applied entries were deleted
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT min(seq) FROM _pgferry_changelog").fetchone()[0] > position

    resumed = follow_process(path, pg_dsn)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert applied_seq(pg_dsn) == seqs[-1]
    assert_same(path, pg_dsn)

    before = digest(pg_dsn)
    assert caught_up(path, pg_dsn, batch_entries=BATCH) == 0  # resuming again changes nothing
    assert digest(pg_dsn) == before
    with sqlite3.connect(path) as conn:  # applied entries were pruned, all but the newest
        assert conn.execute("SELECT count(*) FROM _pgferry_changelog").fetchone()[0] == 1
