"""AUTOINCREMENT's promise across a rollback: an id PostgreSQL gave is never given again by SQLite.

Rows PostgreSQL inserted and deleted again while the route was `postgres` never reach SQLite, so its
sqlite_sequence stays below ids the application has already handed out (in URLs, mails, other
systems). The rollback raises each AUTOINCREMENT table's mark to its identity sequence's last value,
in the SQLite transaction that flips the route back, read while PostgreSQL's writers are held (no id
is given meanwhile). The way forward again, a restart never moves a sequence back
(pgferry.migrate.restart).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection

import psycopg

from pgferry.migrate.plan import MigrationPlan
from pgferry.migrate.restart import last_given_sql
from pgferry.pg.connect import statement
from pgferry.sqlite.schema import read_schema
from pgferry.sqltext import quote_ident


def autoincrement_tables(conn: sqlite3.Connection) -> set[str]:
    """The file's AUTOINCREMENT tables (other tables reuse max(rowid) + 1 by SQLite's own rule): read
    before the rollback's freeze, so the pause holds none of it."""
    return {t.name for t in read_schema(conn).tables if t.autoincrement}


def given_on_postgres(pg: psycopg.Connection, plan: MigrationPlan, tables: Collection[str]) -> dict[str, int]:
    """{SQLite table: the last id its PostgreSQL identity gave} for those of `tables` whose identity gave any."""
    given: dict[str, int] = {}
    for table in plan.tables:
        column = next((c.target for c in table.columns if c.identity), None)
        if table.source not in tables or table.identity_start is None or column is None:
            continue
        qualified = f"{quote_ident(plan.schema)}.{quote_ident(table.target)}"
        row = pg.execute(statement(last_given_sql(qualified, column))).fetchone()
        if row is not None and row[0] is not None:
            given[table.source] = int(row[0])
    return given


def raise_autoincrement_marks(conn: sqlite3.Connection, given: dict[str, int]) -> dict[str, int]:
    """In `conn`'s transaction, raise sqlite_sequence to `given` (AUTOINCREMENT tables only) where it is
    below; returns the marks raised."""
    if not given:
        return {}
    marks = {str(name): int(seq) for name, seq in conn.execute("SELECT name, seq FROM sqlite_sequence")}
    raised: dict[str, int] = {}
    for name in sorted(given):
        if marks.get(name, 0) >= given[name]:
            continue
        if name in marks:
            conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (given[name], name))
        else:
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, given[name]))
        raised[name] = given[name]
    return raised
