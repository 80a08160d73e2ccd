"""Open a SQLite file for reading without ever writing to it, with errors a user can act on."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from pgferry.errors import SourceError

SQLITE_MAGIC = b"SQLite format 3\x00"


def check_sqlite_file(path: str | Path) -> Path:
    """Fail with one clear line when `path` is missing, a directory, or not a SQLite database."""
    file = Path(path)
    if not file.exists():
        raise SourceError(f"{file}: no such file")
    if file.is_dir():
        raise SourceError(f"{file}: is a directory, not a SQLite database")
    with file.open("rb") as handle:
        header = handle.read(len(SQLITE_MAGIC))
    if header == b"":  # SQLite itself opens an empty file as an empty database
        return file
    if header != SQLITE_MAGIC:
        raise SourceError(f"{file}: not a SQLite database (the file does not start with the SQLite header)")
    return file


def open_readonly(path: str | Path, busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    """A read-only connection (URI mode=ro): pgferry's readers can never modify the source.

    A busy timeout lets readers work on a live database whose writers hold the lock briefly.
    """
    file = check_sqlite_file(path)
    uri = f"file:{quote(str(file.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"{file}: cannot read the database ({exc})") from None
    return conn
