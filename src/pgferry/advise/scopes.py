"""Which table a column of a statement belongs to: the tables of its own query block (FROM, JOINs,
an UPDATE's or DELETE's target), by alias, or the one table of the block that has such a column."""

from __future__ import annotations

from sqlglot import exp

from pgferry.advise.catalog import Catalog


def block_tables(block: exp.Expr | None, catalog: Catalog) -> dict[str, str]:
    """alias -> table for the catalog's tables `block` reads directly (not through subqueries)."""
    if block is None:
        return {}
    sources = [block.args.get("from_") or block.args.get("from"), *(block.args.get("joins") or [])]
    if isinstance(block, exp.Update | exp.Delete):
        sources.append(block.this)
    found: dict[str, str] = {}
    for source in sources:
        table = source if isinstance(source, exp.Table) else getattr(source, "this", None)
        if isinstance(table, exp.Table) and table.name in catalog.qualified:
            found[table.alias_or_name] = table.name
    return found


def enclosing_tables(node: exp.Expr, catalog: Catalog) -> dict[str, str]:
    """block_tables of the query block around `node`."""
    return block_tables(node.find_ancestor(exp.Select, exp.Update, exp.Delete), catalog)


def owner(column: exp.Column, scope: dict[str, str], catalog: Catalog) -> str | None:
    if column.table:
        return scope.get(column.table)
    having = {t for t in scope.values() if any(c.name == column.name for c in catalog.schema.table(t).columns)}
    return next(iter(having)) if len(having) == 1 else None
