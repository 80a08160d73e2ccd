"""Change capture's tables in the SQLite file: the changelog, the registry of captured tables, and
the install record.

One changelog for every table keeps SQLite's commit order across tables (one writer at a time, so
seq order is commit order). `seq` is an INTEGER PRIMARY KEY without AUTOINCREMENT: a new entry takes
max(seq) + 1, which is monotonic as long as the newest entry is never deleted, so pruning keeps it
(`prune`; `prune_range` deletes a transaction's own entries, newest too: no position points at
them). AUTOINCREMENT would update sqlite_sequence on every write: measured in
bench/capture_overhead.py, it cost more than the goal allows. The key columns k1..kN are declared
without a type, so each value keeps its storage class exactly (1, '1' and x'31' stay apart), and N
is the widest key of any captured table.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from pgferry.sqlite.control import ControlTable
from pgferry.sqltext import quote_ident as q

CHANGELOG = "_pgferry_changelog"
REGISTRY = ControlTable(
    "_pgferry_capture",
    (
        ("id", "INTEGER PRIMARY KEY"),
        ("table_name", "TEXT NOT NULL UNIQUE"),
        ("key_columns", "TEXT NOT NULL"),  # JSON list of source column names
        ("table_sql", "TEXT NOT NULL"),  # CREATE TABLE text at install: a rebuild or ALTER changes it
        ("triggers", "TEXT NOT NULL"),  # JSON {name: CREATE TRIGGER text}
    ),
    key="id",
)
STATE = ControlTable("_pgferry_migrate", (("name", "TEXT PRIMARY KEY"), ("value", "TEXT NOT NULL")), key="name")
INSTALL = "capture"  # STATE's row describing the install


@dataclass(frozen=True)
class Captured:
    """One captured table as the registry has it."""

    id: int
    table: str
    key: tuple[str, ...]
    table_sql: str
    triggers: dict[str, str]


@dataclass(frozen=True)
class Install:
    """What `install` recorded: where the copy goes and the schema it was installed on."""

    target_schema: str
    installed_at: str
    schema_version: int
    width: int

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))


@dataclass(frozen=True)
class Entry:
    seq: int
    table_id: int
    key: tuple[Any, ...]


def key_names(width: int) -> list[str]:
    return [f"k{i}" for i in range(1, width + 1)]


def create_changelog(conn: sqlite3.Connection, width: int) -> None:
    columns = ", ".join(q(k) for k in key_names(width))  # no type: values keep their storage class
    conn.execute(f"CREATE TABLE {q(CHANGELOG)} (seq INTEGER PRIMARY KEY, tbl INTEGER, {columns})")


def has_changelog(conn: sqlite3.Connection) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    return conn.execute(sql, (CHANGELOG,)).fetchone() is not None


def read_install(conn: sqlite3.Connection) -> Install | None:
    """The install record, or None when capture is not installed."""
    row = next((r for r in STATE.read(conn) if r["name"] == INSTALL), None)
    return None if row is None else Install(**json.loads(row["value"]))


def read_registry(conn: sqlite3.Connection) -> list[Captured]:
    return [
        Captured(
            r["id"], r["table_name"], tuple(json.loads(r["key_columns"])), r["table_sql"], json.loads(r["triggers"])
        )
        for r in REGISTRY.read(conn)
    ]


def head(conn: sqlite3.Connection) -> int:
    """The newest entry's seq (0 when the changelog is empty): one b-tree seek."""
    row = conn.execute(f"SELECT max(seq) FROM {q(CHANGELOG)}").fetchone()
    return int(row[0] or 0)


def entries(conn: sqlite3.Connection, after: int, limit: int, width: int) -> list[Entry]:
    """Up to `limit` entries after `after`, in seq (commit) order."""
    keys = ", ".join(q(k) for k in key_names(width))
    rows = conn.execute(
        f"SELECT seq, tbl, {keys} FROM {q(CHANGELOG)} WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
    ).fetchall()
    return [Entry(row[0], row[1], tuple(row[2:])) for row in rows]


def pending(conn: sqlite3.Connection, after: int) -> int:
    """Entries after `after`: the lag in changes."""
    return int(conn.execute(f"SELECT count(*) FROM {q(CHANGELOG)} WHERE seq > ?", (after,)).fetchone()[0])


def size(conn: sqlite3.Connection) -> int:
    """Entries in the changelog, applied ones not yet pruned included."""
    return int(conn.execute(f"SELECT count(*) FROM {q(CHANGELOG)}").fetchone()[0])


def prune(conn: sqlite3.Connection, upto: int) -> int:
    """Delete entries up to `upto`, never the newest (so the next seq stays above every seq used)."""
    cursor = conn.execute(
        f"DELETE FROM {q(CHANGELOG)} WHERE seq <= ? AND seq < (SELECT max(seq) FROM {q(CHANGELOG)})", (upto,)
    )
    return cursor.rowcount


def prune_range(conn: sqlite3.Connection, after: int, upto: int) -> int:
    """Delete the entries with `after` < seq <= `upto`: in the caller's write transaction, the ones its
    own writes made (`after` the head read before them, `upto` the head after: one writer at a time).
    The newest goes too: no position points above `after`, and the next entry takes `after` + 1 again."""
    cursor = conn.execute(f"DELETE FROM {q(CHANGELOG)} WHERE seq > ? AND seq <= ?", (after, upto))
    return cursor.rowcount
