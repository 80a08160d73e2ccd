"""`copy --partition TABLE=COLUMN:UNIT`: which tables are made PARTITION BY RANGE, and their partitions.

Checked before anything is written: the table and column exist, the column's chosen type is a time
(timestamptz, timestamp, date), and every PRIMARY KEY and UNIQUE constraint or index of the table holds
the column, as PostgreSQL requires of a partitioned table. A key that does not is refused, naming it,
unless --partition-widen-keys adds the column to it (reported: the key then allows what it refused).

The partitions cover the data: from the one holding the column's lowest value to the one holding its
highest, or `ahead` past the one holding now if that is later, read in the copy's snapshot through the
column's own converter (ISO text, epoch numbers and Julian days alike), then a DEFAULT partition for
the rest: NULLs (a range bound cannot hold them) and anything outside.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pgferry.errors import UsageError
from pgferry.migrate.converters import converter_for
from pgferry.migrate.options import PartitionSpec
from pgferry.migrate.plan_model import ColumnPlan, MigrationPlan, PartitionLayout, TablePlan
from pgferry.pg.partition_ranges import TIME_TYPES, count_between, default_name, floor, following, partitions
from pgferry.sqlite.schema import Schema, Table
from pgferry.sqltext import quote_ident

# More partitions than this is a unit too fine for the data's span (a stray 1970 in a day-partitioned
# table): refused, naming the span, rather than thousands of tables.
MAX_PARTITIONS = 1000


@dataclass(frozen=True)
class Span:
    """A partition column's lowest and highest value (None: it holds none) and its NULLs, read whole."""

    low: datetime | None
    high: datetime | None
    nulls: int


SpanReader = Callable[[str, ColumnPlan], Span]  # (source table, its partition column) -> its Span


def _lacking(table: Table, column: str) -> list[str]:
    """The table's primary key and unique constraints or indexes that do not hold `column`."""
    found = []
    if table.primary_key and column not in table.primary_key:
        found.append(f"PRIMARY KEY ({', '.join(table.primary_key)})")
    for index in table.indexes:
        names = [c.name or c.expression or "" for c in index.columns]
        if index.unique and index.origin != "pk" and column not in names:
            label = f"UNIQUE {index.constraint_name or ''}" if index.origin == "u" else f"UNIQUE INDEX {index.name}"
            found.append(f"{label.strip()} ({', '.join(names)})")
    return found


def partition_keys(schema: Schema, specs: tuple[PartitionSpec, ...], widen: bool) -> dict[str, str]:
    """Table -> partition column of `specs`, checked against the source schema (see the module)."""
    tables = {t.name: t for t in schema.tables}
    keys = {}
    for spec in specs:
        table = tables.get(spec.table)
        if table is None:
            known = ", ".join(sorted(tables)[:20])
            raise UsageError(f"--partition: no table {spec.table!r} in the source (tables: {known})")
        if spec.column not in {c.name for c in table.columns}:
            known = ", ".join(c.name for c in table.columns)
            raise UsageError(f"--partition: table {spec.table!r} has no column {spec.column!r} (columns: {known})")
        lacking = _lacking(table, spec.column)
        if lacking and not (widen or spec.widen):
            raise UsageError(
                f"--partition: table {spec.table!r} cannot be partitioned by {spec.column!r}: PostgreSQL requires "
                f"every primary key and unique constraint of a partitioned table to hold the partition key; these "
                f"lack it: {'; '.join(lacking)}. Add --partition-widen-keys (a --native-plan entry: widen_keys = "
                f"true) to add {spec.column} to them (each then enforces uniqueness together with {spec.column} "
                "only), or partition another table"
            )
        keys[spec.table] = spec.column
    return keys


def _rendered(column: ColumnPlan) -> str:
    """SQLite expression of the text PostgreSQL reads for `column` (the copy's own rendering)."""
    converter = converter_for(column)
    quoted = quote_ident(column.source)
    return quoted if converter.in_python else converter.render(quoted)


def _instant(column: ColumnPlan, text: str) -> datetime:
    """A rendered value as a naive UTC datetime (how partition bounds are computed)."""
    if column.choice.pg_type == "date":
        return datetime.strptime(text[:10], "%Y-%m-%d")
    value = converter_for(column).canonical("timestamptz", text)  # a text without a zone reads as UTC
    if not isinstance(value, datetime):
        raise ValueError(text)
    return value.astimezone(UTC).replace(tzinfo=None)


