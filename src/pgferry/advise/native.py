"""PostgreSQL-native schema proposals, each with its evidence and its cost, or a refusal with why:

- range partitioning by time for append-only, time-ordered tables (pgferry.advise.partitioning);
- BRIN for columns that follow the physical order (pg_stats correlation) on large tables, its size
  against a btree's (the existing index's, or HypoPG's estimate of one);
- pg_trgm GIN indexes for the workload's substring searches (pgferry.advise.likes);
- a CHECK constraint (or an enum type) for a low-cardinality text column, only where every value is
  known: pg_stats' most common values cover every row of its sample, or, on a small table, a
  count of the distinct values over every row.

Decided from the statistics (pgferry.advise.facts), so ANALYZE first; write counts are since the
statistics were last reset: a fresh copy has inserts only, so run the application for a while.
Text columns the copy made citext (SQLite's COLLATE NOCASE) keep comparing without case: their
trigram index is on the text (`col::text`) and their value list is a CHECK, never an enum.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg

from pgferry.advise.catalog import Catalog
from pgferry.advise.facts import TEXT_TYPES, ColumnFacts, TableFacts, read_facts
from pgferry.advise.hypo import HypoSession
from pgferry.advise.likes import LikeUse, like_uses
from pgferry.advise.partitioning import PartitionRule, PartitionVerdict, TimeReads, judge, time_column
from pgferry.advise.workload import Statement, own
from pgferry.advise.writes import index_write_ms, write_loads
from pgferry.doctor.predicates import analyze_statement
from pgferry.pg.native_sql import brin_sql, check_sql, enum_sql, trigram_sql
from pgferry.sqltext import quote_ident

BRIN_TYPES = frozenset(
    {"smallint", "integer", "bigint", "numeric", "real", "double precision", "date", "timestamp without time zone",
     "timestamp with time zone", "time without time zone"}
)  # fmt: skip
PAGES_PER_RANGE = 128
PAGE = 8192
ROWS_PER_VALUE = 10  # a value list is for a column whose values repeat: on average this many rows each
ENUM_LABEL_BYTES = 63  # PostgreSQL's longest enum label (NAMEDATALEN - 1)


@dataclass(frozen=True)
class NativeOptions:
    min_rows: int = 10_000  # partitioning: smaller tables are not worth it
    partition_rows: int = 1_000_000  # the finest of day / week / month holding this many rows
    append_only: float = 0.05  # updates + deletes at most this share of the inserts
    correlation: float = 0.9  # |pg_stats.correlation| at least, for partitions and BRIN
    brin_min_pages: int = 8 * PAGES_PER_RANGE  # a BRIN range is 128 pages: fewer ranges than 8 is no index
    max_values: int = 20  # a value list longer than this is no enum
    full_count_rows: int = 100_000  # count the distinct values over every row up to this many rows


@dataclass
class NativeProposal:
    kind: str  # "partition", "brin", "trigram", "check"
    table: str
    column: str
    summary: str
    sql: list[str]  # what carries it out (or the copy option that does)
    evidence: dict[str, Any]
    cost: list[str]
    entry: dict[str, Any] = field(default_factory=dict)  # its entry in a plan file (pgferry.migrate.native_plan)


@dataclass(frozen=True)
class NativeRefusal:
    kind: str
    table: str
    column: str | None
    reasons: list[str]


@dataclass
class NativeReport:
    proposals: list[NativeProposal] = field(default_factory=list)
    refused: list[NativeRefusal] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"proposals": [asdict(p) for p in self.proposals], "refused": [asdict(r) for r in self.refused]}


def native_advice(
    pg: psycopg.Connection[Any],
    session: HypoSession,
    catalog: Catalog,
    statements: list[Statement],
    options: NativeOptions | None = None,
) -> NativeReport:
    """The proposals for the database `pg` is connected to, inside `session`'s transaction."""
    opts = options or NativeOptions()
    facts = read_facts(pg, catalog)
    report = NativeReport()
    rule = PartitionRule(opts.min_rows, opts.partition_rows, opts.append_only, opts.correlation)
    reads = _time_reads(statements, catalog)
    for table in facts.values():
        column = time_column(table)
        seen = None if column is None else reads.get((table.name, column.name), TimeReads(0, 0.0, 0, 0.0))
        verdict = judge(table, rule, seen)
        if verdict is None:
            continue
        if verdict.reasons:
            report.refused.append(NativeRefusal("partition", table.name, verdict.column, verdict.reasons))
        else:
            report.proposals.append(_partition(table, verdict))
    partitioned = {p.table: p for p in report.proposals if p.kind == "partition"}
    for table in facts.values():
        for brin in _brins(session, catalog, table, opts):
            if table.name in partitioned:
                brin.cost.append(_brin_per_partition(partitioned[table.name]))
            report.proposals.append(brin)
    report.proposals += _trigrams(pg, catalog, facts, statements)
    for table in facts.values():
        found, refused = _value_lists(pg, catalog, table, opts)
        report.proposals += found
        report.refused += refused
    return report


