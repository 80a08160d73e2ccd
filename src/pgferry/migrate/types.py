"""Pick a PostgreSQL type for a SQLite column from what it declares AND what it holds.

SQLite's declared type is only an affinity; the census says what is really stored. The rule is
that the chosen type must hold every value losslessly; when the data breaks the declared type,
the choice widens (to text or bytea) and says so in `note`. Each choice carries the converter the
copy applies to values and the reason shown in `copy --dry-run`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pgferry.sqlite.census import ColumnCensus
from pgferry.sqlite.schema import Column

INT4 = (-(2**31), 2**31 - 1)
FLOAT_EXACT_INT = 2**53
EPOCH_SECONDS = (100_000_000, 4_102_444_800)  # 1973 .. 2100
EPOCH_MILLIS = (EPOCH_SECONDS[0] * 1000, EPOCH_SECONDS[1] * 1000)
# REALs in a date-time column are taken for Julian day numbers only in years 1 .. 2100 (like the epoch
# bounds above); others are something else (Core Data's seconds since 2001, durations) and stay numbers.
JULIAN_DAYS = (1_721_425.5, 2_488_069.5)
FLAG_NAME = re.compile(r"^(is|has|can|should|allow|allows|show|use)_|_(flag|enabled|active|verified|deleted)$", re.I)
VARCHAR = re.compile(r"^\s*(?:N?VAR)?CHAR(?:ACTER)?(?:\s+VARYING)?\s*\(\s*(\d+)\s*\)", re.I)


@dataclass(frozen=True)
class TypeChoice:
    """The PostgreSQL type for a column and how values get there."""

    pg_type: str
    converter: str  # how the copy renders the value: see pgferry.migrate.rowformat
    reason: str
    note: str | None = None  # set when the data broke the declared type: the report lists it


def affinity(declared: str) -> str:
    """SQLite's type affinity rules (section 3.1 of the datatype documentation)."""
    upper = declared.upper()
    if "INT" in upper:
        return "INTEGER"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if not upper or "BLOB" in upper:
        return "BLOB"
    if any(word in upper for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def _declares_time(declared: str) -> bool:
    upper = declared.upper()
    return "DATE" in upper or "TIME" in upper


def _within(low: int | float | None, high: int | float | None, bounds: tuple[float, float]) -> bool:
    return low is not None and high is not None and bounds[0] <= low and high <= bounds[1]


def choose_type(column: Column, census: ColumnCensus, is_key: bool = False) -> TypeChoice:
    """The narrowest PostgreSQL type that holds every value `census` saw in `column`."""
    declared = column.declared_type
    if census.non_null == 0:
        return _from_declaration(column, is_key)
    classes = census.storage_classes
    if "blob" in classes:
        if classes == ("blob",):
            return TypeChoice("bytea", "bytes", "holds BLOBs")
        return TypeChoice(
            "bytea",
            "bytes",
            f"holds {'/'.join(classes)}",
            note=f"mixes BLOBs with {'/'.join(c for c in classes if c != 'blob')}: "
            "non-BLOB values stored as their UTF-8 or decimal text bytes",
        )
    if classes == ("integer",):
        return _integers(column, census, is_key)
    if classes == ("real",) or classes == ("integer", "real"):
        return _reals(column, census)
    if classes == ("text",):
        return _texts(column, census)
    mixed = "/".join(classes)
    return TypeChoice(
        "text",
        "text_any",
        f"holds {mixed}",
        note=f"declared {declared or 'without a type'} but holds {mixed}: stored as text "
        "(integers as their digits, REALs as the shortest text that reads back as the same double)",
    )


def _from_declaration(column: Column, is_key: bool) -> TypeChoice:
    declared = column.declared_type
    upper = declared.upper()
    kind = affinity(declared)
    if "BOOL" in upper:
        return TypeChoice("boolean", "bool", f"empty column declared {declared}")
    if _declares_time(declared):
        pg = "date" if upper.strip() == "DATE" else "timestamp"
        return TypeChoice(pg, "timestamp_text", f"empty column declared {declared}")
    mapping = {
        "INTEGER": ("bigint", "int"),
        "TEXT": ("text", "text"),
        "BLOB": ("bytea", "bytes"),
        "REAL": ("double precision", "float"),
        "NUMERIC": ("numeric", "numeric"),
    }
    pg, converter = mapping[kind]
    return TypeChoice(pg, converter, f"empty column, {kind} affinity (declared {declared or 'no type'})")


def _integers(column: Column, census: ColumnCensus, is_key: bool) -> TypeChoice:
    declared = column.declared_type
    low, high = census.int_min, census.int_max
    if census.only_flags and ("BOOL" in declared.upper() or FLAG_NAME.search(column.name)):
        return TypeChoice("boolean", "bool", "only 0/1 values in a flag column")
    if _declares_time(declared):
        if _within(low, high, EPOCH_SECONDS):
            return TypeChoice("timestamptz", "epoch_seconds", f"declared {declared}, integers are epoch seconds")
        if _within(low, high, EPOCH_MILLIS):
            return TypeChoice("timestamptz", "epoch_millis", f"declared {declared}, integers are epoch milliseconds")
    if is_key or "BIG" in declared.upper() or not _within(low, high, INT4):
        return TypeChoice("bigint", "int", f"integers from {low} to {high}" + (" (key column)" if is_key else ""))
    return TypeChoice("integer", "int", f"integers from {low} to {high}")


def _reals(column: Column, census: ColumnCensus) -> TypeChoice:
    declared = column.declared_type
    if census.integers and not _within(census.int_min, census.int_max, (-FLOAT_EXACT_INT, FLOAT_EXACT_INT)):
        return TypeChoice("numeric", "numeric", "integers beyond 2^53 mixed with reals: numeric keeps both exact")
    # Whole days among them are stored as integers (a date-time column has NUMERIC affinity).
    julian = _within(census.real_min, census.real_abs_max, JULIAN_DAYS) and (
        not census.integers or _within(census.int_min, census.int_max, JULIAN_DAYS)
    )
    if _declares_time(declared) and julian:
        return TypeChoice("timestamp", "julian_day", f"declared {declared}, values are Julian day numbers")
    note = None
    if affinity(declared) == "INTEGER":
        note = f"declared {declared} but holds {census.reals} REAL values: double precision keeps them"
    return TypeChoice("double precision", "float", "REAL values (8-byte, never 4-byte real)", note=note)


def _texts(column: Column, census: ColumnCensus) -> TypeChoice:
    declared = column.declared_type
    if census.text_with_nul:
        return TypeChoice(
            "bytea",
            "text_bytes",
            "text with NUL bytes",
            note=f"{census.text_with_nul} text values contain NUL bytes, which PostgreSQL text "
            "cannot hold: stored as their UTF-8 bytes in bytea",
        )
    if census.text_not_utf8:
        return TypeChoice(
            "bytea",
            "text_bytes",
            "text that is not UTF-8",
            note=f"{census.text_not_utf8} text values are not valid UTF-8, which PostgreSQL text "
            "cannot hold: stored as their bytes in bytea",
        )
    if census.texts_iso_datetime:
        if census.texts_iso_date_only:
            return TypeChoice("date", "date_text", "every value is an ISO-8601 date")
        if census.texts_with_zone:
            return TypeChoice("timestamptz", "timestamp_text", "every value is an ISO-8601 date-time with a zone")
        if census.texts_without_zone:
            return TypeChoice("timestamp", "timestamp_text", "every value is an ISO-8601 date-time")
    if census.texts_json:
        return TypeChoice("jsonb", "json_text", "every value is a JSON object or array")
    note = None
    if affinity(declared) in ("INTEGER", "REAL", "NUMERIC"):
        note = f"declared {declared} but holds {census.texts} text values: stored as text"
    match = VARCHAR.match(declared)
    if match and note is None:
        limit = int(match.group(1))
        if census.text_max_bytes <= limit:
            return TypeChoice(f"varchar({limit})", "text", f"declared {declared}, every value fits")
        note = f"declared {declared} but holds values up to {census.text_max_bytes} bytes: stored as text"
    return TypeChoice("text", "text", "text values", note=note)
