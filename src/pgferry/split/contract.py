"""The contract step: remove the moved columns from the split table once no code uses them.

The sync triggers go, the table is rebuilt without the moved columns (rows and rowids kept, its
other indexes and triggers recreated), and indexes on moved columns move to the side table that
holds them, under the same names. From a captured workload it first lists the statements that
still read or write a moved column (a `SELECT *` on the table counts) and refuses unless forced.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path
from typing import Any

from pgferry.events import Listener, no_events
from pgferry.split.apply import index_sql, restore_stat1, run_steps, schema_change, sequence, set_sequence, stat1_rows
from pgferry.split.checks import check_in_step, check_new_tables, check_no_orphans
from pgferry.split.ddl import ChildRebuild, Script, core_sql, index_home, rebuild_steps
from pgferry.split.hot import Workload, hot_statements
from pgferry.split.layout import Layout
from pgferry.split.plan import SplitError, SplitPlan
from pgferry.split.record import find_record, write_record
from pgferry.split.report import ContractReport
from pgferry.split.revert import current_table, drop_triggers
from pgferry.split.sqltext import fold, mentioned_names, rename_index_target
from pgferry.sqlite.connect import open_writable
from pgferry.sqlite.schema import Schema, read_schema
from pgferry.sqltext import quote_ident as q


def workload_users(workload: Workload, layout: Layout) -> list[dict[str, Any]]:
    """The workload's statements on the table that still use a moved column (or select all columns)."""
    moved = {fold(c) for f in layout.plan.families for c in f.columns}
    columns = [c.name for c in layout.table.columns]
    out = []
    for hot in hot_statements(workload, layout.table.name, columns, limit=1_000_000):
        used = sorted(hot.columns & moved)
        if used or (hot.reads and hot.star):
            out.append({"sql": hot.sql, "calls": hot.calls, "moved_columns": used, "select_star": hot.star})
    return out


def _refuse_triggers(schema: Schema, layout: Layout) -> None:
    """The table's own triggers that name a moved column would break once it is gone (SQLite resolves a
    trigger's columns only when it fires, so the rebuild alone would not notice)."""
    moved = {fold(c) for f in layout.plan.families for c in f.columns}
    name = fold(layout.table.name)
    sync = {fold(n) for n in (f"{layout.table.name}_split_{e}" for e in ("insert", "update", "delete"))}
    for trigger in schema.triggers:
        if trigger.table is not None and fold(trigger.table) == name and fold(trigger.name) not in sync:
            used = mentioned_names(trigger.sql or "") & moved
            if used:
                raise SplitError(f"trigger {trigger.name!r} uses moved column(s) {sorted(used)}; change it first")


def _refuse_broken_views(conn: sqlite3.Connection, schema: Schema) -> None:
    """Every view still compiles on the contracted table: SQLite itself resolves the view's columns, so
    a view that reads another table's column of a moved column's name is not refused by mistake."""
    for view in schema.views:
        try:
            conn.execute(f"SELECT * FROM {q(view.name)} LIMIT 0").fetchall()
        except sqlite3.OperationalError as exc:
            raise SplitError(f"view {view.name!r} would break ({exc}); change it first") from None


def contract_split(
    path: str | Path,
    table: str,
    *,
    workload: Workload | None = None,
    force: bool = False,
    events: Listener = no_events,
) -> ContractReport:
    """Remove the moved columns from `table` (split and still in the expand stage)."""
    started = time.perf_counter()
    conn = open_writable(path)
    try:
        record = find_record(conn, table)
        if record is None or record.stage != "expand":
            state = "not split here" if record is None else "already contracted"
            raise SplitError(f"table {table!r} is {state}; --contract follows a split --apply")
        plan = SplitPlan.from_dict(record.plan, source="the split record")
        schema = read_schema(conn)
        layout = Layout.of(current_table(schema, record.table), plan)
        users = workload_users(workload, layout) if workload is not None else []
        if users and not force:
            first = users[0]
            raise SplitError(
                f"{len(users)} statement(s) of the workload still use moved columns (first: {first['sql'][:120]!r}); "
                "change that code first, or pass --force"
            )
        with schema_change(conn, f"contracting the split of {record.table}"):
            schema = read_schema(conn)
            check_new_tables(schema, layout)
            check_no_orphans(conn, layout, q(record.table))
            check_in_step(conn, layout, "contracting")
            _refuse_triggers(schema, layout)
            script, moved_idx, dropped_idx = contract_script(conn, layout, record.triggers)
            indexes_before = index_sql(conn, record.table)
            seq = sequence(conn, record.table)
            stat = stat1_rows(conn, record.table)
            rows = conn.execute(f"SELECT count(*) FROM {q(record.table)}").fetchone()[0]
            run_steps(conn, script, events, f"contracting {record.table}")
            _refuse_broken_views(conn, schema)
            set_sequence(conn, record.table, seq)
            gone = {fold(n) for n in moved_idx + dropped_idx}
            restore_stat1(conn, record.table, [r for r in stat if r[1] is None or fold(r[1]) not in gone])
            if stat:
                for name in plan.new_tables:
                    conn.execute(f"ANALYZE {q(name)}")
            after = conn.execute(f"SELECT count(*) FROM {q(record.table)}").fetchone()[0]
            if after != rows:
                raise SplitError(f"{record.table} had {rows} rows but {after} after the rebuild; rolled back")
            record.original_sql = layout.table.sql  # what a revert brings back
            record.stage = "contract"
            record.contracted_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            record.contracted_sql = core_sql(layout)
            record.indexes = indexes_before
            record.dropped_indexes = dropped_idx
            write_record(conn, record, replace=True)
        return ContractReport(
            database=str(path),
            table=record.table,
            rows=rows,
            removed_columns=[c for f in plan.families for c in layout.family_columns(f)],
            moved_indexes=moved_idx,
            dropped_indexes=dropped_idx,
            workload_users=users,
            forced=bool(users) and force,
            seconds=time.perf_counter() - started,
        )
    finally:
        conn.close()


def contract_script(
    conn: sqlite3.Connection, layout: Layout, triggers: list[str]
) -> tuple[Script, list[str], list[str]]:
    """Statements of the contract, the indexes moved to side tables and those dropped."""
    script = Script()
    name = fold(layout.table.name)
    sync = {fold(n) for n in triggers}
    on_table = conn.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL ORDER BY type = 'trigger', rowid",
        (layout.table.name,),
    ).fetchall()
    # the family tables' triggers; the table's own go with its rebuild
    drop_triggers(script, [t for t in triggers if fold(t) not in {fold(n) for _, n, _ in on_table}])
    moved: list[tuple[str, str]] = []
    dropped: list[str] = []
    dependents: list[str] = []
    for kind, obj, sql in on_table:
        if kind == "trigger":
            if fold(obj) not in sync:
                dependents.append(sql)
            continue
        home = index_home(layout, sql)
        if home is None:
            dropped.append(obj)
        elif fold(home) == name:
            dependents.append(sql)
        else:
            moved.append((obj, rename_index_target(sql, home)))
    columns = layout.writable(layout.core_columns)
    rebuild_steps(script, ChildRebuild(layout.table, core_sql(layout), dependents), conn, columns=columns)
    for obj, sql in moved:
        script.add(f"move index {obj} to the side table", sql)
    return script, [n for n, _ in moved], dropped