def _time_reads(statements: list[Statement], catalog: Catalog) -> dict[tuple[str, str], TimeReads]:
    """(table, column) -> the reads of the table and those with a predicate on the column."""
    per: dict[tuple[str, str], list[float]] = {}
    for stmt in statements:
        if stmt.kind not in ("select", "with", "update", "delete"):
            continue
        shape = analyze_statement(stmt.query, catalog.schema, dialect="postgres")
        if shape is None:
            continue
        for use in shape.uses:
            filtered = {p.column for p in use.eq + use.ranges if p.column is not None}
            for column in catalog.schema.table(use.table).columns:
                key = (use.table, column.name)
                counts = per.setdefault(key, [0, 0.0, 0, 0.0])
                counts[0] += 1
                counts[1] += stmt.total_ms
                if column.name in filtered:
                    counts[2] += 1
                    counts[3] += stmt.total_ms
    return {k: TimeReads(int(v[0]), v[1], int(v[2]), v[3]) for k, v in per.items()}


def _partition(table: TableFacts, verdict: PartitionVerdict) -> NativeProposal:
    column, granularity = verdict.column or "", verdict.granularity or "month"
    widen = bool(table.primary_key) and column not in table.primary_key  # a surrogate key: judge() checked it
    option = f"pgferry copy SQLITE_FILE DSN --partition {table.name}={column}:{granularity}"
    return NativeProposal(
        "partition",
        table.name,
        column,
        f"PARTITION BY RANGE ({column}), one partition a {granularity}",
        [option + (" --partition-widen-keys" if widen else "")],
        verdict.evidence,
        verdict.cost,
        {"kind": "partition", "table": table.name, "column": column, "unit": granularity, "widen_keys": widen},
    )


def _brins(session: HypoSession, catalog: Catalog, table: TableFacts, opts: NativeOptions) -> list[NativeProposal]:
    if table.pages < opts.brin_min_pages:
        return []
    out = []
    leading_unique = {i.columns[0] for i in catalog.indexes_of(table.name) if i.unique or i.primary}
    for column in table.columns.values():
        corr = column.correlation
        if column.type not in BRIN_TYPES or corr is None or abs(corr) < opts.correlation:
            continue
        if column.name in leading_unique:
            continue  # its btree enforces a key: it stays
        qualified = catalog.qualified[table.name]
        brin = brin_sql(qualified, column.name)
        existing = [
            i for i in catalog.indexes_of(table.name) if i.columns[:1] == (column.name,) and "btree" in i.definition
        ]
        with session.hypothetical(brin) as name:
            brin_bytes = session.size(name) or _brin_bytes(table.pages)
        if existing:
            btree_bytes, against = existing[0].bytes, f"the existing btree {existing[0].name}"
        else:
            with session.hypothetical(f"CREATE INDEX ON {qualified} ({quote_ident(column.name)})") as name:
                btree_bytes, against = session.size(name) or 0, "a btree (HypoPG's estimate)"
        evidence = {
            "correlation": round(corr, 4),
            "pages": table.pages,
            "rows": table.rows,
            "brin_bytes": brin_bytes,
            "btree_bytes": btree_bytes,
            "against": against,
        }
        cost = [
            "BRIN serves range scans only, and is lossy: it reads whole ranges of 128 pages; it does not serve a "
            "single-row lookup, an ORDER BY or a LIMIT",
            "the correlation decays as rows are updated or deleted and their space reused",
        ]
        if existing:
            cost.append(f"dropping {existing[0].name} is only right if no lookup or ORDER BY needs it")
        out.append(
            NativeProposal(
                "brin",
                table.name,
                column.name,
                f"BRIN on {column.name}: {brin_bytes / 1024:,.0f} KiB against {against}: {btree_bytes / 1024:,.0f} KiB",
                [brin_sql(qualified, column.name, concurrently=True)],
                evidence,
                cost,
                {"kind": "brin", "table": table.name, "column": column.name},
            )
        )
    return out


