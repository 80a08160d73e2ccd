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

Guarded rendering (a table typed from a sample, see pgferry.migrate.plan): every value is checked
against the predicate its type was chosen by, the census's own, and a value that fails it is
rendered as a marker PostgreSQL refuses. The copy then takes a full census of that table instead
of loading a value the type would change ('now' into a timestamp, 'NaN' into a double).
Values PostgreSQL refuses by itself (out of range, an impossible date, invalid JSON, a NUL byte)
need no guard: its refusal leads to the same census.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pgferry.migrate.converters import converter_for
from pgferry.migrate.plan import ColumnPlan
from pgferry.migrate.valueforms import any_value
from pgferry.sqltext import quote_ident


def text_expression(column: ColumnPlan) -> str:
    """SQLite expression for the text PostgreSQL must read for this value (NULL stays NULL)."""
    return converter_for(column).render(quote_ident(column.source))


def refused_marker(column: ColumnPlan) -> str:
    """What a refused value is rendered as: no PostgreSQL type this converter feeds accepts it."""
    return converter_for(column).refused


def guard_predicate(column: ColumnPlan) -> str | None:
    """SQLite condition a non-NULL value must meet to be loaded under the column's type: the census
    predicate the type was chosen by, as far as PostgreSQL would accept more (None: no guard)."""
    if column.identity:
        return None  # the rowid itself: an integer by construction
    guard = converter_for(column).guard
    # None: rendered in Python (guarded there), or a type that takes every value
    return None if guard is None else guard(quote_ident(column.source), column.choice.pg_type)


def doubled_quotes(value: str) -> str:
    """`value` with its double quotes doubled, for a quoted CSV field. Most text holds none, and
    GLOB '*"*' finds that out with the C library's strcspn(): replace() alone costs about 9
    instructions a byte, so the GLOB first made the forum replies' rendering about 0.8 G
    instructions per 100k rows cheaper (callgrind). GLOB stops at a NUL byte and may miss a quote
    after it, but PostgreSQL refuses any NUL in COPY input before it parses the line."""
    return f"""CASE WHEN {value} GLOB '*"*' THEN replace({value}, '"', '""') ELSE {value} END"""


def _field(column: ColumnPlan, guarded: bool = False, in_printf: bool = False) -> str:
    """SQLite expression for the CSV field, NULL for NULL: quoted text, bare numbers. Guarded text
    bound for printf()'s %s must also prove it holds no NUL byte (Converter.may_hold_nul)."""
    value = text_expression(column)
    converter = converter_for(column)
    quoted = f"""'"' || {doubled_quotes(value)} || '"'"""
    field = quoted if converter.quoted else value
    predicate = guard_predicate(column) if guarded else None
    if predicate is None:
        return field
    if in_printf and converter.may_hold_nul:
        c = quote_ident(column.source)
        # As many characters as bytes proves there is no NUL (length() stops at one); else search.
        predicate = f"{predicate} AND (length({c}) = length(CAST({c} AS BLOB)) OR instr({c}, char(0)) = 0)"
    return _guarded(column, predicate, field)


def _guarded(column: ColumnPlan, predicate: str, field: str, nullable: bool = True) -> str:
    """`field` when the value meets `predicate`, NULL for NULL, else the converter's refused marker."""
    null = f"WHEN {quote_ident(column.source)} IS NULL THEN NULL " if nullable else ""
    return f"CASE WHEN {predicate} THEN {field} {null}ELSE {refused_marker(column)} END"


def csv_field(column: ColumnPlan, guarded: bool = False) -> str:
    """SQLite expression for the CSV field: quoted text, bare numbers, empty for NULL."""
    return f"coalesce({_field(column, guarded)}, '')"


# printf() takes at most 127 arguments (SQLITE_MAX_FUNCTION_ARG) including the format.
PRINTF_FIELDS = 100


