"""The statements a copy runs besides the data: tables, the steps after the data (keys, indexes,
ANALYZE, foreign keys), views; and `--dry-run`, which prints every one of them.

The run and the dry run build their statements with the same functions here, so what the dry run
shows is what the copy runs.
"""

from __future__ import annotations

from dataclasses import replace

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg_pool import ConnectionPool

from pgferry.errors import TargetError
from pgferry.migrate.expressions import Untranslatable, translate_view
from pgferry.migrate.names import identifier
from pgferry.migrate.plan import MigrationPlan, Skipped, Step, TablePlan, create_table_sql
from pgferry.pg.connect import first_line, statement
from pgferry.pg.partition_ranges import default_sql, marker_sql, partition_sql
from pgferry.sqlite.schema import Schema
from pgferry.sqltext import quote_ident
from pgferry.steps import script

# A step that meets one of these already ran in an earlier (killed) run of the same copy.
ALREADY_DONE = (pgerrors.DuplicateTable, pgerrors.DuplicateObject, pgerrors.InvalidTableDefinition)


def schema_has_tables(pg: psycopg.Connection, schema: str) -> bool:
    row = pg.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'v', 'm', 'p')",
        [schema],
    ).fetchone()
    return bool(row and row[0])


def preamble_sql(plan: MigrationPlan) -> list[sql.SQL | sql.Composed]:
    """The schema, the extensions the plan's types and indexes need, its enum types (--native-plan)."""
    statements: list[sql.SQL | sql.Composed] = [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(plan.schema))
    ]
    statements += [
        sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)) for extension in plan.extensions
    ]
    return statements + [statement(text) for text in plan.types]


def default_fallback_sql(table: TablePlan, schema: str) -> tuple[str, list[tuple[str, sql.Composed]]]:
    """When PostgreSQL refuses a default or generated expression of `table`: the table without any,
    then one (column, ALTER TABLE ... SET DEFAULT) per plain default, so only the refused ones are
    left out (and reported). Generated columns are copied as plain values then."""
    plain = replace(table, columns=[replace(c, default=None, generated=None) for c in table.columns])
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table.target))
    defaults = [
        (
            column.source,
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT ").format(target, sql.Identifier(column.target))
            + statement(column.default),
        )
        for column in table.columns
        if column.default is not None and not column.generated
    ]
    return create_table_sql(plain, schema), defaults


def partition_statements(table: TablePlan, schema: str) -> list[str]:
    """After a partitioned table's CREATE TABLE: its partitions, the DEFAULT one, the COMMENT that marks it
    for `pgferry partitions ensure`."""
    layout = table.partition
    if layout is None:
        return []
    statements = [partition_sql(schema, table.target, p) for p in layout.partitions]
    return [*statements, default_sql(schema, table.target), marker_sql(schema, table.target, layout.unit)]


def has_expressions(table: TablePlan) -> bool:
    return any(c.default is not None or c.generated for c in table.columns)


def create_table(pg: psycopg.Connection, table: TablePlan, schema: str) -> list[Skipped]:
    """CREATE TABLE; when PostgreSQL refuses a default or generated expression, the fallback of
    default_fallback_sql."""
    try:
        with pg.transaction():
            pg.execute(statement(create_table_sql(table, schema)))
            _partitions(pg, table, schema)
        return []
    except psycopg.errors.Error as exc:
        refused = first_line(exc)
    notes = [
        Skipped("generated column", f"{table.source}.{c.source}", f"copied as plain values: {refused}")
        for c in table.columns
        if c.generated
    ]
    plain, defaults = default_fallback_sql(table, schema)
    try:
        with pg.transaction():
            pg.execute(statement(plain))
            _partitions(pg, table, schema)
    except psycopg.errors.Error as exc:
        raise TargetError(f"cannot create table {table.target!r}: {first_line(exc)}") from None
    by_source = {c.source: c for c in table.columns}
    for column, alter in defaults:
        try:
            with pg.transaction():
                pg.execute(alter)
        except psycopg.errors.Error as exc:
            notes.append(
                Skipped(
                    "default",
                    f"{table.source}.{column}",
                    f"PostgreSQL refused DEFAULT {by_source[column].default}: {first_line(exc)}",
                )
            )
    table.columns[:] = [replace(c, generated=None) for c in table.columns]  # generated values are now copied
    return notes


