"""`pgferry copy` end to end: prepare the target, copy in parallel, build constraints, report.

Shape of a run:
1. Open the source read-only in one snapshot (pgferry.migrate.source): schema, sqlite_sequence, census
   and every chunk are read in it, so all tables come from one consistent instant.
2. Build the plan (types from the census), create the target tables without indexes (ddl).
3. Worker threads copy key ranges (copier): SQLite renders COPY text (render), each chunk commits
   together with its checkpoint (sink).
4. Keys, identity restarts, indexes and CHECKs run as soon as their table is in, then ANALYZE and
   foreign keys (schedule), then views. Anything PostgreSQL refuses is reported, never dropped silently.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from pgferry.dsn import redact
from pgferry.errors import TargetError, UsageError
from pgferry.events import Listener, no_events
from pgferry.migrate import control
from pgferry.migrate.chunked import held_back, held_back_count, key_paged_tables
from pgferry.migrate.control import Checkpoint
from pgferry.migrate.copier import Copier
from pgferry.migrate.ddl import (
    analyze_step,
    create_table,
    create_views,
    not_carried,
    preamble_sql,
    run_steps_in_order,
    schema_has_tables,
)
from pgferry.migrate.errors import user_errors
from pgferry.migrate.existing import empty_tables, existing_target, occupied, refuse_occupied
from pgferry.migrate.fkeys import UnvalidatedKey, add_foreign_key
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.plan import MigrationPlan, Skipped, Step
from pgferry.migrate.report import CopyReport, TableResult
from pgferry.migrate.schedule import Scheduler, Task
from pgferry.migrate.source import SnapshotRead, Source, open_source
from pgferry.migrate.verify import VerifyReport, verify_copy
from pgferry.pg.connect import connect


def _create_tables(pg: psycopg.Connection, source: Source, options: CopyOptions) -> list[Skipped]:
    """Create the schema, extensions and bare tables (no keys, no indexes), the first checkpoints and
    the stored plan, in one transaction: a kill leaves either nothing or a copy that resumes."""
    notes: list[Skipped] = []
    plan = source.plan
    with pg.transaction():
        for statement in preamble_sql(plan):
            pg.execute(statement)
        for table_plan in plan.tables:
            notes += create_table(pg, table_plan, options.schema)
        _start(pg, source, options)
    return notes


def _fill_existing(pg: psycopg.Connection, source: Source, options: CopyOptions) -> list[str]:
    """--into-existing: refuse target tables that hold rows, or (--truncate-existing) empty them, then
    the first checkpoints and the stored plan, in one transaction. Returns the report's lines."""
    with pg.transaction():
        rows = occupied(pg, source.plan)
        if rows and not options.truncate_existing:
            raise refuse_occupied(options.schema, rows)
        notes = empty_tables(pg, source.plan, rows)
        _start(pg, source, options)
    return notes


def _start(pg: psycopg.Connection, source: Source, options: CopyOptions) -> None:
    """The first checkpoints of every table, the phase and the plan (inside the caller's transaction)."""
    control.ensure_control_schema(pg)
    pg.execute(
        sql.SQL("DELETE FROM {}.copy_progress WHERE target_schema = %s").format(sql.Identifier(control.CONTROL_SCHEMA)),
        [options.schema],
    )
    for table in source.schema.tables:
        with source.naming(table):
            parts = source.parts(table, options.jobs, source.plan.table(table.name).rows)
        for part in parts:
            control.save_checkpoint(pg, options.schema, part)
    control.set_phase(pg, options.schema, str(source.path), "copying")
    control.save_plan(pg, options.schema, source.plan.to_dict())


def copy_order(plan: MigrationPlan) -> dict[str, float]:
    """Copy priority per table, lower first: its rows plus the rows of the tables whose foreign keys
    point at it, biggest first. Checking a foreign key scans the child once both tables are in, so a
    small parent of big children (users) copied last leaves those checks for the very end."""
    weight = {t.source: float(t.rows) for t in plan.tables}
    for step in plan.steps:
        if step.kind == "foreign_key" and step.references in weight:
            weight[step.references] += weight.get(step.table, 0.0)
    return {name: -w for name, w in weight.items()}


def _every_nth(steps_of: Callable[[str, tuple[str, ...]], list[Step]], table: str, i: int, n: int) -> list[Step]:
    """Index builds i, i+n, ... of `table` in the plan of the moment (a re-plan may change their SQL)."""
    return steps_of(table, ("index",))[i::n]


