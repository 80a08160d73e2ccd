"""`pgferry copy` end to end: prepare the target, copy in parallel, build constraints, report."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg_pool import ConnectionPool

from pgferry.dsn import redact
from pgferry.errors import TargetError, UsageError
from pgferry.migrate import control
from pgferry.migrate.control import Checkpoint
from pgferry.migrate.copy import (
    CensusProgress,
    CopyOptions,
    CopyReport,
    Progress,
    Source,
    TableResult,
    _connect,
    _Copier,
    _initial_parts,
    not_carried,
    open_source,
    user_errors,
)
from pgferry.migrate.expressions import Untranslatable, quote_pg, translate_statement
from pgferry.migrate.plan import MigrationPlan, Skipped, Step, TablePlan, create_table_sql
from pgferry.migrate.schedule import Scheduler, Task

# A step that meets one of these already ran in an earlier (killed) run of the same copy.
ALREADY_DONE = (pgerrors.DuplicateTable, pgerrors.DuplicateObject, pgerrors.InvalidTableDefinition)


def _schema_has_tables(pg: psycopg.Connection, schema: str) -> bool:
    row = pg.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'v', 'm', 'p')",
        [schema],
    ).fetchone()
    return bool(row and row[0])


def _create_tables(pg: psycopg.Connection, source: Source, options: CopyOptions) -> list[Skipped]:
    """Create the schema, extensions and bare tables (no keys, no indexes) in one transaction."""
    notes: list[Skipped] = []
    plan = source.plan
    with pg.transaction():
        pg.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(options.schema)))
        for extension in plan.extensions:
            pg.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))
        for table in plan.tables:
            notes += _create_table(pg, table, options.schema)
        control.ensure_control_schema(pg)
        pg.execute(
            sql.SQL("DELETE FROM {}.copy_progress WHERE target_schema = %s").format(
                sql.Identifier(control.CONTROL_SCHEMA)
            ),
            [options.schema],
        )
        for table in source.schema.tables:
            rows = source.plan.table(table.name).rows
            for part in _initial_parts(source, table, options.jobs, rows):
                control.save_checkpoint(pg, options.schema, part)
        control.set_phase(pg, options.schema, str(source.path), "copying")
        control.save_plan(pg, options.schema, source.plan.to_dict())
    return notes


def _create_table(pg: psycopg.Connection, table: TablePlan, schema: str) -> list[Skipped]:
    """CREATE TABLE; when PostgreSQL refuses a default or generated expression, create the table without
    them, then add each default on its own so only the refused ones are left out (and reported)."""
    try:
        with pg.transaction():
            pg.execute(create_table_sql(table, schema))
        return []
    except psycopg.errors.Error as exc:
        first_error = str(exc).splitlines()[0]
    notes = [
        Skipped("generated column", f"{table.source}.{c.source}", f"copied as plain values: {first_error}")
        for c in table.columns
        if c.generated
    ]
    plain = replace(table, columns=[replace(c, default=None, generated=None) for c in table.columns])
    try:
        with pg.transaction():
            pg.execute(create_table_sql(plain, schema))
    except psycopg.errors.Error as exc:
        raise TargetError(f"cannot create table {table.target!r}: {str(exc).splitlines()[0]}") from None
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table.target))
    for column in table.columns:
        if column.default is None or column.generated:
            continue
        try:
            with pg.transaction():
                pg.execute(
                    sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT ").format(target, sql.Identifier(column.target))
                    + sql.SQL(column.default)
                )
        except psycopg.errors.Error as exc:
            notes.append(
                Skipped(
                    "default",
                    f"{table.source}.{column.source}",
                    f"PostgreSQL refused DEFAULT {column.default}: {str(exc).splitlines()[0]}",
                )
            )
    table.columns[:] = [replace(c, generated=None) for c in table.columns]  # generated values are now copied
    return notes


def _run_step(pool: ConnectionPool, step: Step) -> Skipped | None:
    with pool.connection() as pg:
        try:
            pg.execute(step.sql)
        except ALREADY_DONE:
            return None
        except psycopg.errors.Error as exc:
            why = str(exc).splitlines()[0] + (f" ({exc.diag.message_detail})" if exc.diag.message_detail else "")
            if step.required:
                raise TargetError(f"{step.kind} {step.name}: {why}") from None
            return Skipped(step.kind, step.name, f"PostgreSQL refused it: {why}")
    return None


def _run_steps_in_order(pool: ConnectionPool, steps: list[Step]) -> list[Skipped]:
    return [result for result in (_run_step(pool, step) for step in steps) if result is not None]


def copy_order(plan: MigrationPlan) -> dict[str, float]:
    """Copy priority per table, lower first: its rows plus the rows of the tables whose foreign keys
    point at it, biggest first. Checking a foreign key scans the child once both tables are in, so a
    small parent of big children (users) copied last leaves those checks for the very end."""
    weight = {t.source: float(t.rows) for t in plan.tables}
    for step in plan.steps:
        if step.kind == "foreign_key" and step.references in weight:
            weight[step.references] += weight.get(step.table, 0.0)
    return {name: -w for name, w in weight.items()}


def _run_pipeline(
    source: Source,
    copier: _Copier,
    dsn: str,
    options: CopyOptions,
    checkpoints: dict[tuple[str, int], Checkpoint],
    skipped: list[Skipped],
) -> dict[str, float]:
    """Stream the parts still to copy and build each table's keys, indexes, ANALYZE and foreign keys
    as soon as what they need is there (see pgferry.migrate.schedule). Returns when the data was done.

    Per table: keys (PRIMARY KEY, CHECKs, identity restart: ALTER TABLE takes an exclusive lock, so
    one after the other), then its indexes in parallel (CREATE INDEX locks share), then ANALYZE (it
    would wait for the index builds anyway); a foreign key waits for both of its tables.
    """
    jobs = max(1, options.jobs)
    scheduler = Scheduler({"data": jobs, "ddl": jobs})
    # One connection per DDL thread, reused: a new connection per step cost more than building the
    # index of a small table (the forum's 20-row categories table has 46 indexes).
    ddl = ConnectionPool(dsn, min_size=jobs, max_size=jobs, kwargs={"autocommit": True}, open=False)
    tables = {t.name: t for t in source.schema.tables}
    size = {t.source: t.rows for t in source.plan.tables}
    timings: dict[str, float] = {}
    copies: dict[str, set[str]] = {name: set() for name in tables}
    order = copy_order(source.plan)
    for cp in sorted(checkpoints.values(), key=lambda cp: order.get(cp.table, 0)):
        if cp.done or cp.table not in tables:
            continue
        name = f"copy:{cp.table}:{cp.part}"
        scheduler.add(
            Task(
                name,
                functools.partial(copier.run_part, tables[cp.table], cp),
                "data",
                priority=order.get(cp.table, 0),
            )
        )
        copies[cp.table].add(name)

    def release_snapshot() -> None:
        timings["data"] = time.perf_counter()
        source.close()  # let the application's writers and checkpoints go on

    scheduler.add(Task("release_snapshot", release_snapshot, "ddl", set().union(*copies.values()), -1e18))

    lock = threading.Lock()

    def run(steps: Callable[[], list[Step]]) -> Callable[[], None]:
        """A task running `steps()` in order on a pooled connection; what PostgreSQL refuses is reported.
        The steps are looked up when the task runs: a table re-planned during its copy has new ones."""

        def task() -> None:
            found = _run_steps_in_order(ddl, steps())
            with lock:
                skipped.extend(found)

        return task

    def steps_of(table: str, kinds: tuple[str, ...], exclude: bool = False) -> list[Step]:
        return [s for s in source.plan.steps if s.table == table and (s.kind in kinds) != exclude]

    for table in source.plan.tables:
        priority = -table.rows
        scheduler.add(
            Task(
                f"keys:{table.source}",
                run(functools.partial(steps_of, table.source, ("index", "foreign_key"), True)),
                "ddl",
                set(copies.get(table.source, ())),
                priority,
            )
        )
        # One task per index, built in parallel; task i builds indexes i, i+n, ... of the plan of the
        # moment (a re-plan keeps the indexes, it may change their SQL).
        count = max(1, len(steps_of(table.source, ("index",))))
        indexes = []
        for i in range(count):
            indexes.append(f"index:{table.source}:{i}")
            scheduler.add(
                Task(
                    indexes[-1],
                    run(lambda name=table.source, i=i, n=count: steps_of(name, ("index",))[i::n]),
                    "ddl",
                    {f"keys:{table.source}"},
                    priority,
                )
            )
        analyze = sql.SQL("ANALYZE {}").format(sql.Identifier(options.schema, table.target)).as_string()
        step = Step("analyze", table.source, table.target, analyze)
        scheduler.add(
            Task(
                f"done:{table.source}",
                run(functools.partial(list, [step])),
                "ddl",
                {f"keys:{table.source}", *indexes},
                priority,
            )
        )
    for i, step in enumerate(s for s in source.plan.steps if s.kind == "foreign_key"):
        after = {f"done:{step.table}"} | ({f"done:{step.references}"} if step.references in tables else set())
        scheduler.add(Task(f"fk:{i}", run(functools.partial(list, [step])), "ddl", after, -size.get(step.table, 0)))
    try:
        with ddl:
            scheduler.run()
    finally:
        if "data" not in timings:
            source.close()
    return timings


def _create_views(pg: psycopg.Connection, source: Source, options: CopyOptions) -> list[Skipped]:
    skipped = []
    tables = {t.source: t.target for t in source.plan.tables}
    columns = {t.source: {c.source: c.target for c in t.columns} for t in source.plan.tables}
    booleans = frozenset(c.source for t in source.plan.tables for c in t.columns if c.choice.pg_type == "boolean")
    for view in source.schema.views:
        body = view.sql.split(" AS ", 1)[1] if " AS " in view.sql.upper() else ""
        body = view.sql[view.sql.upper().index(" AS ") + 4 :] if body else ""
        try:
            translated = translate_statement(body, tables, columns, booleans)
        except Untranslatable as exc:
            skipped.append(Skipped("view", view.name, str(exc)))
            continue
        name = quote_pg(view.name.lower() if view.name.isidentifier() else view.name)
        try:
            with pg.transaction():
                pg.execute(f"SET LOCAL search_path TO {quote_pg(options.schema)}")
                pg.execute(f"CREATE OR REPLACE VIEW {quote_pg(options.schema)}.{name} AS {translated}")
        except psycopg.errors.Error as exc:
            skipped.append(Skipped("view", view.name, f"PostgreSQL refused it: {str(exc).splitlines()[0]}"))
    return skipped


def copy_database(
    sqlite_path: str | Path,
    dsn: str,
    options: CopyOptions | None = None,
    progress: Progress | None = None,
    census_progress: CensusProgress | None = None,
) -> CopyReport:
    """Copy every user table of `sqlite_path` into `dsn`; see the module docstring of pgferry.migrate.copy.

    Driver errors that escape (a corrupt page met mid-copy, the server gone) become one-line pgferry
    errors; the checkpoints already committed stay, so `--resume` can finish once the cause is fixed."""
    with user_errors(dsn):
        return _copy_database(sqlite_path, dsn, options, progress, census_progress)


def _copy_database(
    sqlite_path: str | Path,
    dsn: str,
    options: CopyOptions | None,
    progress: Progress | None,
    census_progress: CensusProgress | None,
) -> CopyReport:
    options = options or CopyOptions()
    if options.on_error not in ("stop", "reject"):
        raise UsageError("--on-error must be stop or reject")
    started = time.perf_counter()
    phases: dict[str, float] = {}
    with _connect(dsn) as pg:  # first: a wrong DSN fails before the census, not after
        control.ensure_control_schema(pg) if options.resume else None
        phase = control.read_phase(pg, options.schema) if options.resume else None
        if options.resume and phase is None and _schema_has_tables(pg, options.schema):
            raise UsageError(f"nothing to resume: schema {options.schema!r} holds tables that no pgferry copy made")
        if not options.resume and _schema_has_tables(pg, options.schema):
            raise TargetError(
                f"schema {options.schema!r} in the target is not empty; use --resume to finish an "
                "interrupted copy, or --schema to copy into another schema"
            )
        stored = control.read_plan(pg, options.schema) if phase is not None else None
        # A resume renders the rest of the rows with the plan the tables were made from.
        source = open_source(
            sqlite_path,
            options,
            plan=None if stored is None else MigrationPlan.from_dict(stored),
            census_progress=census_progress,
            sample=True,
        )
        phases["snapshot_and_census"] = time.perf_counter() - started
        skipped: list[Skipped] = list(source.plan.skipped)
        if phase is None:
            skipped += _create_tables(pg, source, options)
        checkpoints = control.read_checkpoints(pg, options.schema)
    mark = time.perf_counter()
    copier = _Copier(
        source, dsn, options, progress, checkpoints, recreate=lambda pg, table: _create_table(pg, table, options.schema)
    )
    for cp in checkpoints.values():
        copier.copied[cp.table] = copier.copied.get(cp.table, 0) + cp.rows
    timings = _run_pipeline(source, copier, dsn, options, checkpoints, skipped)
    phases["data"] = timings["data"] - mark
    # Keys, indexes, foreign keys and ANALYZE overlap the data; this is what remained after it.
    phases["after_data"] = time.perf_counter() - timings["data"]
    skipped += copier.skipped
    with _connect(dsn) as pg:
        skipped += _create_views(pg, source, options)
        with pg.transaction():
            control.set_phase(pg, options.schema, str(source.path), "done")
        final = control.read_checkpoints(pg, options.schema)
    results = []
    for table in source.plan.tables:
        rows = sum(cp.rows for (name, _part), cp in final.items() if name == table.source)
        results.append(TableResult(table.source, table.target, rows, copier.rejected.get(table.source, 0)))
    choices = [
        {
            "table": t.source,
            "column": c.source,
            "target": f"{t.target}.{c.target}",
            "type": c.choice.pg_type,
            "reason": c.choice.reason,
            "note": c.choice.note,
        }
        for t in source.plan.tables
        for c in t.columns
    ]
    snapshot = f"one snapshot for all tables ({source.snapshot.how})" + (
        "; rollback-journal mode: writers were blocked while it ran (WAL avoids that)"
        if source.journal_mode.lower() != "wal"
        else ""
    )
    return CopyReport(
        source=str(sqlite_path),
        target=redact(dsn),
        schema=options.schema,
        tables=results,
        seconds=time.perf_counter() - started,
        choices=choices,
        skipped=skipped,
        not_carried=not_carried(source.schema),
        rejected=sum(copier.rejected.values()),
        resumed=options.resume,
        snapshot=snapshot,
        phases=phases,
        plan=source.plan,
        replanned=copier.replans,
    )


__all__ = ["Checkpoint", "CopyOptions", "CopyReport", "copy_database"]
