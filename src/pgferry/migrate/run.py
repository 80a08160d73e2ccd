"""`pgferry copy` end to end: prepare the target, copy in parallel, build constraints, report."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from pgferry.dsn import redact
from pgferry.errors import TargetError, UsageError
from pgferry.migrate import control
from pgferry.migrate.control import Checkpoint
from pgferry.migrate.copy import (
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
)
from pgferry.migrate.expressions import Untranslatable, quote_pg, translate_statement
from pgferry.migrate.plan import Skipped, Step, TablePlan, create_table_sql

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


def _run_step(dsn: str, step: Step) -> Skipped | None:
    with _connect(dsn) as pg:
        try:
            pg.execute(step.sql)
        except ALREADY_DONE:
            return None
        except psycopg.errors.Error as exc:
            if step.required:
                raise TargetError(f"{step.kind} {step.name}: {str(exc).splitlines()[0]}") from None
            return Skipped(step.kind, step.name, f"PostgreSQL refused it: {str(exc).splitlines()[0]}")
    return None


def _run_steps(dsn: str, steps: list[Step], jobs: int) -> list[Skipped]:
    """Run independent steps in parallel: PostgreSQL builds several indexes at once."""
    if not steps:
        return []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return [result for result in pool.map(lambda s: _run_step(dsn, s), steps) if result is not None]


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
    sqlite_path: str | Path, dsn: str, options: CopyOptions | None = None, progress: Progress | None = None
) -> CopyReport:
    """Copy every user table of `sqlite_path` into `dsn`; see the module docstring of pgferry.migrate.copy."""
    options = options or CopyOptions()
    if options.on_error not in ("stop", "reject"):
        raise UsageError("--on-error must be stop or reject")
    started = time.perf_counter()
    phases: dict[str, float] = {}
    source = open_source(sqlite_path, options)
    phases["snapshot_and_census"] = time.perf_counter() - started
    skipped: list[Skipped] = list(source.plan.skipped)
    with _connect(dsn) as pg:
        control.ensure_control_schema(pg) if options.resume else None
        phase = control.read_phase(pg, options.schema) if options.resume else None
        if options.resume and phase is None and _schema_has_tables(pg, options.schema):
            raise UsageError(f"nothing to resume: schema {options.schema!r} holds tables that no pgferry copy made")
        if not options.resume and _schema_has_tables(pg, options.schema):
            raise TargetError(
                f"schema {options.schema!r} in the target is not empty; use --resume to finish an "
                "interrupted copy, or --schema to copy into another schema"
            )
        if phase is None:
            skipped += _create_tables(pg, source, options)
        checkpoints = control.read_checkpoints(pg, options.schema)
    mark = time.perf_counter()
    copier = _Copier(source, dsn, options, progress)
    tables = {t.name: t for t in source.schema.tables}
    todo = [cp for cp in checkpoints.values() if not cp.done and cp.table in tables]
    for cp in checkpoints.values():
        copier.copied[cp.table] = copier.copied.get(cp.table, 0) + cp.rows
    todo.sort(key=lambda cp: -source.plan.table(cp.table).rows)
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        futures = [pool.submit(copier.run_part, tables[cp.table], source.plan.table(cp.table), cp) for cp in todo]
        for future in futures:
            future.result()
    phases["data"] = time.perf_counter() - mark
    source.close()  # the snapshot is no longer needed: let the application's writers and checkpoints go on
    mark = time.perf_counter()
    # Keys, indexes and CHECKs of all tables in parallel, biggest tables first so the workers stay
    # busy; then foreign keys (they need the referenced keys) alongside ANALYZE.
    size = {t.source: t.rows for t in source.plan.tables}
    steps = sorted(source.plan.steps, key=lambda s: -size.get(s.table, 0))
    analyze = [
        Step(
            "analyze",
            t.source,
            t.target,
            sql.SQL("ANALYZE {}").format(sql.Identifier(options.schema, t.target)).as_string(),
        )
        for t in sorted(source.plan.tables, key=lambda t: -t.rows)
    ]
    skipped += _run_steps(dsn, [s for s in steps if s.kind != "foreign_key"], options.jobs)
    phases["constraints_and_indexes"] = time.perf_counter() - mark
    mark = time.perf_counter()
    skipped += _run_steps(dsn, [s for s in steps if s.kind == "foreign_key"] + analyze, options.jobs)
    phases["foreign_keys_and_analyze"] = time.perf_counter() - mark
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
    )


__all__ = ["Checkpoint", "CopyOptions", "CopyReport", "copy_database"]
