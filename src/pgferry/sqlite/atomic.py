"""Write transactions that nest, and a write lock that writes nothing.

`atomic()` follows sqlite-utils' `Database.atomic()`: whether a block is the outermost one is read
from the connection (`in_transaction`), not from a counter, so it nests inside a transaction a
caller opened by hand too. The outermost block starts with `BEGIN IMMEDIATE`, because a deferred
transaction that later writes can fail with SQLITE_BUSY at once, without waiting for busy_timeout;
inner blocks are savepoints, so an inner failure undoes only its own work. It works with any
isolation_level; pgferry's own connections are autocommit (isolation_level=None).
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from pgferry.errors import SourceError


class WriteLockError(SourceError):
    """BEGIN IMMEDIATE was refused: another connection writes, or the file cannot be written."""


@contextmanager
def atomic(conn: sqlite3.Connection, *, what: str = "writing") -> Iterator[sqlite3.Connection]:
    """Commit the block's work when it ends normally, undo it when it raises (the error goes on).

    A write lock that cannot be had becomes a WriteLockError naming `what`, raised from SQLite's error,
    so `busy.retry` around the block still sees that the database was busy.
    """
    if conn.in_transaction:
        with _savepoint(conn):
            yield conn
        return
    _begin_immediate(conn, what)
    try:
        yield conn
    except BaseException:
        _rollback(conn)
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:  # e.g. SQLITE_BUSY: readers kept a rollback-journal COMMIT from finishing
        _rollback(conn)
        raise


@contextmanager
def write_lock(conn: sqlite3.Connection, *, what: str = "holding writers off") -> Iterator[sqlite3.Connection]:
    """Hold SQLite's write lock for the block, then let it go without writing anything (ROLLBACK).

    Writers wait (or fail after their busy_timeout) meanwhile; readers are not stopped.
    """
    if conn.in_transaction:
        raise ValueError("write_lock() needs a connection outside any transaction: its ROLLBACK would undo that")
    _begin_immediate(conn, what)
    try:
        yield conn
    finally:
        _rollback(conn)


@contextmanager
def _savepoint(conn: sqlite3.Connection) -> Iterator[None]:
    name = f"pgferry_{secrets.token_hex(8)}"  # unique: a block never releases another one's savepoint
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        # a RAISE(ROLLBACK) or a failed COMMIT can end the whole transaction, savepoints included:
        # cleaning up then would hide the real error behind "no such savepoint"
        if conn.in_transaction:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


def _begin_immediate(conn: sqlite3.Connection, what: str) -> None:
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise WriteLockError(f"{what}: cannot take the write lock ({exc}); retry when writers are idle") from exc


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")
