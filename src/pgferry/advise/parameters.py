"""Values for a normalized statement's parameters, to time it for real (`advise --measure`).

pg_stat_statements keeps no values, and a generic plan run with NULLs finds nothing (a lookup by NULL
returns at once, with or without an index). So each `$n` compared with a column (`col = $n`, `col IN
($n)`, a range) gets that column's most frequent value (the heaviest lookup, and the same value every
run); `LIMIT $n` gets 50 and `OFFSET $n` 0. Any other parameter was most likely a constant of the
statement's own (`SELECT 0 AS part`, a JSON key): it gets '0' (HypoSession.run_ms falls back to NULL
where '0' is not a value of its type). The lookups are tagged as advise's own (workload.own), so that
pg_stat_statements' record of them is not read back as the application's workload.
"""

from __future__ import annotations

from typing import Any

import psycopg
import sqlglot
from psycopg import sql
from sqlglot import exp

from pgferry.advise.catalog import Catalog
from pgferry.advise.workload import own
from pgferry.sqlparse import parse_one

LIMIT_VALUE = "50"


def _number(node: exp.Expression) -> int | None:
    if isinstance(node, exp.Parameter) and isinstance(node.this, exp.Literal) and not node.this.is_string:
        return int(node.this.this)
    return None


def _owner(column: exp.Column, aliases: dict[str, str], catalog: Catalog) -> str | None:
    if column.table:
        return aliases.get(column.table)
    having = [t for t in aliases.values() if any(c.name == column.name for c in catalog.schema.table(t).columns)]
    return having[0] if len(set(having)) == 1 else None


def parameter_values(pg: psycopg.Connection[Any], query: str, catalog: Catalog) -> dict[int, str | None]:
    """{n: text of a value} for the parameters of `query` that a column or a LIMIT says something of."""
    try:
        tree = parse_one(query, read="postgres")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return {}
    aliases = {t.alias_or_name: t.name for t in tree.find_all(exp.Table) if t.name in catalog.qualified}
    values: dict[int, str | None] = {}
    for bound in tree.find_all(exp.Limit, exp.Offset):
        number = _number(bound.args.get("expression") or bound.this)
        if number is not None:
            values[number] = LIMIT_VALUE if isinstance(bound, exp.Limit) else "0"
    for node in tree.find_all(exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In):
        sides = [node.this, *(node.expressions if isinstance(node, exp.In) else [node.expression])]
        columns = [s for s in sides if isinstance(s, exp.Column)]
        numbers = [n for n in (_number(s) for s in sides) if n is not None]
        if len(columns) != 1 or not numbers:
            continue
        table = _owner(columns[0], aliases, catalog)
        if table is None:
            continue
        value = _most_frequent(pg, catalog.qualified[table], columns[0].name)
        for number in numbers:
            values.setdefault(number, value)
    return values


def _most_frequent(pg: psycopg.Connection[Any], qualified: str, column: str) -> str | None:
    row = pg.execute(
        sql.SQL(
            own("a parameter value")
            + "SELECT {c}::text FROM {t} WHERE {c} IS NOT NULL GROUP BY {c} ORDER BY count(*) DESC, {c} LIMIT 1"
        ).format(c=sql.Identifier(column), t=sql.SQL(qualified))
    ).fetchone()
    return None if row is None else str(row[0])
