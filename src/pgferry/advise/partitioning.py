"""Range partitioning by time, proposed for append-only, time-ordered tables, or refused with why.

A table qualifies when (1) its rows are inserted and hardly ever updated or deleted
(pg_stat_user_tables), (2) a date or time column follows the physical order (pg_stats correlation
near 1: rows arrive in time order), and (3) PostgreSQL can partition it without changing what its
keys mean: every unique constraint of a partitioned table must include the partition key, so a
surrogate primary key (an identity or sequence column) is widened to (id, time) and stays unique by
its sequence, but another unique key (a username, a natural composite key) would stop being unique,
an identity key that is also a foreign key (one row per parent: SQLite's INTEGER PRIMARY KEY of a
side table) holds the parent's ids, not its sequence's, and a foreign key pointing at the table would
need the time column too: such tables are refused.
The partition size is the finest of day, week and month that holds `partition_rows` rows at the
growth rate (rows per day over the column's span in pg_stats' histogram).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pgferry.advise.facts import TIME_TYPES, ColumnFacts, TableFacts

DAYS = {"day": 1.0, "week": 7.0, "month": 30.44}


@dataclass(frozen=True)
class TimeReads:
    """The workload's reads of one table: how many statements and how much time, and how much of it
    has a predicate on the partition column (the rest visits every partition)."""

    statements: int
    total_ms: float
    pruned_statements: int
    pruned_ms: float


@dataclass(frozen=True)
class PartitionRule:
    min_rows: int
    partition_rows: int
    append_only: float
    correlation: float


@dataclass(frozen=True)
class PartitionVerdict:
    column: str | None
    reasons: list[str]  # empty: proposed
    evidence: dict[str, Any]
    cost: list[str]
    granularity: str | None = None


def time_column(table: TableFacts) -> ColumnFacts | None:
    """The date or time column rows arrive in order of: NOT NULL first, then the highest correlation,
    then the first in the table."""
    found = [c for c in table.columns.values() if c.type in TIME_TYPES and c.correlation is not None and c.span_s]
    if not found:
        return None
    return min(found, key=lambda c: (not c.not_null, -(c.correlation or 0.0)))


def _key(columns: tuple[str | None, ...]) -> str:
    return f"({', '.join(c if c is not None else '<expression>' for c in columns)})"


def judge(table: TableFacts, rule: PartitionRule, reads: TimeReads | None) -> PartitionVerdict | None:
    """The proposal or the refusal for `table`; None when it is no candidate at all (too small, no
    date or time column, partitioned already)."""
    column = time_column(table)
    if table.partitioned or table.rows < rule.min_rows or column is None:
        return None
    name = column.name
    reasons = []
    for key in table.unique_keys:
        if name not in key:
            reasons.append(
                f"unique key {_key(key)} does not include {name}: PostgreSQL requires the partition key in every "
                f"unique constraint of a partitioned table, and {_key((*key, name))} would no longer keep "
                f"{_key(key)} unique"
            )
    pk = table.primary_key
    generated = len(pk) == 1 and table.columns[pk[0]].identity
    parents = [target for columns, target in table.references if generated and columns == pk]
    surrogate = generated and not parents
    if parents and name not in pk:
        reasons.append(
            f"primary key {_key(pk)} is also a foreign key to {', '.join(parents)}: its values come from there, not "
            f"from a sequence, so widened to {_key((*pk, name))} it would no longer keep one row per {_key(pk)}"
        )
    elif pk and name not in pk and not surrogate:
        reasons.append(
            f"primary key {_key(pk)} does not include {name} and is not a generated surrogate key: widened to "
            f"{_key((*pk, name))} it would no longer keep {_key(pk)} unique"
        )
    if table.referenced_by:
        reasons.append(
            f"foreign keys point at it ({'; '.join(table.referenced_by)}): the key they reference would have to "
            f"include {name}, and so would they"
        )
    changes = table.updates + table.deletes
    if changes > rule.append_only * max(table.inserts, 1):
        reasons.append(
            f"not append-only: {table.updates:,} updates and {table.deletes:,} deletes for {table.inserts:,} inserts"
            " since the statistics were reset"
        )
    correlation = column.correlation or 0.0
    if correlation < rule.correlation:
        reasons.append(f"{name} does not follow the physical order (correlation {correlation:.2f})")
    days = (column.span_s or 0.0) / 86400
    per_day = table.rows / days if days > 0 else float(table.rows)
    granularity = next((g for g, d in DAYS.items() if per_day * d >= rule.partition_rows), "month")
    evidence = {
        "rows": table.rows,
        "inserts": table.inserts,
        "updates": table.updates,
        "deletes": table.deletes,
        "column": name,
        "correlation": round(correlation, 4),
        "from": column.low,
        "to": column.high,
        "rows_per_day": round(per_day, 1),
        "rows_per_partition": round(per_day * DAYS[granularity]),  # at the growth rate so far
        "partitions_now": max(1, round(days / DAYS[granularity])),
    }
    if reads is not None:
        evidence["reads"] = {
            "statements": reads.statements,
            "total_ms": round(reads.total_ms, 3),
            "with_column": reads.pruned_statements,
            "with_column_ms": round(reads.pruned_ms, 3),
        }
    if reasons:
        return PartitionVerdict(name, reasons, evidence, [])
    costs = _costs(table, column, surrogate, reads)
    held = round(per_day * DAYS[granularity])
    if held < rule.partition_rows:
        costs.append(
            f"at this growth a {granularity} holds about {held:,} rows, fewer than the {rule.partition_rows:,} a "
            "partition is worth for scans: the gain is in dropping or detaching old partitions (retention)"
        )
    return PartitionVerdict(name, [], evidence, costs, granularity)


def _costs(table: TableFacts, column: ColumnFacts, surrogate: bool, reads: TimeReads | None) -> list[str]:
    name = column.name
    out = []
    if surrogate and name not in table.primary_key:
        pk = table.primary_key
        out.append(
            f"the primary key {_key(pk)} becomes {_key((*pk, name))}: {pk[0]} stays unique by its sequence, no "
            "longer by a constraint"
        )
    if not column.not_null:
        out.append(f"rows with a NULL {name} go to the default partition")
    if reads is not None and reads.statements > reads.pruned_statements:
        unpruned, unpruned_ms = reads.statements - reads.pruned_statements, reads.total_ms - reads.pruned_ms
        out.append(
            f"{unpruned} of the workload's {reads.statements} statements reading it ({unpruned_ms:,.1f}"
            f" of {reads.total_ms:,.1f} ms) have no predicate on {name}: each visits every partition (one index probe"
            " per partition instead of one)"
        )
    out.append(
        "partitions must exist before their rows arrive: create them ahead on a schedule (pgferry's partition upkeep "
        "or pg_partman); rows outside every partition go to the default partition"
    )
    return out
