"""A small application database for the change capture tests, on rowid or WITHOUT ROWID tables, and
the steps every test takes: start (copy, caught up), write, follow, compare both sides."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from pgferry.capture.migration import Follow, follow, start
from pgferry.capture.status import read_status
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.verify import verify_copy

Statement = tuple[str, Sequence[Any]]


def make_source(path: Path, without_rowid: bool) -> Path:
    """item (INTEGER key, UNIQUE email), tag (composite key, FK to item with cascades), pair
    (composite TEXT key), blobkey (BLOB key); WITHOUT ROWID on every table or on none."""
    tail = " WITHOUT ROWID" if without_rowid else ""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(
            f"CREATE TABLE item (id INTEGER PRIMARY KEY, email TEXT UNIQUE, n INTEGER, note TEXT, data BLOB){tail}"
        )
        conn.execute(
            "CREATE TABLE tag (item_id INTEGER NOT NULL REFERENCES item (id) ON DELETE CASCADE ON UPDATE CASCADE,"
            f" name TEXT NOT NULL, PRIMARY KEY (item_id, name)){tail}"
        )
        conn.execute(f"CREATE TABLE pair (a TEXT NOT NULL, b TEXT NOT NULL, v TEXT, PRIMARY KEY (a, b)){tail}")
        conn.execute(f"CREATE TABLE blobkey (k BLOB NOT NULL PRIMARY KEY, v INTEGER){tail}")
        for i in range(1, 21):
            note = None if i % 4 == 0 else f"note {i}"
            conn.execute("INSERT INTO item VALUES (?, ?, ?, ?, ?)", (i, f"e{i}", i, note, bytes([i, 0, 255])))
            conn.execute("INSERT INTO tag VALUES (?, 't'), (?, 'u')", (i, i))
            conn.execute("INSERT INTO pair VALUES (?, ?, ?)", (f"a{i % 4}", f"b{i}", f"v{i}"))
            conn.execute("INSERT INTO blobkey VALUES (?, ?)", (bytes([i, i + 1]), i))
    return path


def changes(n: int, mark: str = "?") -> list[Statement]:
    """Inserts, updates and deletes over three tables, children after their parents; `mark` is the
    placeholder (`%s` for PostgreSQL)."""
    out: list[Statement] = []
    for i in range(n):
        out.append((f"INSERT INTO item VALUES ({mark}, {mark}, {mark}, 'k', NULL)", (1000 + i, f"k{i}", i)))
        out.append((f"INSERT INTO tag VALUES ({mark}, 'k')", (1000 + i,)))
        if i % 3 == 0:
            out.append((f"UPDATE pair SET v = {mark} WHERE a = 'a1'", (f"k{i}",)))
        if i % 5 == 0:
            out.append((f"DELETE FROM item WHERE id = {mark}", (1000 + i - 1,)))
    return out


def app(path: Path, *pragmas: str) -> sqlite3.Connection:
    """The application's connection: autocommit, each statement its own transaction."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
    for pragma in pragmas:
        conn.execute(f"PRAGMA {pragma}")
    return conn


def write(path: Path, statements: Sequence[Statement], pragmas: Sequence[str] = ()) -> None:
    conn = app(path, *pragmas)
    try:
        for statement, params in statements:
            conn.execute(statement, params)
    finally:
        conn.close()


def started(path: Path, dsn: str) -> None:
    """Capture installed, the copy made, every change since applied."""
    start(path, dsn, CopyOptions(jobs=1))


def caught_up(path: Path, dsn: str, batch_entries: int = 2_000) -> int:
    """Follow until nothing is left; the entries applied."""
    return follow(path, dsn, how=Follow(until_caught_up=True, batch_entries=batch_entries)).applied


def lag(path: Path, dsn: str) -> int:
    return read_status(path, dsn, "public").lag_changes


def assert_same(path: Path, dsn: str) -> None:
    """PostgreSQL holds exactly SQLite's rows: verify (counts, checksums, rows) with the copy's plan,
    and the row counts read directly on both sides."""
    report = verify_copy(path, dsn)
    assert report.identical, [
        (t.table, t.missing_in_target, t.extra_in_target, t.differing_keys) for t in report.tables
    ]
    with sqlite3.connect(path) as conn, psycopg.connect(dsn) as pg:
        tables = "SELECT name FROM sqlite_master WHERE type = 'table'"
        for (table,) in conn.execute(tables + " AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'"):
            mine = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            theirs = pg.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            assert mine == theirs, table


def digest(dsn: str) -> dict[str, str]:
    """md5 of every user table's rows in PostgreSQL, in text order (for 'resuming again changes nothing')."""
    out = {}
    with psycopg.connect(dsn) as pg:
        for (table,) in pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall():
            row = pg.execute(
                f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM \"{table}\" t"
            ).fetchone()
            out[table] = row[0]
    return out


def follow_serving_metrics(path: Path, dsn: str) -> tuple[subprocess.Popen[str], str]:
    """`pgferry migrate follow --metrics-port 0` started, and the URL of its metrics (from stderr's
    first line); the caller stops it (SIGTERM, then communicate)."""
    follower = subprocess.Popen(
        [sys.executable, "-m", "pgferry", "migrate", "follow", str(path), dsn, "--metrics-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert follower.stderr is not None
    line = follower.stderr.readline()
    url = re.search(r"metrics at (http://127\.0\.0\.1:\d+/metrics)", line)
    if url is None:
        follower.kill()
        follower.communicate(timeout=30)
    assert url is not None, line
    return follower, url.group(1)
