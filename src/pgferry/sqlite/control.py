"""pgferry's own tables inside the SQLite file it works on (split records, change capture's
changelog and registry, the route).

State kept next to the data travels with the file (a copy or a restore carries it) and survives a
killed command, which is why it is never only in memory. Every table name is a `_pgferry_` name,
quoted, and every value is a parameter; the table is created on first write and can be dropped
when empty, so a database that no longer needs it keeps no trace.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pgferry.sqlite.schema import Schema
from pgferry.sqltext import quote_ident as q

PREFIX = "_pgferry_"


def is_control_name(name: str) -> bool:
    """A name pgferry gave its own table or trigger (SQLite names are ASCII-case-insensitive)."""
    return name.lower().startswith(PREFIX)


def without_control(schema: Schema) -> Schema:
    """`schema` without pgferry's own tables and triggers: a copy carries the application's data, not
    pgferry's bookkeeping (a changelog, a route, a split record), and does not list capture triggers
    as objects it could not carry."""
    return replace(
        schema,
        tables=[t for t in schema.tables if not is_control_name(t.name)],
        triggers=[t for t in schema.triggers if not is_control_name(t.name)],
    )


@dataclass(frozen=True)
class ControlTable:
    """One control table: its name, its columns as (name, declaration), and the key column."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: str

    def __post_init__(self) -> None:
        if not self.name.startswith(PREFIX):
            raise ValueError(f"control table {self.name!r}: its name must start with {PREFIX!r}")
        if self.key not in self.column_names:
            raise ValueError(f"control table {self.name!r}: key {self.key!r} is not one of its columns")

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def create(self, conn: sqlite3.Connection) -> None:
        """CREATE TABLE IF NOT EXISTS: safe to run before every write."""
        body = ", ".join(f"{q(name)} {decl}" for name, decl in self.columns)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {q(self.name)} ({body})")

    def exists(self, conn: sqlite3.Connection) -> bool:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return conn.execute(sql, (self.name,)).fetchone() is not None

    def read(self, conn: sqlite3.Connection) -> list[dict[str, Any]]:
        """Every row as {column: value}, in key order; none when the table was never made."""
        if not self.exists(conn):
            return []
        names = self.column_names
        sql = f"SELECT {', '.join(q(n) for n in names)} FROM {q(self.name)} ORDER BY {q(self.key)}"
        return [dict(zip(names, row, strict=True)) for row in conn.execute(sql)]

    def write(self, conn: sqlite3.Connection, row: Mapping[str, Any], *, replace: bool = False) -> None:
        """Insert `row` (creating the table first); `replace` overwrites the row with the same key,
        otherwise a second row for one key is an IntegrityError."""
        unknown = set(row) - set(self.column_names)
        if unknown:
            raise ValueError(f"control table {self.name!r} has no column(s) {sorted(unknown)}")
        self.create(conn)
        names = list(row)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        conn.execute(
            f"{verb} INTO {q(self.name)} ({', '.join(q(n) for n in names)}) VALUES ({', '.join('?' for _ in names)})",
            [row[n] for n in names],
        )

    def delete(self, conn: sqlite3.Connection, key: Any) -> int:
        """Remove the row with this key; returns how many went (0 or 1)."""
        if not self.exists(conn):
            return 0
        return conn.execute(f"DELETE FROM {q(self.name)} WHERE {q(self.key)} = ?", (key,)).rowcount

    def drop(self, conn: sqlite3.Connection, *, only_if_empty: bool = False) -> bool:
        """Drop the table (if it exists; with `only_if_empty`, only when no row is left); True if it went."""
        if not self.exists(conn):
            return False
        if only_if_empty and conn.execute(f"SELECT count(*) FROM {q(self.name)}").fetchone()[0]:
            return False
        conn.execute(f"DROP TABLE {q(self.name)}")
        return True
