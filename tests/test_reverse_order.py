"""PostgreSQL commits out of order: an entry that becomes visible after a higher-numbered one was
applied is still applied."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from capture_util import assert_same
from reverse_fixtures import cut_over, reverse_caught_up


def test_an_entry_committed_after_a_later_one_is_not_skipped(tmp_path: Path, pg_dsn: str) -> None:
    """Transaction A takes the lower seq and commits after B: a reverse batch between the two commits
    applies B's row, leaves A's entry (invisible to it), and a later batch applies A's."""
    path = cut_over(tmp_path / "app.db", pg_dsn)
    with psycopg.connect(pg_dsn) as a, psycopg.connect(pg_dsn, autocommit=True) as b:
        a.execute("INSERT INTO item VALUES (700, 'from A', 1, NULL, NULL)")  # seq n, not committed
        b.execute("INSERT INTO item VALUES (701, 'from B', 2, NULL, NULL)")  # seq n + 1, committed
        visible = b.execute("SELECT seq FROM pgferry.reverse_changelog").fetchall()
        assert len(visible) == 1  # B's only: A's is in flight
        assert reverse_caught_up(path, pg_dsn) == 1
        a.commit()
        left = b.execute("SELECT seq FROM pgferry.reverse_changelog").fetchall()
    assert len(left) == 1 and left[0][0] < visible[0][0]  # A's entry, below the seq already applied
    assert reverse_caught_up(path, pg_dsn) == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT id FROM item WHERE id >= 700 ORDER BY id").fetchall() == [(700,), (701,)]
    assert_same(path, pg_dsn)
