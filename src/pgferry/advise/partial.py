"""The row filters a statement always applies to a table: where a partial index could skip rows.

pg_stat_statements turns constants into parameters, so what is left to read are the filters with no
value in them: `col IS NULL`, `col IS NOT NULL`, a boolean column alone (`is_active`) or negated
(`NOT is_deleted`), each a top-level AND term of a query block's WHERE naming one table of that block.
A partial index `... WHERE <filter>` serves only statements that repeat the filter, and is smaller.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from pgferry.advise.catalog import Catalog
from pgferry.advise.scopes import block_tables, owner
from pgferry.sqlparse import parse_one
from pgferry.sqltext import quote_ident


@dataclass(frozen=True)
class RowFilter:
    table: str
    column: str
    sql: str  # as it would follow WHERE in CREATE INDEX, the column quoted


def _terms(condition: exp.Expr) -> list[exp.Expr]:
    if isinstance(condition, exp.And):
        return _terms(condition.this) + _terms(condition.expression)
    if isinstance(condition, exp.Paren):
        return _terms(condition.this)
    return [condition]


def _filter(term: exp.Expr, booleans: set[str]) -> tuple[exp.Column, str] | None:
    """(the column, the filter's text with `{}` for it) for a term with no value in it."""
    negated = isinstance(term, exp.Not)
    inner = term.this if negated else term
    if isinstance(inner, exp.Is) and isinstance(inner.this, exp.Column) and isinstance(inner.expression, exp.Null):
        return inner.this, "{} IS NOT NULL" if negated else "{} IS NULL"
    if isinstance(inner, exp.Column) and inner.name in booleans:
        return inner, "NOT {}" if negated else "{}"
    return None


def row_filters(query: str, catalog: Catalog) -> list[RowFilter]:
    try:
        tree = parse_one(query, read="postgres")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return []
    out: list[RowFilter] = []
    for where in tree.find_all(exp.Where):
        block = where.parent
        scope = block_tables(block, catalog)
        for term in _terms(where.this):
            owner = _owner_of(term, scope, catalog)
            if owner is None:
                continue
            table, booleans = owner
            found = _filter(term, booleans)
            if found is None:
                continue
            column, text = found
            item = RowFilter(table, column.name, text.format(quote_ident(column.name)))
            if item not in out:
                out.append(item)
    return out


def _owner_of(term: exp.Expr, scope: dict[str, str], catalog: Catalog) -> tuple[str, set[str]] | None:
    """The table of the block the term's one column belongs to, and that table's boolean columns."""
    columns = list(term.find_all(exp.Column))
    name = owner(columns[0], scope, catalog) if len(columns) == 1 else None
    if name is None:
        return None
    return name, {c.name for c in catalog.schema.table(name).columns if c.declared_type == "boolean"}