def _partitions(pg: psycopg.Connection, table: TablePlan, schema: str) -> None:
    for text in partition_statements(table, schema):
        pg.execute(statement(text))


def analyze_step(table: TablePlan, schema: str) -> Step:
    """ANALYZE, once a table's data, keys and indexes are in: the application's first queries get plans
    made on statistics."""
    statement = sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table.target)).as_string()
    return Step("analyze", table.source, table.target, statement)


def run_step(pool: ConnectionPool, step: Step) -> Skipped | None:
    """Run one step; a refused optional step is reported, a refused required one stops the copy."""
    with pool.connection() as pg:
        try:
            pg.execute(statement(step.sql))
        except ALREADY_DONE:
            return None
        except pgerrors.ObjectNotInPrerequisiteState as exc:
            if step.kind == "unique" and _unique_exists(pg, step.name):
                return None  # an earlier run made the index this constraint, under the same name
            return refused_step(step, exc)
        except psycopg.errors.Error as exc:
            return refused_step(step, exc)
    return None


def refused_step(step: Step, exc: psycopg.Error) -> Skipped:
    """What PostgreSQL's refusal of `step` is reported as; a required step stops the copy instead."""
    why = first_line(exc) + (f" ({exc.diag.message_detail})" if exc.diag.message_detail else "")
    if step.required:
        raise TargetError(f"{step.kind} {step.name}: {why}") from None
    return Skipped(step.kind, step.name, f"PostgreSQL refused it: {why}")


def _unique_exists(pg: psycopg.Connection, name: str) -> bool:
    row = pg.execute(
        "SELECT EXISTS (SELECT FROM pg_constraint WHERE conname = %s AND contype = 'u')", [name]
    ).fetchone()
    return bool(row and row[0])


def run_steps_in_order(pool: ConnectionPool, steps: list[Step]) -> list[Skipped]:
    return [result for result in (run_step(pool, step) for step in steps) if result is not None]


def view_steps(plan: MigrationPlan, schema: Schema) -> tuple[list[Step], list[Skipped]]:
    """CREATE VIEW for every view, its query translated to PostgreSQL (names as the plan renamed them);
    the views that do not translate, with the reason. A view step runs with search_path set to the
    target schema (see create_views)."""
    steps, skipped = [], []
    views = {view.name: plan.views.get(view.name) or identifier(view.name) for view in schema.views}
    tables = {**views, **{t.source: t.target for t in plan.tables}}
    columns = {t.source: {c.source: c.target for c in t.columns} for t in plan.tables}
    booleans = frozenset(c.source for t in plan.tables for c in t.columns if c.choice.pg_type == "boolean")
    for view in schema.views:
        try:
            query, listed = translate_view(view.sql, tables, columns, booleans)
        except Untranslatable as exc:
            skipped.append(Skipped("view", view.name, str(exc)))
            continue
        names = f" ({', '.join(listed)})" if listed else ""
        statement = (
            f"CREATE OR REPLACE VIEW {quote_ident(plan.schema)}.{quote_ident(views[view.name])}{names} AS {query}"
        )
        steps.append(Step("view", "", view.name, statement))
    return steps, skipped


