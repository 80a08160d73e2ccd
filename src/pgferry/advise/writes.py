"""The workload's writes, per table: what one more index on that table would make them pay.

A write statement's table, its total time and the columns it sets (None for an INSERT or DELETE,
which maintains every index); an UPDATE of other columns may stay HOT and write no index.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from pgferry.advise.catalog import Catalog
from pgferry.advise.workload import Statement
from pgferry.sqlparse import parse_one


@dataclass(frozen=True)
class WriteLoad:
    table: str
    total_ms: float
    sets: frozenset[str] | None

    def touches(self, columns: set[str]) -> bool:
        """Whether this write maintains an index on `columns` of its table."""
        return self.sets is None or bool(self.sets & columns)


def write_loads(statements: list[Statement], catalog: Catalog) -> list[WriteLoad]:
    out = []
    for stmt in statements:
        if not stmt.writes:
            continue
        try:
            tree = parse_one(stmt.query, read="postgres")
        except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
            continue
        target = tree.find(exp.Table)
        if target is None or target.name not in catalog.qualified:
            continue
        sets = None
        if isinstance(tree, exp.Update):
            sets = frozenset(
                e.this.name for e in tree.expressions if isinstance(e, exp.EQ) and isinstance(e.this, exp.Column)
            )
        out.append(WriteLoad(target.name, stmt.total_ms, sets))
    return out


def index_write_ms(table: str, columns: set[str], loads: list[WriteLoad], catalog: Catalog) -> float:
    """What one more index on `columns` of `table` costs the workload's writes: each write that
    maintains it pays one index's share of its time (heap + each index)."""
    share = 1 / (len(catalog.indexes_of(table)) + 1)
    return sum(load.total_ms * share for load in loads if load.table == table and load.touches(columns))
