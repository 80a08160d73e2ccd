"""What the native-schema proposals are decided from: each table's writes since the statistics were
reset (pg_stat_user_tables), size, keys and the foreign keys that point at it, and each column's
planner statistics (pg_stats: correlation with the physical order, distinct values, most common
values and their shares, the histogram's first and last bound).

Everything is read from the catalogs and statistics views: no table is scanned here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgferry.advise.catalog import Catalog

TIME_TYPES = ("timestamp without time zone", "timestamp with time zone", "date")
TEXT_TYPES = ("text", "character varying", "character", "citext")


@dataclass(frozen=True)
class ColumnFacts:
    name: str
    type: str  # format_type without the modifier: "character varying", "timestamp without time zone"
    not_null: bool
    identity: bool  # GENERATED ... AS IDENTITY or a nextval() default: a surrogate key
    checked: bool  # a CHECK constraint names it
    correlation: float | None  # pg_stats; None before ANALYZE
    n_distinct: float | None  # pg_stats: a count, or minus a fraction of the rows
    null_frac: float
    avg_width: int | None
    common_values: tuple[str, ...]  # pg_stats.most_common_vals as text
    common_freqs: tuple[float, ...]
    span_s: float | None  # time columns: seconds between the histogram's first and last bound
    low: str | None  # time columns: the histogram's first and last bound, as text
    high: str | None

    def distinct(self, rows: int) -> float | None:
        """The estimated number of distinct values among `rows` rows."""
        if self.n_distinct is None:
            return None
        return self.n_distinct if self.n_distinct >= 0 else -self.n_distinct * rows


@dataclass
class TableFacts:
    name: str
    rows: int  # pg_class.reltuples (ANALYZE's count), or n_live_tup before the first ANALYZE
    pages: int  # relpages
    inserts: int  # n_tup_ins since the statistics were reset
    updates: int
    deletes: int
    partitioned: bool  # a partitioned table or a partition already
    primary_key: tuple[str, ...]
    unique_keys: list[tuple[str | None, ...]]  # other unique indexes' keys (None: an expression)
    referenced_by: list[str]  # "table (columns)" of the foreign keys pointing at this table
    columns: dict[str, ColumnFacts] = field(default_factory=dict)
    references: list[tuple[tuple[str, ...], str]] = field(
        default_factory=list
    )  # its own foreign keys: (columns, table)


def read_facts(pg: psycopg.Connection[Any], catalog: Catalog) -> dict[str, TableFacts]:
    """The facts of every table in `catalog`, by name."""
    facts: dict[str, TableFacts] = {}
    for name, oid, rows, pages, ins, upd, dele, partitioned in pg.execute(
        "SELECT c.relname, c.oid,"
        " CASE WHEN c.reltuples >= 0 THEN c.reltuples::bigint ELSE coalesce(s.n_live_tup, 0) END,"
        " c.relpages, coalesce(s.n_tup_ins, 0),"
        " coalesce(s.n_tup_upd, 0), coalesce(s.n_tup_del, 0), c.relkind = 'p' OR c.relispartition"
        " FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = ANY(%s::regclass[])",
        [list(catalog.qualified.values())],
    ).fetchall():
        if name not in catalog.qualified:
            continue
        table = catalog.schema.table(name)
        uniques = [i.columns for i in catalog.indexes_of(name) if i.unique and not i.primary]
        facts[name] = TableFacts(
            name, int(rows), max(int(pages), 0), int(ins), int(upd), int(dele), bool(partitioned),
            table.primary_key, uniques, [],
        )  # fmt: skip
        facts[name].columns = _columns(pg, int(oid))
    for target, source, columns in pg.execute(
        "SELECT t.relname, s.relname, array(SELECT a.attname FROM unnest(f.conkey) k(n)"
        " JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.n)"
        " FROM pg_constraint f JOIN pg_class t ON t.oid = f.confrelid JOIN pg_class s ON s.oid = f.conrelid"
        " WHERE f.contype = 'f' AND (f.confrelid = ANY(%s::regclass[]) OR f.conrelid = ANY(%s::regclass[]))"
        " ORDER BY s.relname, f.conname",
        [list(catalog.qualified.values())] * 2,
    ).fetchall():
        if target in facts:
            facts[target].referenced_by.append(f"{source} ({', '.join(columns)})")
        if source in facts:
            facts[source].references.append((tuple(columns), target))
    return facts


def _columns(pg: psycopg.Connection[Any], oid: int) -> dict[str, ColumnFacts]:
    checked: dict[str, bool] = defaultdict(bool)
    for (name,) in pg.execute(
        "SELECT a.attname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid"
        " AND a.attnum = ANY(c.conkey) WHERE c.contype = 'c' AND c.conrelid = %s",
        [oid],
    ).fetchall():
        checked[name] = True
    out = {}
    for row in pg.execute(
        "SELECT a.attname, format_type(a.atttypid, NULL), a.attnotnull,"
        " a.attidentity <> '' OR coalesce(pg_get_expr(d.adbin, d.adrelid), '') LIKE 'nextval(%%',"
        " s.correlation, s.n_distinct, coalesce(s.null_frac, 0), s.avg_width,"
        " s.most_common_vals::text::text[], s.most_common_freqs::float8[],"
        " CASE WHEN format_type(a.atttypid, NULL) = ANY(%s) THEN s.histogram_bounds::text::text[] END,"
        " CASE WHEN format_type(a.atttypid, NULL) = ANY(%s) THEN extract(epoch FROM"
        " (s.histogram_bounds::text::text[])[cardinality(s.histogram_bounds::text::text[])]::timestamptz"
        " - (s.histogram_bounds::text::text[])[1]::timestamptz) END"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname"
        " AND s.inherited = (c.relkind = 'p')"
        " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        [list(TIME_TYPES), list(TIME_TYPES), oid],
    ).fetchall():
        name, type_, notnull, identity, corr, ndistinct, nullfrac, width, values, freqs, bounds, seconds = row
        low, high = (bounds[0], bounds[-1]) if bounds else (None, None)
        span = None if seconds is None else float(seconds)
        out[name] = ColumnFacts(
            name, str(type_), bool(notnull), bool(identity), checked[name],
            None if corr is None else float(corr), None if ndistinct is None else float(ndistinct),
            float(nullfrac), None if width is None else int(width),
            tuple(values or ()), tuple(float(f) for f in freqs or ()), span, low, high,
        )  # fmt: skip
    return out
