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


def _scope_tables(node: exp.Expr, catalog: Catalog) -> dict[str, str]:
    """alias -> table for the tables in the FROM and JOINs of the query block around `node`."""
    block: exp.Expr | None = node.find_ancestor(exp.Select, exp.Update, exp.Delete)
    if block is None:
        return {}
    found: dict[str, str] = {}
    sources = [block.args.get("from_") or block.args.get("from"), *(block.args.get("joins") or [])]
    if isinstance(block, exp.Update | exp.Delete):
        sources.append(block.this)
    for source in sources:
        table = source if isinstance(source, exp.Table) else source.this if source is not None else None
        if isinstance(table, exp.Table) and table.name in catalog.qualified:
            found[table.alias_or_name] = table.name
    return found


def _owner(column: exp.Column, scope: dict[str, str], catalog: Catalog) -> str | None:
    if column.table:
        return scope.get(column.table)
    having = {t for t in scope.values() if any(c.name == column.name for c in catalog.schema.table(t).columns)}
    return next(iter(having)) if len(having) == 1 else None


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
            table = _owner(subject, _scope_tables(node, catalog), catalog)
            if table is None:
                continue
            use = LikeUse(table, subject.name, lowered, "ILIKE" if ilike else "LIKE", pattern, stmt)
            if use not in out:
                out.append(use)
    return out