def create_views(pg: psycopg.Connection, plan: MigrationPlan, schema: Schema) -> list[Skipped]:
    """Create the views, each in its own transaction; what PostgreSQL refuses is reported. A view on
    a view not made yet is tried again once others are in (SQLite lists views by name, not by need)."""
    steps, skipped = view_steps(plan, schema)
    refused: list[tuple[Step, str]] = []
    while steps:
        refused = []
        for step in steps:
            try:
                with pg.transaction():
                    pg.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(plan.schema)))
                    pg.execute(statement(step.sql))
            except psycopg.errors.Error as exc:
                refused.append((step, first_line(exc)))
        if len(refused) == len(steps):
            break
        steps = [step for step, _why in refused]
    skipped += [Skipped("view", step.name, f"PostgreSQL refused it: {why}") for step, why in refused]
    return skipped


def not_carried(schema: Schema) -> list[Skipped]:
    """Objects the copy does not recreate, each with the reason."""
    items = [
        Skipped(
            "trigger", t.name, "SQLite trigger bodies are not translated; recreate it as a PostgreSQL trigger function"
        )
        for t in schema.triggers
    ]
    items += [
        Skipped(
            "virtual table",
            v.name,
            "virtual tables (FTS, R*Tree, ...) have no PostgreSQL "
            "equivalent; use PostgreSQL full-text search or an extension",
        )
        for v in schema.virtual_tables
    ]
    return items


def dry_run_sql(plan: MigrationPlan, schema: Schema) -> str:
    """Every statement a copy would run, in order, with a comment on every type choice, the fallback
    for refused defaults, and every object not carried."""
    out = [f"-- pgferry copy plan: {len(plan.tables)} tables into schema {plan.schema}"]
    if plan.framework:
        out.append(f"-- framework: {plan.framework['name']} ({plan.framework['evidence']}): the types it uses")
    out += [f"-- {note}" for note in plan.notes]  # --partition: the layouts and widened keys
    out += [composed.as_string() + ";" for composed in preamble_sql(plan)]
    for rename in plan.renamed:  # names PostgreSQL gets other than the source's (63 bytes, system names)
        owner = f" of table {rename.table!r}" if rename.table else ""  # repr: one line, whatever the name holds
        why = f": {rename.reason}" if rename.reason else ""
        out.append(f"-- renamed {rename.kind}{owner} {rename.source!r} -> {rename.target!r}{why}")
    for table in plan.tables:
        out.append(f"\n-- {table.source}: {table.rows} rows")
        for column in table.columns:
            note = f"  [{column.choice.note}]" if column.choice.note else ""
            out.append(f"--   {column.target} {column.choice.pg_type}: {column.choice.reason}{note}")
        out.append(create_table_sql(table, plan.schema) + ";")
        out += [text + ";" for text in partition_statements(table, plan.schema)]
        if has_expressions(table):
            _plain, defaults = default_fallback_sql(table, plan.schema)
            out.append("-- if PostgreSQL refuses a default or generated expression above: the same table without")
            out.append("-- them (generated columns then hold copied values), then each default on its own (a refused")
            out.append("-- one is left out and reported):")
            out += [f"--   {alter.as_string()};" for _column, alter in defaults]
    out.append(
        "\n-- after the data (per table: keys and checks, then indexes, then UNIQUE constraints on their"
        " indexes, then ANALYZE; foreign keys last):"
    )
    by_table: dict[str, list[Step]] = {}
    for step in plan.steps:
        by_table.setdefault(step.table, []).append(step)
    for table in plan.tables:
        mine = by_table.get(table.source, [])
        ordered = [s for s in mine if s.kind not in ("index", "unique", "foreign_key")]
        ordered += [s for s in mine if s.kind == "index"] + [s for s in mine if s.kind == "unique"]
        out.append(script([*ordered, analyze_step(table, plan.schema)]))
    out.append(script(s for s in plan.steps if s.kind == "foreign_key"))
    views, untranslated = view_steps(plan, schema)
    if views:
        out.append(f"\n-- views (run with search_path {plan.schema}):")
        out.append(script(views))
    for item in plan.skipped + untranslated + not_carried(schema):
        out.append(f"-- NOT CARRIED {item.kind} {item.name}: {item.reason}")
    return "\n".join(out) + "\n"
