"""Partition upkeep: the partitions of the tables pgferry partitioned, kept `ahead` past now.

`pgferry partitions ensure` runs this from cron. It finds the range-partitioned tables marked by the
copy's COMMENT (pgferry.pg.partition_ranges.MARKER; tables partitioned otherwise, pg_partman's
included, are left alone), reads their partitions' bounds from the catalog, and creates each missing
partition from the last one through the one `ahead` past the partition holding now.

Rows are never moved out of a DEFAULT partition. When DEFAULT holds rows in a new partition's range,
PostgreSQL refuses to create it; that partition is reported (its range, how many rows, the lowest and
highest) and left out, the others are still created, and the caller exits 1. Moving those rows is the
operator's decision (docs/copy.md shows the transaction). Each partition is created in its own
transaction under a lock_timeout, so a busy table delays the run, not the application.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from pgferry.pg.connect import connect, first_line, statement
from pgferry.pg.partition_ranges import (
    Partition,
    floor,
    following,
    literal,
    marked_unit,
    partition_name,
    partition_sql,
    starts,
)

SHORT_TYPES = {"timestamp with time zone": "timestamptz", "timestamp without time zone": "timestamp", "date": "date"}
BOUNDS = re.compile(r"^FOR VALUES FROM \((.+)\) TO \((.+)\)$")

MARKED = """
SELECT c.oid, n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       obj_description(c.oid, 'pg_class')
FROM pg_partitioned_table pt
JOIN pg_class c ON c.oid = pt.partrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0]
WHERE pt.partstrat = 'r' AND pt.partnatts = 1 AND (%(schema)s::text IS NULL OR n.nspname = %(schema)s)
ORDER BY n.nspname, c.relname
"""
PARTS = """
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = %s ORDER BY c.relname
"""


@dataclass
class Blocked:
    """A partition not created: its DEFAULT partition holds rows in its range (or another refusal)."""

    partition: str
    low: str
    high: str
    rows: int
    lowest: str | None
    highest: str | None
    reason: str


@dataclass
class TableUpkeep:
    schema: str
    table: str
    column: str
    unit: str
    partitions: int  # range partitions after the run
    created: list[str] = field(default_factory=list)
    blocked: list[Blocked] = field(default_factory=list)


@dataclass
class EnsureReport:
    ahead: int
    now: str
    tables: list[TableUpkeep]

    @property
    def complete(self) -> bool:
        return not any(t.blocked for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "complete": self.complete}


def _bound(text: str) -> datetime | None:
    """A bound of pg_get_expr (UTC session) as a naive UTC datetime; None for MINVALUE/MAXVALUE."""
    if not text.startswith("'"):
        return None
    value = datetime.fromisoformat(text.strip("'"))
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _ranges(pg: psycopg.Connection, oid: int) -> tuple[list[tuple[datetime, datetime]], str | None]:
    """The table's range partitions (MINVALUE/MAXVALUE as the extremes) and its DEFAULT partition."""
    ranges, default = [], None
    for name, expr in pg.execute(PARTS, [oid]).fetchall():
        if expr == "DEFAULT":
            default = name
            continue
        found = BOUNDS.match(expr)
        if found:
            low, high = _bound(found.group(1)), _bound(found.group(2))
            ranges.append((low or datetime.min, high or datetime.max))
    return ranges, default


def _value(pg_type: str, start: datetime) -> datetime | date:
    """A bound as the query parameter compared with the column (a UTC session reads it as UTC)."""
    return start.date() if pg_type == "date" else start


def _in_default(
    pg: psycopg.Connection, schema: str, default: str, column: str, pg_type: str, low: datetime, high: datetime
) -> tuple[int, str | None, str | None]:
    query = sql.SQL("SELECT count(*), min({c})::text, max({c})::text FROM {t} WHERE {c} >= %s AND {c} < %s")
    composed = query.format(c=sql.Identifier(column), t=sql.Identifier(schema, default))
    row = pg.execute(composed, [_value(pg_type, low), _value(pg_type, high)]).fetchone()
    assert row is not None
    return int(row[0]), row[1], row[2]


def _ensure_table(
    pg: psycopg.Connection,
    oid: int,
    upkeep: TableUpkeep,
    pg_type: str,
    ahead: int,
    now: datetime,
) -> None:
    unit = upkeep.unit
    ranges, default = _ranges(pg, oid)
    upto = floor(unit, now)
    for _ in range(ahead):
        upto = following(unit, upto)
    ends = [high for _low, high in ranges if high != datetime.max]
    first = min(max(ends), floor(unit, now)) if ends else floor(unit, now)
    for start in starts(unit, first, upto):
        end = following(unit, start)
        if any(low < end and start < high for low, high in ranges):
            continue  # there already, or covered by a partition made otherwise
        name = partition_name(upkeep.table, unit, start)
        part = Partition(name, literal(pg_type, start), literal(pg_type, end))
        try:
            with pg.transaction():
                found = _in_default(pg, upkeep.schema, default, upkeep.column, pg_type, start, end) if default else None
                if found is not None and found[0]:
                    why = (
                        f"{default} holds {found[0]} rows in this range: PostgreSQL cannot make the partition over them"
                    )
                    upkeep.blocked.append(Blocked(name, part.low, part.high, found[0], found[1], found[2], why))
                    continue
                pg.execute(statement(partition_sql(upkeep.schema, upkeep.table, part)))
        except (pgerrors.LockNotAvailable, pgerrors.DuplicateTable, pgerrors.CheckViolation) as exc:
            upkeep.blocked.append(Blocked(name, part.low, part.high, 0, None, None, first_line(exc)))
            continue
        upkeep.created.append(name)
        ranges.append((start, end))
    upkeep.partitions = len(ranges)


def ensure_partitions(
    dsn: str, ahead: int = 3, schema: str | None = None, now: datetime | None = None, lock_timeout_s: float = 5.0
) -> EnsureReport:
    """Create the missing partitions of every table pgferry partitioned (in `schema`, or all), through the
    one `ahead` past the partition holding `now` (UTC). Idempotent: a second run creates nothing."""
    now = now or datetime.now(UTC).replace(tzinfo=None)
    tables = []
    with connect(dsn) as pg:
        pg.execute("SET TimeZone = 'UTC'")  # pg_get_expr renders timestamptz bounds in the session's zone
        # Every read of the catalog's bounds, of DEFAULT and every CREATE waits at most this long for a lock.
        pg.execute("SELECT set_config('lock_timeout', %s, false)", [f"{int(lock_timeout_s * 1000)}ms"])
        for oid, nspname, relname, column, type_name, comment in pg.execute(MARKED, {"schema": schema}).fetchall():
            unit = marked_unit(comment)
            pg_type = SHORT_TYPES.get(type_name)
            if unit is None or pg_type is None:
                continue
            upkeep = TableUpkeep(nspname, relname, column, unit, 0)
            try:
                _ensure_table(pg, oid, upkeep, pg_type, ahead, now)
            except pgerrors.LockNotAvailable as exc:  # reading the bounds opens the partitions
                upkeep.blocked.append(Blocked("", "", "", 0, None, None, f"partitions not read: {first_line(exc)}"))
            tables.append(upkeep)
    return EnsureReport(ahead, now.isoformat(sep=" "), tables)
