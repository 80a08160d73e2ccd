"""Range partitions by time, as values and statements: one month, ISO week or day per partition.

Shared by the copy (pgferry.migrate.partition lays out a table's partitions from its data) and the
upkeep (pgferry.pg.partitions creates the next ones), so both name and bound partitions alike.
Bounds are instants in UTC: a `timestamptz` partition runs from midnight UTC, a `timestamp` one from
midnight of whatever clock the application wrote, a `date` one from its day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from pgferry.sqltext import quote_ident, quote_literal

UNITS = ("month", "week", "day")
TIME_TYPES = ("timestamptz", "timestamp", "date")
# What marks a table pgferry partitioned (its COMMENT); `pgferry partitions ensure` reads the unit from it.
MARKER = "pgferry: range partitions by {unit}; `pgferry partitions ensure` creates the next ones"
MARKER_PATTERN = re.compile(r"^pgferry: range partitions by (month|week|day)\b")
MAX_IDENTIFIER_BYTES = 63


def floor(unit: str, value: datetime) -> datetime:
    """The start of the month, ISO week (Monday) or day holding `value` (naive, UTC)."""
    day = value.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "month":
        return day.replace(day=1)
    if unit == "week":
        return day - timedelta(days=day.weekday())
    return day


def following(unit: str, start: datetime) -> datetime:
    """The start of the partition after the one starting at `start`."""
    if unit == "month":
        return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start + timedelta(days=7 if unit == "week" else 1)


def starts(unit: str, first: datetime, upto: datetime) -> list[datetime]:
    """Partition starts from the one holding `first` through the one holding `upto`."""
    out, start = [], floor(unit, first)
    while start <= upto:
        out.append(start)
        start = following(unit, start)
    return out


def count_between(unit: str, first: datetime, upto: datetime) -> int:
    """How many partitions starts() would return, without listing them (a day unit over centuries)."""
    if upto < first:
        return 0
    low, high = floor(unit, first), floor(unit, upto)
    if unit == "month":
        return (high.year - low.year) * 12 + high.month - low.month + 1
    return (high - low).days // (7 if unit == "week" else 1) + 1


def literal(pg_type: str, start: datetime) -> str:
    """The bound's text for a column of `pg_type` (quoted)."""
    if pg_type == "date":
        return quote_literal(start.strftime("%Y-%m-%d"))
    text = start.strftime("%Y-%m-%d %H:%M:%S")
    return quote_literal(text + "+00" if pg_type == "timestamptz" else text)


def _fitted(parent: str, suffix: str) -> str:
    """`parent` + `suffix`, the parent cut (on a character boundary) so the name fits in 63 bytes."""
    room = MAX_IDENTIFIER_BYTES - len(suffix.encode())
    head = parent.encode()[:room].decode(errors="ignore")
    return head + suffix


def partition_name(parent: str, unit: str, start: datetime) -> str:
    """`events_p2024_01` (month), `events_p2024_01_15` (the Monday of a week, or the day)."""
    stamp = start.strftime("%Y_%m" if unit == "month" else "%Y_%m_%d")
    return _fitted(parent, f"_p{stamp}")


def default_name(parent: str) -> str:
    return _fitted(parent, "_default")


@dataclass(frozen=True)
class Partition:
    name: str
    low: str  # quoted literals of the bounds
    high: str


def partitions(parent: str, unit: str, pg_type: str, first: datetime, upto: datetime) -> list[Partition]:
    """The partitions from the one holding `first` through the one holding `upto`."""
    return [
        Partition(partition_name(parent, unit, s), literal(pg_type, s), literal(pg_type, following(unit, s)))
        for s in starts(unit, first, upto)
    ]


def partition_sql(schema: str, parent: str, partition: Partition) -> str:
    qualified = f"{quote_ident(schema)}.{quote_ident(parent)}"
    return (
        f"CREATE TABLE {quote_ident(schema)}.{quote_ident(partition.name)} PARTITION OF {qualified} "
        f"FOR VALUES FROM ({partition.low}) TO ({partition.high})"
    )


def default_sql(schema: str, parent: str) -> str:
    qualified = f"{quote_ident(schema)}.{quote_ident(parent)}"
    return f"CREATE TABLE {quote_ident(schema)}.{quote_ident(default_name(parent))} PARTITION OF {qualified} DEFAULT"


def marker_sql(schema: str, parent: str, unit: str) -> str:
    return f"COMMENT ON TABLE {quote_ident(schema)}.{quote_ident(parent)} IS {quote_literal(MARKER.format(unit=unit))}"


def marked_unit(comment: str | None) -> str | None:
    """The unit a table's COMMENT says pgferry partitioned it by, or None (not pgferry's)."""
    found = MARKER_PATTERN.match(comment or "")
    return found.group(1) if found else None
