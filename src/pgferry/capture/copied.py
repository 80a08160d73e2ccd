"""The captured tables as the copy made them: each registry entry with its table plan and row
identity (how its rows are found on both sides). The forward applier and reverse capture both stand
on this one reading, so they can never disagree on which tables are followed or by which key.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import psycopg

from pgferry.capture import changelog
from pgferry.capture.changelog import Captured
from pgferry.capture.current import ApplyError
from pgferry.migrate import control
from pgferry.migrate.identity import RowIdentity, row_identity
from pgferry.migrate.plan import MigrationPlan, TablePlan
from pgferry.sqlite.schema import read_schema


@dataclass(frozen=True)
class CopiedTable:
    """One captured table: its registry entry, its plan, and its keys on both sides."""

    captured: Captured
    plan: TablePlan
    identity: RowIdentity


@dataclass(frozen=True)
class CopiedTables:
    plan: MigrationPlan
    tables: list[CopiedTable]  # the registry's order


def captured_tables(conn: sqlite3.Connection, pg: psycopg.Connection, schema: str) -> CopiedTables:
    """Every captured table of the file on `conn` with the plan the copy into `schema` stored; an
    ApplyError when there is no copy, or when capture and the copy disagree on a table or its key."""
    stored = control.read_plan(pg, schema)
    if stored is None:
        raise ApplyError(f"schema {schema!r}: no copy to follow (no stored plan or capture state)")
    plan = MigrationPlan.from_dict(stored)
    sqlite_schema = read_schema(conn)
    tables = []
    for captured in changelog.read_registry(conn):
        try:
            table_plan = plan.table(captured.table)
        except KeyError:
            raise ApplyError(f"table {captured.table!r} is captured but not in the copy's plan") from None
        identity = row_identity(sqlite_schema.table(captured.table), table_plan)
        if tuple(c.source for c in identity.key) != captured.key:
            raise ApplyError(
                f"table {captured.table!r}: the copy finds rows by {[c.source for c in identity.key]}, "
                f"capture logs {list(captured.key)}"
            )
        tables.append(CopiedTable(captured, table_plan, identity))
    return CopiedTables(plan, tables)
