"""The value forms converters are made of: canonical forms, recomputes, guards, renderings, line forms
and reverse conversions, one function each (pgferry.migrate.converters puts them together per converter).

The callables build SQL from an already quoted column name. They run once per table when a query is
built, never per value, so the copy's speed does not depend on this indirection.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from pgferry.migrate.jsontext import json_value
from pgferry.migrate.types import FLOAT_EXACT_INT, JULIAN_DAYS
from pgferry.sqlite.census import iso_predicate, zone_predicate
from pgferry.sqlite.declared import TIME_GLOB, decimal_precision, is_ip, time_predicate, uuid_predicate

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


def utc_value(text: str) -> datetime:
    """A timestamptz: PostgreSQL's text carries a zone; a source text without one was copied as UTC."""
    value = timestamp_value(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


DAY_MICROS = 86_400_000_000
INTERVAL_PART = re.compile(r"([+-]?\d+) (year|mon|day|microsecond)s?\b")
INTERVAL_CLOCK = re.compile(r"([+-]?)(\d+):(\d\d):(\d\d(?:\.\d+)?)")
INTERVAL_UNITS = {"year": 360 * DAY_MICROS, "mon": 30 * DAY_MICROS, "day": DAY_MICROS, "microsecond": 1}


def interval_micros(text: str) -> int:
    """An interval as microseconds (a month as 30 days, as PostgreSQL compares them), from PostgreSQL's
    'postgres' output style ('1 day -02:03:04.5') or the copy's rendering ('1 days 5 microseconds')."""
    total = sum(int(n) * INTERVAL_UNITS[unit] for n, unit in INTERVAL_PART.findall(text))
    clock = INTERVAL_CLOCK.search(text)
    if clock:
        sign, hours, minutes, seconds = clock.groups()
        micros = (int(hours) * 3600 + int(minutes) * 60) * 1_000_000 + round(float(seconds) * 1_000_000)
        total += -micros if sign == "-" else micros
    elif not INTERVAL_PART.search(text):
        raise ValueError(f"not an interval: {text!r}")
    return total


CANONICAL: dict[str, Callable[[str], Any]] = {
    "boolean": lambda v: v in ("1", "t", "true"),
    "double precision": lambda v: float(v),
    "numeric": number_value,
    "timestamp": timestamp_value,
    "timestamptz": utc_value,
    "date": lambda v: v[:10],
    "jsonb": json_value,
    "bytea": lambda v: v.lower(),
    "citext": lambda v: v,
    "uuid": lambda v: uuid.UUID(v),
    "inet": lambda v: ipaddress.ip_interface(v),
    "time": lambda v: time.fromisoformat(v),
    "interval": interval_micros,
}


def by_pg_type(pg_type: str, text: str) -> Any:
    """The canonical form of `text` under `pg_type`; types without one compare as text."""
    func = CANONICAL.get(pg_type.split("(")[0].strip())  # numeric(10,2) compares as numeric
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


def uuid_guard(c: str, pg_type: str) -> str:
    return f"typeof({c}) = 'text' AND {uuid_predicate(c)}"


def time_guard(c: str, pg_type: str) -> str:
    return f"typeof({c}) = 'text' AND {time_predicate(c)}"


def utc_guard(c: str, pg_type: str) -> str:
    """A date-time without a zone (the census's ISO-8601 test), which the copy marks as UTC."""
    return f"typeof({c}) = 'text' AND {iso_predicate(c)} AND NOT {zone_predicate(c)}"


# Python guards: pg_type -> the check of one Python-rendered value (built once per table).
PythonGuard = Callable[[str], Callable[[object], bool]]


def float_guard(pg_type: str) -> Callable[[object], bool]:
    """REALs, and integers a double holds exactly."""
    return lambda v: isinstance(v, float) or (isinstance(v, int) and -FLOAT_EXACT_INT <= v <= FLOAT_EXACT_INT)


def numeric_guard(pg_type: str) -> Callable[[object], bool]:
    """Any number into plain numeric; into numeric(p, s) only one it holds exactly (PostgreSQL would
    round the rest without a word)."""
    precision = decimal_precision(pg_type)
    if precision is None or precision.precision is None:
        return lambda v: isinstance(v, int | float)
    limit = Decimal(10) ** (precision.precision - precision.scale)
    quantum = Decimal(1).scaleb(-precision.scale)

    def fits(v: object) -> bool:
        if not isinstance(v, int | float) or (isinstance(v, float) and v != v):
            return False
        try:
            number = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
            return abs(number) < limit and number == number.quantize(quantum)
        except InvalidOperation:
            return False

    return fits


def any_value(pg_type: str) -> Callable[[object], bool]:
    return lambda v: True


def ip_guard(pg_type: str) -> Callable[[object], bool]:
    return is_ip


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


def micros_render(c: str) -> str:
    """Integer microseconds (Django's DurationField) as days and microseconds: both parts stay exact."""
    return (
        f"CASE WHEN typeof({c}) = 'integer' THEN ({c} / {DAY_MICROS}) || ' days ' || ({c} % {DAY_MICROS}) "
        f"|| ' microseconds' WHEN {c} IS NOT NULL THEN '!' END"
    )


UNIX_EPOCH_JULIAN_DAY = 2440587.5
EPOCH_DATETIME = "[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9] [0-2][0-9]:[0-5][0-9]:[0-5][0-9]*"


def epoch_text_render(c: str) -> str:
    """SQLAlchemy's Interval on SQLite (1970-01-01 plus the duration, as a DATETIME text) as whole days
    since 1970 and the time of day: '-1 days 23:00:00' is minus one hour, exactly. Other text goes as it
    is, for PostgreSQL's interval input ('1 day' is one; a date-time never is, so nothing is ambiguous):
    what it cannot read is refused on its row."""
    days = f"julianday(substr({c}, 1, 10))"
    shaped = f"{c} GLOB '{EPOCH_DATETIME}' AND {days} IS NOT NULL"
    rendered = f"CAST({days} - {UNIX_EPOCH_JULIAN_DAY} AS INTEGER) || ' days ' || substr({c}, 12)"
    return f"CASE WHEN {shaped} THEN {rendered} ELSE {c} END"


def utc_render(c: str) -> str:
    return f"{c} || '+00'"


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


def utc_line(c: str, pg_type: str) -> str:
    covered = f"{c} GLOB '{STRICT_DATETIME}' AND length({c}) = 19"
    return f"CASE WHEN {covered} THEN {c} || '+00' ELSE '{UNCOVERED}' || {c} END"


def time_line(c: str, pg_type: str) -> str:
    return f"CASE WHEN {c} GLOB '{TIME_GLOB}' AND length({c}) = 8 THEN {c} ELSE '{UNCOVERED}' || {c} END"


def uuid_line(c: str, pg_type: str) -> str:
    """PostgreSQL's spelling of a UUID: lower case, dashed."""
    parts = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))
    dashed = " || '-' || ".join(f"substr({c}, {start}, {n})" for start, n in parts)
    return f"lower(CASE WHEN length({c}) = 32 THEN {dashed} ELSE {c} END)"