# Guarded text that may hold a NUL byte (Converter.may_hold_nul) would end printf()'s %s early. A NOT NULL one goes
# around printf(), joined with || (its quotes in the formats beside it): the NUL reaches PostgreSQL,
# which refuses it; cheaper for long values than counting characters. A nullable one stays inside
# and proves itself NUL-free: cheaper for the short values such columns mostly hold than the copies
# of the line each || makes (the forum's 42-column users: 1.95 -> 1.27 G instructions, callgrind).
def _printf_line(columns: list[ColumnPlan], guarded: bool = False) -> str:
    """One printf() per run of up to 100 fields: %s writes NULL as nothing (an unquoted empty field
    is NULL in COPY CSV) and builds the line in one buffer, where a chain of || copied the row once
    per field (26% of the rendering time on the forum replies). %s stops at a NUL byte, so no field
    that can hold one may come here: the census sends text with NUL bytes to bytea (hex), its date
    checks (and the date guards) reject a value whose byte length is not its character length, and
    guarded text is joined outside printf() (may_hold_nul). The quotes around a NOT NULL text go
    into the neighbouring printf() formats: two string copies a value fewer (11% of the guarded
    rendering of the forum replies, callgrind)."""
    pieces: list[str] = []  # SQL expressions, joined with ||
    fmt: list[str] = []  # the printf() format being built, and its arguments
    args: list[str] = []

    def flush() -> None:
        if args:
            pieces.append(f"printf('{''.join(fmt)}', {', '.join(args)})")
        elif fmt:
            pieces.append(f"'{''.join(fmt)}'")
        fmt.clear()
        args.clear()

    for position, column in enumerate(columns):
        if position:
            fmt.append(",")
        if guarded and column.notnull and converter_for(column).may_hold_nul:
            fmt.append('"')
            flush()
            pieces.append(_bare_text(column))
            fmt.append('"')
            continue
        fmt.append("%s")
        args.append(_field(column, guarded, in_printf=True))
        if len(args) == PRINTF_FIELDS:
            flush()
    flush()
    return " || ".join([*pieces, "char(10)"])


def _bare_text(column: ColumnPlan) -> str:
    """A guarded NOT NULL text with its quotes doubled and none around it (they are in the format)."""
    predicate = guard_predicate(column) or "1"
    return _guarded(column, predicate, doubled_quotes(text_expression(column)), nullable=False)


def rendered_in_python(column: ColumnPlan) -> bool:
    return converter_for(column).in_python


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


def number_guard(column: ColumnPlan) -> Callable[[object], bool]:
    """The census predicate of a Python-rendered column: REALs, and integers a double holds exactly
    (float); any number (numeric); everything (text_any)."""
    return (converter_for(column).python_guard or any_value)(column.choice.pg_type)


def select_list(columns: list[ColumnPlan], guarded: bool = False) -> list[str]:
    """What to SELECT per row: one ready line, or one item per column when Python renders some."""
    if not any(rendered_in_python(c) for c in columns):
        return [_printf_line(columns, guarded)]
    return [quote_ident(c.source) if rendered_in_python(c) else csv_field(c, guarded) for c in columns]


def line_maker(columns: list[ColumnPlan], guarded: bool = False) -> Callable[[tuple[Any, ...]], str] | None:
    """Build the line from the items of `select_list` (None: SQLite already built it, item 0)."""
    if not any(rendered_in_python(c) for c in columns):
        return None
    python = [rendered_in_python(c) for c in columns]
    checked = [converter_for(c).checked for c in columns]
    if not guarded and not any(checked):

        def make(row: tuple[Any, ...]) -> str:
            return ",".join(_python_csv(v) if in_py else str(v) for in_py, v in zip(python, row, strict=False)) + "\n"

        return make
    checks = [
        number_guard(c) if in_py and (guarded or check) else None
        for c, in_py, check in zip(columns, python, checked, strict=True)
    ]
    # A checked column's misfit is refused with its value in the text PostgreSQL quotes back (the copy
    # names row, column and value); a guarded one's with the marker that makes the table re-planned.
    refused = [
        (lambda v, t=c.choice.pg_type: _python_csv(f"not exactly {t}: {python_text(v)}")) if check else None
        for c, check in zip(columns, checked, strict=True)
    ]

    def make_guarded(row: tuple[Any, ...]) -> str:
        fields = []
        for check, value, in_py, refuse in zip(checks, row, python, refused, strict=False):
            if check is None:
                fields.append(_python_csv(value) if in_py else str(value))
            elif value is None or check(value):
                fields.append(_python_csv(value))
            else:
                fields.append("!" if refuse is None else refuse(value))  # refused by double precision and numeric alike
        return ",".join(fields) + "\n"

    return make_guarded
