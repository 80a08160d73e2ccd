"""Translate SQLite expressions (defaults, CHECKs, index keys, partial WHERE, views) to PostgreSQL.

sqlglot does the dialect work; this module adds what a migration needs on top: column and table
names mapped to their PostgreSQL identifiers, 0/1 compared with a column that became boolean
rewritten to false/true, and SQLite's time functions on 'now' turned into PostgreSQL's clock
(a literal 'now'::timestamp in a DEFAULT would be frozen at CREATE time). Anything that does not
translate raises `Untranslatable` with the reason, so the caller can report it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from pgferry.sqlparse import parse_one
from pgferry.sqltext import quote_literal

if TYPE_CHECKING:  # sqlglot loads on the first expression to translate: a plain schema never needs it
    from sqlglot import exp

UTC_NOW = "(now() AT TIME ZONE 'UTC')"
STRFTIME_CODES = {
    "%Y": "YYYY",
    "%m": "MM",
    "%d": "DD",
    "%H": "HH24",
    "%M": "MI",
    "%S": "SS",
    "%f": "SS.MS",
    "%j": "DDD",
    "%%": "%",
}


class Untranslatable(ValueError):
    """An expression PostgreSQL cannot take as it is; the message says why."""


def _strftime_format(fmt: str) -> str:
    out = []
    for piece in re.split(r"(%.)", fmt):
        if piece.startswith("%") and len(piece) == 2:
            if piece not in STRFTIME_CODES:
                raise Untranslatable(f"strftime code {piece} has no to_char equivalent")
            out.append(STRFTIME_CODES[piece])
        elif piece:
            out.append('"' + piece + '"' if re.search(r"[A-Za-z]", piece) else piece)
    return "".join(out)


def now_default(sql: str, pg_type: str) -> str | None:
    """PostgreSQL's clock expression for SQLite's 'current time' defaults, or None if not one."""
    # drop whitespace outside quoted strings, lower-case everything but the strftime format
    pieces = re.split(r"('(?:[^']|'')*')", sql.strip())
    text = "".join(p if p.startswith("'") else re.sub(r"\s+", "", p).lower() for p in pieces)
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    kind = None
    if text.lower() in ("current_timestamp", "datetime('now')"):
        kind = "timestamp"
    elif text.lower() in ("current_date", "date('now')"):
        kind = "date"
    elif text.lower() in ("current_time", "time('now')"):
        kind = "time"
    elif text.lower() in ("strftime('%s','now')", "unixepoch()", "unixepoch('now')"):
        kind = "epoch"
    elif (match := re.fullmatch(r"strftime\('([^']*)','now'\)", text, re.IGNORECASE)) is not None:
        if pg_type in ("timestamp", "timestamptz", "date"):
            kind = "timestamp"  # the column holds instants now: the format no longer matters
        else:
            return f"to_char({UTC_NOW}, {quote_literal(_strftime_format(match.group(1)))})"
    if kind is None:
        return None
    if pg_type in ("timestamptz",):
        return "now()"
    if pg_type == "timestamp":
        return UTC_NOW
    if pg_type == "date":
        return f"{UTC_NOW}::date"
    if kind == "epoch":
        return "extract(epoch FROM now())::bigint"
    formats = {"timestamp": "YYYY-MM-DD HH24:MI:SS", "date": "YYYY-MM-DD", "time": "HH24:MI:SS"}
    return f"to_char({UTC_NOW}, {quote_literal(formats[kind])})"


def translate_default(sql: str | None, pg_type: str) -> str | None:
    """A PostgreSQL DEFAULT expression for SQLite's default `sql`, or None for no default."""
    if sql is None or sql.strip().upper() == "NULL":
        return None
    clock = now_default(sql, pg_type)
    if clock is not None:
        return clock
    text = sql.strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if pg_type == "boolean" and text in ("0", "1"):
        return "true" if text == "1" else "false"
    if re.fullmatch(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?", text):
        return text if pg_type not in ("text",) and not pg_type.startswith("varchar") else quote_literal(text)
    if re.fullmatch(r"'(?:[^']|'')*'", text):
        literal = text[1:-1].replace("''", "'")
        if pg_type == "bytea":
            return quote_literal(literal) + "::bytea"
        return f"{quote_literal(literal)}::{pg_type}"
    if re.fullmatch(r"[xX]'[0-9a-fA-F]*'", text):
        return f"'\\x{text[2:-1]}'::bytea"
    return translate_expression(text, {}, {})


def _rename(node: exp.Expression, columns: Mapping[str, str], tables: Mapping[str, str]) -> exp.Expression:
    from sqlglot import exp

    if isinstance(node, exp.Column):
        name = node.name
        target = columns.get(name, columns.get(name.lower(), name))
        table = node.table
        new = exp.column(exp.to_identifier(target, quoted=True))
        if table:
            new = exp.column(
                exp.to_identifier(target, quoted=True), table=exp.to_identifier(tables.get(table, table), quoted=True)
            )
        return new
    if isinstance(node, exp.Table) and node.name:
        return exp.table_(exp.to_identifier(tables.get(node.name, node.name), quoted=True), alias=node.alias or None)
    return node


def _booleans(node: exp.Expression, booleans: frozenset[str]) -> exp.Expression:
    """Rewrite `flag = 1` / `flag IN (0, 1)` to boolean literals for columns that became boolean."""
    from sqlglot import exp

    if (
        isinstance(node, (exp.EQ, exp.NEQ, exp.Is))
        and isinstance(node.this, exp.Column)
        and node.this.name in booleans
        and isinstance(node.expression, exp.Literal)
        and node.expression.this in ("0", "1")
    ):
        node.set("expression", exp.Boolean(this=node.expression.this == "1"))
    elif isinstance(node, exp.In) and isinstance(node.this, exp.Column) and node.this.name in booleans:
        node.set(
            "expressions",
            [
                exp.Boolean(this=e.this == "1") if isinstance(e, exp.Literal) and e.this in ("0", "1") else e
                for e in node.expressions
            ],
        )
    return node


def translate_expression(
    sql: str, columns: Mapping[str, str], tables: Mapping[str, str], booleans: frozenset[str] = frozenset()
) -> str:
    """Translate one SQLite expression; column names are mapped with `columns` (source -> target)."""
    import sqlglot

    try:
        tree = parse_one(sql, read="sqlite")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError) as exc:
        raise Untranslatable(f"cannot parse {sql!r}: {str(exc).splitlines()[0]}") from None
    return _translate_tree(tree, columns, tables, booleans)


