"""Checks before a contract or a revert: nothing either would drop holds data the other side lacks.

A framework's table rebuild (Django's remake_table, Alembic batch mode) drops triggers silently,
and a connection can turn triggers off; after that the table and the new tables drift apart. So
the contract and the revert compare the two sides cell by cell instead of trusting the triggers,
and refuse, changing nothing, when they differ.
"""

from __future__ import annotations

import sqlite3

from pgferry.split.ddl import key_value_sql, side_sql
from pgferry.split.layout import CORE_ALIAS, Layout
from pgferry.split.plan import SplitError
from pgferry.split.sqltext import fold
from pgferry.split.sync import differs
from pgferry.sqlite.schema import Schema
from pgferry.sqltext import quote_ident as q
from pgferry.sqltext import quote_literal


def table_sql(schema: Schema, name: str) -> str | None:
    for table in schema.tables:
        if fold(table.name) == fold(name):
            return table.sql
    return None


def check_new_tables(schema: Schema, layout: Layout) -> None:
    """The new tables exist with the text the split gave them (an added column would be lost)."""
    for family in layout.plan.families:
        expected = side_sql(layout, family) if family.kind == "side" else key_value_sql(layout, family)
        current = table_sql(schema, family.table)
        if current is None:
            raise SplitError(f"table {family.table!r} made by the split is gone; cannot go on automatically")
        if current != expected:
            raise SplitError(f"table {family.table!r} was altered since the split; that change would be lost")


def check_no_orphans(conn: sqlite3.Connection, layout: Layout, core: str) -> None:
    """Every row of a new table belongs to a row of `core` (quoted name) and names a known column."""
    for family in layout.plan.families:
        match = layout.key_match("_f", "_c")
        orphans = conn.execute(
            f"SELECT count(*) FROM {q(family.table)} AS _f WHERE NOT EXISTS (SELECT 1 FROM {core} AS _c WHERE {match})"
        ).fetchone()[0]
        if orphans:
            raise SplitError(
                f"{orphans} row(s) of {family.table!r} have no row in {layout.table.name!r} and would be lost; "
                "delete or fix them first"
            )
        if family.kind == "key_value":
            names = ", ".join(quote_literal(c) for c in layout.family_columns(family))
            stray = conn.execute(
                f"SELECT count(*) FROM {q(family.table)} WHERE {q(family.name_column)} NOT IN ({names})"
            ).fetchone()[0]
            if stray:
                raise SplitError(
                    f"{stray} row(s) of {family.table!r} name no column of {layout.table.name!r} and would be "
                    "lost; delete them first"
                )


def out_of_step(conn: sqlite3.Connection, layout: Layout) -> int:
    """Rows whose moved columns differ between the table and the new tables (0 while in step)."""
    moved = [c for f in layout.plan.families for c in layout.writable(layout.family_columns(f))]
    if not moved:
        return 0
    differ = " OR ".join(differs(f"{CORE_ALIAS}.{q(c)}", layout.read_expr(c)) for c in moved)
    return int(conn.execute(f"SELECT count(*) FROM {layout.from_sql()} WHERE {differ}").fetchone()[0])


def check_in_step(conn: sqlite3.Connection, layout: Layout, what: str) -> None:
    drift = out_of_step(conn, layout)
    if drift:
        raise SplitError(
            f"{drift} row(s) of {layout.table.name!r} differ from the new tables in the moved columns (were the "
            f"sync triggers dropped, by a table rebuild say?); {what} would lose writes: decide which side is right "
            "and run split --repair --from table (or --from new)"
        )


def missing_triggers(conn: sqlite3.Connection, names: list[str]) -> list[str]:
    present = {fold(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    return [n for n in names if fold(n) not in present]
