"""Ask SQLite's own planner what an index would do, on a schema-only copy with real statistics.

The copy lives in memory: the database's tables, indexes and views with no rows, and sqlite_stat1
rows that describe the real data (copied, or estimated from a sample; see stats.py). The planner
plans from the statistics alone, so `EXPLAIN QUERY PLAN` on the copy gives the plan the real
database would get, and an index can be tried in microseconds instead of built for minutes.

EXPLAIN QUERY PLAN gives no cost, so `plan_cost` puts a rough one on the plan it returns: rows
visited per loop (from the same statistics), multiplied through nested loops, plus the sorts it
names. The figure is only used to compare plans of one statement under two index sets.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pgferry.doctor.stats import KeyPart, Statistics, index_keys
from pgferry.sqlite.schema import Schema
from pgferry.sqltext import quote_ident

# Unknown sizes (subqueries, CTEs, virtual tables) and the rows a LIMIT with a parameter keeps.
UNKNOWN_ROWS = 100
PARAM_LIMIT = 50
_NAMED = re.compile(r"(?<![\w:]):([A-Za-z_]\w*)|@([A-Za-z_]\w*)|\$([A-Za-z_]\w*)")
_USES = re.compile(r"uses (\d+)")


@dataclass(frozen=True)
class IndexSpec:
    """An index that may or may not exist: table, keys, optional partial WHERE."""

    table: str
    keys: tuple[KeyPart, ...]
    where: str | None = None
    unique: bool = False
    covering: int = 0  # trailing keys there only so the index covers the statement (no lookup, no order)

    def create_sql(self, name: str, *, if_not_exists: bool = False) -> str:
        head = "CREATE UNIQUE INDEX" if self.unique else "CREATE INDEX"
        if if_not_exists:
            head += " IF NOT EXISTS"
        keys = ", ".join(k.render() for k in self.keys)
        tail = f" WHERE {self.where}" if self.where else ""
        return f"{head} {quote_ident(name)} ON {quote_ident(self.table)} ({keys}){tail}"

    @property
    def label(self) -> str:
        keys = ", ".join(k.render() for k in self.keys)
        return f"{self.table}({keys})" + (f" WHERE {self.where}" if self.where else "")

    def suggested_name(self) -> str:
        words = [re.sub(r"\W+", "_", k.column or k.sql).strip("_").lower() or "expr" for k in self.keys]
        return f"idx_{self.table}_" + "_".join(words)


@dataclass
class Access:
    """One line of a plan that reads a table: SCAN or SEARCH, through what, constrained how."""

    op: str  # SCAN or SEARCH
    alias: str
    index: str | None  # index name; "rowid" for the table b-tree; "pk" for a WITHOUT ROWID key
    covering: bool
    automatic: bool
    eq: int
    ranges: int

    def describe(self) -> str:
        how = f" using {self.index}" if self.index else ""
        return f"{self.op} {self.alias}{how}"


@dataclass
class Plan:
    lines: list[str]
    accesses: list[Access]
    cost: float
    sorts: int
    error: str | None = None
    indexes_used: set[str] = field(default_factory=set)


def bind_nulls(conn: sqlite3.Connection, sql: str, params: Any) -> Any:
    """Parameters that let `sql` be prepared: the given ones when they fit, else NULLs of the right shape."""
    try:
        conn.execute("EXPLAIN QUERY PLAN " + sql, params if params is not None else ())
        return params if params is not None else ()
    except sqlite3.ProgrammingError as exc:
        names = [a or b or c for a, b, c in _NAMED.findall(sql)]
        if names:
            return dict.fromkeys(names)
        m = _USES.search(str(exc))
        return [None] * int(m.group(1)) if m else ()


class PlannerCopy:
    """An in-memory database with the source's schema, its statistics, and room to try indexes."""

    def __init__(self, schema: Schema, statistics: Statistics, tables: Sequence[str] | None = None):
        self.schema = schema
        self.statistics = statistics
        self.db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.index_stats: dict[str, list[int]] = {}
        self.table_rows: dict[str, int] = {}
        self.extra: dict[str, IndexSpec] = {}  # indexes added to the copy, by name
        self.dropped: set[str] = set()
        self.problems: list[str] = []
        self._counter = 0
        self._build(tables)

    def _build(self, tables: Sequence[str] | None) -> None:
        db = self.db
        for table in self.schema.tables:
            db.execute(table.sql)
            for index in table.indexes:
                if index.origin == "c" and index.sql:
                    db.execute(index.sql)
        for obj in self.schema.virtual_tables + self.schema.views:
            try:
                db.execute(obj.sql)
            except sqlite3.Error as exc:  # a module this build lacks; statements on it are skipped
                self.problems.append(f"{obj.kind} {obj.name} not reproduced in the planner copy: {exc}")
        db.execute("ANALYZE")  # creates sqlite_stat1 (empty: the tables are)
        db.execute("DELETE FROM sqlite_stat1")
        wanted = [t.name for t in self.schema.tables] if tables is None else list(tables)
        for name in wanted:
            self._load_table_stats(name)
        db.execute("ANALYZE sqlite_schema")

    def _load_table_stats(self, name: str) -> None:
        table = self.schema.table(name)
        stats = self.statistics
        rows = stats.rows(name)
        self.table_rows[name] = rows
        real = stats.stat1
        for index in table.indexes:
            text = real.get((name, index.name))
            if text is not None:
                figures = [int(x) for x in text.split()[: len(index.columns) + 1] if x.isdigit()]
            else:
                figures = stats.key_stat(name, index_keys(table, index.name), index.where)
                if index.unique and index.where is None:
                    figures[-1] = 1
            self._set_stat(name, index.name, figures)
        self.db.execute("INSERT INTO sqlite_stat1 VALUES (?, NULL, ?)", (name, str(max(rows, 1))))

    def _set_stat(self, table: str, index: str, figures: list[int]) -> None:
        self.index_stats[index] = figures
        self.db.execute("DELETE FROM sqlite_stat1 WHERE tbl = ? AND idx = ?", (table, index))
        self.db.execute(
            "INSERT INTO sqlite_stat1 VALUES (?, ?, ?)", (table, index, " ".join(str(max(f, 0)) for f in figures))
        )

    # --- trying indexes ---------------------------------------------------------------------

    def add(self, spec: IndexSpec, *, reload: bool = True) -> str:
        """Create `spec` in the copy with statistics from the real data; returns its name."""
        self._counter += 1
        name = f"pgferry_candidate_{self._counter}"
        self.db.execute(spec.create_sql(name))
        figures = self.statistics.key_stat(spec.table, spec.keys, spec.where)
        if spec.unique and spec.where is None:
            figures[-1] = 1
        self._set_stat(spec.table, name, figures)
        self.extra[name] = spec
        if reload:
            self.db.execute("ANALYZE sqlite_schema")
        return name

    def drop(self, name: str, *, reload: bool = True) -> None:
        """Drop an index from the copy (a candidate, or an existing index to see the plan without it)."""
        self.db.execute(f"DROP INDEX {quote_ident(name)}")
        self.db.execute("DELETE FROM sqlite_stat1 WHERE idx = ?", (name,))
        if name in self.extra:
            del self.extra[name]
        else:
            self.dropped.add(name)
        self.index_stats.pop(name, None)
        if reload:
            self.db.execute("ANALYZE sqlite_schema")

    def restore(self, name: str) -> None:
        """Put back an existing index dropped with `drop`."""
        for table in self.schema.tables:
            for index in table.indexes:
                if index.name == name and index.sql:
                    self.db.execute(index.sql)
                    figures = self.statistics.stat1.get((table.name, name))
                    if figures is not None:
                        values = [int(x) for x in figures.split()[: len(index.columns) + 1] if x.isdigit()]
                    else:
                        values = self.statistics.key_stat(table.name, index_keys(table, name), index.where)
                    self._set_stat(table.name, name, values)
                    self.dropped.discard(name)
                    self.db.execute("ANALYZE sqlite_schema")
                    return
        raise KeyError(name)

    # --- plans --------------------------------------------------------------------------------

    def plan(
        self,
        sql: str,
        params: Any,
        aliases: dict[str, str],
        limit: int | None = None,
        filters: dict[str, Any] | None = None,
    ) -> Plan:
        """EXPLAIN QUERY PLAN on the copy, with a rough cost (see plan_cost)."""
        try:
            bound = bind_nulls(self.db, sql, params)
            rows = self.db.execute("EXPLAIN QUERY PLAN " + sql, bound).fetchall()
        except sqlite3.Error as exc:
            return Plan([], [], math.inf, 0, error=str(exc))
        return plan_cost(rows, aliases, self.table_rows, self.index_stats, limit, filters)

    def close(self) -> None:
        self.db.close()


