"""The `Database` protocol on PostgreSQL: psycopg 3 connections from a psycopg_pool pool, every
wait bounded, statements timed and counted, transactions with savepoints when nested.

A unit of work (`hold()`) borrows one connection for its block and gives it back at the end (the
pool rolls back anything left open and drops a broken connection); statements outside `hold()`
borrow one for themselves. Connections run in autocommit, so a read is one round trip and
`transaction()` sends BEGIN ... COMMIT, counted as the statements they are, like the SQLite
backend's. Rows are dicts by column name.

    db = PostgresDatabase("postgresql://app@db/app", PostgresPolicy(pool_max=20))
    with db.transaction():
        db.run("UPDATE accounts SET balance = balance - $1 WHERE id = $2", (10, 1))
    db.pool_stats()["requests_waiting"]
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout, TooManyRequests

from pgferry.dsn import redact
from pgferry.errors import TargetError
from pgferry.runtime import querystats
from pgferry.runtime.database import Fetch, Params, Statements
from pgferry.runtime.errors import Unavailable
from pgferry.runtime.postgres.errors import SessionStateError, unavailable
from pgferry.runtime.postgres.policy import PostgresPolicy
from pgferry.runtime.postgres.sessionstate import session_state

log = logging.getLogger("pgferry.runtime")


class PostgresDatabase(Statements):
    """One PostgreSQL database (or a PgBouncer in front of it) through a pool, as `policy` says."""

    def __init__(self, dsn: str, policy: PostgresPolicy | None = None, *, name: str = "pgferry") -> None:
        self.policy = policy or PostgresPolicy()
        self.dsn = dsn
        kwargs: dict[str, Any] = {**self.policy.connect_kwargs(self.dsn), "row_factory": dict_row}
        if self.policy.placeholders == "dollar":
            kwargs["cursor_factory"] = psycopg.RawCursor
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            dsn,
            kwargs=kwargs,
            min_size=self.policy.pool_min,
            max_size=self.policy.pool_max,
            timeout=self.policy.pool_wait_s,
            max_waiting=self.policy.max_waiting,
            max_lifetime=self.policy.max_lifetime_s,
            max_idle=self.policy.max_idle_s,
            name=name,
            open=False,
        )
        self._local = threading.local()
        self._checked_out = 0  # connections callers hold now (psycopg_pool's pool_size also counts
        self._checked_out_lock = threading.Lock()  # those it is opening or resetting)
        self._warned: set[str] = set()
        self._closed = False
        self._open()

    def _open(self) -> None:
        """Prove one connection works, then open the pool: a wrong DSN fails here, in one line (before
        the pool's background connects could log their own failures beside it)."""
        try:
            with psycopg.connect(self.dsn, **self.policy.connect_kwargs(self.dsn)) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            detail = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
            raise TargetError(f"{redact(self.dsn)}: cannot connect ({detail})") from None
        self._pool.open(wait=False)

    @property
    def dialect(self) -> str:
        return "postgresql"

    # --- connections -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep one pooled connection for this block; nested blocks share it."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        conn = self._checkout()
        self._count_checked_out(1)
        self._local.conn = conn
        try:
            yield
        finally:
            self._local.conn = None
            try:
                self._pool.putconn(conn)
            finally:
                self._count_checked_out(-1)

    def _count_checked_out(self, change: int) -> None:
        with self._checked_out_lock:
            self._checked_out += change

    def _checkout(self) -> psycopg.Connection[Any]:
        wait = self.policy.pool_wait_s
        t0 = time.perf_counter()
        try:
            return self._pool.getconn(timeout=wait)
        except PoolTimeout:
            querystats.refused()
            stats = self._pool.get_stats()
            raise Unavailable(
                f"no PostgreSQL connection free within {wait:g} s ({stats.get('pool_size', 0)} open or opening "
                f"of {self.policy.pool_max}, {stats.get('requests_waiting', 0)} requests waiting)",
                kind="pool_timeout",
            ) from None
        except TooManyRequests:
            querystats.refused()
            raise Unavailable(
                f"too many requests waiting for a PostgreSQL connection (more than {self.policy.max_waiting})",
                kind="pool_queue_full",
            ) from None
        finally:
            querystats.waited(t0)

    def _current(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None:
            raise RuntimeError("PostgresDatabase: statement outside hold()")  # fetch holds for itself
        return conn

    # --- statements --------------------------------------------------------------------------------

    def _check(self, sql: str) -> None:
        why = session_state(sql) if self.policy.pgbouncer else None
        if why is None:
            return
        text = " ".join(sql.split())[:80]
        if self.policy.session_state == "refuse":
            raise SessionStateError(
                f"refused behind PgBouncer (transaction pooling): {why}, and the next transaction may run on "
                f"another server connection: {text}"
            )
        if sql not in self._warned:
            self._warned.add(sql)
            log.warning("behind PgBouncer (transaction pooling): %s, which other clients will see: %s", why, text)

    def fetch(self, sql: str, params: Params, what: Fetch) -> Any:
        self._check(sql)
        with self.hold():
            conn = self._current()
            with querystats.timed(_refusal, sql):
                cur = conn.execute(sql, params)
                return cur.fetchall() if what == "all" else cur.fetchone() if what == "one" else cur.rowcount

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT on one connection, rolled back on any error; nested, a savepoint."""
        with self.hold():
            tx = self._current().transaction()
            with querystats.timed(_refusal, "BEGIN"):
                tx.__enter__()
            try:
                yield
            except BaseException as exc:
                with querystats.timed(_refusal, "ROLLBACK"), contextlib.suppress(psycopg.Error):
                    tx.__exit__(type(exc), exc, exc.__traceback__)  # a dead connection cannot roll back
                raise
            with querystats.timed(_refusal, "COMMIT"):
                tx.__exit__(None, None, None)

    # --- what is in force ----------------------------------------------------------------------------

    def check_pool(self) -> None:
        """Test every idle pooled connection and replace the broken ones: after an outage, so that a
        statement is not the one to find a connection the outage broke."""
        self._pool.check()

    def pool_stats(self) -> dict[str, int]:
        """psycopg_pool's counters (pool_size, pool_available, requests_waiting, requests_errors...) and
        `in_use`: the connections callers hold now. pool_size - pool_available is not that: it also
        counts the connections the pool is opening, resetting or checking in the background."""
        with self._checked_out_lock:
            in_use = self._checked_out
        return {**self._pool.get_stats(), "in_use": in_use}

    def settings(self) -> dict[str, Any]:
        """The policy and what the server says is in force (read back, not what was asked for)."""
        with self.hold():
            conn = self._current()
            row = self.one("SELECT current_setting('statement_timeout') AS statement_timeout, version() AS version")
            server = conn.info.server_version
        return {
            "backend": "postgresql",
            "server_version": f"{server // 10000}.{server % 10000}",
            "statement_timeout": row["statement_timeout"],
            **self.policy.describe(),
            "pool": self.pool_stats(),
        }

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.close()


def _refusal(exc: Exception) -> Exception | None:
    """A driver error the application should see as Unavailable (querystats.timed's translation)."""
    return unavailable(exc) if isinstance(exc, psycopg.Error) else None
