"""The workload's `LIKE` / `ILIKE` predicates that a btree cannot serve: substring searches.

Read from pg_stat_statements' texts (sqlglot): a column, or lower() of one, compared with ILIKE
(any pattern: a btree serves no case-insensitive match), or with LIKE when the pattern is a
constant starting with a wildcard or a concatenation that starts with one ('%' || $1 || '%'). A
LIKE with a parameter for its whole pattern could be either: it counts, and says so. A
pg_trgm GIN index (gin_trgm_ops) serves all of them for patterns of three characters or more.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from pgferry.advise.catalog import Catalog
from pgferry.advise.scopes import enclosing_tables, owner
from pgferry.advise.workload import Statement
from pgferry.sqlparse import parse_one


@dataclass(frozen=True)
class LikeUse:
    table: str
    column: str
    lowered: bool  # lower(column) LIKE ...
    operator: str  # "LIKE" or "ILIKE"
    pattern: str  # "leading wildcard", "parameter" (unknown), "any (ILIKE)"
    statement: Statement


def _pattern(node: exp.Expr) -> str | None:
    """How a LIKE pattern starts, or None when it cannot need a trigram index (a prefix)."""
    if isinstance(node, exp.Literal) and node.is_string:
        return "leading wildcard" if node.this.startswith(("%", "_")) else None
    if isinstance(node, exp.DPipe):
        return _pattern(node.this)
    if isinstance(node, exp.Parameter | exp.Placeholder):
        return "parameter"
    return None


def like_uses(statements: list[Statement], catalog: Catalog) -> list[LikeUse]:
    out: list[LikeUse] = []
    for stmt in statements:
        try:
            tree = parse_one(stmt.query, read="postgres")
        except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
            continue
        for node in tree.find_all(exp.Like, exp.ILike):
            ilike = isinstance(node, exp.ILike)
            pattern = "any (ILIKE)" if ilike else _pattern(node.expression)
            if pattern is None:
                continue
            subject, lowered = node.this, False
            if isinstance(subject, exp.Lower):
                subject, lowered = subject.this, True
            if not isinstance(subject, exp.Column):
                continue
            table = owner(subject, enclosing_tables(node, catalog), catalog)
            if table is None:
                continue
            use = LikeUse(table, subject.name, lowered, "ILIKE" if ilike else "LIKE", pattern, stmt)
            if use not in out:
                out.append(use)
    return out
