"""Pause and put back the sync triggers of a split, around a migration that rebuilds the table.

A framework migration that rebuilds the split table (Django's remake on SQLite, Alembic's batch mode,
sqlite-utils' transform: create, copy, drop, rename) cannot run while the new tables' triggers write
to it: SQLite checks every trigger when the copy is renamed into place, and theirs name a table that is
gone at that moment, so the migration fails (and rolls back). `split --pause` drops the sync triggers;
the migration then runs; `split --repair` re-creates them for the table as it now is (a rebuild that
ran without a pause has dropped the table's own triggers: the same repair). It repairs only while both
sides still agree: once they differ, writes went to one side only and nothing can tell which side is
right, so it refuses and says how many rows differ, unless the caller says which side wins
(`--repair --from table` or `--from new`): the other side is then rewritten from it, in the same
transaction that puts the triggers back. Pause writes to the table for that window.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pgferry.split.apply import schema_change
from pgferry.split.checks import check_in_step, check_new_tables, check_no_orphans, missing_triggers, out_of_step
from pgferry.split.ddl import copy_key_value_sql, copy_side_sql
from pgferry.split.layout import Layout
from pgferry.split.plan import SplitError, SplitPlan
from pgferry.split.record import find_record, read_records, write_record
from pgferry.split.revert import current_table
from pgferry.split.sync import differs, sync_triggers, trigger_names
from pgferry.sqlite.connect import open_writable
from pgferry.sqlite.schema import Schema, read_schema
from pgferry.sqltext import quote_ident as q

Side = Literal["table", "new"]  # the split table itself, or the new tables made by the split
SIDES: tuple[Side, ...] = ("table", "new")


@dataclass
class RepairReport:
    database: str
    table: str
    reinstalled: list[str] = field(default_factory=list)  # the sync triggers that were missing
    dropped: list[str] = field(default_factory=list)  # --pause: the sync triggers it dropped
    winner: Side | None = None  # --from: the side whose values were kept
    reconciled: int = 0  # rows whose moved columns were rewritten from the winner

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "table": self.table,
            "reinstalled": self.reinstalled,
            "dropped": self.dropped,
            "from": self.winner,
            "reconciled": self.reconciled,
        }


@dataclass(frozen=True)
class SyncState:
    """A split in its expand stage as the file now is: sync triggers gone, and rows that differ."""

    table: str
    missing_triggers: list[str]
    rows_out_of_step: int


def sync_states(conn: Any, schema: Schema) -> list[SyncState]:
    """Every split of the file still in its expand stage whose sync triggers are not all there, or whose
    two sides differ (read only: what the doctor reports and `--repair` would fix)."""
    states = []
    for record in read_records(conn):
        table = next((t for t in schema.tables if t.name.lower() == record.table.lower()), None)
        if record.stage != "expand" or table is None:
            continue
        layout = Layout.of(table, SplitPlan.from_dict(record.plan, source="the split record"))
        missing = missing_triggers(conn, trigger_names(layout))
        drift = out_of_step(conn, layout)
        if missing or drift:
            states.append(SyncState(record.table, missing, drift))
    return states


def _expanded(conn: Any, table: str, what: str) -> tuple[Any, Layout]:
    record = find_record(conn, table)
    if record is None or record.stage != "expand":
        state = "not split here" if record is None else "contracted (it has no sync triggers)"
        raise SplitError(f"table {table!r} is {state}; {what} follows a split --apply")
    plan = SplitPlan.from_dict(record.plan, source="the split record")
    return record, Layout.of(current_table(read_schema(conn), record.table), plan)


def pause_split(path: str | Path, table: str) -> RepairReport:
    """Drop the sync triggers of `table` (before a migration that rebuilds it); `--repair` puts them back."""
    conn = open_writable(path)
    try:
        record, layout = _expanded(conn, table, "--pause")
        names = trigger_names(layout)
        present = [n for n in names if n not in missing_triggers(conn, names)]
        with schema_change(conn, f"pausing the split of {record.table}"):
            for name in present:
                conn.execute(f"DROP TRIGGER IF EXISTS {q(name)}")
        return RepairReport(str(path), record.table, dropped=present)
    finally:
        conn.close()


def repair_split(path: str | Path, table: str, winner: Side | None = None) -> RepairReport:
    """Re-create the missing sync triggers of `table` (split, in the expand stage), in one transaction.

    With `winner`, rows whose two sides differ first take the winner's values (see `reconcile`);
    without it, any difference refuses the repair."""
    if winner is not None and winner not in SIDES:
        raise SplitError(f"--from {winner!r}: say `table` (the split table's values win) or `new` (the new tables')")
    conn = open_writable(path)
    try:
        record, layout = _expanded(conn, table, "--repair")
        names = trigger_names(layout)
        missing = missing_triggers(conn, names)
        report = RepairReport(str(path), record.table, missing, winner=winner)
        drift = out_of_step(conn, layout) if winner is not None else 0  # without a winner a drift refuses, below
        if not missing and not drift:
            return report
        with schema_change(conn, f"repairing the split of {record.table}"):
            for name in names:  # all of them, from the table as it is now; none fires while the sides are rewritten
                conn.execute(f"DROP TRIGGER IF EXISTS {q(name)}")
            if winner is not None:
                reconcile(conn, layout, winner)
                report.reconciled = drift
            check_in_step(conn, layout, "re-installing the sync triggers")
            for sql in sync_triggers(layout):
                conn.execute(sql)
            record.triggers = names
            write_record(conn, record, replace=True)
        return report
    finally:
        conn.close()


def reconcile(conn: Any, layout: Layout, winner: Side) -> None:
    """Make the losing side equal the winner's values.

    `table`: the new tables are emptied and filled again from the table, as the split first filled them
    (rows of theirs with no row in the table go too). `new`: the table's moved columns are set from the
    new tables, which must hold no row the table lacks (it could not be put anywhere: refused).
    Run with the sync triggers dropped, so neither rewrite echoes back."""
    name = layout.table.name
    if winner == "table":
        check_new_tables(read_schema(conn), layout)
        for family in layout.plan.families:
            conn.execute(f"DELETE FROM {q(family.table)}")
            copy = copy_side_sql if family.kind == "side" else copy_key_value_sql
            conn.execute(copy(layout, family, name))
        return
    check_no_orphans(conn, layout, q(name))
    moved = [c for f in layout.plan.families for c in layout.writable(layout.family_columns(f))]
    sets = ", ".join(f"{q(c)} = _n.{q(c)}" for c in moved)
    match = " AND ".join(f"{q(name)}.{q(k)} IS _n.{q(k)}" for k in layout.key)
    differ = " OR ".join(differs(f"_n.{q(c)}", f"{q(name)}.{q(c)}") for c in moved)
    source = layout.select_sql(columns=[*layout.key, *moved], source=q(name))
    try:
        conn.execute(f"UPDATE {q(name)} SET {sets} FROM ({source}) AS _n WHERE {match} AND ({differ})")
    except sqlite3.IntegrityError as exc:
        raise SplitError(
            f"the new tables' values do not fit {name!r} ({exc}): a NOT NULL moved column with no value on the new "
            "side? Fix those rows, or keep the table's values with --from table"
        ) from None
