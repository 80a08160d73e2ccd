"""Row lines both databases can build in SQL, byte for byte the same when the values are the same.

Verifying a copy value by value in Python costs about 35 s per million forum rows; hashing lines
that SQLite and PostgreSQL render themselves costs a few seconds. The line is only a fast path: a
column type gets one only where equal lines imply equal values (soundness), never the other way
round. Values in a form the line does not cover (a timestamp with fractional seconds, a 'T'
separator) render differently on purpose, so their chunk falls back to the exact comparison in
pgferry.migrate.verify; a false "different" costs time, a false "equal" is impossible.

Each field is `<bytes>:<text>`, or `~:` for NULL, so no separator can be forged by a value.
A converter's line forms are its `sqlite_line` and `pg_line` (pgferry.migrate.converters); those
without one (floats, numeric, json, epoch and Julian conversions) make their tables compare the exact way.
"""

from __future__ import annotations

from collections.abc import Callable

from pgferry.migrate.converters import converter_for
from pgferry.migrate.plan import ColumnPlan, TablePlan
from pgferry.sqltext import quote_ident


def _sqlite_text(column: ColumnPlan) -> str | None:
    form = converter_for(column).sqlite_line
    return None if form is None else form(quote_ident(column.source), column.choice.pg_type)


def _pg_text(column: ColumnPlan) -> str | None:
    form = converter_for(column).pg_line
    return None if form is None else form(quote_ident(column.target))


# printf() takes at most 127 arguments; two per field.
PRINTF_FIELDS = 60


def _texts(plan: TablePlan, render: Callable[[ColumnPlan], str | None]) -> list[str] | None:
    texts = [render(column) for column in plan.columns]
    return None if any(t is None for t in texts) else texts  # type: ignore[return-value]


def sqlite_line(plan: TablePlan) -> str | None:
    """SQLite expression of a row's line, or None when a column has no sound SQL form.

    Built by printf() in one buffer (a chain of || copied the row once per field). %s stops at a NUL
    byte; the byte-length prefix is taken before, so such a value can only render unequal."""
    texts = _texts(plan, _sqlite_text)
    if texts is None:
        return None
    if not texts:
        return "''"
    groups = []
    for start in range(0, len(texts), PRINTF_FIELDS):
        group = texts[start : start + PRINTF_FIELDS]
        args = ", ".join(f"ifnull(length(CAST({t} AS BLOB)), '~'), ifnull({t}, '')" for t in group)
        groups.append(f"printf('{'%s:%s' * len(group)}', {args})")
    return " || ".join(groups)


def pg_line(plan: TablePlan) -> str | None:
    """PostgreSQL expression of a row's line, or None when a column has no sound SQL form."""
    texts = _texts(plan, _pg_text)
    if texts is None:
        return None
    fields = [f"coalesce(octet_length({t})::text, '~') || ':' || coalesce({t}, '')" for t in texts]
    return " || ".join(fields) or "''"


def has_lines(plan: TablePlan) -> bool:
    return sqlite_line(plan) is not None and pg_line(plan) is not None
