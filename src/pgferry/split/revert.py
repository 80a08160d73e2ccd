"""Undo a split: the original table back with its exact CREATE TABLE text, rows, rowids and indexes.

The rows are rebuilt from the new tables through the same SELECT the view uses, so every write
made through the view since the split is kept. Before anything changes, the revert checks that
nothing it would drop holds data the original table cannot take back (rows in side tables without
a core row, key-value rows for unknown columns, tables altered since the split) and refuses
otherwise: a revert never loses data silently.
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
    stat1_rows,
)
from pgferry.split.ddl import ChildRebuild, Script, core_sql, dependents_sql, key_value_sql, rebuild_steps, side_sql
from pgferry.split.layout import Layout, rowid_name
from pgferry.split.plan import SplitError, SplitPlan
from pgferry.split.record import SplitRecord, delete_record, find_record
from pgferry.split.report import RevertReport
from pgferry.split.sqltext import fold
from pgferry.sqlite.connect import open_writable
from pgferry.sqlite.schema import Schema, Table, read_schema
from pgferry.sqltext import quote_ident as q
from pgferry.sqltext import quote_literal


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


def _sql_of(schema: Schema, name: str) -> str | None:
    for table in schema.tables:
        if fold(table.name) == fold(name):
            return table.sql
    return None


def check_revertible(conn: sqlite3.Connection, schema: Schema, layout: Layout, record: SplitRecord) -> None:
    """Refuse when reverting would lose data or cannot rebuild what was recorded."""
    plan = layout.plan
    if not any(fold(v.name) == fold(record.table) for v in schema.views):
        raise SplitError(f"the view {record.table!r} made by the split is gone; cannot revert automatically")
    expected = {plan.core_table: core_sql(layout)}
    for family in plan.families:
        expected[family.table] = side_sql(layout, family) if family.kind == "side" else key_value_sql(layout, family)
    for name, sql in expected.items():
        current = _sql_of(schema, name)
        if current is None:
            raise SplitError(f"table {name!r} made by the split is gone; cannot revert automatically")
        if current != sql:
            raise SplitError(f"table {name!r} was altered since the split; reverting would lose that change")
    for child in record.children:
        current = _sql_of(schema, child.name)
        if current is None:
            raise SplitError(f"table {child.name!r} (it referenced {record.table!r}) is gone; cannot revert")
        if current != child.split_sql:
            raise SplitError(f"table {child.name!r} was altered since the split; reverting would lose that change")
    core = q(plan.core_table)
    for family in plan.families:
        match = layout.key_match("_f", "_c")
        orphans = conn.execute(
            f"SELECT count(*) FROM {q(family.table)} AS _f WHERE NOT EXISTS (SELECT 1 FROM {core} AS _c WHERE {match})"
        ).fetchone()[0]
        if orphans:
            raise SplitError(
                f"{orphans} row(s) of {family.table!r} have no row in {plan.core_table!r} and would be lost; "
                "delete or fix them first"
            )
        if family.kind == "key_value":
            names = ", ".join(quote_literal(c) for c in layout.family_columns(family))
            stray = conn.execute(
                f"SELECT count(*) FROM {q(family.table)} WHERE {q(family.name_column)} NOT IN ({names})"
            ).fetchone()[0]
            if stray:
                raise SplitError(
                    f"{stray} row(s) of {family.table!r} name no column of {record.table!r} and would be lost; "
                    "delete them first"
                )


def build_revert_script(conn: sqlite3.Connection, schema: Schema, layout: Layout, record: SplitRecord) -> Script:
    plan, table = layout.plan, layout.table
    script = Script()
    script.add("drop the compatibility view (its triggers go with it)", f"DROP VIEW {q(table.name)}")
    script.add("recreate the original table from its recorded CREATE TABLE text", record.original_sql)
    columns = layout.writable([c.name for c in table.columns])
    rowid = f"{rowid_name(table)}, " if layout.copies_rowid else ""
    script.add(
        "copy the rows back, rowids kept, writes made through the view included",
        f"INSERT INTO {q(table.name)} ({rowid}{', '.join(q(c) for c in columns)})\n"
        + layout.select_sql(with_rowid=layout.copies_rowid, columns=columns),
    )
    for child in record.children:
        current = next(t for t in schema.tables if fold(t.name) == fold(child.name))
        rebuild = ChildRebuild(current, child.original_sql, dependents_sql(conn, current.name))
        script.children.append(rebuild)
        rebuild_steps(script, rebuild, conn)
    for name in reversed(plan.new_tables):
        script.add(f"drop {name}", f"DROP TABLE {q(name)}")
    for name, sql in record.indexes:
        script.add(f"recreate index {name}", sql)
    return script


def revert_split(path: str | Path, table: str, events: Listener = no_events) -> RevertReport:
    """Put the split table back as it was, keeping writes made through the view."""
    started = time.perf_counter()
    conn = open_writable(path)
    try:
        record = find_record(conn, table)
        if record is None:
            raise SplitError(f"table {table!r} is not split here (no record in _pgferry_split); nothing to revert")
        plan = SplitPlan.from_dict(record.plan, source="the split record")
        layout = Layout.of(original_table(record), plan)
        children = [c.name for c in record.children]
        rename = {fold(plan.core_table): fold(record.table)}
        with schema_change(conn, f"reverting the split of {record.table}"):
            schema = read_schema(conn)
            check_revertible(conn, schema, layout, record)
            script = build_revert_script(conn, schema, layout, record)
            fk_before = fk_violations(conn, [*plan.new_tables, *children], rename)
            seq = sequence(conn, plan.core_table)
            child_state = {c: (sequence(conn, c), stat1_rows(conn, c)) for c in children}
            rows = conn.execute(f"SELECT count(*) FROM {q(plan.core_table)}").fetchone()[0]
            run_steps(conn, script, events, f"reverting {record.table}")
            set_sequence(conn, record.table, seq if seq is not None else record.sequence)
            restore_stat1(conn, record.table, record.stat1)
            for child, (child_seq, stat) in child_state.items():
                set_sequence(conn, child, child_seq)
                restore_stat1(conn, child, stat)
            restored = conn.execute(f"SELECT count(*) FROM {q(record.table)}").fetchone()[0]
            if restored != rows:
                raise SplitError(f"{plan.core_table} had {rows} rows but {restored} came back; rolled back")
            check_no_new_violations(fk_before, fk_violations(conn, [record.table, *children], rename))
            delete_record(conn, record.table)
        return RevertReport(
            database=str(path),
            table=record.table,
            rows=rows,
            restored_indexes=[n for n, _ in record.indexes],
            rebuilt_tables=children,
            dropped_tables=plan.new_tables,
            seconds=time.perf_counter() - started,
        )
    finally:
        conn.close()
