"""The forum's two ways of opening SQLite, as pgferry.runtime policies.

legacy: a fixed pool of connections (15, the plan's figure) shared by the worker threads, opened as
the legacy application opened them: rollback journal (journal_mode=DELETE) and no busy timeout, so
a statement that meets a lock fails at once with "database is locked".

optimized: one connection per worker thread, WAL so readers never block the writer, busy_timeout,
synchronous=NORMAL and the rest of the plan's "Day 5" pragmas, and the in-process writer queue. The
plan asks for journal_mode=WAL2, which released SQLite does not have: it is asked for first, read
back, and WAL set instead (the runtime logs both).
"""

from __future__ import annotations

from dataclasses import dataclass

from forum.store.modes import Mode
from pgferry.runtime.sqlite import SqlitePolicy


@dataclass(frozen=True)
class SqliteSettings:
    """What `open_store` accepts as overrides; the defaults are the two modes' figures."""

    mode: Mode
    pool_size: int = 15  # legacy only: the plan's "limited to 15 connections"
    pool_wait_s: float = 5.0  # legacy only: how long a request waits for a free connection
    busy_timeout_ms: int = 10_000  # optimized (and how long start-up waits to set the journal mode)
    legacy_busy_timeout_ms: int = 0  # the legacy application set none; change it to measure what one alone does
    cache_size: int = 20_000  # pages, the plan's Day 5 figure
    mmap_size: int = 268_435_456
    wal_autocheckpoint: int = 1000

    def policy(self) -> SqlitePolicy:
        if self.mode is Mode.LEGACY:
            return SqlitePolicy(
                journal_modes=("delete",),
                busy_timeout_ms=self.legacy_busy_timeout_ms,
                pool_size=self.pool_size,
                pool_wait_s=self.pool_wait_s,
                writer_queue=False,
                optimize_on_close=False,
                setup_busy_timeout_ms=self.busy_timeout_ms,
            )
        return SqlitePolicy(
            journal_modes=("wal2", "wal"),
            busy_timeout_ms=self.busy_timeout_ms,
            pragmas={
                "synchronous": "NORMAL",
                "cache_size": self.cache_size,
                "mmap_size": self.mmap_size,
                "wal_autocheckpoint": self.wal_autocheckpoint,
                "temp_store": "MEMORY",
            },
            pool_size=None,
            writer_queue=True,
            optimize_on_close=True,
            setup_busy_timeout_ms=self.busy_timeout_ms,
        )
