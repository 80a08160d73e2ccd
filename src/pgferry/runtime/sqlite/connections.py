"""Which connection a thread's statements run on: its own, or one lent from a fixed pool.

Per thread (no pool): each thread opens its connection on first use and keeps it for its life, so
it never waits for another thread's. Pool: a unit of work borrows a connection for a `hold()` block
and waits at most `pool_wait_s` for one; a statement outside `hold()` is a programming error.
Every connection is remembered so `close_all()` can close them from any thread.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from pgferry.runtime import querystats
from pgferry.runtime.errors import Unavailable


class Connections:
    def __init__(
        self,
        open_raw: Callable[[], sqlite3.Connection],
        wrap: Callable[[sqlite3.Connection], Any],
        pool_size: int | None,
        pool_wait_s: float,
    ) -> None:
        self._open_raw = open_raw
        self._wrap = wrap
        self._pool_size = pool_size
        self._pool_wait_s = pool_wait_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._pool: queue.Queue[Any] | None = None
        if pool_size is not None:
            self._pool = queue.Queue()
            for _ in range(pool_size):
                self._pool.put(self._new())

    def _new(self) -> Any:
        raw = self._open_raw()
        with self._all_lock:
            self._all.append(raw)
        return self._wrap(raw)

    def current(self) -> Any:
        """The connection this thread's statements run on now."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            return held
        if self._pool is not None:
            raise RuntimeError("pooled connections: statement outside hold()")  # a programming error
        conn = self._new()
        self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep one connection for this block; nested blocks share it."""
        if self._pool is None or getattr(self._local, "conn", None) is not None:
            self.current()
            yield
            return
        t0 = time.perf_counter()
        try:
            conn = self._pool.get(timeout=self._pool_wait_s)
        except queue.Empty:
            querystats.waited(t0)
            querystats.refused()
            raise Unavailable(
                f"all {self._pool_size} database connections are busy (waited {self._pool_wait_s:g} s)",
                kind="pool_timeout",
            ) from None
        querystats.waited(t0)
        self._local.conn = conn
        try:
            yield
        finally:
            self._local.conn = None
            self._pool.put(conn)

    def close_all(self, last: Callable[[sqlite3.Connection], object] | None = None) -> None:
        """Close every connection opened so far, running `last` on each first (errors there are ignored)."""
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                if last is not None:
                    last(conn)
            with contextlib.suppress(sqlite3.Error):
                conn.close()
