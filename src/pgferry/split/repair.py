"""Pause and put back the sync triggers of a split, around a migration that rebuilds the table.

A framework migration that rebuilds the split table (Django's remake on SQLite, Alembic's batch mode,
sqlite-utils' transform: create, copy, drop, rename) cannot run while the new tables' triggers write
to it: SQLite checks every trigger when the copy is renamed into place, and theirs name a table that is
gone at that moment, so the migration fails (and rolls back). `split --pause` drops the sync triggers;
the migration then runs; `split --repair` re-creates them for the table as it now is (a rebuild that
ran without a pause has dropped the table's own triggers: the same repair). It repairs only while both
sides still agree: once they differ, writes went to one side only and nothing can tell which side is
right, so it refuses and says how many rows differ. Pause writes to the table for that window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgferry.split.apply import schema_change
from pgferry.split.checks import check_in_step, missing_triggers, out_of_step
from pgferry.split.layout import Layout
from pgferry.split.plan import SplitError, SplitPlan
from pgferry.split.record import find_record, read_records, write_record
from pgferry.split.revert import current_table
from pgferry.split.sync import sync_triggers, trigger_names
from pgferry.sqlite.connect import open_writable
from pgferry.sqlite.schema import Schema, read_schema
from pgferry.sqltext import quote_ident as q


@dataclass
class RepairReport:
    database: str
    table: str
    reinstalled: list[str] = field(default_factory=list)  # the sync triggers that were missing
    dropped: list[str] = field(default_factory=list)  # --pause: the sync triggers it dropped

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "table": self.table,
            "reinstalled": self.reinstalled,
            "dropped": self.dropped,
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


def repair_split(path: str | Path, table: str) -> RepairReport:
    """Re-create the missing sync triggers of `table` (split, in the expand stage), in one transaction."""
    conn = open_writable(path)
    try:
        record, layout = _expanded(conn, table, "--repair")
        names = trigger_names(layout)
        missing = missing_triggers(conn, names)
        report = RepairReport(str(path), record.table, missing)
        if not missing:
            return report
        with schema_change(conn, f"repairing the split of {record.table}"):
            check_in_step(conn, layout, "re-installing the sync triggers")
            for name, sql in zip(names, sync_triggers(layout), strict=True):
                conn.execute(f"DROP TRIGGER IF EXISTS {q(name)}")  # all of them, from the table as it is now
                conn.execute(sql)
            record.triggers = names
            write_record(conn, record, replace=True)
        return report
    finally:
        conn.close()