def translate_view(
    sql: str,
    tables: Mapping[str, str],
    columns: Mapping[str, Mapping[str, str]],
    booleans: frozenset[str] = frozenset(),
) -> tuple[str, tuple[str, ...]]:
    """A CREATE VIEW statement's query translated, and its column list (PostgreSQL SQL, empty when it
    has none). The statement is parsed whole: however it is spelled (line breaks, lower case, a column
    list, AS inside the query), the parser finds where the query starts."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = parse_one(sql, read="sqlite")
        query = tree.expression if isinstance(tree, exp.Create) and tree.args.get("kind") == "VIEW" else None
        if query is None:
            raise Untranslatable("not a CREATE VIEW statement the parser can read")
        names = tree.this.expressions if isinstance(tree.this, exp.Schema) else []
        listed = tuple(name.sql(dialect="postgres") for name in names)
        merged: dict[str, str] = {}
        for mapping in columns.values():
            merged.update(mapping)
        return _translate_tree(query, merged, tables, booleans), listed
    except sqlglot.errors.SqlglotError as exc:
        raise Untranslatable(f"cannot parse: {str(exc).splitlines()[0]}") from None


UNSUPPORTED_FUNCTIONS = {"GLOB", "JULIANDAY", "DATETIME", "PRINTF", "UNIXEPOCH", "TOTAL", "IFNULL_"}


def _translate_tree(
    tree: exp.Expr, columns: Mapping[str, str], tables: Mapping[str, str], booleans: frozenset[str]
) -> str:
    from sqlglot import exp

    for node in tree.walk():
        if isinstance(node, exp.Anonymous) and node.name.upper() in UNSUPPORTED_FUNCTIONS:
            raise Untranslatable(f"SQLite function {node.name}() has no PostgreSQL equivalent here")
        if isinstance(node, exp.Glob):
            raise Untranslatable("GLOB has no PostgreSQL equivalent here")
        if isinstance(node, exp.Literal) and node.is_string and node.this.lower() == "now":
            raise Untranslatable("'now' in an expression would be frozen at creation time in PostgreSQL")
    booleans_source = frozenset(booleans)
    tree = tree.transform(lambda n: _booleans(n, booleans_source))
    tree = tree.transform(lambda n: _rename(n, columns, tables))
    return tree.sql(dialect="postgres")
