"""Quoting for SQL text that cannot take parameters: identifiers always, literals only in DDL.

SQLite and PostgreSQL quote the same way (double quotes for names, single quotes for strings,
the quote character doubled inside), so one function of each serves both sides. Values a
statement can bind go in as parameters, never through here; literals are for the statements
that cannot bind (CREATE VIEW / TRIGGER bodies, scripts a user runs with the sqlite3 shell).
"""

from __future__ import annotations

__all__ = ["quote_ident", "quote_literal", "sql_literal"]


def quote_ident(name: str) -> str:
    """A quoted identifier: `a"b` -> `"a""b"`."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    """A string literal: `it's` -> `'it''s'`."""
    return "'" + text.replace("'", "''") + "'"


def sql_literal(value: object) -> str:
    """Any scalar as SQL text: NULL, a number as Python writes it, anything else as a string literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return quote_literal(str(value))
