"""The route as any thread can read it without a lock: a one-row read on a read-only connection of
its own (WAL: never blocks a writer, never waits for one).

A router peeks before every unit of work: for a read, the route it reads on; for a write, whether
to wait on a freeze and which side's transaction to open (the SQLite side then reads the route
again inside BEGIN IMMEDIATE: the peek only saves a lock grab during a freeze). Measured here
(bench/dual_writes.py): a few microseconds, so nothing is cached: every unit sees the latest
committed route.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

from pgferry.runtime.route.control import read_route
from pgferry.runtime.route.state import RouteState
from pgferry.sqlite.connect import open_readonly


class RouteReader:
    def __init__(self, path: str | Path, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        """This thread's read-only connection: it sees the last committed state of the file."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = open_readonly(self.path, self._busy_timeout_ms)
            with self._lock:
                self._all.append(conn)
            self._local.conn = conn
        return conn

    def peek(self) -> RouteState:
        """The latest committed route."""
        return read_route(self.connection())

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