# --- the cost model ----------------------------------------------------------------------------

_ACCESS = re.compile(r"^(SCAN|SEARCH) (.+?)(?: USING (.*))?$")
_USING_INDEX = re.compile(r"^(?:(COVERING) )?INDEX (.+?)(?: \((.*)\))?$")
_USING_AUTO = re.compile(r"^AUTOMATIC (?:PARTIAL )?(COVERING )?INDEX(?: \((.*)\))?$")
_USING_PK = re.compile(r"^(INTEGER PRIMARY KEY|PRIMARY KEY)(?: \((.*)\))?$")


def _terms(text: str | None) -> tuple[int, int]:
    """(equality terms, range terms) of a constraint list such as `a=? AND b>? AND b<?`."""
    if not text:
        return 0, 0
    eq = ranges = 0
    for term in text.split(" AND "):
        if re.search(r"[<>]", term):
            ranges += 1
        elif "=" in term:
            eq += 1
    return eq, ranges


def parse_access(detail: str) -> Access | None:
    """An Access for a SCAN/SEARCH line of EXPLAIN QUERY PLAN, None for any other line."""
    m = _ACCESS.match(detail)
    if m is None:
        return None
    op, target, using = m.group(1), m.group(2), m.group(3)
    if using is not None:
        using = re.sub(r" (?:LEFT|RIGHT|FULL)-JOIN$", "", using)
    else:
        target = re.sub(r" (?:LEFT|RIGHT|FULL)-JOIN$", "", target)
    if " VIRTUAL TABLE" in target or target.startswith("CONSTANT ROW") or target.startswith("("):
        return Access(op, target.split()[0], None, False, False, 0, 0)
    alias = target
    if using is None:
        return Access(op, alias, None, False, False, 0, 0)
    mi = _USING_INDEX.match(using)
    if mi:
        eq, ranges = _terms(mi.group(3))
        return Access(op, alias, mi.group(2), bool(mi.group(1)), False, eq, ranges)
    ma = _USING_AUTO.match(using)
    if ma:
        eq, ranges = _terms(ma.group(2))
        return Access(op, alias, None, bool(ma.group(1)), True, eq, ranges)
    mp = _USING_PK.match(using)
    if mp:
        eq, ranges = _terms(mp.group(2))
        return Access(op, alias, "rowid" if mp.group(1).startswith("INTEGER") else "pk", True, False, eq, ranges)
    return Access(op, alias, None, False, False, 0, 0)