def _brin_per_partition(partition: NativeProposal) -> str:
    """What a BRIN weighs on a table that is partitioned too: one per partition, at least 3 pages each."""
    count = int(partition.evidence.get("partitions_now", 1)) + 4  # 3 ahead (the copy's default) and DEFAULT
    return (
        f"partitioned as proposed, each of its about {count} partitions gets its own BRIN of at least "
        f"{3 * PAGE // 1024} KiB ({count * 3 * PAGE / 1024:,.0f} KiB in all): on small partitions that is near a "
        "btree's size, and a partition's scan needs no index to skip the others"
    )


def _brin_bytes(pages: int) -> int:
    """A BRIN minmax index: a meta page, the range map, and a few dozen ranges' summaries a page."""
    ranges = math.ceil(pages / PAGES_PER_RANGE)
    return (1 + math.ceil(ranges / 1360) + math.ceil(ranges / 100)) * PAGE


def _trigrams(
    pg: psycopg.Connection[Any], catalog: Catalog, facts: dict[str, TableFacts], statements: list[Statement]
) -> list[NativeProposal]:
    uses = like_uses(statements, catalog)
    installed = pg.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone() is not None
    loads = write_loads(statements, catalog)
    grouped: dict[tuple[str, str, bool], list[LikeUse]] = {}
    for use in uses:
        grouped.setdefault((use.table, use.column, use.lowered), []).append(use)
    out = []
    for (table, column, lowered), found in grouped.items():
        named = re.compile(rf"\b{re.escape(column)}\b")
        if any("gin_trgm_ops" in i.definition and named.search(i.definition) for i in catalog.indexes_of(table)):
            continue
        facts_of = facts[table].columns[column]
        sql = [] if installed else ["CREATE EXTENSION IF NOT EXISTS pg_trgm"]
        sql.append(trigram_sql(catalog.qualified[table], column, _citext(facts_of), lowered, concurrently=True))
        rows = facts[table].rows
        text_bytes = rows * (facts_of.avg_width or 0)
        statements_seen = list({u.statement.fingerprint: u.statement for u in found}.values())
        patterns = sorted({f"{u.operator} {u.pattern}" for u in found})
        evidence = {
            "statements": [
                {"query": s.query, "calls": s.calls, "total_ms": round(s.total_ms, 3), "mean_ms": round(s.mean_ms, 4)}
                for s in statements_seen
            ],
            "patterns": patterns,
            "rows": rows,
            "column_bytes": text_bytes,
            "pg_trgm_installed": installed,
        }
        cost = [
            f"the index is typically one to three times the indexed text ({text_bytes / 1024:,.0f} KiB here: "
            "pg_stats' average width x rows)",
            f"writes that maintain it cost about {index_write_ms(table, {column}, loads, catalog):,.1f} ms of the "
            "workload's write time (GIN defers some work to its pending list)",
            "patterns shorter than three characters still scan",
        ]
        if not installed:
            cost.insert(0, "needs CREATE EXTENSION pg_trgm (a trusted extension: a database owner may create it)")
        if _citext(facts_of):
            cost.append(f"{column} is citext: the queries must compare {column}::text (ILIKE) to use the index")
        if any(u.pattern == "parameter" for u in found):
            cost.append("a LIKE whose whole pattern is a parameter may be a prefix search, which a btree serves")
        out.append(
            NativeProposal(
                "trigram",
                table,
                column,
                f"trigram GIN index on {'lower(' + column + ')' if lowered else column} for "
                f"{len(statements_seen)} statement(s) with {', '.join(patterns)}",
                sql,
                evidence,
                cost,
                {"kind": "trigram", "table": table, "column": column, "lower": lowered},
            )
        )
    return out


