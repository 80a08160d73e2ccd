"""Several read-only connections that all see one snapshot of a SQLite database.

Python's sqlite3 cannot share a snapshot between connections (sqlite3_snapshot_open is not
exposed), and one shared connection serialises every read on one core. So the connections are
aligned instead:

- rollback-journal mode: the first reader's SHARED lock keeps any writer from committing until the
  copy ends, so readers that start after it see the same state (this is also why such a copy blocks
  the application's writers; the report says so);
- WAL mode: a momentary `BEGIN IMMEDIATE` on a separate connection stops writers from committing
  while the readers start their transactions, then is rolled back. It writes nothing, and it is
  closed while the readers are still open, so it never checkpoints the WAL into the file. When the
  file cannot be opened for writing, a single connection is used and shared.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pgferry.errors import SourceError
from pgferry.sqlite.atomic import WriteLockError, write_lock
from pgferry.sqlite.connect import open_readonly, open_writable


@dataclass
class Snapshot:
    """Connections in one read snapshot; `connections[0]` read the schema."""

    connections: list[sqlite3.Connection]
    journal_mode: str
    how: str

    def close(self) -> None:
        for conn in self.connections:
            with contextlib.suppress(sqlite3.Error):  # a read transaction: nothing to lose, whatever failed
                conn.execute("COMMIT")
            conn.close()


def _begin(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts at the first read


def open_snapshot(path: str | Path, connections: int = 1) -> Snapshot:
    """`connections` read-only connections sharing one snapshot (fewer when that cannot be had)."""
    first = open_readonly(path)
    journal_mode = str(first.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    if connections <= 1:
        _begin(first)
        return Snapshot([first], journal_mode, "one connection, one read transaction")
    if journal_mode != "wal":
        _begin(first)
        others = [open_readonly(path) for _ in range(connections - 1)]
        for conn in others:
            _begin(conn)
        return Snapshot(
            [first, *others],
            journal_mode,
            f"{connections} connections; the first one's read lock keeps writers from committing",
        )
    try:
        fence = open_writable(path)
    except SourceError:
        return _shared(first, journal_mode)
    try:
        with write_lock(fence, what=f"{path}: aligning the readers"):
            others = [open_readonly(path) for _ in range(connections - 1)]
            for conn in [first, *others]:
                _begin(conn)
    except WriteLockError:
        return _shared(first, journal_mode)
    finally:
        fence.close()
    return Snapshot(
        [first, *others], journal_mode, f"{connections} connections started under a momentary write lock (WAL mode)"
    )


def _shared(first: sqlite3.Connection, journal_mode: str) -> Snapshot:
    _begin(first)
    return Snapshot(
        [first],
        journal_mode,
        "one shared connection (the file is not writable, so readers cannot be aligned under a write lock)",
    )
