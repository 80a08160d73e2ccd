"""A schema change on PostgreSQL while the route is `postgres`, found before it loses data on the way
back: the reverse applier reads and writes the columns the copy made, so a column the application
added on PostgreSQL would silently not reach SQLite, and a rollback would drop its values. A batch
reads each of its tables' live columns with its rows (`SELECT t.*`: no query of its own on every
batch) and compares them with the copy's plan before it writes anything; the rollback's flip compares
every captured table in PostgreSQL's catalog (one query). A difference stops them with what to do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from pgferry.capture.current import ApplyError
from pgferry.capture.reverse.rows import ReverseTable


class SchemaDrift(ApplyError):
    """PostgreSQL's tables no longer have the copy's columns; the message says which and what to do."""


@dataclass(frozen=True)
class Drift:
    table: str  # the PostgreSQL table
    added: list[str]  # columns PostgreSQL has and the copy did not make
    dropped: list[str]  # columns the copy made that PostgreSQL no longer has

    def describe(self) -> str:
        parts = [f"{', '.join(self.added)} added"] if self.added else []
        parts += [f"{', '.join(self.dropped)} dropped"] if self.dropped else []
        return f"table {self.table!r}: column(s) " + ", ".join(parts)


def find_drift(pg: psycopg.Connection, schema: str, tables: Iterable[ReverseTable]) -> list[Drift]:
    """Each table whose live columns differ from the ones its copy made."""
    planned = {t.target: t.planned_columns for t in tables}
    if not planned:
        return []
    qualified = [sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(n)).as_string(pg) for n in planned]
    live: dict[str, set[str]] = {name: set() for name in planned}
    rows = pg.execute(
        "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " WHERE a.attrelid = ANY(%s::regclass[]) AND a.attnum > 0 AND NOT a.attisdropped",
        [qualified],
    )
    for table, column in rows:
        live[table].add(column)
    return [d for d in (column_drift(name, columns, live[name]) for name, columns in planned.items()) if d]


def column_drift(table: str, planned: Iterable[str], live: Iterable[str]) -> Drift | None:
    """How `table`'s live columns differ from the copy's (None: they do not)."""
    planned, live = set(planned), set(live)
    return None if live == planned else Drift(table, sorted(live - planned), sorted(planned - live))


def check_drift(pg: psycopg.Connection, schema: str, tables: Iterable[ReverseTable]) -> None:
    """SchemaDrift when PostgreSQL's captured tables changed their columns since the copy."""
    stop_on_drift(find_drift(pg, schema, tables))


def stop_on_drift(drifts: list[Drift]) -> None:
    """SchemaDrift naming `drifts`, if any."""
    if drifts:
        raise SchemaDrift(
            "the schema changed on PostgreSQL while the route is postgres: "
            + "; ".join(d.describe() for d in drifts)
            + ". SQLite has no place for what changed, so nothing more is carried back (nothing was dropped; the "
            "application goes on on PostgreSQL). Carrying a changed schema back is not supported: undo the change "
            "on PostgreSQL to be able to roll back, or stay on PostgreSQL (`pgferry migrate finish`)"
        )