def read_span(conn: sqlite3.Connection, table: str, column: ColumnPlan) -> Span:
    """The lowest and highest value of `column` as the copy renders it, ordered as instants by SQLite's
    julianday() (zone offsets applied), parsed as verify parses them; and its NULLs (one scan each)."""
    rendered = f"({_rendered(column)})"
    # The copy's renderings mark UTC with '+00', which julianday() reads only as '+00:00'.
    zoned = "CASE WHEN length(r) > 19 AND r GLOB '*[+-][0-9][0-9]' THEN r || ':00' ELSE r END"
    inner = f"SELECT {rendered} AS r, {quote_ident(column.source)} IS NULL AS missing FROM {quote_ident(table)}"
    edges: list[datetime | None] = []
    nulls = 0
    for edge in ("min", "max"):  # a bare column beside min()/max() is read from that row (SQLite)
        row = conn.execute(f"SELECT r, {edge}(julianday({zoned})), sum(missing) FROM ({inner})").fetchone()
        try:
            edges.append(None if row is None or row[1] is None else _instant(column, str(row[0])))
        except ValueError:
            raise UsageError(f"--partition: {table}.{column.source}: {row[0]!r} does not read as a time") from None
        nulls = int(row[2] or 0) if row is not None else 0
    return Span(edges[0], edges[1], nulls)


def lay_out(
    plan: MigrationPlan,
    schema: Schema,
    specs: tuple[PartitionSpec, ...],
    span_of: SpanReader,
    ahead: int,
    widen: bool,
    now: datetime | None = None,
) -> None:
    """Give each table of `specs` its PartitionLayout and the report's notes on it (in `plan`)."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    for spec in specs:
        table = plan.table(spec.table)
        column = next(c for c in table.columns if c.source == spec.column)
        if column.choice.pg_type not in TIME_TYPES:
            raise UsageError(
                f"--partition: {spec.table}.{spec.column} becomes {column.choice.pg_type} ({column.choice.reason}), "
                f"not a date or time type ({', '.join(TIME_TYPES)}); --cast can make it one"
            )
        span = span_of(spec.table, column)
        primary_key = schema.table(spec.table).primary_key
        widened = widen or spec.widen
        if widened and span.nulls and primary_key and spec.column not in primary_key:
            raise UsageError(
                f"--partition: {spec.table}.{spec.column} holds NULLs ({span.nulls} rows), and "
                f"--partition-widen-keys would put it in the primary key, whose columns PostgreSQL makes NOT NULL; "
                "give those rows a time first, or partition a table whose key needs no widening"
            )
        upto = floor(spec.unit, now)
        for _ in range(ahead):
            upto = following(spec.unit, upto)
        first = span.low or now
        upto = max(upto, span.high) if span.high else upto
        count = count_between(spec.unit, first, upto)
        if count > MAX_PARTITIONS:
            raise UsageError(
                f"--partition: {spec.table}.{spec.column} spans {first:%Y-%m-%d} to {upto:%Y-%m-%d}, {count} "
                f"partitions by {spec.unit} (at most {MAX_PARTITIONS}): choose a longer unit"
            )
        table.partition = PartitionLayout(
            column.target, spec.unit, partitions(table.target, spec.unit, column.choice.pg_type, first, upto)
        )
        _check_names(plan, table)
        plan.notes.append(_note(table, spec, span, ahead))
        lacking = _lacking(schema.table(spec.table), spec.column)
        if widened and lacking:
            plan.notes.append(
                f"{spec.table}: {'--partition-widen-keys' if widen else 'widen_keys'} added {spec.column} to "
                f"{'; '.join(lacking)}: each now "
                f"enforces uniqueness of its columns together with {spec.column} only"
            )


def _note(table: TablePlan, spec: PartitionSpec, span: Span, ahead: int) -> str:
    assert table.partition is not None
    parts = table.partition.partitions
    data = f"the data spans {span.low:%Y-%m-%d} to {span.high:%Y-%m-%d}; " if span.low and span.high else "no values; "
    return (
        f"{spec.table}: PARTITION BY RANGE ({spec.column}), {len(parts)} partitions by {spec.unit} "
        f"({parts[0].name} to {parts[-1].name}: {data}{ahead} past the one holding now) and "
        f"{default_name(table.target)} for the rest: rows whose {spec.column} is NULL ({span.nulls} now) "
        "or outside the ranges land there; `pgferry partitions ensure` creates the next partitions"
    )


def _check_names(plan: MigrationPlan, table: TablePlan) -> None:
    """Partition names must not be taken by a table or index of the plan (one namespace in PostgreSQL)."""
    assert table.partition is not None
    taken = {t.target for t in plan.tables if t is not table} | {s.name for s in plan.steps}
    mine = [p.name for p in table.partition.partitions] + [default_name(table.target)]
    clash = sorted(taken.intersection(mine))
    if clash:
        raise UsageError(f"--partition: {table.source}'s partition names are taken: {', '.join(clash)}")
