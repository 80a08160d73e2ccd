"""Indexes that cost writes and buy nothing: duplicates, covered prefixes, flags.

An index is compared with the others on its table key by key: column or expression (normalized by
sqlglot), collation, direction (all keys reversed is the same index read backwards), and the partial
WHERE clause. Indexes SQLite made for a PRIMARY KEY or UNIQUE constraint are never dropped: they
enforce something; a CREATE UNIQUE INDEX is only dropped when another index enforces the same.

Reasons, tried in this order for each index a user created:
- duplicates_primary_key: exactly the primary key's columns (the table b-tree or its key index);
- duplicates_unique: exactly the columns of a UNIQUE constraint, which has its own index;
- exact_duplicate: the same keys as an older index (the oldest of a group is kept);
- prefix_covered: a strict leading prefix of a longer index that is kept, or of a missing index the
  doctor proposes in the same report (`tune` creates it first, then drops the prefix);
- low_selectivity: its whole key takes a handful of values, so a lookup returns a large part of the
  table (counted by skipping through the index itself, one seek per value);
- unused_by_workload (only with a workload): no statement of the workload uses it in its plan.

The last two are never said of an index a foreign key needs (`serves_foreign_key`): a parent's DELETE
finds the child rows through it, whatever its selectivity, and no captured plan shows that lookup;
dropping it would only bring back fk_without_index on the next run.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from pgferry.doctor.stats import KeyPart, Statistics, index_keys
from pgferry.sqlite.schema import Schema, Table
from pgferry.sqlparse import parse_one
from pgferry.sqltext import quote_ident

# A key with at most this many distinct values is a flag at any size; up to LOW_DISTINCT values it is
# one when each value still covers at least MIN_ROWS_PER_VALUE rows.
FLAG_DISTINCT = 2
LOW_DISTINCT = 20
MIN_ROWS_PER_VALUE = 100
MIN_TABLE_ROWS = 10

STRUCTURAL = ("duplicates_primary_key", "duplicates_unique", "exact_duplicate", "prefix_covered")


@dataclass(frozen=True)
class NormKey:
    expr: str  # lower-cased column name, or normalized expression text
    collation: str
    desc: bool


@dataclass
class IndexView:
    """An index (or a table's primary key) as comparable keys."""

    name: str
    table: Table
    keys: tuple[NormKey, ...]
    where: str | None
    unique: bool
    origin: str  # c, u, pk, or "table" for a rowid alias / WITHOUT ROWID primary key
    order: int  # creation order (sqlite_master rowid); lower is older
    sql: str | None

    @property
    def droppable(self) -> bool:
        return self.origin == "c"

    def describe(self) -> str:
        if self.origin in ("pk", "table"):
            return f"PRIMARY KEY ({', '.join(k.expr for k in self.keys)})"
        if self.origin == "u":
            return f"UNIQUE ({', '.join(k.expr for k in self.keys)})"
        return self.name


@dataclass
class Redundant:
    index: IndexView
    reason: str
    covered_by: str  # the index or constraint that makes it redundant, or what makes it weak
    evidence: dict[str, Any]


def _normalize_sql(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        tree = parse_one(text, read="sqlite")
        for ident in tree.find_all(exp.Identifier):
            ident.set("quoted", False)
        return tree.sql(dialect="sqlite").lower()
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return " ".join(text.lower().split())


def _column_collation(table: Table, name: str) -> str:
    try:
        return (table.column(name).collation or "BINARY").upper()
    except KeyError:
        return "BINARY"


def index_views(conn: sqlite3.Connection, schema: Schema) -> dict[str, list[IndexView]]:
    """Every index of every table, plus each table's primary key, as IndexViews (by table)."""
    order = {
        name: rowid for rowid, name in conn.execute("SELECT rowid, name FROM main.sqlite_master WHERE type = 'index'")
    }
    out: dict[str, list[IndexView]] = {}
    for table in schema.tables:
        views = out.setdefault(table.name, [])
        if table.rowid_alias is not None:
            alias = table.rowid_alias
            views.append(
                IndexView("rowid", table, (NormKey(alias.lower(), "BINARY", False),), None, True, "table", 0, None)
            )
        for index in table.indexes:
            keys = tuple(
                NormKey(
                    c.name.lower() if c.name is not None else (_normalize_sql(c.expression) or "?"),
                    (c.collation or "BINARY").upper(),
                    c.desc,
                )
                for c in index.columns
            )
            views.append(
                IndexView(
                    index.name,
                    table,
                    keys,
                    _normalize_sql(index.where),
                    index.unique,
                    index.origin,
                    order.get(index.name, 0),
                    index.sql,
                )
            )
    return out


def serves_foreign_key(view: IndexView, table_views: list[IndexView]) -> bool:
    """The index leads with one of its table's foreign keys and no constraint index (primary key,
    UNIQUE) does: it is how SQLite finds the child rows when a parent row is deleted or rekeyed."""
    if view.where is not None:
        return False
    for fk in view.table.foreign_keys:
        wanted = {c.lower() for c in fk.columns}
        if {k.expr for k in view.keys[: len(wanted)]} != wanted:
            continue
        if not any(
            other is not view
            and not other.droppable
            and other.where is None
            and {k.expr for k in other.keys[: len(wanted)]} == wanted
            for other in table_views
        ):
            return True
    return False


def key_names(view: IndexView) -> list[str]:
    """The index's keys as a finding's `columns`: bare column names as declared, an expression key as
    its SQL text (the shape every finding uses; docs/doctor.md)."""
    index = next((i for i in view.table.indexes if i.name == view.name), None)
    if index is None:
        return [k.expr for k in view.keys]
    return [c.name if c.name is not None else (c.expression or "") for c in index.columns]


def same_keys(a: tuple[NormKey, ...], b: tuple[NormKey, ...]) -> bool:
    """Equal keys, with directions equal throughout or reversed throughout (a backward scan)."""
    if len(a) != len(b) or any(x.expr != y.expr or x.collation != y.collation for x, y in zip(a, b, strict=True)):
        return False
    flips = {x.desc != y.desc for x, y in zip(a, b, strict=True)}
    return len(flips) == 1


def _canonical(keys: tuple[NormKey, ...]) -> tuple[tuple[str, str, bool], ...]:
    """Keys with directions relative to the first key: an index and its reverse read the same."""
    first = keys[0].desc if keys else False
    return tuple((k.expr, k.collation, k.desc != first) for k in keys)


def is_prefix(a: tuple[NormKey, ...], b: tuple[NormKey, ...]) -> bool:
    return len(a) < len(b) and same_keys(a, b[: len(a)])


def find_structural(views: dict[str, list[IndexView]]) -> list[Redundant]:
    """Duplicates of a key, of a constraint, of another index, and covered prefixes, from the schema alone."""
    found: list[Redundant] = []
    for table_views in views.values():
        flagged: dict[str, Redundant] = {}
        keys_of = [v for v in table_views if v.origin in ("pk", "table")]
        uniques = [v for v in table_views if v.origin == "u" and v.where is None]
        created = sorted((v for v in table_views if v.droppable), key=lambda v: (v.order, v.name))
        groups: dict[tuple[tuple[tuple[str, str, bool], ...], str | None], list[IndexView]] = {}
        for view in created:
            pk = next((k for k in keys_of if same_keys(view.keys, k.keys)), None)
            if pk is not None:
                flagged[view.name] = Redundant(view, "duplicates_primary_key", pk.describe(), {})
                continue
            constraint = next((u for u in uniques if same_keys(view.keys, u.keys)), None)
            if constraint is not None:
                flagged[view.name] = Redundant(view, "duplicates_unique", constraint.describe(), {})
                continue
            groups.setdefault((_canonical(view.keys), view.where), []).append(view)
        for group in groups.values():
            keep = next((v for v in group if v.unique), group[0])  # `created` is oldest first
            for view in group:
                if view is not keep:
                    reason = "duplicates_unique" if keep.unique and not view.unique else "exact_duplicate"
                    flagged[view.name] = Redundant(view, reason, keep.name, {})
        for view in created:
            if view.name in flagged or view.unique:
                continue
            longer = [
                other
                for other in table_views
                if other is not view
                and other.name not in flagged
                and other.origin != "table"
                and (other.where is None or other.where == view.where)
                and is_prefix(view.keys, other.keys)
            ]
            if longer:
                best = max(longer, key=lambda o: (len(o.keys), -o.order))
                flagged[view.name] = Redundant(
                    view, "prefix_covered", best.describe(), {"covering_keys": len(best.keys)}
                )
        found.extend(flagged.values())
    return found


def covered_by_proposed(
    views: dict[str, list[IndexView]], proposed: list[tuple[str, str, tuple[KeyPart, ...]]], skip: set[str]
) -> list[Redundant]:
    """Indexes that the proposed ones (table, name, keys) make a leading prefix of: flagged now, so that
    the next run, on the schema with the new indexes, has nothing more to say about them."""
    found = []
    for table_name, name, parts in proposed:
        table_views = views.get(table_name, [])
        if not table_views:
            continue
        table = table_views[0].table
        keys = tuple(
            NormKey(
                p.column.lower() if p.column is not None else (_normalize_sql(p.sql) or "?"),
                (p.collation or (_column_collation(table, p.column) if p.column else "BINARY")).upper(),
                p.desc,
            )
            for p in parts
        )
        for view in table_views:
            if not view.droppable or view.unique or view.where is not None or view.name in skip:
                continue
            if is_prefix(view.keys, keys):
                skip.add(view.name)
                found.append(Redundant(view, "prefix_covered", name, {"covering_keys": len(keys), "proposed": True}))
    return found


def count_distinct(
    conn: sqlite3.Connection, statistics: Statistics, view: IndexView, limit: int = LOW_DISTINCT + 1
) -> tuple[int, str]:
    """Distinct values of an index's whole key, up to `limit`, and how they were counted.

    A plain one-column key is walked value by value through the index itself (`> previous ORDER BY
    ... LIMIT 1`, one seek each); anything else falls back to the statistics.
    """
    table = view.table
    index = next(i for i in table.indexes if i.name == view.name)
    col = index.columns[0]
    same_collation = col.name is not None and (col.collation or "BINARY").upper() == _column_collation(table, col.name)
    if len(index.columns) == 1 and col.name is not None and same_collation and index.where is None:
        t, c, i = quote_ident(table.name), quote_ident(col.name), quote_ident(index.name)
        try:
            count = conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM main.{t} INDEXED BY {i} WHERE {c} IS NULL LIMIT 1)"
            )
            distinct = count.fetchone()[0]
            row = conn.execute(
                f"SELECT {c} FROM main.{t} INDEXED BY {i} WHERE {c} IS NOT NULL ORDER BY {c} LIMIT 1"
            ).fetchone()
            while row is not None and distinct < limit:
                distinct += 1
                row = conn.execute(
                    f"SELECT {c} FROM main.{t} INDEXED BY {i} WHERE {c} > ? ORDER BY {c} LIMIT 1", (row[0],)
                ).fetchone()
            return distinct, "index walk (exact)"
        except sqlite3.Error:
            pass
    figures = statistics.stat1.get((table.name, index.name))
    if figures:
        values = [int(x) for x in figures.split() if x.isdigit()]
        if len(values) > len(index.columns):
            return max(1, round(values[0] / max(values[len(index.columns)], 1))), "sqlite_stat1"
    distinct = statistics.distinct_estimate(table.name, index_keys(table, index.name))
    sample = statistics.sample(table.name)
    return distinct, "sample estimate" if sample.sampled else "full count"


def find_low_selectivity(
    conn: sqlite3.Connection, statistics: Statistics, views: dict[str, list[IndexView]], skip: set[str]
) -> list[Redundant]:
    """Non-unique, non-partial indexes whose whole key takes a handful of values."""
    found = []
    for table_views in views.values():
        for view in table_views:
            if not view.droppable or view.unique or view.where is not None or view.name in skip:
                continue
            if serves_foreign_key(view, table_views):
                continue
            rows = statistics.rows(view.table.name)
            if rows < MIN_TABLE_ROWS:
                continue
            distinct, method = count_distinct(conn, statistics, view)
            if distinct > LOW_DISTINCT:
                continue
            per_value = rows / max(distinct, 1)
            if distinct <= FLAG_DISTINCT or per_value >= MIN_ROWS_PER_VALUE:
                evidence = {
                    "rows": rows,
                    "distinct_values": distinct,
                    "rows_per_value": round(per_value, 1),
                    "counted_by": method,
                }
                what = f"{distinct} distinct value{'s' if distinct != 1 else ''} in {rows:,} rows"
                found.append(Redundant(view, "low_selectivity", what, evidence))
    return found
