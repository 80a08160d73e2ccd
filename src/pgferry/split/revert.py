"""Undo a split from either stage: the original table back with its exact CREATE TABLE text, rows,
rowids and indexes.

After the expand the table still has every column and is in step with the new tables, so the
revert drops the sync triggers and the new tables and the table is what it was. After the contract
the table is rebuilt from its recorded text, the moved columns read back from the new tables
(writes made since included). Before anything changes the revert checks that nothing it drops
holds data the table cannot take back (`checks`) and refuses otherwise.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from pgferry.events import Listener, no_events
from pgferry.split.apply import (
    check_no_new_violations,
    fk_violations,
    restore_stat1,
    run_steps,
    schema_change,
    sequence,
    set_sequence,
)
from pgferry.split.checks import check_in_step, check_new_tables, check_no_orphans, table_sql
from pgferry.split.ddl import REBUILD_TEMP, ChildRebuild, Script, dependents_sql, rebuild_steps
from pgferry.split.layout import Layout
from pgferry.split.plan import SplitError, SplitPlan
from pgferry.split.record import SplitRecord, delete_record, find_record
from pgferry.split.report import RevertReport
from pgferry.split.sqltext import fold
from pgferry.sqlite.connect import open_writable
from pgferry.sqlite.schema import Schema, Table, read_schema
from pgferry.sqltext import quote_ident as q


def original_table(record: SplitRecord) -> Table:
    """The original table's model, read from its CREATE TABLE text in a scratch in-memory database."""
    scratch = sqlite3.connect(":memory:")
    try:
        scratch.execute(record.original_sql)
        return read_schema(scratch).table(record.table)
    except (sqlite3.Error, KeyError) as exc:
        raise SplitError(f"the recorded CREATE TABLE of {record.table!r} cannot be read back ({exc})") from None
    finally:
        scratch.close()


def drop_triggers(script: Script, names: list[str]) -> None:
    for name in names:
        script.add(f"drop the sync trigger {name}", f"DROP TRIGGER IF EXISTS {q(name)}")


def current_table(schema: Schema, name: str) -> Table:
    table = next((t for t in schema.tables if fold(t.name) == fold(name)), None)
    if table is None:
        raise SplitError(f"table {name!r} is gone; cannot revert automatically")
    return table


def build_revert_script(conn: sqlite3.Connection, schema: Schema, layout: Layout, record: SplitRecord) -> Script:
    """The statements of the revert (after `check_revertible`)."""
    plan = layout.plan
    script = Script()
    drop_triggers(script, record.triggers)
    if record.stage == "contract":
        current = current_table(schema, record.table)
        columns = layout.writable([c.name for c in layout.table.columns])
        select = layout.select_sql(with_rowid=layout.copies_rowid, columns=columns, source=q(REBUILD_TEMP))
        dependents = [s for s in dependents_sql(conn, current.name)]
        rebuild_steps(script, ChildRebuild(current, record.original_sql, dependents), conn, select, columns)
    for name in reversed(plan.new_tables):
        script.add(f"drop {name}", f"DROP TABLE {q(name)}")
    if record.stage == "contract":
        present = {fold(i.name) for i in current_table(schema, record.table).indexes}
        for name, sql in record.indexes:
            if fold(name) not in present:
                script.add(f"recreate index {name} on {record.table}", sql)
    return script


def check_revertible(conn: sqlite3.Connection, schema: Schema, layout: Layout, record: SplitRecord) -> None:
    """Refuse when reverting would lose data or cannot rebuild what was recorded."""
    check_new_tables(schema, layout)
    check_no_orphans(conn, layout, q(record.table))
    if record.stage == "expand":
        check_in_step(conn, layout, "reverting")
    elif table_sql(schema, record.table) != record.contracted_sql:
        raise SplitError(f"table {record.table!r} was altered since the contract; reverting would lose that change")


def revert_split(path: str | Path, table: str, events: Listener = no_events) -> RevertReport:
    """Put the split table back as it was, keeping writes made since the split."""
    started = time.perf_counter()
    conn = open_writable(path)
    try:
        record = find_record(conn, table)
        if record is None:
            raise SplitError(f"table {table!r} is not split here (no record in _pgferry_split); nothing to revert")
        if record.children:
            raise SplitError(
                f"{table!r} was split by a pgferry before expand/contract (a view); revert it with that version"
            )
        plan = SplitPlan.from_dict(record.plan, source="the split record")
        layout = Layout.of(original_table(record), plan)
        with schema_change(conn, f"reverting the split of {record.table}"):
            schema = read_schema(conn)
            check_revertible(conn, schema, layout, record)
            script = build_revert_script(conn, schema, layout, record)
            fk_before = fk_violations(conn, [record.table], {})
            seq = sequence(conn, record.table)
            rows = conn.execute(f"SELECT count(*) FROM {q(record.table)}").fetchone()[0]
            run_steps(conn, script, events, f"reverting {record.table}")
            if record.stage == "contract":
                set_sequence(conn, record.table, seq if seq is not None else record.sequence)
                restore_stat1(conn, record.table, record.stat1)
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
                for name in plan.new_tables:
                    conn.execute("DELETE FROM sqlite_stat1 WHERE tbl = ?", (name,))
            restored = conn.execute(f"SELECT count(*) FROM {q(record.table)}").fetchone()[0]
            if restored != rows:
                raise SplitError(f"{record.table} had {rows} rows but {restored} came back; rolled back")
            check_no_new_violations(fk_before, fk_violations(conn, [record.table], {}))
            delete_record(conn, record.table)
        return RevertReport(
            database=str(path),
            table=record.table,
            rows=rows,
            restored_indexes=[n for n, _ in record.indexes],
            rebuilt_tables=[record.table] if record.stage == "contract" else [],
            dropped_tables=plan.new_tables,
            seconds=time.perf_counter() - started,
            stage=record.stage,
        )
    finally:
        conn.close()
