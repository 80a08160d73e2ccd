"""Which reads to time around a split: the workload's hot reads on the table, or representative ones.

With a workload, each hot SELECT on the table is timed as captured (first example's parameters)
on the old table, then through the view (unchanged code) and rewritten onto the core table (code
that moved to the new schema) when it uses only core columns. Without one: a key lookup and a
scan of the core columns (what the narrower core table is for) and a whole-row key lookup through
the view (what unchanged code pays for the joins).
"""

from __future__ import annotations

import sqlite3

import sqlglot
from sqlglot import exp

from pgferry.split.hot import HotStatement
from pgferry.split.layout import Layout
from pgferry.split.measure import Read, sample_keys
from pgferry.split.sqltext import fold, mentioned_names
from pgferry.sqlparse import parse_one
from pgferry.sqltext import quote_ident as q

MISSING = b"\x00pgferry: no row has this value\x00"


def onto_core(sql: str, table: str, core: str) -> str | None:
    """`sql` with the table replaced by the core table (aliases kept), or None if it cannot be parsed."""
    try:
        tree = parse_one(sql, read="sqlite")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None
    for node in tree.find_all(exp.Table):
        if fold(node.name) == fold(table):
            if not node.alias:
                node.set("alias", exp.TableAlias(this=exp.to_identifier(node.name, quoted=True)))
            node.set("this", exp.to_identifier(core, quoted=True))
    return tree.sql(dialect="sqlite")


def workload_reads(layout: Layout, hot: list[HotStatement]) -> list[Read]:
    core = {fold(c) for c in layout.plan.core_columns}
    reads = []
    for statement in hot:
        if not statement.reads:
            continue
        params = statement.params if statement.params is not None else ()
        in_core = not statement.star and statement.columns <= core
        reads.append(
            Read(
                label=f"hot read {statement.fingerprint} ({statement.calls} calls)",
                sql_before=statement.sql,
                sql_core=onto_core(statement.sql, layout.table.name, layout.plan.core_table) if in_core else None,
                params=[params],
            )
        )
    return reads


def representative_reads(conn: sqlite3.Connection, layout: Layout) -> list[Read]:
    table, core = q(layout.table.name), q(layout.plan.core_table)
    cols = ", ".join(q(c) for c in layout.core_columns)
    match = " AND ".join(f"{q(k)} = ?" for k in layout.key)
    keys = sample_keys(conn, layout.table.name, layout.key)
    indexed = {fold(n) for i in layout.table.indexes for n in i.column_names if n}
    indexed |= {n for i in layout.table.indexes if i.sql for n in mentioned_names(i.sql.split("(", 1)[-1])}
    plain = [c for c in layout.core_columns if fold(c) not in indexed]
    # A column no index holds and a value no row has: the filter reads every row of the table. Not
    # an aggregate, so through the view SQLite drops the unused joins as it would for real queries.
    scan_col = q(plain[-1]) if plain else q(layout.core_columns[-1])
    scan_from = (table, core) if plain else (f"{table} NOT INDEXED", f"{core} NOT INDEXED")
    key_cols = ", ".join(q(k) for k in layout.key)
    return [
        Read(
            f"key lookup of the core columns ({len(keys)} keys)",
            f"SELECT {cols} FROM {table} WHERE {match}",
            f"SELECT {cols} FROM {core} WHERE {match}",
            list(keys),
        ),
        Read(
            "scan filtering on a core column",
            f"SELECT {key_cols} FROM {scan_from[0]} WHERE {scan_col} = ?",
            f"SELECT {key_cols} FROM {scan_from[1]} WHERE {scan_col} = ?",
            [(MISSING,)],
        ),
        Read(
            f"whole row by key, as unchanged code reads it ({len(keys)} keys)",
            f"SELECT * FROM {table} WHERE {match}",
            None,
            list(keys),
        ),
    ]