def pg_micros_line(c: str) -> str:
    return f"(extract(epoch FROM {c}) * 1000000)::numeric(40, 0)::text"


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


def uuid_hex_reverse(value: uuid.UUID) -> str:
    return value.hex  # 32 hex digits: how Django and SQLAlchemy store a UUID in a CHAR(32)


def uuid_text_reverse(value: uuid.UUID) -> str:
    return str(value)


def micros_reverse(value: timedelta) -> int:
    return value // timedelta(microseconds=1)


def epoch_text_reverse(value: timedelta) -> str:
    """The duration as SQLAlchemy's Interval stores it on SQLite: 1970-01-01 plus it, microseconds written."""
    return f"{UNIX_EPOCH + value:%Y-%m-%d %H:%M:%S.%f}"


def utc_reverse(value: datetime) -> str:
    """The UTC date-time without a zone, as Django and SQLAlchemy write it ('YYYY-MM-DD HH:MM:SS[.ffffff]')."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")


def time_reverse(value: time) -> str:
    return value.isoformat()


def timestamp_reverse(value: date) -> str:
    """SQLite's own text form: 'YYYY-MM-DD', 'YYYY-MM-DD HH:MM:SS[.ffffff]', zoned ones in UTC
    ('+00:00'). Other spellings of the same instant ('T', 'Z', '+02:00', '.5') come back in this one."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat(" ")
    return value.isoformat()
