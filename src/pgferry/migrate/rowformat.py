"""SQLite expressions that render each row as one line of PostgreSQL's COPY text format.

Formatting in SQLite's C string functions instead of Python is what makes the copy fast: Python
only moves finished lines from a cursor to the COPY stream. Each converter picks a rendering that
PostgreSQL parses back to exactly the SQLite value: REALs with 17 significant digits (SQLite's
default 15 would round), BLOBs as hex bytea, epoch and Julian numbers through SQLite's own date
functions, NULL as \\N, and the four characters COPY treats specially escaped.
"""

from __future__ import annotations

from pgferry.migrate.plan import ColumnPlan
from pgferry.sqlite.schema import quote_ident

NULL = r"'\N'"


def _escaped(text_expr: str) -> str:
    """Escape backslash, tab, newline and carriage return for COPY text format."""
    out = f"replace({text_expr}, '\\', '\\\\')"
    for char, escape in ((9, "\\t"), (10, "\\n"), (13, "\\r")):
        out = f"replace({out}, char({char}), '{escape}')"
    return out


def _real_text(c: str) -> str:
    return f"printf('%!.17g', {c})"


def _any_text(c: str) -> str:
    """A value of any storage class as text, numbers in a form that reads back exactly."""
    return (
        f"CASE typeof({c}) WHEN 'real' THEN CASE WHEN CAST(CAST({c} AS TEXT) AS REAL) = {c} "
        f"THEN CAST({c} AS TEXT) ELSE {_real_text(c)} END ELSE CAST({c} AS TEXT) END"
    )


def value_expression(column: ColumnPlan) -> str:
    """SQLite expression giving the COPY text of this column's value (NULL stays NULL)."""
    c = quote_ident(column.source)
    converter = column.choice.converter
    if converter in ("int", "bool"):
        return c  # the census saw only integers; 0/1 is valid boolean input
    if converter in ("float", "numeric"):
        return f"CASE typeof({c}) WHEN 'real' THEN {_real_text(c)} ELSE CAST({c} AS TEXT) END"
    if converter in ("bytes", "text_bytes"):
        return f"'\\\\x' || hex(CASE typeof({c}) WHEN 'real' THEN {_any_text(c)} ELSE {c} END)"
    if converter == "epoch_seconds":
        return f"strftime('%Y-%m-%d %H:%M:%S', {c}, 'unixepoch') || '+00'"
    if converter == "epoch_millis":
        return f"strftime('%Y-%m-%d %H:%M:%f', {c} / 1000.0, 'unixepoch') || '+00'"
    if converter == "julian_day":
        return f"strftime('%Y-%m-%d %H:%M:%f', {c})"
    if converter == "text_any":
        return _escaped(_any_text(c))
    return _escaped(c)


def line_expression(columns: list[ColumnPlan]) -> str:
    """One text line per row: values joined by tabs, NULLs as \\N, ending in a newline."""
    parts = [f"coalesce({value_expression(column)}, {NULL})" for column in columns]
    return " || char(9) || ".join(parts) + " || char(10)"
