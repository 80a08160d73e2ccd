"""Which key change capture logs for each table, and the tables it refuses.

A changelog entry names a row by the key PostgreSQL finds it by again: the primary key (an INTEGER
PRIMARY KEY is the rowid itself, stable across VACUUM). A rowid table without a primary key has
nothing stable to log (VACUUM may renumber its rowids) and nothing PostgreSQL could find its rows
by, so it is refused, as is a primary key that holds NULLs (a rowid table lets it): such a key names
no row. Refusals name every table at once, so one run tells the whole story.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from pgferry.errors import UsageError
from pgferry.sqlite.schema import Schema, Table
from pgferry.sqltext import quote_ident as q


@dataclass(frozen=True)
class CaptureKey:
    """The key logged for `table`: its source columns, and how it was chosen (for the report)."""

    table: str
    columns: tuple[str, ...]
    how: str


class KeylessTables(UsageError):
    """Tables change capture cannot follow; the message names each and what to do."""


def capture_key(table: Table) -> CaptureKey | str:
    """The key of `table`, or why it has none."""
    if table.rowid_alias is not None:
        return CaptureKey(table.name, (table.rowid_alias,), f"INTEGER PRIMARY KEY {table.rowid_alias} (the rowid)")
    if table.primary_key:
        kind = "WITHOUT ROWID primary key" if table.without_rowid else "primary key"
        return CaptureKey(table.name, table.primary_key, f"{kind} ({', '.join(table.primary_key)})")
    return "no primary key (its rowids may change on VACUUM and PostgreSQL could not find its rows)"


def _null_key(conn: sqlite3.Connection, table: Table) -> bool:
    """A rowid table's non-INTEGER primary key may hold NULLs (WITHOUT ROWID ones may not)."""
    if table.without_rowid or table.rowid_alias is not None:
        return False
    nulls = " OR ".join(f"{q(c)} IS NULL" for c in table.primary_key)
    return conn.execute(f"SELECT 1 FROM {q(table.name)} WHERE {nulls} LIMIT 1").fetchone() is not None


def capture_keys(conn: sqlite3.Connection, schema: Schema) -> list[CaptureKey]:
    """The key of every table in `schema`; KeylessTables naming all the tables that have none."""
    keys, refused = [], []
    for table in schema.tables:
        found = capture_key(table)
        if isinstance(found, str):
            refused.append(f"{table.name!r}: {found}")
        elif _null_key(conn, table):
            refused.append(f"{table.name!r}: its primary key ({', '.join(table.primary_key)}) holds NULLs")
        else:
            keys.append(found)
    if refused:
        raise KeylessTables(
            "change capture needs a primary key on every table; "
            + "; ".join(refused)
            + ". Add a PRIMARY KEY (or an INTEGER PRIMARY KEY column) to each, then start again"
        )
    return keys
