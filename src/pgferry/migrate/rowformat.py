"""Render each row as one line of PostgreSQL's COPY CSV format, mostly inside SQLite.

Formatting in SQLite's C string functions instead of Python is what makes the copy fast: Python
only moves finished lines from a cursor to the COPY stream. CSV rather than COPY's text format
because a text value then needs one replace() (doubling quotes) instead of four escapes; measured
on the scale-1 forum replies, 0.78 s against 1.67 s. NULL is an empty unquoted field, every text
value is quoted, so an empty string stays an empty string and a lone `\\.` is never an end marker.

Each converter picks a rendering PostgreSQL parses back to exactly the SQLite value: BLOBs as hex
bytea, epoch and Julian numbers through SQLite's own date functions. The exception is REAL values:
SQLite 3.40's printf is not correctly rounded (it turns -1.7976931348623157e308 into ...155e308),
so columns that can hold REALs are rendered by Python's repr, which is exact; only tables with
such columns pay for per-row Python work.
"""

from __future__ import annotations

from collections.abc import Callable

from pgferry.migrate.plan import ColumnPlan
from pgferry.sqlite.schema import quote_ident

PYTHON_RENDERED = ("float", "numeric", "text_any")
# Values of these converters never contain a quote, comma or newline: no quoting needed.
UNQUOTED = ("int", "bool", "bytes", "text_bytes", "epoch_seconds", "epoch_millis", "julian_day")
# Validated date-times cannot contain a quote: quoting them needs no replace().
QUOTE_ONLY = ("timestamp_text", "date_text")


def text_expression(column: ColumnPlan) -> str:
    """SQLite expression for the text PostgreSQL must read for this value (NULL stays NULL)."""
    c = quote_ident(column.source)
    converter = column.choice.converter
    if converter in ("bytes", "text_bytes"):
        return f"'\\x' || hex({c})"
    if converter == "epoch_seconds":
        return f"strftime('%Y-%m-%d %H:%M:%S', {c}, 'unixepoch') || '+00'"
    if converter == "epoch_millis":
        return f"strftime('%Y-%m-%d %H:%M:%f', {c} / 1000.0, 'unixepoch') || '+00'"
    if converter == "julian_day":
        return f"strftime('%Y-%m-%d %H:%M:%f', {c})"
    return c


def _field(column: ColumnPlan) -> str:
    """SQLite expression for the CSV field, NULL for NULL: quoted text, bare numbers."""
    value = text_expression(column)
    converter = column.choice.converter
    if converter in UNQUOTED:
        return value
    if converter in QUOTE_ONLY:
        return f"""'"' || {value} || '"'"""
    return f"""'"' || replace({value}, '"', '""') || '"'"""


def csv_field(column: ColumnPlan) -> str:
    """SQLite expression for the CSV field: quoted text, bare numbers, empty for NULL."""
    return f"coalesce({_field(column)}, '')"


# printf() takes at most 127 arguments (SQLITE_MAX_FUNCTION_ARG) including the format.
PRINTF_FIELDS = 100


def _printf_line(columns: list[ColumnPlan]) -> str:
    """One printf() per 100 fields: %s writes NULL as nothing (an unquoted empty field is NULL in
    COPY CSV) and builds the line in one buffer, where a chain of || copied the row once per field
    (26% of the rendering time on the forum replies). %s stops at a NUL byte, so no field that can
    hold one may come here: the census sends text with NUL bytes to bytea (hex), and its date checks
    reject a value whose byte length differs from its character length."""
    groups = []
    for start in range(0, len(columns), PRINTF_FIELDS):
        group = columns[start : start + PRINTF_FIELDS]
        groups.append(f"printf('{','.join(['%s'] * len(group))}', {', '.join(_field(c) for c in group)})")
    return " || ',' || ".join(groups) + " || char(10)"


def rendered_in_python(column: ColumnPlan) -> bool:
    return column.choice.converter in PYTHON_RENDERED


def python_text(value: object) -> str | None:
    """The text PostgreSQL must read for a value rendered in Python: floats exact, the rest as SQLite gives them."""
    if value is None:
        return None
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


def _python_csv(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, int | float):
        return python_text(value) or ""
    return '"' + (python_text(value) or "").replace('"', '""') + '"'


def select_list(columns: list[ColumnPlan]) -> list[str]:
    """What to SELECT per row: one ready line, or one item per column when Python renders some."""
    if not any(rendered_in_python(c) for c in columns):
        return [_printf_line(columns)]
    return [quote_ident(c.source) if rendered_in_python(c) else csv_field(c) for c in columns]


def line_maker(columns: list[ColumnPlan]) -> Callable[[tuple], str] | None:
    """Build the line from the items of `select_list` (None: SQLite already built it, item 0)."""
    if not any(rendered_in_python(c) for c in columns):
        return None
    python = [rendered_in_python(c) for c in columns]

    def make(row: tuple) -> str:
        return ",".join(_python_csv(v) if in_py else str(v) for in_py, v in zip(python, row, strict=False)) + "\n"

    return make
