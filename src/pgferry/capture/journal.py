"""The SQLite file switched to WAL before a live migration's copy: in rollback-journal mode the copy's
read snapshot would block every writer's commit for as long as the copy runs; in WAL readers and the
writer do not wait for each other.

The switch itself needs a moment with no other transaction open (SQLite takes an exclusive lock to
change the journal mode); it tries every millisecond for up to 5 s, and its duration is reported. WAL
is persistent: the application's connections use it from their next transaction. It needs every
process on one host (a shared-memory index) and a file system with working locks, as SQLite's docs
say; SQLite keeps the old mode where WAL is impossible (e.g. an in-memory database), and that is
reported too.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pgferry.errors import SourceError
from pgferry.sqlite.connect import open_writable

SWITCH_WAIT_MS = 5_000
POLL_S = 0.001


@dataclass(frozen=True)
class JournalSwitch:
    before: str
    after: str
    took_ms: float | None  # None: nothing to switch (already WAL, or asked not to)
    note: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _switch(conn: sqlite3.Connection, path: Path, deadline: float) -> str:
    """PRAGMA journal_mode = WAL, tried every millisecond: under steady writers SQLite's busy handler
    (sleeps of up to 100 ms between tries) may never land in a gap between two of their transactions."""
    conn.execute("PRAGMA busy_timeout = 0")
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.perf_counter() > deadline:
                raise SourceError(
                    f"{path}: cannot switch to WAL journal mode ({exc}): other connections kept transactions open "
                    f"for {SWITCH_WAIT_MS / 1000:g} s without a gap; retry, or keep the journal mode with "
                    "--keep-journal-mode"
                ) from None
            time.sleep(POLL_S)


def switch_to_wal(path: Path, wanted: bool = True) -> JournalSwitch:
    """Put `path` in WAL mode unless it is (or `wanted` is False); what it found and did."""
    conn = open_writable(path, busy_timeout_ms=SWITCH_WAIT_MS)
    try:
        before = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if before == "wal":
            return JournalSwitch(before, before, None, "already in WAL mode")
        if not wanted:
            return JournalSwitch(
                before, before, None, f"kept {before} journal mode: writers wait while the copy reads (WAL avoids that)"
            )
        began = time.perf_counter()
        after = _switch(conn, path, began + SWITCH_WAIT_MS / 1000)
        took = round((time.perf_counter() - began) * 1000, 3)
    finally:
        conn.close()
    if after != "wal":
        return JournalSwitch(
            before, after, took, f"SQLite kept {after} journal mode (WAL is not possible for this file)"
        )
    return JournalSwitch(before, after, took, f"switched from {before} to WAL journal mode in {took:.1f} ms")
