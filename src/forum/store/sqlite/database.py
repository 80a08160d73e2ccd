"""SQLite connections for each mode, statement timing and counting, and SQLite errors made HTTP-shaped.

legacy: a fixed pool of connections (15, the plan's figure) shared by the worker threads, opened as
the legacy application opened them: rollback journal (journal_mode=DELETE) and no busy timeout, so
a statement that meets a lock fails at once with "database is locked".

optimized: one connection per worker thread (sqlite3 connections are cheap and a thread never waits
for another's), WAL so readers never block the writer, busy_timeout, synchronous=NORMAL and the rest
of the plan's "Day 5" pragmas. The plan asks for journal_mode=WAL2, which released SQLite does not
have: the pragma is silently ignored, so the mode is read back, WAL is set, and what is in force is
logged. Writers also queue on an in-process lock before BEGIN IMMEDIATE: SQLite's busy handler
sleeps and polls with growing back-off, so many threads waiting on it waste the lock's free moments;
a lock queue hands it over at once. busy_timeout still covers other processes.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from forum.store import querystats
from forum.store.errors import StoreError, Unavailable
from forum.store.modes import Mode
from forum.store.sqlite import queries as q
from pgferry.sqlite.connect import check_sqlite_file
from pgferry.workload.capture import Sink, capture

log = logging.getLogger("forum.store")

# Frames of this module are never a captured statement's call site: the repository method is.
_CAPTURE_SKIP = ("forum.store.sqlite.database",)


@dataclass(frozen=True)
class SqliteSettings:
    """How connections are opened. The defaults are the two modes' figures."""

    mode: Mode
    pool_size: int = 15  # legacy only: the plan's "limited to 15 connections"
    pool_wait_s: float = 5.0  # legacy only: how long a request waits for a free connection
    busy_timeout_ms: int = 10_000  # optimized
    legacy_busy_timeout_ms: int = 0  # the legacy application set none; change it to measure what one alone does
    cache_size: int = 20_000  # pages, the plan's Day 5 figure
    mmap_size: int = 268_435_456
    wal_autocheckpoint: int = 1000

    @classmethod
    def for_mode(cls, mode: Mode | str) -> SqliteSettings:
        return cls(mode=Mode(mode))


def is_locked(exc: BaseException) -> bool:
    """SQLITE_BUSY / SQLITE_LOCKED as sqlite3 reports them."""
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


