"""Every converter in one place: how a SQLite value is rendered for PostgreSQL, checked, compared, undone.

A column's `TypeChoice.converter` (chosen in pgferry.migrate.types and .plan) names one of the
`Converter` objects below. The copy (pgferry.migrate.rowformat), the line checksums
(pgferry.migrate.checksum) and verify (pgferry.migrate.verify_chunks) read what they need from that
object, and rollback reads its `reverse`, so adding a converter means adding one entry here (and
choosing it in types.py). Every field is required: a converter that has no line form, recompute or
guard says so with None, never by being left out.

The functions they are made of live in pgferry.migrate.valueforms.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pgferry.migrate.jsontext import JSON_TYPES, json_line, json_reverse
from pgferry.migrate.types import EPOCH_MILLIS, EPOCH_SECONDS, TypeChoice
from pgferry.migrate.valueforms import (
    AS_BYTEA,
    REFUSED,
    PythonGuard,
    Recompute,
    any_value,
    as_text_line,
    bool_reverse,
    by_pg_type,
    bytes_reverse,
    date_guard,
    date_line,
    epoch_guard,
    epoch_reverse,
    epoch_text_render,
    epoch_text_reverse,
    epoch_value,
    float_guard,
    hex_bytea,
    hex_line,
    integer_guard,
    ip_guard,
    julian_guard,
    julian_render,
    julian_reverse,
    julian_value,
    micros_render,
    micros_reverse,
    numeric_guard,
    numeric_reverse,
    pg_bool_line,
    pg_hex_line,
    pg_micros_line,
    pg_text_line,
    raw,
    same,
    text_reverse,
    time_guard,
    time_line,
    time_reverse,
    timestamp_line,
    timestamp_reverse,
    utc_guard,
    utc_line,
    utc_render,
    utc_reverse,
    utf8_reverse,
    uuid_guard,
    uuid_hex_reverse,
    uuid_line,
    uuid_text_reverse,
)

if TYPE_CHECKING:
    from pgferry.migrate.plan import ColumnPlan


@dataclass(frozen=True)
class Converter:
    """One way a SQLite value becomes a PostgreSQL value, and everything that depends on it."""

    name: str
    pg_types: tuple[str, ...]  # the PostgreSQL types it feeds ("varchar" for varchar(n); "*": a --cast type)
    render: Callable[[str], str]  # column -> SQLite expression of the text PostgreSQL reads (raw when in_python)
    in_python: bool  # rendered by Python from the raw value (pgferry.migrate.rowformat.python_text)
    quoted: bool  # its CSV field needs quotes (it may be empty or hold quotes, commas, line breaks)
    guard: Callable[[str, str], str | None] | None  # (column, pg_type) -> SQLite predicate of a loadable value
    python_guard: PythonGuard | None  # pg_type -> the check of a Python-rendered value
    refused: str  # SQLite expression of a value no PostgreSQL type it feeds accepts
    may_hold_nul: bool  # guarded text that can hold a NUL byte, which would end printf()'s %s early
    sqlite_line: Callable[[str, str], str | None] | None  # (column, pg_type) -> checksum text; None: no form
    pg_line: Callable[[str], str] | None  # PostgreSQL column -> the same text; None: no line form
    canonical: Callable[[str, str], Any]  # (pg_type, text) -> the value verify compares; may raise ValueError
    recompute: Recompute | None  # None: verify compares the copy's rendering of the value
    reverse: Callable[[Any], Any]  # a value as psycopg returns it -> a SQLite value the copy renders the same
    # Rendered in Python and every value checked by `python_guard` even when the table is not guarded: a
    # type PostgreSQL would round into (numeric(p, s)) gets no value it cannot hold exactly.
    checked: bool


def _converter(
    name: str,
    pg_types: tuple[str, ...],
    *,
    render: Callable[[str], str] = raw,
    in_python: bool = False,
    quoted: bool,
    guard: Callable[[str, str], str | None] | None,
    python_guard: PythonGuard | None = None,
    refused: str = REFUSED,
    may_hold_nul: bool = False,
    sqlite_line: Callable[[str, str], str | None] | None,
    pg_line: Callable[[str], str] | None,
    canonical: Callable[[str, str], Any] = by_pg_type,
    recompute: Recompute | None = None,
    reverse: Callable[[Any], Any],
    checked: bool = False,
) -> Converter:
    return Converter(
        name,
        pg_types,
        render,
        in_python,
        quoted,
        guard,
        python_guard,
        refused,
        may_hold_nul,
        sqlite_line,
        pg_line,
        canonical,
        recompute,
        reverse,
        checked,
    )


def json_converter(name: str, guard: Callable[[str, str], str | None] | None, **changes: Any) -> Converter:
    """JSON text as it is, into jsonb or json (JSON_TYPES); `changes` replace fields."""
    converter = _converter(
        name, JSON_TYPES, quoted=True, guard=guard, may_hold_nul=True,
        sqlite_line=json_line, pg_line=pg_text_line, reverse=json_reverse,
    )  # fmt: skip
    return replace(converter, **changes)


# Values of unquoted converters never contain a quote, comma or line break and are never empty (an empty
# unquoted field reads as NULL). That holds for validated date-times too; quoting them cost two string
# copies a value, 15% of the rendering of the forum replies (callgrind).
CONVERTERS: dict[str, Converter] = {
    c.name: c
    for c in (
        _converter(
            "int",
            ("bigint", "integer"),
            quoted=False,
            guard=integer_guard,
            sqlite_line=as_text_line,
            pg_line=pg_text_line,
            reverse=same,
        ),
        _converter(
            "bool",
            ("boolean",),
            quoted=False,
            guard=integer_guard,  # PostgreSQL reads no integer but 0 and 1 as a boolean
            sqlite_line=as_text_line,
            pg_line=pg_bool_line,
            reverse=bool_reverse,
        ),
        _converter(
            "text",
            ("text", "varchar", "citext"),
            quoted=True,
            guard=lambda c, pg_type: f"typeof({c}) = 'text'",  # a NUL byte: may_hold_nul
            # Text accepts anything but invalid UTF-8, so its marker is a lone 0xFF byte.
            refused="CAST(x'ff' AS TEXT)",
            may_hold_nul=True,
            sqlite_line=as_text_line,
            pg_line=pg_text_line,
            reverse=text_reverse,
        ),
        _converter(
            "text_any",
            ("text", "citext", "*"),
            in_python=True,
            quoted=True,
            guard=None,
            python_guard=any_value,
            sqlite_line=None,
            pg_line=None,
            reverse=text_reverse,
        ),
        _converter(
            "bytes",
            ("bytea",),
            render=hex_bytea,
            quoted=False,
            guard=lambda c, pg_type: f"typeof({c}) = 'blob'",
            refused="'\\xZZ'",
            sqlite_line=hex_line,
            pg_line=pg_hex_line,
            recompute=AS_BYTEA,
            reverse=bytes_reverse,
        ),
        _converter(
            "text_bytes",
            ("bytea",),
            render=hex_bytea,
            quoted=False,
            guard=None,
            sqlite_line=hex_line,
            pg_line=pg_hex_line,
            recompute=AS_BYTEA,
            reverse=utf8_reverse,
        ),
        _converter(
            "float",
            ("double precision",),
            in_python=True,
            quoted=True,
            guard=None,
            python_guard=float_guard,
            sqlite_line=None,
            pg_line=None,
            reverse=float,
        ),
        *(
            _converter(
                name,
                ("numeric",),
                in_python=True,
                quoted=True,
                guard=None,
                python_guard=numeric_guard,
                sqlite_line=None,
                pg_line=None,
                reverse=numeric_reverse,
                checked=checked,
            )
            for name, checked in (("numeric", False), ("numeric_fit", True))
        ),
        _converter(
            "epoch_seconds",
            ("timestamptz",),
            render=lambda c: f"strftime('%Y-%m-%d %H:%M:%S', {c}, 'unixepoch') || '+00'",
            quoted=False,
            guard=epoch_guard(EPOCH_SECONDS),
            sqlite_line=None,
            pg_line=None,
            recompute=Recompute("{}", epoch_value(1000)),
            reverse=epoch_reverse(timedelta(seconds=1)),
        ),
        _converter(
            "epoch_millis",
            ("timestamptz",),
            render=lambda c: f"strftime('%Y-%m-%d %H:%M:%f', {c} / 1000.0, 'unixepoch') || '+00'",
            quoted=False,
            guard=epoch_guard(EPOCH_MILLIS),
            sqlite_line=None,
            pg_line=None,
            recompute=Recompute("{}", epoch_value(1)),
            reverse=epoch_reverse(timedelta(milliseconds=1)),
        ),
        _converter(
            "julian_day",
            ("timestamp",),
            render=julian_render,
            quoted=False,
            guard=julian_guard,
            sqlite_line=None,
            pg_line=None,
            recompute=Recompute("{}", julian_value),
            reverse=julian_reverse,
        ),
        _converter(
            "timestamp_text",
            ("timestamp", "timestamptz", "date"),
            quoted=False,
            guard=date_guard,
            sqlite_line=timestamp_line,
            pg_line=pg_text_line,
            reverse=timestamp_reverse,
        ),
        _converter(
            "date_text",
            ("date",),
            quoted=False,
            guard=date_guard,
            sqlite_line=date_line,
            pg_line=pg_text_line,
            reverse=timestamp_reverse,
        ),
        json_converter("json_text", lambda c, pg_type: f"typeof({c}) = 'text' AND substr({c}, 1, 1) IN ('{{', '[')"),
        # A column that says it holds JSON (pgferry.sqlite.census.json_declaration): scalars too.
        json_converter("json_any", lambda c, pg_type: f"typeof({c}) = 'text'"),
        # ... with numbers stored as numbers (NUMERIC affinity): Python's exact repr; a BLOB changes the type.
        json_converter(
            "json_numbers",
            None,
            in_python=True,
            python_guard=lambda pg_type: lambda v: not isinstance(v, bytes),
            sqlite_line=None,
            pg_line=None,
        ),
        # The types applications expect (pgferry.migrate.frameworks): uuid, inet, time, interval, UTC.
        *(
            _converter(
                name,
                ("uuid",),
                quoted=False,
                guard=uuid_guard,
                sqlite_line=uuid_line,
                pg_line=pg_text_line,
                reverse=reverse,
            )
            for name, reverse in (("uuid_hex", uuid_hex_reverse), ("uuid_text", uuid_text_reverse))
        ),
        _converter(
            "inet_text",
            ("inet",),
            in_python=True,
            quoted=True,
            guard=None,
            python_guard=ip_guard,
            sqlite_line=None,
            pg_line=None,
            reverse=str,
        ),
        _converter(
            "time_text",
            ("time",),
            quoted=False,
            guard=time_guard,
            sqlite_line=time_line,
            pg_line=pg_text_line,
            reverse=time_reverse,
        ),
        _converter(
            "utc_text",
            ("timestamptz",),
            render=utc_render,
            quoted=False,
            guard=utc_guard,
            sqlite_line=utc_line,
            pg_line=pg_text_line,
            reverse=utc_reverse,
        ),
        _converter(
            "micros_interval",
            ("interval",),
            render=micros_render,
            quoted=False,
            guard=integer_guard,
            sqlite_line=as_text_line,
            pg_line=pg_micros_line,
            reverse=micros_reverse,
        ),
        _converter(
            "epoch_text_interval",
            ("interval",),
            render=epoch_text_render,
            quoted=True,
            guard=None,
            sqlite_line=None,
            pg_line=None,
            reverse=epoch_text_reverse,
        ),
    )
}


def converter_named(name: str) -> Converter:
    try:
        return CONVERTERS[name]
    except KeyError:
        raise ValueError(f"unknown converter {name!r} (known: {', '.join(CONVERTERS)})") from None


def converter_for(column: ColumnPlan) -> Converter:
    """The converter a planned column's values go through."""
    return converter_named(column.choice.converter)


def same_conversion(old: TypeChoice, new: TypeChoice) -> bool:
    """Whether values planned under `old` reach PostgreSQL as they would under `new` (a re-plan keeps
    the rows copied so far only then)."""
    return (old.pg_type, old.converter) == (new.pg_type, new.converter)
