"""Apply a split (the expand step) in one transaction, checked, recorded, and measured before and after.

Foreign keys are switched off for the duration (SQLite's documented procedure for changing a
table's definition: it cannot be changed inside a transaction, so it is set before BEGIN and
restored after) and `PRAGMA foreign_key_check` runs at the end: the split may not add a single
violation. Pre-existing violations (a legacy database that never enforced its keys) are counted
and reported, not blamed on the split. Any failure rolls everything back.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pgferry import __version__
from pgferry.events import Listener, Phases, no_events
from pgferry.split.ddl import Script, build_script
from pgferry.split.hot import Workload, hot_statements
from pgferry.split.layout import Layout
from pgferry.split.measure import Read, sizes, time_read
from pgferry.split.plan import SplitError, SplitPlan
from pgferry.split.reads import representative_reads, workload_reads
from pgferry.split.record import SplitRecord, write_record
from pgferry.split.report import SplitReport
from pgferry.split.sqltext import fold
from pgferry.split.sync import trigger_names
from pgferry.split.validate import find_table, validate_plan
from pgferry.sqlite.atomic import atomic
from pgferry.sqlite.connect import open_readonly, open_writable
from pgferry.sqlite.schema import read_schema
from pgferry.sqltext import quote_ident as q


@contextmanager
def schema_change(conn: sqlite3.Connection, what: str) -> Iterator[None]:
    """One IMMEDIATE transaction with foreign keys off and renames that touch nothing else; any
    error rolls back and becomes a one-line SplitError."""
    fk_was = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    legacy_was = conn.execute("PRAGMA legacy_alter_table").fetchone()[0]
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA legacy_alter_table = ON")
    try:
        with atomic(conn, what=what):
            yield
    except sqlite3.Error as exc:
        raise SplitError(f"{exc}; nothing was changed (rolled back)") from None
    finally:
        conn.execute(f"PRAGMA foreign_keys = {int(fk_was)}")
        conn.execute(f"PRAGMA legacy_alter_table = {int(legacy_was)}")


def fk_violations(conn: sqlite3.Connection, tables: list[str], rename: dict[str, str]) -> Counter[tuple[Any, ...]]:
    """foreign_key_check rows of `tables`, with table names mapped through `rename` (folded keys)."""

    def mapped(name: str | None) -> str | None:
        return None if name is None else rename.get(fold(name), fold(name))

    out: Counter[tuple[Any, ...]] = Counter()
    for table in tables:
        try:
            rows = conn.execute(f"PRAGMA foreign_key_check({q(table)})").fetchall()
        except sqlite3.DatabaseError as exc:
            out[("error", mapped(table), str(exc).replace(table, "?"))] += 1
            continue
        for child, rowid, parent, fkid in rows:
            out[(mapped(child), rowid, mapped(parent), fkid)] += 1
    return out


def sequence(conn: sqlite3.Connection, table: str) -> int | None:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        return None
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    return None if row is None else int(row[0])


def set_sequence(conn: sqlite3.Connection, table: str, seq: int | None) -> None:
    if seq is None:
        return
    if conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (seq, table)).rowcount == 0:
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, seq))


def stat1_rows(conn: sqlite3.Connection, table: str) -> list[list[Any]]:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
        return []
    return [list(r) for r in conn.execute("SELECT tbl, idx, stat FROM sqlite_stat1 WHERE tbl = ?", (table,))]


def restore_stat1(conn: sqlite3.Connection, table: str, rows: list[list[Any]]) -> None:
    if not rows:
        return
    conn.execute("DELETE FROM sqlite_stat1 WHERE tbl = ?", (table,))
    conn.executemany("INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)", [tuple(r) for r in rows])


def refuse_null_keys(conn: sqlite3.Connection, layout: Layout) -> None:
    """Rows with a NULL in a non-INTEGER primary key (an old SQLite quirk) cannot own side rows."""
    if layout.table.rowid_alias is not None or layout.table.without_rowid:
        return
    nulls = " OR ".join(f"{q(k)} IS NULL" for k in layout.key)
    count = conn.execute(f"SELECT count(*) FROM {q(layout.table.name)} WHERE {nulls}").fetchone()[0]
    if count:
        raise SplitError(
            f"{count} row(s) of {layout.table.name!r} have a NULL in the primary key (SQLite allows it for "
            "non-INTEGER keys); side rows cannot point at them: give them keys first"
        )


def run_steps(conn: sqlite3.Connection, script: Script, events: Listener, task: str) -> None:
    """Run the script's statements in the caller's transaction, one event per statement."""
    progress = Phases(events, "split")
    progress.start(task, len(script.steps))
    for step in script.steps:
        try:
            conn.execute(step.sql)
        except sqlite3.Error as exc:
            raise SplitError(f"{step.purpose}: {exc}; nothing was changed (rolled back)") from None
        progress.advance(detail=step.purpose)
    progress.finish()


def prepare(conn: sqlite3.Connection, plan: SplitPlan) -> tuple[Layout, Script]:
    """Check the table and the plan, and generate the statements (reads only)."""
    schema = read_schema(conn)
    table = find_table(conn, schema, plan.table)
    validate_plan(plan, schema, table)
    layout = Layout.of(table, plan)
    return layout, build_script(conn, schema, layout)


def time_reads(conn: sqlite3.Connection, reads: list[Read], when: str) -> None:
    for read in reads:
        if when == "before":
            read.before_ms = time_read(conn, read.sql_before, read.params)
        else:
            read.view_ms = time_read(conn, read.sql_before, read.params)
            if read.sql_core:
                read.core_ms = time_read(conn, read.sql_core, read.params)


def preview(path: str | Path, plan: SplitPlan) -> Script:
    """The statements `apply_split` would run, from a read-only look at the database."""
    conn = open_readonly(path)
    try:
        return prepare(conn, plan)[1]
    finally:
        conn.close()


def apply_split(
    path: str | Path,
    plan: SplitPlan,
    *,
    workload: Workload | None = None,
    measure: bool = True,
    events: Listener = no_events,
) -> SplitReport:
    """The expand step: create the new tables, copy the moved values, install the sync triggers.

    The table is left as it was (rows, rowids, schema text), so code not yet changed keeps
    working, ORMs included. Reads timed are the workload's hot reads on the table (the plan's own
    when it was proposed with a workload), else representative ones (see `reads`).
    """
    started = time.perf_counter()
    conn = open_writable(path)
    try:
        layout, script = prepare(conn, plan)
        table = layout.table
        hot = plan.hot
        if not hot and workload is not None:
            hot = hot_statements(workload, table.name, [c.name for c in table.columns])
        reads: list[Read] = []
        size_before = None
        if measure:
            size_before = sizes(conn, [table.name])
            reads = workload_reads(layout, hot) if hot else representative_reads(conn, layout)
            time_reads(conn, reads, "before")
        indexes = index_sql(conn, table.name)
        record = SplitRecord(
            table=table.name,
            plan=plan.to_dict(),
            original_sql=table.sql,
            indexes=indexes,
            sequence=sequence(conn, table.name),
            stat1=stat1_rows(conn, table.name),
            kept_indexes=[n for n, _ in indexes],
            applied_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            version=__version__,
            stage="expand",
            triggers=trigger_names(layout),
        )
        with schema_change(conn, f"splitting {table.name}"):
            rows = conn.execute(f"SELECT count(*) FROM {q(table.name)}").fetchone()[0]
            refuse_null_keys(conn, layout)
            run_steps(conn, script, events, f"splitting {plan.table}")
            if record.stat1:
                for name in plan.new_tables:
                    conn.execute(f"ANALYZE {q(name)}")
            check_no_new_violations(Counter(), fk_violations(conn, plan.new_tables, {}))
            write_record(conn, record)
            per_table = {n: conn.execute(f"SELECT count(*) FROM {q(n)}").fetchone()[0] for n in plan.new_tables}
        size_after = sizes(conn, [table.name, *plan.new_tables]) if measure else None
        if measure:
            time_reads(conn, reads, "after")
        return SplitReport(
            database=str(path),
            table=table.name,
            plan=plan.to_dict(),
            rows=rows,
            rows_per_table=per_table,
            kept_indexes=record.kept_indexes,
            dropped_indexes=[],
            rebuilt_tables=[],
            preexisting_fk_violations=0,
            size_before=size_before,
            size_after=size_after,
            reads=reads,
            notes=list(plan.notes),
            seconds=time.perf_counter() - started,
            stage="expand",
        )
    finally:
        conn.close()


def check_no_new_violations(before: Counter[tuple[Any, ...]], after: Counter[tuple[Any, ...]]) -> None:
    new = after - before
    if new:
        example = next(iter(new))
        raise SplitError(
            f"foreign_key_check found {sum(new.values())} new violation(s) after the split "
            f"(first: {example}); nothing was changed (rolled back)"
        )


def index_sql(conn: sqlite3.Connection, table: str) -> list[list[str]]:
    """[name, sql] of the table's explicit indexes in the order they were created."""
    rows = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY rowid",
        (table,),
    ).fetchall()
    return [[n, s] for n, s in rows]
