"""A small application for the cutover tests: one table of notes, written through
`pgferry.runtime.routed.Router` by threads whose every acknowledged note is recorded, on a SQLite
file under a live migration (capture installed, copied, caught up)."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from capture_util import started
from pgferry.runtime import Backend, Dialect, Statements
from pgferry.runtime.postgres import PostgresDatabase, PostgresPolicy
from pgferry.runtime.route import RouteReader
from pgferry.runtime.routed import Router, RouterPolicy
from pgferry.runtime.sqlite import SqliteDatabase, SqlitePolicy


@dataclass(frozen=True)
class NoteSql(Statements):
    NOTE_ADD: str
    NOTE_EDIT: str


HOME = Dialect.load(
    "sqlite",
    NoteSql,
    {
        "NOTE_ADD": "INSERT INTO note (body, n) VALUES (?, ?) RETURNING id",
        "NOTE_EDIT": "UPDATE note SET n = n + 1 WHERE id = ?",
    },
)
OTHER = Dialect.load(
    "postgresql",
    NoteSql,
    {
        "NOTE_ADD": "INSERT INTO note (body, n) VALUES ($1, $2) RETURNING id",
        "NOTE_EDIT": "UPDATE note SET n = n + 1 WHERE id = $1",
    },
)


def make_migrated(path: Path, dsn: str, rows: int = 50) -> Path:
    """note (AUTOINCREMENT id, body UNIQUE) with `rows` rows, WAL; capture installed, copied, caught up."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE note (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL UNIQUE, n INTEGER)")
    conn.executemany("INSERT INTO note (body, n) VALUES (?, 0)", [(f"seed{i}",) for i in range(rows)])
    conn.close()
    started(path, dsn)
    return path


def make_router(path: Path, dsn: str) -> Router[NoteSql]:
    home = Backend(SqliteDatabase(path, SqlitePolicy(busy_timeout_ms=5000)), HOME)
    pg = Backend(PostgresDatabase(dsn, PostgresPolicy(pool_min=0, pool_max=4, pool_wait_s=5)), OTHER)
    return Router(home, pg, RouteReader(path), policy=RouterPolicy(freeze_wait_s=8))


@dataclass
class Writers:
    """`threads` writers, each adding `per_thread` notes (and editing one now and then) through the
    router; each note whose transaction returned is acknowledged, with the id it got and how long
    the write took."""

    router: Router[NoteSql]
    threads: int = 4
    per_thread: int = 200
    acked: dict[str, int] = field(default_factory=dict)
    waits: list[float] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    started_writing: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, args=(i,)) for i in range(self.threads)]

    def _run(self, number: int) -> None:
        try:
            for k in range(self.per_thread):
                body = f"w{number}-{k}"
                began = time.perf_counter()
                with self.router.transaction():
                    row: Any = self.router.one(HOME.sql.NOTE_ADD, (body, k))
                    if k % 5 == 0:
                        self.router.run(HOME.sql.NOTE_EDIT, (row["id"],))
                took = time.perf_counter() - began
                with self._lock:
                    self.acked[body] = int(row["id"])
                    self.waits.append(took)
                self.started_writing.set()
                time.sleep(0.002)
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> Writers:
        for worker in self._workers:
            worker.start()
        self.started_writing.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self._workers:
            worker.join(60)


def bodies(path: Path, dsn: str) -> tuple[dict[str, int], dict[str, int]]:
    """{body: id} on each side."""
    with sqlite3.connect(path) as conn:
        lite = dict(conn.execute("SELECT body, id FROM note").fetchall())
    with psycopg.connect(dsn) as pg:
        return lite, dict(pg.execute("SELECT body, id FROM note").fetchall())
