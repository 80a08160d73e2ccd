"""Stray writes: changes committed to SQLite after the cutover (route `postgres`) by something that
did not follow the route (a thread or process of an application cut over with `cutover --hook`).

SQLite's capture triggers stay installed after the cutover, so each one is an entry in the forward
changelog. The cutover drained the changelog to its head and left the forward applier's position
there; the reverse applier deletes the entries its own writes make (in their transaction), so every
entry above that position is a stray write. Their rows are in SQLite only: `migrate status` and
`migrate follow` report them, a rollback carries them to PostgreSQL (the forward applier starts just
below the first one), and `migrate finish` refuses while there are any (docs/migrate.md).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from pgferry.capture import changelog, pgstate
from pgferry.pg.connect import connect
from pgferry.sqlite.connect import open_readonly

FIRST = 10  # the strays named in a report; the count is of all of them


@dataclass(frozen=True)
class Stray:
    """One stray write: its changelog seq, the table and the key it changed (the changelog has no
    operation: the row as SQLite holds it now, or its absence, is what it comes to)."""

    seq: int
    table: str
    key: dict[str, Any]  # key column -> value

    def as_dict(self) -> dict[str, Any]:
        key = {c: v.hex() if isinstance(v, bytes) else v for c, v in self.key.items()}
        return {"seq": self.seq, "table": self.table, "key": key}

    def describe(self) -> str:
        """`table (col=value, ...)`: the key, never the row's other values."""
        return f"{self.table} ({', '.join(f'{c}={v!r}' for c, v in self.key.items())})"


@dataclass(frozen=True)
class Strays:
    count: int
    first: tuple[Stray, ...]  # the oldest FIRST of them, in commit order

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "first": [s.as_dict() for s in self.first]}

    def describe(self) -> str:
        """`N stray writes (a (id=1), b (k='x'), ...)`."""
        more = ", ..." if self.count > len(self.first) else ""
        named = ", ".join(s.describe() for s in self.first)
        return f"{self.count:,} stray write{'s' if self.count != 1 else ''} ({named}{more})"


NONE = Strays(0, ())


def list_strays(conn: sqlite3.Connection, after: int, limit: int) -> list[Stray]:
    """Up to `limit` forward changelog entries above `after`, with their tables and keys named."""
    install = changelog.read_install(conn)
    if install is None or not changelog.has_changelog(conn):
        return []
    registry = {c.id: c for c in changelog.read_registry(conn)}
    found = []
    for entry in changelog.entries(conn, after, limit, install.width):
        captured = registry.get(entry.table_id)
        table, columns = (captured.table, captured.key) if captured else (f"table #{entry.table_id}", ())
        found.append(Stray(entry.seq, table, dict(zip(columns, entry.key, strict=False))))
    return found


def strays_above(conn: sqlite3.Connection, position: int, limit: int = FIRST) -> Strays:
    """The stray writes above the cutover's `position`: how many, and the first `limit` (in the
    caller's transaction, for one snapshot)."""
    if not changelog.has_changelog(conn):
        return NONE
    count = changelog.pending(conn, position)
    return Strays(count, tuple(list_strays(conn, position, limit))) if count else NONE


def cutover_position(pg: psycopg.Connection, schema: str) -> int | None:
    """The forward applier's position: after a cutover, the changelog's head it drained."""
    state = pgstate.read(pg, schema)
    return None if state is None else state.applied_seq


def read_strays(path: str | Path, dsn: str, schema: str, limit: int = FIRST) -> Strays:
    """The stray writes in the SQLite file at `path` (meaningful while the route is `postgres`)."""
    with connect(dsn) as pg:
        position = cutover_position(pg, schema)
    if position is None:
        return NONE
    conn = open_readonly(path)
    try:
        conn.execute("BEGIN")  # one snapshot for the count and the list
        try:
            return strays_above(conn, position, limit)
        finally:
            conn.execute("COMMIT")
    finally:
        conn.close()
