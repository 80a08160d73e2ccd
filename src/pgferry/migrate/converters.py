"""Every converter in one place: how a SQLite value is rendered for PostgreSQL, checked, compared, undone.

A column's `TypeChoice.converter` (chosen in pgferry.migrate.types and .plan) names one of the
`Converter` objects below. The copy (pgferry.migrate.rowformat), the line checksums
(pgferry.migrate.checksum) and verify (pgferry.migrate.verify_chunks) read what they need from that
object, and rollback reads its `reverse`, so adding a converter means adding one entry here (and
choosing it in types.py). Every field is required: a converter that has no line form, recompute or
guard says so with None, never by being left out.

The callables build SQL from an already quoted column name. They run once per table when a query is
built, never per value, so the copy's speed does not depend on this indirection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, NamedTuple

from pgferry.migrate.jsontext import JSON_TYPES, json_line, json_reverse, json_value
from pgferry.migrate.types import EPOCH_MILLIS, EPOCH_SECONDS, FLOAT_EXACT_INT, JULIAN_DAYS, TypeChoice
from pgferry.sqlite.census import iso_predicate, zone_predicate

if TYPE_CHECKING:
    from pgferry.migrate.plan import ColumnPlan

# Source-line forms (pgferry.migrate.checksum): only the strict shapes PostgreSQL's ::text gives back.
STRICT_DATETIME = "[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]"
STRICT_DATE = "[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9]"
# A prefix no rendering of a PostgreSQL value starts with: marks source values the line does not cover.
UNCOVERED = "?"
# What a refused value is rendered as when the converter has no marker of its own.
REFUSED = "'!'"

UNIX_EPOCH = datetime(1970, 1, 1)
UNIX_EPOCH_UTC = UNIX_EPOCH.replace(tzinfo=UTC)
UNIX_EPOCH_JULIAN_MS = 210_866_760_000_000  # 1970-01-01 as a Julian day number, in milliseconds
DAY_MS = 86_400_000


class Recompute(NamedTuple):
    """How verify computes the PostgreSQL value from the raw SQLite one, apart from the copy's rendering:
    `sql` fetches the raw value ({} is the quoted column), `python` converts it."""

    sql: str
    python: Callable[[Any], Any]


@dataclass(frozen=True)
class Converter:
    """One way a SQLite value becomes a PostgreSQL value, and everything that depends on it."""

    name: str
    pg_types: tuple[str, ...]  # the PostgreSQL types it feeds ("varchar" for varchar(n); "*": a --cast type)
    render: Callable[[str], str]  # column -> SQLite expression of the text PostgreSQL reads (raw when in_python)
    in_python: bool  # rendered by Python from the raw value (pgferry.migrate.rowformat.python_text)
    quoted: bool  # its CSV field needs quotes (it may be empty or hold quotes, commas, line breaks)
    guard: Callable[[str, str], str | None] | None  # (column, pg_type) -> SQLite predicate of a loadable value
    python_guard: Callable[[object], bool] | None  # the same for a Python-rendered value
    refused: str  # SQLite expression of a value no PostgreSQL type it feeds accepts
    may_hold_nul: bool  # guarded text that can hold a NUL byte, which would end printf()'s %s early
    sqlite_line: Callable[[str, str], str | None] | None  # (column, pg_type) -> checksum text; None: no form
    pg_line: Callable[[str], str] | None  # PostgreSQL column -> the same text; None: no line form
    canonical: Callable[[str, str], Any]  # (pg_type, text) -> the value verify compares; may raise ValueError
    recompute: Recompute | None  # None: verify compares the copy's rendering of the value
    reverse: Callable[[Any], Any]  # a value as psycopg returns it -> a SQLite value the copy renders the same


# Canonical forms per PostgreSQL type: SQLite's rendered text and PostgreSQL's ::text output (UTC
# session, ISO DateStyle) both reduce to these.


def timestamp_value(text: str) -> datetime:
    value = text.strip().replace("T", " ").replace("Z", "+00:00")
    if len(value) > 19 and value[-3] in "+-" and value[-6] not in "+-":  # '+00' -> '+00:00'
        value += ":00"
    return datetime.fromisoformat(value)


def number_value(text: str) -> Any:
    try:
        return Decimal(text).normalize()
    except InvalidOperation:
        return text.lower()


CANONICAL: dict[str, Callable[[str], Any]] = {
    "boolean": lambda v: v in ("1", "t", "true"),
    "double precision": lambda v: float(v),
    "numeric": number_value,
    "timestamp": timestamp_value,
    "timestamptz": timestamp_value,
    "date": lambda v: v[:10],
    "jsonb": json_value,
    "bytea": lambda v: v.lower(),
    "citext": lambda v: v,
}


def by_pg_type(pg_type: str, text: str) -> Any:
    """The canonical form of `text` under `pg_type`; types without one compare as text."""
    func = CANONICAL.get(pg_type)
    return func(text) if func else text


# Recomputed values (verify): from the raw SQLite value, not the copy's rendering, so a conversion bug
# the copy and verify shared cannot look identical. Two did: NULL BLOBs sent as empty bytea, and Core
# Data dates sent as NULL.


def julian_value(value: Any) -> Any:
    if not isinstance(value, int | float) or not JULIAN_DAYS[0] <= value <= JULIAN_DAYS[1]:
        return ("unparsed", value)
    milliseconds = int(value * 86_400_000.0 + 0.5)  # SQLite's own rounding of a Julian day number
    return UNIX_EPOCH + timedelta(milliseconds=milliseconds - UNIX_EPOCH_JULIAN_MS)


def epoch_value(scale: int) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if type(value) is not int:
            return ("unparsed", value)
        return (UNIX_EPOCH + timedelta(milliseconds=value * scale)).replace(tzinfo=UTC)

    return convert


AS_BYTEA = Recompute("CAST({} AS BLOB)", lambda v: "\\x" + v.hex())


# Guards (guarded rendering, see pgferry.migrate.rowformat): the census predicate the type was chosen by.


def integer_guard(c: str, pg_type: str) -> str:
    return f"typeof({c}) = 'integer'"


def epoch_guard(bounds: tuple[int, int]) -> Callable[[str, str], str]:
    return lambda c, pg_type: f"typeof({c}) = 'integer' AND {c} BETWEEN {bounds[0]} AND {bounds[1]}"


def julian_guard(c: str, pg_type: str) -> str:
    return f"typeof({c}) IN ('real', 'integer') AND {c} BETWEEN {JULIAN_DAYS[0]} AND {JULIAN_DAYS[1]}"


def date_guard(c: str, pg_type: str) -> str:
    """The census's ISO-8601 test, after a cheaper one for the common canonical shapes: a value equal
    to SQLite's own date()/datetime() of it is a valid 'YYYY-MM-DD' / 'YYYY-MM-DD HH:MM:SS'. The
    '+0 days' makes SQLite normalise (without it, '2024-02-30' and '24:00:00' come back unchanged).
    About 30% fewer instructions than a GLOB over 19 character classes (callgrind, forum replies)."""
    full = f"typeof({c}) = 'text' AND {iso_predicate(c)}"
    if pg_type == "date":
        return f"date({c}, '+0 days') = {c} OR ({full} AND length({c}) = 10)"
    zoned = zone_predicate(c)
    if pg_type == "timestamptz":
        return f"{full} AND {zoned}"
    return f"datetime({c}, '+0 days') = {c} OR ({full} AND NOT {zoned})"


def float_guard(v: object) -> bool:
    """REALs, and integers a double holds exactly."""
    return isinstance(v, float) or (isinstance(v, int) and -FLOAT_EXACT_INT <= v <= FLOAT_EXACT_INT)


def numeric_guard(v: object) -> bool:
    return isinstance(v, int | float)


def any_value(v: object) -> bool:
    return True


# Renderings (pgferry.migrate.rowformat): BLOBs as hex bytea, epoch and Julian numbers through SQLite's
# own date functions.


def raw(c: str) -> str:
    return c


def hex_bytea(c: str) -> str:
    return f"CASE WHEN {c} IS NOT NULL THEN '\\x' || hex({c}) END"  # hex(NULL) is '', not NULL


def julian_render(c: str) -> str:
    # strftime() is NULL outside SQLite's dates: a value there must be refused, never become NULL.
    low, high = JULIAN_DAYS
    rendered = f"strftime('%Y-%m-%d %H:%M:%f', {c})"
    return f"CASE WHEN {c} BETWEEN {low} AND {high} THEN {rendered} WHEN {c} IS NOT NULL THEN '!' END"


# Line forms (pgferry.migrate.checksum): sound, never complete; uncovered values render unequal.


def as_text_line(c: str, pg_type: str) -> str:
    return f"CAST({c} AS TEXT)"


def hex_line(c: str, pg_type: str) -> str:
    return f"CASE WHEN {c} IS NOT NULL THEN lower(hex({c})) END"  # hex(NULL) is '', not NULL


def timestamp_line(c: str, pg_type: str) -> str | None:
    if pg_type != "timestamp":
        return None
    return f"CASE WHEN {c} GLOB '{STRICT_DATETIME}' AND length({c}) = 19 THEN {c} ELSE '{UNCOVERED}' || {c} END"


def date_line(c: str, pg_type: str) -> str:
    return f"CASE WHEN {c} GLOB '{STRICT_DATE}' AND length({c}) = 10 THEN {c} ELSE '{UNCOVERED}' || {c} END"


def pg_text_line(c: str) -> str:
    return f"{c}::text"  # ISO DateStyle: fractions and BC appear, so they never match a covered source


def pg_bool_line(c: str) -> str:
    return f"CASE WHEN {c} THEN '1' ELSE '0' END"


def pg_hex_line(c: str) -> str:
    return f"encode({c}, 'hex')"


# Reverse conversions (rollback): psycopg's value -> the SQLite value the copy would render to it.


def same(value: Any) -> Any:
    return value


def bool_reverse(value: bool) -> int:
    return 1 if value else 0


def text_reverse(value: Any) -> Any:
    """Text as is; a value of a --cast type as its text. SQLite's storage class is lost: integer 5 and
    text '5' both arrive as '5' (the column's affinity decides again on insert)."""
    return value if isinstance(value, str) else str(value)


def utf8_reverse(value: bytes) -> str:
    return bytes(value).decode("utf-8")


def bytes_reverse(value: bytes) -> bytes:
    return bytes(value)


def numeric_reverse(value: Decimal) -> int | float:
    """An integral numeric as an int, else a float. The copy wrote REALs by repr(), so one written
    with an exponent (1e+300) comes back as the integer of its decimal text, equal under float()."""
    if value.is_finite() and int(value.as_tuple().exponent) >= 0:
        return int(value)
    return float(value)


def epoch_reverse(unit: timedelta) -> Callable[[datetime], int]:
    def reverse(value: datetime) -> int:
        return (value - UNIX_EPOCH_UTC) // unit

    return reverse


def julian_reverse(value: datetime) -> float:
    """The Julian day number of the timestamp: the source REAL to the millisecond SQLite renders."""
    milliseconds = (value - UNIX_EPOCH) // timedelta(milliseconds=1)
    return (milliseconds + UNIX_EPOCH_JULIAN_MS) / DAY_MS


def timestamp_reverse(value: date) -> str:
    """SQLite's own text form: 'YYYY-MM-DD', 'YYYY-MM-DD HH:MM:SS[.ffffff]', zoned ones in UTC
    ('+00:00'). Other spellings of the same instant ('T', 'Z', '+02:00', '.5') come back in this one."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat(" ")
    return value.isoformat()


def _converter(
    name: str,
    pg_types: tuple[str, ...],
    *,
    render: Callable[[str], str] = raw,
    in_python: bool = False,
    quoted: bool,
    guard: Callable[[str, str], str | None] | None,
    python_guard: Callable[[object], bool] | None = None,
    refused: str = REFUSED,
    may_hold_nul: bool = False,
    sqlite_line: Callable[[str, str], str | None] | None,
    pg_line: Callable[[str], str] | None,
    canonical: Callable[[str, str], Any] = by_pg_type,
    recompute: Recompute | None = None,
    reverse: Callable[[Any], Any],
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
        _converter(
            "numeric",
            ("numeric",),
            in_python=True,
            quoted=True,
            guard=None,
            python_guard=numeric_guard,
            sqlite_line=None,
            pg_line=None,
            reverse=numeric_reverse,
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
            python_guard=lambda v: not isinstance(v, bytes),
            sqlite_line=None,
            pg_line=None,
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
