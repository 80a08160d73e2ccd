"""The workload's hot statements on one table: what must stay fast (and in the core table) after a split.

One streaming pass over the workload groups statements by fingerprint, keeping totals and the
first example with its parameters (to time it later); only statements that name the table are
parsed with sqlglot, to learn which of its columns they use.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

from pgferry.split.sqltext import fold
from pgferry.sqlparse import parse_one
from pgferry.workload import Statement, fingerprint, read_workload

Workload = str | os.PathLike[str] | Iterable[Statement]


@dataclass
class HotStatement:
    fingerprint: str
    sql: str  # the first example
    params: Any
    calls: int = 0
    total_ms: float = 0.0
    columns: set[str] = field(default_factory=set)  # folded columns of the table it uses
    reads: bool = False  # a SELECT
    star: bool = False  # selects every column (SELECT * or table.*)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "sql": self.sql,
            "calls": self.calls,
            "total_ms": round(self.total_ms, 3),
            "columns": sorted(self.columns),
            "select_star": self.star,
        }


def statements_of(workload: Workload) -> Iterable[Statement]:
    if isinstance(workload, str | os.PathLike):
        return read_workload(workload)
    return workload


def hot_statements(workload: Workload, table: str, columns: list[str], limit: int = 10) -> list[HotStatement]:
    """The statements on `table` that take the most total time (calls when untimed), at most `limit`."""
    wanted = fold(table)
    known = {fold(c) for c in columns}
    groups: dict[str, HotStatement] = {}
    skipped: set[str] = set()
    for stmt in statements_of(workload):
        if wanted not in fold(stmt.sql):  # cheap filter before fingerprinting
            continue
        fp = fingerprint(stmt.sql).id
        if fp in skipped:
            continue
        hot = groups.get(fp)
        if hot is None:
            parsed = _analyse(stmt.sql, wanted, known)
            if parsed is None:
                skipped.add(fp)
                continue
            used, reads, star = parsed
            hot = groups[fp] = HotStatement(fp, stmt.sql, stmt.params, columns=used, reads=reads, star=star)
        hot.calls += stmt.many or 1
        hot.total_ms += stmt.ms or 0.0
    ranked = sorted(groups.values(), key=lambda h: (-h.total_ms, -h.calls, h.fingerprint))
    return ranked[:limit]


def _analyse(sql: str, table: str, known: set[str]) -> tuple[set[str], bool, bool] | None:
    """(columns used, is a read, selects all columns) when `sql` names `table`, else None."""
    try:
        tree = parse_one(sql, read="sqlite")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None
    if tree is None or not any(fold(t.name) == table for t in tree.find_all(exp.Table)):
        return None
    used = {fold(c.name) for c in tree.find_all(exp.Column)} & known
    star = any(
        isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
        for select in tree.find_all(exp.Select)
        for e in select.expressions
    )
    return used, isinstance(tree, exp.Select | exp.Union), star