def _citext(column: ColumnFacts) -> bool:
    return column.type.split(".")[-1] == "citext"


def _value_lists(
    pg: psycopg.Connection[Any], catalog: Catalog, table: TableFacts, opts: NativeOptions
) -> tuple[list[NativeProposal], list[NativeRefusal]]:
    proposals, refused = [], []
    if table.rows == 0 or table.partitioned:
        return [], []
    for column in table.columns.values():
        if (column.type not in TEXT_TYPES and not _citext(column)) or column.checked:
            continue
        distinct = column.distinct(table.rows)
        filled = table.rows * (1 - column.null_frac)
        if distinct is None or not 2 <= distinct <= opts.max_values or distinct * ROWS_PER_VALUE > filled:
            continue
        covered = sum(column.common_freqs) + column.null_frac
        if len(column.common_values) == distinct and covered >= 0.999:
            values, source = sorted(column.common_values), "pg_stats: its most common values cover every sampled row"
        elif table.rows <= opts.full_count_rows:
            values = _distinct_values(pg, catalog.qualified[table.name], column.name, opts.max_values + 1)
            source = "SELECT DISTINCT over every row"
            if not 2 <= len(values) <= opts.max_values:
                continue
        else:
            refused.append(
                NativeRefusal(
                    "check",
                    table.name,
                    column.name,
                    [
                        f"about {distinct:.0f} values, but pg_stats' most common values cover {covered:.1%} of its "
                        f"sample and {table.rows:,} rows are too many to count them all: the full list is not known"
                    ],
                )
            )
            continue
        if any(len(v.encode()) > ENUM_LABEL_BYTES for v in values):
            continue  # values this long are text, not labels (and an enum label holds 63 bytes at most)
        proposals.append(_value_list(catalog, table, column, values, source))
    return proposals, refused


def _distinct_values(pg: psycopg.Connection[Any], qualified: str, column: str, limit: int) -> list[str]:
    rows = pg.execute(
        f"{own('a value list')}SELECT DISTINCT {quote_ident(column)}::text FROM {qualified}"
        f" WHERE {quote_ident(column)} IS NOT NULL"
        " ORDER BY 1 LIMIT %s",
        [limit],
    ).fetchall()
    return [str(r[0]) for r in rows]


def _value_list(
    catalog: Catalog, table: TableFacts, column: ColumnFacts, values: list[str], source: str
) -> NativeProposal:
    qualified, col = catalog.qualified[table.name], quote_ident(column.name)
    constraint = f"{table.name}_{column.name}_check"
    sql = [
        check_sql(qualified, constraint, column.name, values, not_valid=True),
        f"ALTER TABLE {qualified} VALIDATE CONSTRAINT {quote_ident(constraint)}",
    ]
    cost = [
        "a write of any other value fails: the application may use values these rows do not have yet (read its code)",
        "VALIDATE reads every row, under a lock that lets reads and writes go on",
    ]
    evidence: dict[str, Any] = {"values": values, "source": source, "rows": table.rows, "avg_width": column.avg_width}
    if _citext(column):
        cost.append(
            f"{column.name} is citext (COLLATE NOCASE): a CHECK keeps its case-insensitive compare, an enum would not"
        )
    else:
        enum = quote_ident(f"{table.name}_{column.name}")
        evidence["enum"] = [
            enum_sql(enum, values),
            f"ALTER TABLE {qualified} ALTER COLUMN {col} TYPE {enum} USING {col}::{enum}",
        ]
        cost.append(
            "or an enum type (evidence.enum): 4 bytes a value, but ALTER COLUMN TYPE rewrites the table under an "
            "exclusive lock, a new value needs ALTER TYPE ADD VALUE, and ORDER BY follows the declared order "
            "(the order listed here), not the text's"
        )
    return NativeProposal(
        "check",
        table.name,
        column.name,
        f"{column.name} holds {len(values)} values: CHECK ({column.name} IN (...)) or an enum type",
        sql,
        evidence,
        cost,
        {"kind": "check", "table": table.name, "column": column.name, "values": values},
    )