def _run_pipeline(
    source: Source,
    copier: Copier,
    dsn: str,
    options: CopyOptions,
    checkpoints: dict[tuple[str, int], Checkpoint],
    skipped: list[Skipped],
    unvalidated: list[UnvalidatedKey],
) -> dict[str, float]:
    """Stream the parts still to copy and build each table's keys, indexes, ANALYZE and foreign keys
    as soon as what they need is there (see pgferry.migrate.schedule). Returns when the data was done.

    Per table: keys (PRIMARY KEY, CHECKs, identity restart: ALTER TABLE takes an exclusive lock, so
    one after the other), then its indexes in parallel (CREATE INDEX locks share), then its UNIQUE
    constraints on their built indexes (ALTER TABLE again) and ANALYZE (it would wait for the index
    builds anyway); a foreign key waits for both of its tables.
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
    for cp in sorted(checkpoints.values(), key=lambda cp: (order.get(cp.table, 0), cp.part)):
        if cp.done or cp.table not in tables:
            continue
        name = f"copy:{cp.table}:{cp.part}"
        plan = source.plan.table(cp.table)
        # --into-existing: a table that references itself is copied part after part, in key order.
        after = set(copies[cp.table]) if plan.serial else set()
        task = Task(
            name, functools.partial(copier.run_part, tables[cp.table], cp), "data", after, order.get(cp.table, 0)
        )
        scheduler.add(task)
        copies[cp.table].add(name)
    for table_plan in source.plan.tables:  # --into-existing: parents' rows first
        for name in copies.get(table_plan.source, set()):
            scheduler.tasks[name].after |= set().union(*(copies.get(p, set()) for p in table_plan.after))

    def release_snapshot() -> None:
        timings["data"] = time.perf_counter()
        source.close()  # let the application's writers and checkpoints go on

    scheduler.add(Task("release_snapshot", release_snapshot, "ddl", set().union(*copies.values()), -1e18))

    lock = threading.Lock()

    def run(steps: Callable[[], list[Step]]) -> Callable[[], None]:
        """A task running `steps()` in order on a pooled connection; what PostgreSQL refuses is reported.
        The steps are looked up when the task runs: a table re-planned during its copy has new ones."""

        def task() -> None:
            found = run_steps_in_order(ddl, steps())
            with lock:
                skipped.extend(found)

        return task

    def steps_of(table: str, kinds: tuple[str, ...], exclude: bool = False) -> list[Step]:
        return [
            s
            for s in source.plan.steps
            if s.table == table and (s.kind in kinds) != exclude and not (source.chunked and held_back(s))
        ]

    def finish(table: str, analyze: Step) -> list[Step]:
        return [*steps_of(table, ("unique",)), analyze]

    for table in source.plan.tables:
        priority = -table.rows
        scheduler.add(
            Task(
                f"keys:{table.source}",
                run(functools.partial(steps_of, table.source, ("index", "unique", "foreign_key"), True)),
                "ddl",
                set(copies.get(table.source, ())),
                priority,
            )
        )
        # One task per index, built in parallel; task i builds indexes i, i+n, ... of the plan of the
        # moment (a re-plan keeps the indexes, it may change their SQL). A partitioned table's indexes are
        # built one after the other: PostgreSQL names each partition's index `{partition}_{columns}_idx`,
        # and two builds of indexes on the same columns at once pick the same name and one fails
        # (pg_class_relname_nsp_index; seen on the scale-1 forum's planted duplicate indexes).
        count = 1 if table.partition else max(1, len(steps_of(table.source, ("index",))))
        indexes = []
        for i in range(count):
            indexes.append(f"index:{table.source}:{i}")
            scheduler.add(
                Task(
                    indexes[-1],
                    run(functools.partial(_every_nth, steps_of, table.source, i, count)),
                    "ddl",
                    {f"keys:{table.source}"},
                    priority,
                )
            )
        step = analyze_step(table, options.schema)
        scheduler.add(
            Task(
                f"done:{table.source}",  # UNIQUE constraints take over their built indexes, then ANALYZE
                run(functools.partial(finish, table.source, step)),
                "ddl",
                {f"keys:{table.source}", *indexes},
                priority,
            )
        )

    def foreign_key(step: Step) -> None:
        """Violated by child rows (a rejected parent, an orphan): added NOT VALID and reported (fkeys)."""
        found = add_foreign_key(ddl, step, options.schema, source.plan.table(step.table).target)
        with lock:
            if isinstance(found, Skipped):
                skipped.append(found)
            elif found is not None:
                unvalidated.append(found)

    foreign_keys = [s for s in source.plan.steps if s.kind == "foreign_key" and not source.chunked]
    for i, step in enumerate(foreign_keys):
        after = {f"done:{step.table}"} | ({f"done:{step.references}"} if step.references in tables else set())
        scheduler.add(Task(f"fk:{i}", functools.partial(foreign_key, step), "ddl", after, -size.get(step.table, 0)))
    try:
        with ddl:
            scheduler.run()
    finally:
        if "data" not in timings:
            source.close()
    return timings


def copy_database(
    sqlite_path: str | Path,
    dsn: str,
    options: CopyOptions | None = None,
    events: Listener = no_events,
    watermark: SnapshotRead | None = None,
    chunked: bool = False,
) -> CopyReport:
    """Copy every user table of `sqlite_path` into `dsn`; see this module's docstring. `watermark` is
    read in the copy's snapshot and returned as CopyReport.watermark (change capture's starting point).
    `chunked` (under change capture only): each chunk read in a read transaction of its own, the
    constraints that span rows held back for catch-up to build (pgferry.migrate.chunked).

    Driver errors that escape (a corrupt page met mid-copy, the server gone) become one-line pgferry
    errors; the checkpoints already committed stay, so `--resume` can finish once the cause is fixed."""
    with user_errors(dsn):
        return _copy_database(sqlite_path, dsn, options, events, watermark, chunked)


def _copy_database(
    sqlite_path: str | Path,
    dsn: str,
    options: CopyOptions | None,
    events: Listener,
    watermark: SnapshotRead | None,
    chunked: bool,
) -> CopyReport:
    options = options or CopyOptions()
    started = time.perf_counter()
    phases: dict[str, float] = {}
    notes: list[str] = []
    with connect(dsn) as pg:  # first: a wrong DSN fails before the census, not after
        control.ensure_control_schema(pg) if options.resume else None
        phase = control.read_phase(pg, options.schema) if options.resume else None
        fresh = not options.into_existing and (not options.resume or phase is None)
        if fresh and schema_has_tables(pg, options.schema):
            if options.resume:
                raise UsageError(f"nothing to resume: schema {options.schema!r} holds tables that no pgferry copy made")
            raise TargetError(
                f"schema {options.schema!r} in the target is not empty; use --resume to finish an "
                "interrupted copy, --into-existing to fill tables an application made, or --schema to "
                "copy into another schema"
            )
        stored = control.read_plan(pg, options.schema) if phase is not None else None
        target = existing_target(pg, options.schema) if options.into_existing and stored is None else None
        # A resume renders the rest of the rows with the plan the tables were made from.
        source = open_source(
            sqlite_path,
            options,
            plan=None if stored is None else MigrationPlan.from_dict(stored),
            events=events,
            sample=True,
            watermark=watermark,
            target=target,
            chunked=chunked and watermark is not None and not options.into_existing,
        )
        phases["snapshot_and_census"] = time.perf_counter() - started
        skipped: list[Skipped] = list(source.plan.skipped)
        if phase is None and source.plan.into_existing:
            notes += _fill_existing(pg, source, options)
        elif phase is None:
            skipped += _create_tables(pg, source, options)
        checkpoints = control.read_checkpoints(pg, options.schema)
    mark = time.perf_counter()
    copier = Copier(
        source, dsn, options, events, checkpoints, recreate=lambda pg, table: create_table(pg, table, options.schema)
    )
    unvalidated: list[UnvalidatedKey] = []
    timings = _run_pipeline(source, copier, dsn, options, checkpoints, skipped, unvalidated)
    phases["data"] = timings["data"] - mark
    # Keys, indexes, foreign keys and ANALYZE overlap the data; this is what remained after it.
    phases["after_data"] = time.perf_counter() - timings["data"]
    skipped += copier.skipped
    with connect(dsn) as pg:
        if not source.plan.into_existing:  # the framework made its own views
            skipped += create_views(pg, source.plan, source.schema)
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
    snapshot = _how_read(source)
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
        watermark=source.watermark,
        unvalidated=unvalidated,
        notes=source.plan.notes + notes,
    )


def _how_read(source: Source) -> str:
    if source.chunked:
        by_key = key_paged_tables(source.schema)
        held = held_back_count(source.plan)
        return (
            "a read transaction per chunk"
            + (f"; paged by primary key, not rowid: {', '.join(by_key)}" if by_key else "")
            + (f"; {held} UNIQUE indexes and foreign keys are built once following has caught up" if held else "")
        )
    return f"one snapshot for all tables ({source.snapshot.how})" + (
        "; rollback-journal mode: writers were blocked while it ran (WAL avoids that)"
        if source.journal_mode.lower() != "wal"
        else ""
    )


def plan_into_existing(sqlite_path: str | Path, dsn: str, options: CopyOptions) -> MigrationPlan:
    """The plan `copy --into-existing` would follow (for --dry-run): nothing is written."""
    with user_errors(dsn), connect(dsn) as pg:
        target = existing_target(pg, options.schema)
        source = open_source(sqlite_path, options, target=target)
        source.close()
        return source.plan


@dataclass
class CopyJob:
    """A copy and the verification that followed it (None when skipped)."""

    copy: CopyReport
    verify: VerifyReport | None

    @property
    def identical(self) -> bool:
        """False when the verify found differences, and when rows were rejected (verify skipped too)."""
        return not self.copy.rejected and (self.verify is None or self.verify.identical)


def copy_and_verify(
    sqlite_path: str | Path,
    dsn: str,
    options: CopyOptions | None = None,
    verify: bool = True,
    events: Listener = no_events,
) -> CopyJob:
    """Copy, then verify with the copy's own plan (it says how each value was rendered and spares a
    second census): what `pgferry copy` and the forum's demo run."""
    options = options or CopyOptions()
    report = copy_database(sqlite_path, dsn, options, events)
    verdict = None
    if verify:
        verdict = verify_copy(
            sqlite_path, dsn, schema=options.schema, jobs=options.jobs, plan=report.plan, events=events
        )
    return CopyJob(report, verdict)


__all__ = ["Checkpoint", "CopyJob", "CopyOptions", "CopyReport", "copy_and_verify", "copy_database"]
