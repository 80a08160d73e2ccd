"""Render each row as one line of PostgreSQL's COPY text format, mostly inside SQLite.

Formatting in SQLite's C string functions instead of Python is what makes the copy fast: Python
only moves finished lines from a cursor to the COPY stream. Each converter picks a rendering that
PostgreSQL parses back to exactly the SQLite value: BLOBs as hex bytea, epoch and Julian numbers
through SQLite's own date functions, NULL as \\N, and the four characters COPY treats specially
escaped. The exception is REAL values: SQLite 3.40's printf is not correctly rounded (it turns
-1.7976931348623157e308 into ...155e308), so columns that can hold REALs are rendered by Python's
repr, which is exact; only tables with such columns pay for per-row Python work.
"""

from __future__ import annotations

from collections.abc import Callable

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


PYTHON_RENDERED = ("float", "numeric", "text_any")


def rendered_in_python(column: ColumnPlan) -> bool:
    return column.choice.converter in PYTHON_RENDERED


def escape_copy(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def python_text(value: object) -> str | None:
    """COPY text (unescaped) for a value rendered in Python: floats exact, others as SQLite gives them."""
    if value is None:
        return None
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def select_list(columns: list[ColumnPlan]) -> list[str]:
    """What to SELECT per row: one ready line, or one item per column when Python renders some."""
    if not any(rendered_in_python(c) for c in columns):
        parts = [f"coalesce({value_expression(column)}, {NULL})" for column in columns]
        return [" || char(9) || ".join(parts) + " || char(10)"]
    return [quote_ident(c.source) if rendered_in_python(c) else value_expression(c) for c in columns]


def line_maker(columns: list[ColumnPlan]) -> Callable[[tuple], str] | None:
    """Build the line from the items of `select_list` (None: SQLite already built it, item 0)."""
    if not any(rendered_in_python(c) for c in columns):
        return None
    python = [rendered_in_python(c) for c in columns]

    def make(row: tuple) -> str:
        out = []
        for in_python, value in zip(python, row, strict=False):
            if value is None:
                out.append("\\N")
            elif in_python:
                out.append(escape_copy(python_text(value) or ""))
            else:
                out.append(value if isinstance(value, str) else str(value))
        return "\t".join(out) + "\n"

    return make
