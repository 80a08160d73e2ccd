"""Opening the connections a `SqliteDatabase` serves from, through pgferry's one SQLite opener.

`pgferry.sqlite.connect.open_writable` gives the errors a user can act on (missing file, not a
database, no write permission); here each connection gets the policy's pragmas, rows by column name,
and, when asked, statement capture. The journal mode is set once at start-up, because it is stored
in the file, and read back, because SQLite ignores a mode it does not know without a word.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgferry.errors import SourceError
from pgferry.runtime.errors import locked
from pgferry.runtime.sqlite.policy import SqlitePolicy
from pgferry.sqlite.busy import DatabaseLocked
from pgferry.sqlite.connect import open_writable
from pgferry.workload.capture import Sink, capture

log = logging.getLogger("pgferry.runtime")

# Frames of these modules are never a captured statement's call site: the application's code is.
CAPTURE_SKIP = ("pgferry.runtime", "pgferry.sqlite.atomic", "contextlib")


def set_journal_mode(path: Path, policy: SqlitePolicy) -> str:
    """Ask for each of the policy's journal modes in turn; the mode in force, read back and logged."""
    conn = open_writable(path, busy_timeout_ms=policy.setup_busy_timeout_ms)
    try:
        before = mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        for i, asked in enumerate(policy.journal_modes):
            mode = str(conn.execute(f"PRAGMA journal_mode = {asked}").fetchone()[0]).lower()
            if mode == asked.lower():
                break
            then = f"setting {policy.journal_modes[i + 1].upper()}" if i + 1 < len(policy.journal_modes) else "kept"
            log.warning(
                "journal_mode=%s is not supported by SQLite %s (ignored, still %r); %s",
                asked.upper(),
                sqlite3.sqlite_version,
                mode,
                then,
            )
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"{path}: cannot set the journal mode ({exc})") from None
    finally:
        conn.close()
    log.info("%s: journal_mode was %s, now %s", path, before, mode)
    return mode


def open_connection(path: Path, policy: SqlitePolicy) -> sqlite3.Connection:
    """A writable autocommit connection with the policy's busy_timeout and pragmas, rows as sqlite3.Row;
    Unavailable when a writer holds the lock past busy_timeout while it opens (a thread's first statement)."""
    try:
        conn = open_writable(path, busy_timeout_ms=policy.busy_timeout_ms)
    except DatabaseLocked:
        raise locked() from None
    try:
        for name, value in policy.pragmas.items():
            conn.execute(f"PRAGMA {name} = {value}")
    except sqlite3.Error as exc:
        conn.close()
        raise SourceError(f"{path}: cannot set the connection's pragmas ({exc})") from None
    conn.row_factory = sqlite3.Row
    return conn


def capturing(sink: Sink | None) -> Callable[[sqlite3.Connection], Any]:
    """What a raw connection is handed out as: itself, or wrapped so every statement goes to `sink`."""

    def wrap(conn: sqlite3.Connection) -> Any:
        return conn if sink is None else capture(conn, sink, skip_modules=CAPTURE_SKIP)

    return wrap