class SqliteDatabase:
    """The `Database` protocol on one SQLite file, in legacy or optimized mode."""

    def __init__(self, path: str | Path, settings: SqliteSettings, capture_sink: Sink | None = None) -> None:
        self.path = check_sqlite_file(path)
        self.cfg = settings
        self._sink = capture_sink
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        self.journal_mode = self._set_journal_mode()
        self._pool: queue.Queue[Any] | None = None
        if settings.mode is Mode.LEGACY:
            self._pool = queue.Queue()
            for _ in range(settings.pool_size):
                self._pool.put(self._open(check_same_thread=False))
        self._check_schema()

    # --- opening -----------------------------------------------------------------------------------

    def _raw(self, *, check_same_thread: bool, timeout: float) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=check_same_thread
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the database ({exc})") from None
        conn.row_factory = sqlite3.Row
        return conn

    def _set_journal_mode(self) -> str:
        """Set the mode's journal once (it is stored in the file) and log what is really in force."""
        conn = self._raw(check_same_thread=True, timeout=self.cfg.busy_timeout_ms / 1000)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.cfg.busy_timeout_ms)}")
            before = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if self.cfg.mode is Mode.LEGACY:
                mode = conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
            else:
                mode = conn.execute("PRAGMA journal_mode = WAL2").fetchone()[0]
                if mode.lower() != "wal2":
                    log.warning(
                        "journal_mode=WAL2 is not supported by SQLite %s (ignored, still %r); setting WAL",
                        sqlite3.sqlite_version,
                        mode,
                    )
                    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot set the journal mode ({exc})") from None
        finally:
            conn.close()
        log.info("%s: journal_mode was %s, now %s (mode %s)", self.path, before, mode, self.cfg.mode)
        return str(mode).lower()

    def _open(self, *, check_same_thread: bool) -> Any:
        cfg = self.cfg
        if cfg.mode is Mode.LEGACY:
            conn = self._raw(check_same_thread=check_same_thread, timeout=cfg.legacy_busy_timeout_ms / 1000)
            conn.execute(f"PRAGMA busy_timeout = {int(cfg.legacy_busy_timeout_ms)}")
        else:
            conn = self._raw(check_same_thread=check_same_thread, timeout=cfg.busy_timeout_ms / 1000)
            for pragma in (
                f"busy_timeout = {int(cfg.busy_timeout_ms)}",
                "synchronous = NORMAL",
                f"cache_size = {int(cfg.cache_size)}",
                f"mmap_size = {int(cfg.mmap_size)}",
                f"wal_autocheckpoint = {int(cfg.wal_autocheckpoint)}",
                "temp_store = MEMORY",
            ):
                conn.execute(f"PRAGMA {pragma}")
        with self._all_lock:
            self._all.append(conn)
        return capture(conn, self._sink, skip_modules=_CAPTURE_SKIP) if self._sink is not None else conn

    def _check_schema(self) -> None:
        needed = {"users", "user_sessions", "forum_topics", "forum_replies", "wiki_pages", "notifications"}
        with self.hold():
            names = {r[0] for r in self.all("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        if missing := sorted(needed - names):
            self.close()
            raise StoreError(f"{self.path}: not a forum database (no table {', '.join(missing)}); see `forum seed`")

    def settings(self) -> dict[str, Any]:
        """What is in force, read back from a connection (not what was asked for)."""
        with self.hold():
            conn = self._conn()
            read = {
                name: conn.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("journal_mode", "busy_timeout", "synchronous", "cache_size", "mmap_size")
            }
        out = {"backend": "sqlite", "sqlite_version": sqlite3.sqlite_version, **asdict(self.cfg), **read}
        out["mode"] = str(self.cfg.mode)
        if self.cfg.mode is Mode.LEGACY:
            for key in ("busy_timeout_ms", "legacy_busy_timeout_ms", "cache_size", "mmap_size", "wal_autocheckpoint"):
                out.pop(key, None)
            out["cache_size"] = read["cache_size"]
        else:
            out.pop("pool_size")
            out.pop("pool_wait_s")
            out.pop("legacy_busy_timeout_ms")
        return out

    # --- connections -------------------------------------------------------------------------------

    def _conn(self) -> Any:
        held = getattr(self._local, "conn", None)
        if held is not None:
            return held
        if self._pool is not None:
            raise RuntimeError("legacy mode: statement outside hold()")  # a programming error, not a user one
        # optimized: this thread's own connection, kept for the thread's life (closable from any thread)
        conn = self._open(check_same_thread=False)
        self._local.own = conn
        self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        if self._pool is None:
            own = getattr(self._local, "own", None)
            if own is None:
                self._conn()
            else:
                self._local.conn = own
            yield
            return
        t0 = time.perf_counter()
        try:
            conn = self._pool.get(timeout=self.cfg.pool_wait_s)
        except queue.Empty:
            self._count_wait(t0)
            self._count_busy()
            raise Unavailable(
                f"all {self.cfg.pool_size} database connections are busy (waited {self.cfg.pool_wait_s:g} s)",
                kind="pool_timeout",
            ) from None
        self._count_wait(t0)
        self._local.conn = conn
        try:
            yield
        finally:
            self._local.conn = None
            self._pool.put(conn)

    # --- statements --------------------------------------------------------------------------------

    def _count_busy(self) -> None:
        stats = querystats.current()
        if stats is not None:
            stats.busy += 1

    @staticmethod
    def _count_wait(since: float) -> None:
        stats = querystats.current()
        if stats is not None:
            stats.wait_ms += (time.perf_counter() - since) * 1000

    def _execute(self, sql: str, params: Any, fetch: str) -> Any:
        conn = self._conn()
        t0 = time.perf_counter()
        try:
            cur = conn.execute(sql, params)
            try:
                result = cur.fetchall() if fetch == "all" else cur.fetchone() if fetch == "one" else cur.rowcount
            finally:
                cur.close()  # resets the statement: an open cursor would keep its read lock
        except sqlite3.OperationalError as exc:
            if is_locked(exc):
                self._count_busy()
                raise Unavailable("the database is locked; try again", kind="locked") from None
            raise
        finally:
            stats = querystats.current()
            if stats is not None:
                stats.add((time.perf_counter() - t0) * 1000)
        return result

    def one(self, sql: str, params: Any = ()) -> Any:
        return self._execute(sql, params, "one")

    def all(self, sql: str, params: Any = ()) -> list[Any]:
        return self._execute(sql, params, "all")

    def run(self, sql: str, params: Any = ()) -> int:
        return self._execute(sql, params, "run")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; a nested call joins the outer one."""
        if getattr(self._local, "in_tx", False):
            yield
            return
        with self.hold():
            locked = self.cfg.mode is Mode.OPTIMIZED
            t0 = time.perf_counter()
            if locked and not self._write_lock.acquire(timeout=self.cfg.busy_timeout_ms / 1000):
                self._count_wait(t0)
                self._count_busy()
                raise Unavailable("too many writers queued; try again", kind="write_lock_timeout")
            self._count_wait(t0)
            try:
                self.run(q.BEGIN_WRITE)
                self._local.in_tx = True
                try:
                    yield
                    self.run(q.COMMIT)
                except BaseException:
                    with contextlib.suppress(sqlite3.Error, Unavailable):
                        self.run(q.ROLLBACK)
                    raise
                finally:
                    self._local.in_tx = False
            finally:
                if locked:
                    self._write_lock.release()

    def close(self) -> None:
        """Close every connection; optimized mode runs PRAGMA optimize first, as SQLite advises."""
        if self._closed:
            return
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                if self.cfg.mode is Mode.OPTIMIZED:
                    conn.execute("PRAGMA optimize")
                conn.close()