def _access_cost(
    acc: Access, table_rows: int, index_stats: dict[str, list[int]], pk_stats: list[int] | None
) -> tuple[float, float]:
    """(rows visited, rows produced) for one pass of an access."""
    n = max(table_rows, 1)
    log_n = math.log2(n + 1)
    if acc.automatic:
        return n, max(1.0, 10.0 / (acc.eq + 1))
    if acc.index is None:
        return n, n
    if acc.index == "rowid":
        if acc.eq:
            return 1.0, 1.0
        return n / (4**acc.ranges), n / (4**acc.ranges)
    figures = index_stats.get(acc.index) if acc.index != "pk" else pk_stats
    if acc.op == "SCAN":
        rows = float(figures[0]) if figures else n
        return rows * (1 if acc.covering else 2), rows
    rows = float(n)
    if figures:
        k = min(acc.eq, len(figures) - 1)
        rows = float(figures[k]) if k > 0 else float(figures[0])
    if acc.ranges:
        rows = max(1.0, rows / (4 ** min(acc.ranges, 2)))
    per_row = 1 if acc.covering else 2
    return log_n + rows * per_row, rows


def plan_cost(
    rows: list[tuple[int, int, int, str]],
    aliases: dict[str, str],
    table_rows: dict[str, int],
    index_stats: dict[str, list[int]],
    limit: int | None = None,
    filters: dict[str, int] | None = None,
) -> Plan:
    """Cost a plan: loops nest in the order the plan lists them; a sort costs n log n of its input.

    `limit` (rows the statement keeps) stops the outermost loop early when no sort comes after it and
    the loop's access uses all of its table's predicates (`filters`: terms per alias); a scan that
    still filters rows may read the whole table before it finds `limit` of them.
    """
    children: dict[int, list[tuple[int, str]]] = {}
    for node_id, parent, _unused, detail in rows:
        children.setdefault(parent, []).append((node_id, detail))
    lines = [detail for _i, _p, _u, detail in rows]
    accesses: list[Access] = []
    used: set[str] = set()
    sorts = sum(1 for line in lines if line.startswith("USE TEMP B-TREE"))

    def table_of(alias: str) -> str:
        return aliases.get(alias, alias)

    def walk(parent: int, outer: float, early_limit: int | None) -> tuple[float, float]:
        total = 0.0
        mult = outer
        top_sorted = any(d.startswith("USE TEMP B-TREE") for _i, d in children.get(parent, []))
        first_loop = True
        for node_id, detail in children.get(parent, []):
            acc = parse_access(detail)
            if acc is not None:
                accesses.append(acc)
                if acc.index and acc.index not in ("rowid", "pk"):
                    used.add(acc.index)
                table = table_of(acc.alias)
                if table in table_rows:
                    pk_stats = _pk_figures(table, index_stats)
                    cost, out = _access_cost(acc, table_rows[table], index_stats, pk_stats)
                else:
                    inner, _ = walk(node_id, 1.0, None)
                    cost, out = inner + UNKNOWN_ROWS, float(UNKNOWN_ROWS)
                residual = (filters or {}).get(acc.alias, 0) > acc.eq + acc.ranges
                if first_loop and early_limit and not top_sorted and not residual and out > early_limit:
                    cost *= early_limit / out
                    out = float(early_limit)
                if acc.automatic:
                    total += cost  # the automatic index is built once
                    cost = math.log2(table_rows.get(table, UNKNOWN_ROWS) + 1) + out
                total += mult * cost
                mult *= max(out, 1.0)
                first_loop = False
            elif detail.startswith("USE TEMP B-TREE"):
                total += mult * math.log2(mult + 2) / 4
            elif detail.startswith("CORRELATED"):
                inner, _ = walk(node_id, 1.0, None)
                total += mult * inner
            else:  # subqueries, CTEs, compound parts, MULTI-INDEX OR branches: run once each
                inner, inner_rows = walk(node_id, 1.0, None)
                total += inner
                if detail.startswith("MULTI-INDEX OR"):
                    mult *= max(inner_rows, 1.0)
        return total, mult

    cost, _ = walk(0, 1.0, limit)
    return Plan(lines, accesses, max(cost, 1.0), sorts, indexes_used=used)


def _pk_figures(table: str, index_stats: dict[str, list[int]]) -> list[int] | None:
    prefix = f"sqlite_autoindex_{table}_"
    for name, figures in index_stats.items():
        if name.startswith(prefix):
            return figures
    return None
