"""The only places pgferry opens a SQLite file: read-only or writable, with errors a user can act on."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pgferry.errors import SourceError
from pgferry.sqlite.busy import retry

TextFactory = Callable[[bytes], Any]

SQLITE_MAGIC = b"SQLite format 3\x00"


def check_sqlite_file(path: str | Path) -> Path:
    """Fail with one clear line when `path` is missing, a directory, or not a SQLite database.

    SQLite itself reads the header: closing a file descriptor drops every POSIX lock the process
    holds on that file, so a plain open() and close() of a database this process has open in SQLite
    would release its connections' locks, and another process could then take itself for the last
    connection and delete the WAL under them (sqlite.org/howtocorrupt.html, 2.2).
    """
    file = _check_path(path)
    conn = None
    try:
        conn = sqlite3.connect(f"file:{quote(str(file.resolve()))}?mode=ro", uri=True, isolation_level=None)
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        _not_a_database(file, exc)  # other errors are the opener's to report, with what it was doing
    finally:
        if conn is not None:
            conn.close()
    return file


def _check_path(path: str | Path) -> Path:
    file = Path(path)
    if not file.exists():
        raise SourceError(f"{file}: no such file")
    if file.is_dir():
        raise SourceError(f"{file}: is a directory, not a SQLite database")
    if not os.access(file, os.R_OK):
        raise SourceError(f"{file}: cannot read the file (permission denied)")
    return file


def _not_a_database(file: Path, exc: sqlite3.Error) -> None:
    """Raise "not a SQLite database" when SQLite refused the file and it lacks SQLite's header (read
    only now: SQLite holds no lock on a file it cannot use); a damaged database is the caller's error."""
    if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_NOTADB:
        return
    try:
        with file.open("rb") as handle:
            header = handle.read(len(SQLITE_MAGIC))
    except OSError as err:
        raise SourceError(f"{file}: cannot read the file ({err.strerror})") from None
    if header != SQLITE_MAGIC:
        raise SourceError(f"{file}: not a SQLite database (the file does not start with the SQLite header)")


def open_readonly(path: str | Path, busy_timeout_ms: int = 5000, *, lock_wait_s: float = 0.0) -> sqlite3.Connection:
    """A read-only connection (URI mode=ro): pgferry's readers can never modify the source.

    A busy timeout lets readers work on a live database whose writers hold the lock briefly;
    `lock_wait_s` retries the first read past it (doctor on a busy application's file).
    """
    return _open(_check_path(path), "ro", busy_timeout_ms, lock_wait_s)


def open_writable(path: str | Path, busy_timeout_ms: int = 5000, *, lock_wait_s: float = 0.0) -> sqlite3.Connection:
    """A read-write connection (URI mode=rw: a missing file is an error, never a new empty database).

    Autocommit (isolation_level=None) like every pgferry connection: transactions are explicit,
    through `pgferry.sqlite.atomic`.
    """
    file = _check_path(path)
    if not os.access(file, os.W_OK):  # SQLite would open it read-only without a word, and BEGIN IMMEDIATE lock nothing
        raise SourceError(f"{file}: cannot open the database for writing (no write permission)")
    return _open(file, "rw", busy_timeout_ms, lock_wait_s)


def _open(file: Path, mode: str, busy_timeout_ms: int, lock_wait_s: float) -> sqlite3.Connection:
    uri = f"file:{quote(str(file.resolve()))}?mode={mode}"
    doing = "read the database" if mode == "ro" else "open the database for writing"
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        probe = conn.execute
        retry(lambda: probe("SELECT count(*) FROM sqlite_master").fetchone(), what=str(file), deadline_s=lock_wait_s)
    except BaseException as exc:
        if conn is not None:
            conn.close()
        if isinstance(exc, sqlite3.Error):
            _not_a_database(file, exc)
            raise SourceError(f"{file}: cannot {doing} ({exc})") from None
        raise
    return conn


@contextmanager
def text_as(conn: sqlite3.Connection, factory: TextFactory) -> Iterator[sqlite3.Connection]:
    """TEXT values come back through `factory` (bytes: as stored; a decoder: lenient) inside the
    block, and the connection's previous factory is back after it, whatever happened."""
    previous = conn.text_factory
    conn.text_factory = factory
    try:
        yield conn
    finally:
        conn.text_factory = previous
