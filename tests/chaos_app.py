"""The chaos tests' application: a SQLite file with a list-append table (`ledger`: every value a writer
had acknowledged is recorded, so a lost or doubled write is seen) and a small forum-like mix (`board`
and `post`: insert, edit and delete posts, each with its board's counter in the same transaction),
written through `pgferry.runtime.routed.Router` by threads that keep writing while pgferry's commands
are killed with SIGKILL and resumed; and the pgferry commands run as processes."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from pgferry.killpoints import ENV
from pgferry.runtime import Backend, Dialect, Statements
from pgferry.runtime.postgres import PostgresDatabase, PostgresPolicy
from pgferry.runtime.route import RouteReader
from pgferry.runtime.routed import Router, RouterPolicy
from pgferry.runtime.sqlite import SqliteDatabase, SqlitePolicy

BOARDS = 5


@dataclass(frozen=True)
class ChaosSql(Statements):
    APPEND: str
    POST_ADD: str
    POST_EDIT: str
    POST_DELETE: str
    POST_SOME: str
    BOARD_BUMP: str


_SQL = {
    "APPEND": "INSERT INTO ledger (writer, n) VALUES (?, ?)",
    "POST_ADD": "INSERT INTO post (board_id, body) VALUES (?, ?) RETURNING id",
    "POST_EDIT": "UPDATE post SET body = ?, edited = edited + 1 WHERE id = ?",
    "POST_DELETE": "DELETE FROM post WHERE id = ? RETURNING board_id",
    "POST_SOME": "SELECT id FROM post WHERE board_id = ? ORDER BY id DESC LIMIT 1",
    "BOARD_BUMP": "UPDATE board SET posts = posts + ? WHERE id = ?",
}


def _dollars(text: str) -> str:
    """SQLite's ? placeholders as PostgreSQL's $1, $2, ..."""
    parts = text.split("?")
    return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, 1))


HOME = Dialect.load("sqlite", ChaosSql, _SQL)
OTHER = Dialect.load("postgresql", ChaosSql, {name: _dollars(text) for name, text in _SQL.items()})


def make_source(path: Path, posts: int = 600) -> Path:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(
        "CREATE TABLE ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, writer INTEGER NOT NULL, n INTEGER NOT NULL,"
        " UNIQUE (writer, n))"
    )
    conn.execute("CREATE TABLE board (id INTEGER PRIMARY KEY, title TEXT NOT NULL, posts INTEGER NOT NULL)")
    conn.execute(
        "CREATE TABLE post (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " board_id INTEGER NOT NULL REFERENCES board (id) ON DELETE CASCADE, body TEXT, edited INTEGER NOT NULL"
        " DEFAULT 0)"
    )
    conn.execute("CREATE INDEX post_board ON post (board_id)")
    conn.execute("BEGIN")
    for board in range(1, BOARDS + 1):
        conn.execute("INSERT INTO board VALUES (?, ?, 0)", (board, f"board {board}"))
    for i in range(posts):
        board = i % BOARDS + 1
        conn.execute("INSERT INTO post (board_id, body) VALUES (?, ?)", (board, f"seed post {i}"))
        conn.execute("UPDATE board SET posts = posts + 1 WHERE id = ?", (board,))
    conn.execute("COMMIT")
    conn.close()
    return path


def make_router(path: Path, dsn: str) -> Router[ChaosSql]:
    home = Backend(SqliteDatabase(path, SqlitePolicy(busy_timeout_ms=10_000, pragmas={"foreign_keys": "ON"})), HOME)
    pg = Backend(PostgresDatabase(dsn, PostgresPolicy(pool_min=0, pool_max=4, pool_wait_s=10)), OTHER)
    return Router(home, pg, RouteReader(path), policy=RouterPolicy(freeze_wait_s=10))


class Writers:
    """A list-append writer and a forum-mix writer, each writing until `stop()` (or `limit` writes),
    a few milliseconds apart. `acked` holds every ledger value whose transaction returned."""

    def __init__(self, router: Router[ChaosSql], seed: int, writer: int = 1, limit: int = 20_000) -> None:
        self.router, self.limit = router, limit
        self.acked: list[tuple[int, int]] = []
        self.errors: list[BaseException] = []
        self.writes = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._guard, args=(self._append, writer)),
            threading.Thread(target=self._guard, args=(self._mix, random.Random(seed))),
        ]

    def __enter__(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def wrote_more(self, than: int, timeout_s: float = 20) -> None:
        """Wait until at least `than` more writes were made (the writers are alive and writing)."""
        target = self.writes + than
        deadline = time.monotonic() + timeout_s
        while self.writes < target:
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"writers stalled at {self.writes} writes"
            time.sleep(0.01)

    def _guard(self, body: Any, arg: Any) -> None:
        try:
            body(arg)
        except BaseException as exc:
            self.errors.append(exc)

    def _append(self, writer: int) -> None:
        n = 0
        while not self._stop.is_set() and n < self.limit:
            with self.router.transaction():
                self.router.run(HOME.sql.APPEND, (writer, n))
            self.acked.append((writer, n))
            self.writes += 1
            n += 1
            time.sleep(0.002)

    def _mix(self, rng: random.Random) -> None:
        done = 0
        while not self._stop.is_set() and done < self.limit:
            board = rng.randint(1, BOARDS)
            action = rng.random()
            with self.router.transaction():
                if action < 0.5:
                    self.router.one(HOME.sql.POST_ADD, (board, f"post {done}"))
                    self.router.run(HOME.sql.BOARD_BUMP, (1, board))
                else:
                    found = self.router.one(HOME.sql.POST_SOME, (board,))
                    if found is not None and action < 0.8:
                        self.router.run(HOME.sql.POST_EDIT, (f"edited {done}", found["id"]))
                    elif found is not None:
                        self.router.one(HOME.sql.POST_DELETE, (found["id"],))
                        self.router.run(HOME.sql.BOARD_BUMP, (-1, board))
            done += 1
            self.writes += 1
            time.sleep(0.002)


def pgferry(*args: str, kill_at: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """`pgferry ARGS` as a process, killed with SIGKILL at `kill_at` (pgferry.killpoints) if given."""
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if kill_at:
        env[ENV] = kill_at
    return subprocess.run([sys.executable, "-m", "pgferry", *args], env=env, capture_output=True, timeout=timeout)


def background(*args: str, kill_at: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    if kill_at:
        env[ENV] = kill_at
    return subprocess.Popen(
        [sys.executable, "-m", "pgferry", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def ledger(path: Path, dsn: str) -> tuple[dict[tuple[int, int], int], dict[tuple[int, int], int]]:
    """{(writer, n): id} on each side."""
    with sqlite3.connect(path) as conn:
        lite = {(w, n): i for i, w, n in conn.execute("SELECT id, writer, n FROM ledger")}
    with psycopg.connect(dsn) as pg:
        return lite, {(w, n): i for i, w, n in pg.execute("SELECT id, writer, n FROM ledger")}


def board_counters_hold(dsn: str) -> bool:
    """Each board's counter equals its posts (the mix keeps them in one transaction)."""
    with psycopg.connect(dsn) as pg:
        rows = pg.execute(
            "SELECT b.id, b.posts, (SELECT count(*) FROM post p WHERE p.board_id = b.id) FROM board b"
        ).fetchall()
    return all(posts == count for _, posts, count in rows)


def ok(done: subprocess.CompletedProcess[bytes]) -> subprocess.CompletedProcess[bytes]:
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done


def killed(done: subprocess.CompletedProcess[bytes]) -> None:
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]


def ended(process: subprocess.Popen[bytes], timeout_s: float) -> subprocess.CompletedProcess[bytes]:
    """A background process's end, as `subprocess.run` would report it."""
    out, err = process.communicate(timeout=timeout_s)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)
