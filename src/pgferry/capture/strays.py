"""Stray writes: changes committed to SQLite after the cutover (route `postgres`) by something that
did not follow the route (a thread or process of an application cut over with `cutover --hook`).

SQLite's capture triggers stay installed after the cutover, so each one is an entry in the forward
changelog. The cutover drained the changelog to its head and left the forward applier's position
there; the reverse applier deletes the entries its own writes make (in their transaction), so every
entry above that position is a stray write. Their rows are in SQLite only: `migrate status` and
`migrate follow` report them, a rollback carries them to PostgreSQL (the forward applier starts just
below the first one), and `migrate finish` refuses while there are any (docs/migrate.md).

A reverse batch that writes a key a stray write changed replaces SQLite's row with PostgreSQL's (the
source of truth until a rollback): the stray's value is gone. The batch notes the stray's seq in the
install's STATE table, in its own transaction, so every report can say so (`overwritten`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from pgferry.capture import changelog, pgstate
from pgferry.pg.connect import connect
from pgferry.sqlite.connect import open_readonly

FIRST = 10  # the strays named in a report; the count is of all of them
OVERWRITTEN = "strays_overwritten"  # the STATE row: JSON list of the seqs of stray writes overwritten


@dataclass(frozen=True)
class Stray:
    """One stray write: its changelog seq, the table and the key it changed (the changelog has no
    operation: the row as SQLite holds it now, or its absence, is what it comes to)."""

    seq: int
    table: str
    key: dict[str, Any]  # key column -> value
    overwritten: bool = False  # a reverse batch wrote PostgreSQL's row (or its absence) over it since

    def as_dict(self) -> dict[str, Any]:
        key = {c: v.hex() if isinstance(v, bytes) else v for c, v in self.key.items()}
        return {"seq": self.seq, "table": self.table, "key": key, "overwritten": self.overwritten}

    def describe(self) -> str:
        """`table (col=value, ...)`: the key, never the row's other values."""
        tail = ", overwritten by PostgreSQL's row" if self.overwritten else ""
        return f"{self.table} ({', '.join(f'{c}={v!r}' for c, v in self.key.items())}{tail})"


@dataclass(frozen=True)
class Strays:
    count: int
    first: tuple[Stray, ...]  # the oldest FIRST of them, in commit order

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "first": [s.as_dict() for s in self.first]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Strays:
        """What `as_dict` wrote (a rollback's record and report keep them so)."""
        first = tuple(Stray(s["seq"], s["table"], s["key"], s["overwritten"]) for s in data["first"])
        return cls(int(data["count"]), first)

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
    entries = changelog.entries(conn, after, limit, install.width)
    if not entries:
        return []
    registry = {c.id: c for c in changelog.read_registry(conn)}
    overwritten = overwritten_seqs(conn)
    found = []
    for entry in entries:
        captured = registry.get(entry.table_id)
        table, columns = (captured.table, captured.key) if captured else (f"table #{entry.table_id}", ())
        key = dict(zip(columns, entry.key, strict=False))
        found.append(Stray(entry.seq, table, key, entry.seq in overwritten))
    return found


def overwritten_seqs(conn: sqlite3.Connection) -> set[int]:
    """The stray writes (by seq) a reverse batch overwrote."""
    row = next((r for r in changelog.STATE.read(conn) if r["name"] == OVERWRITTEN), None)
    return set() if row is None else set(json.loads(row["value"]))


def note_overwritten(conn: sqlite3.Connection, seqs: Iterable[int]) -> None:
    """In the overwriting batch's transaction."""
    known = overwritten_seqs(conn)
    if not set(seqs) <= known:
        value = json.dumps(sorted(known | set(seqs)))
        changelog.STATE.write(conn, {"name": OVERWRITTEN, "value": value}, replace=True)


def forget_overwritten(conn: sqlite3.Connection) -> None:
    """At a rollback's flip (the strays are carried forward from there) and at uninstall."""
    changelog.STATE.delete(conn, OVERWRITTEN)


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
