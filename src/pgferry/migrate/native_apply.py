"""`copy --native-plan`: a plan file's BRIN and trigram indexes, CHECK value lists and enum types put into the
copy's plan (its partitions go the way of --partition: pgferry.migrate.partition).

Indexes and CHECKs are steps after the data, like the source's own (built in parallel with the other
indexes of their table, reported if PostgreSQL refuses one); pg_trgm joins the plan's extensions. An
enum type is created before the tables and the column gets it, through the same choice an
--into-existing copy makes for a target's enum column (text labels as they are). A value list is
checked against every row of the source first: a value it does not list is an error naming it, before
anything is written, rather than a refused constraint or a refused row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from pgferry.errors import UsageError
from pgferry.migrate.constraint_names import choose_name
from pgferry.migrate.expressions import Untranslatable, translate_default
from pgferry.migrate.native_plan import Resolved
from pgferry.migrate.plan_model import ColumnPlan, MigrationPlan, Step
from pgferry.migrate.types import cast_choice
from pgferry.pg.native_sql import brin_sql, check_sql, enum_sql, trigram_sql
from pgferry.pg.partition_ranges import default_name
from pgferry.sqlite.census import ColumnCensus, TableCensus
from pgferry.sqlite.schema import Column, Schema
from pgferry.sqltext import quote_ident

# (source table, source column, the listed values) -> up to a few values of the column the list lacks.
OutsideReader = Callable[[str, str, tuple[str, ...]], list[str]]

TEXT_TYPES = ("text", "citext", "varchar")
ENUM_LABEL_BYTES = 63  # NAMEDATALEN - 1
# Types with a BRIN minmax operator class.
BRIN_TYPES = (
    "smallint", "integer", "bigint", "numeric", "real", "double precision", "date", "timestamp", "timestamptz",
    "time", "text", "varchar", "uuid", "bytea", "inet",
)  # fmt: skip


def _base(pg_type: str) -> str:
    return pg_type.split("(")[0].strip()


def _taken(plan: MigrationPlan) -> set[str]:
    """Names of the target schema's relations and constraints so far (tables, partitions, indexes, keys)."""
    names = {t.target for t in plan.tables} | {s.name for s in plan.steps}
    for table in plan.tables:
        if table.partition is not None:
            names |= {p.name for p in table.partition.partitions} | {default_name(table.target)}
    return names


def apply_native(
    plan: MigrationPlan,
    schema: Schema,
    censuses: dict[str, TableCensus],
    resolved: list[Resolved],
    outside: OutsideReader | None = None,
    source: str = "--native-plan",
) -> None:
    """Add the entries of `resolved` other than partitions to `plan` (see the module)."""
    taken = _taken(plan)
    for item in resolved:
        entry = item.entry
        if entry.kind == "partition":
            continue
        table = plan.table(item.table)
        position, column = next((i, c) for i, c in enumerate(table.columns) if c.source == item.column)
        where = f"{source}: {entry.kind} on {item.table}.{item.column}"
        qualified = f"{quote_ident(plan.schema)}.{quote_ident(table.target)}"
        pg_type = column.choice.pg_type
        name = choose_name(
            table.target, column.target, {"trigram": "trgm"}.get(entry.kind, entry.kind), taken.__contains__
        )
        taken.add(name)
        if entry.kind == "brin":
            if _base(pg_type) not in BRIN_TYPES:
                raise UsageError(f"{where}: the column becomes {pg_type}, which has no BRIN operator class")
            plan.steps.append(Step("index", item.table, name, brin_sql(qualified, column.target, name)))
            plan.notes.append(f"{source}: BRIN index {name} on {table.target} ({column.target})")
        elif entry.kind == "trigram":
            if _base(pg_type) not in TEXT_TYPES:
                raise UsageError(f"{where}: the column becomes {pg_type}, not text: a trigram index needs text")
            sql = trigram_sql(qualified, column.target, pg_type == "citext", entry.lower, name)
            plan.steps.append(Step("index", item.table, name, sql))
            plan.extensions = sorted({*plan.extensions, "pg_trgm"})
            plan.notes.append(f"{source}: trigram GIN index {name} on {table.target} (pg_trgm created)")
        else:
            _check_values(item, censuses, outside, where)
            if entry.kind == "check":
                plan.steps.append(
                    Step("check", item.table, name, check_sql(qualified, name, column.target, entry.values))
                )
                plan.notes.append(f"{source}: CHECK {name}: {column.target} holds one of {len(entry.values)} values")
            else:
                long = [v for v in entry.values if len(v.encode()) > ENUM_LABEL_BYTES]
                if long:
                    raise UsageError(f"{where}: an enum label holds {ENUM_LABEL_BYTES} bytes at most: {long[0]!r}")
                if pg_type == "citext":
                    raise UsageError(
                        f"{where}: the column is citext (COLLATE NOCASE): an enum would compare with case; "
                        'use kind = "check", which keeps the case-insensitive comparison'
                    )
                source_column = next(c for c in schema.table(item.table).columns if c.name == item.column)
                census = censuses[item.table].column(item.column)
                table.columns[position] = _enum_column(plan, column, source_column, census, item, name)
                plan.notes.append(f"{source}: enum type {name} for {table.target}.{column.target}")


def _check_values(item: Resolved, censuses: dict[str, TableCensus], outside: OutsideReader | None, where: str) -> None:
    census = censuses[item.table].column(item.column)
    if not set(census.storage_classes) <= {"text"}:
        classes = ", ".join(sorted(census.storage_classes))
        raise UsageError(f"{where}: the column holds {classes} values: a value list is for text")
    found = outside(item.table, item.column, item.entry.values) if outside is not None else []
    if found:
        raise UsageError(
            f"{where}: the source holds values the plan does not list: {', '.join(found)}; add them to 'values' "
            "or leave the entry out"
        )


def _enum_column(
    plan: MigrationPlan, column: ColumnPlan, source_column: Column, census: ColumnCensus, item: Resolved, name: str
) -> ColumnPlan:
    """The column with the enum type `name` (created first, in the plan's types) and its DEFAULT cast to it."""
    qualified_type = f"{quote_ident(plan.schema)}.{quote_ident(name)}"
    plan.types.append(enum_sql(qualified_type, item.entry.values))
    reason = f"{len(item.entry.values)} values: the enum type {name} (--native-plan)"
    choice = cast_choice(qualified_type, source_column, census, reason=reason, category="E")
    try:
        default = translate_default(source_column.default, qualified_type)
    except Untranslatable:
        default = column.default  # kept as the plan had it (None: the plan reported it)
    return replace(column, choice=choice, default=default)
