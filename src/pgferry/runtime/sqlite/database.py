"""The `Database` protocol on one SQLite file: statements timed and counted, a busy database made
`Unavailable`, and write transactions through `pgferry.sqlite.atomic`.

Transactions start with BEGIN IMMEDIATE (a deferred one that later writes can fail with
SQLITE_BUSY at once, without waiting for busy_timeout) after this thread's turn in the writer
queue; a nested `transaction()` is a savepoint inside the outer one. BEGIN and COMMIT are counted
as the statements they are, so a request's statement time includes its commit.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from pgferry.runtime import querystats
from pgferry.runtime.database import Fetch, Params, Statements
from pgferry.runtime.errors import locked
from pgferry.runtime.sqlite.connections import Connections
from pgferry.runtime.sqlite.opening import capturing, open_connection, set_journal_mode
from pgferry.runtime.sqlite.policy import SqlitePolicy
from pgferry.runtime.sqlite.writers import WriterQueue
from pgferry.sqlite.atomic import atomic
from pgferry.sqlite.busy import is_busy
from pgferry.sqlite.connect import check_sqlite_file
from pgferry.workload.capture import Sink

_READ_BACK = ("journal_mode", "busy_timeout", "synchronous", "cache_size", "mmap_size", "wal_autocheckpoint")


class SqliteDatabase(Statements):
    """One SQLite file, shared by threads as `policy` says; `capture_sink` records every statement."""

    def __init__(self, path: str | Path, policy: SqlitePolicy, capture_sink: Sink | None = None) -> None:
        self.path = check_sqlite_file(path)
        self.policy = policy
        self.journal_mode = set_journal_mode(self.path, policy)
        self._writers = WriterQueue(policy.busy_timeout_ms / 1000, enabled=policy.writer_queue)
        self._conns = Connections(
            lambda: open_connection(self.path, policy), capturing(capture_sink), policy.pool_size, policy.pool_wait_s
        )
        self._closed = False

    @property
    def dialect(self) -> str:
        return "sqlite"

    def hold(self) -> contextlib.AbstractContextManager[None]:
        return self._conns.hold()

    def fetch(self, sql: str, params: Params, what: Fetch) -> Any:
        conn = self._conns.current()
        with querystats.timed(_refusal, sql):
            cur = conn.execute(sql, params)
            try:
                return cur.fetchall() if what == "all" else cur.fetchone() if what == "one" else cur.rowcount
            finally:
                cur.close()  # resets the statement: an open cursor would keep its read lock

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; nested, a savepoint."""
        with self.hold():
            conn = self._conns.current()
            what = f"{self.path}: writing"
            if conn.in_transaction:  # nested: no second turn in the queue, which this thread already holds
                with _Counted(atomic(conn, what=what)):
                    yield
                return
            with self._writers.turn(), _Counted(atomic(conn, what=what)):
                yield

    def settings(self) -> dict[str, Any]:
        """What is in force, read back from a connection (not what was asked for)."""
        with self.hold():
            conn = self._conns.current()
            read = {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in _READ_BACK}
        return {"backend": "sqlite", "sqlite_version": sqlite3.sqlite_version, **self.policy.describe(), **read}

    def close(self) -> None:
        """Close every connection (after PRAGMA optimize when the policy asks, as SQLite advises)."""
        if self._closed:
            return
        self._closed = True
        optimize = (lambda conn: conn.execute("PRAGMA optimize")) if self.policy.optimize_on_close else None
        self._conns.close_all(optimize)


def _refusal(exc: Exception) -> Exception | None:
    """A busy database is Unavailable to the application (querystats.timed's translation)."""
    return locked() if is_busy(exc) else None


class _Counted:
    """A transaction's start and end (BEGIN, COMMIT or ROLLBACK) timed as one statement each, and a
    busy database there made `Unavailable` like any statement's."""

    def __init__(self, inner: contextlib.AbstractContextManager[Any]) -> None:
        self._inner = inner

    def __enter__(self) -> None:
        with querystats.timed(_refusal, "BEGIN"):
            self._inner.__enter__()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        # The COMMIT meeting a lock is undone by atomic and refused here; the block's own error passes.
        ending = "COMMIT" if kind is None else "ROLLBACK"
        with querystats.timed(lambda err: None if err is exc else _refusal(err), ending):
            return self._inner.__exit__(kind, exc, tb)
