"""Row lines both databases can build in SQL, byte for byte the same when the values are the same.

Verifying a copy value by value in Python costs about 35 s per million forum rows; hashing lines
that SQLite and PostgreSQL render themselves costs a few seconds. The line is only a fast path: a
column type gets one only where equal lines imply equal values (soundness), never the other way
round. Values in a form the line does not cover (a timestamp with fractional seconds, a 'T'
separator) render differently on purpose, so their chunk falls back to the exact comparison in
pgferry.migrate.verify; a false "different" costs time, a false "equal" is impossible.

Each field is `<bytes>:<text>`, or `~:` for NULL, so no separator can be forged by a value.
Types without such a form (floats, numeric, json, epoch and Julian conversions) return None and
their tables are compared the exact way.
"""

from __future__ import annotations

from collections.abc import Callable

from pgferry.migrate.plan import ColumnPlan, TablePlan
from pgferry.sqlite.schema import quote_ident

STRICT_DATETIME = "[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]"
STRICT_DATE = "[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]"
# A prefix no rendering of a PostgreSQL value starts with: marks source values the line does not cover.
UNCOVERED = "?"


def _sqlite_text(column: ColumnPlan) -> str | None:
    c = quote_ident(column.source)
    converter = column.choice.converter
    if converter in ("int", "bool", "text"):
        return f"CAST({c} AS TEXT)"
    if converter in ("bytes", "text_bytes"):
        return f"CASE WHEN {c} IS NOT NULL THEN lower(hex({c})) END"  # hex(NULL) is '', not NULL
    if converter == "timestamp_text" and column.choice.pg_type == "timestamp":
        return f"CASE WHEN {c} GLOB '{STRICT_DATETIME}' AND length({c}) = 19 THEN {c} ELSE '{UNCOVERED}' || {c} END"
    if converter == "date_text":
        return f"CASE WHEN {c} GLOB '{STRICT_DATE}' AND length({c}) = 10 THEN {c} ELSE '{UNCOVERED}' || {c} END"
    return None


def _pg_text(column: ColumnPlan) -> str | None:
    c = '"' + column.target.replace('"', '""') + '"'
    converter = column.choice.converter
    if converter == "bool":
        return f"CASE WHEN {c} THEN '1' ELSE '0' END"
    if converter in ("int", "text", "timestamp_text", "date_text"):
        return f"{c}::text"  # ISO DateStyle: fractions and BC appear, so they never match a covered source
    if converter in ("bytes", "text_bytes"):
        return f"encode({c}, 'hex')"
    return None


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
