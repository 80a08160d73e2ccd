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
from pgferry.sqlite.declared import char_length, decimal_precision, declares_time_of_day
from pgferry.sqlite.schema import Column

INT2 = (-(2**15), 2**15 - 1)
INT4 = (-(2**31), 2**31 - 1)
# Declarations that say how wide an integer is; every other INTEGER declaration gets bigint, because
# SQLite stores 64 bits in any of them and an application may write a wider value tomorrow.
NARROW_INTEGERS = {"SMALLINT": ("smallint", INT2), "INT2": ("smallint", INT2), "INT4": ("integer", INT4),
                   "MEDIUMINT": ("integer", INT4)}  # fmt: skip
UUID_NAMES = re.compile(r"^\s*(?:UUID|GUID|UNIQUEIDENTIFIER)\s*$", re.I)
FLOAT_EXACT_INT = 2**53
EPOCH_SECONDS = (100_000_000, 4_102_444_800)  # 1973 .. 2100
EPOCH_MILLIS = (EPOCH_SECONDS[0] * 1000, EPOCH_SECONDS[1] * 1000)
# REALs in a date-time column are taken for Julian day numbers only in years 1 .. 2100 (like the epoch
# bounds above); others are something else (Core Data's seconds since 2001, durations) and stay numbers.
JULIAN_DAYS = (1_721_425.5, 2_488_069.5)
FLAG_NAME = re.compile(r"^(is|has|can|should|allow|allows|show|use)_|_(flag|enabled|active|verified|deleted)$", re.I)


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


def choose_type(column: Column, census: ColumnCensus, is_key: bool = False, says_json: str | None = None) -> TypeChoice:
    """The narrowest PostgreSQL type that holds every value `census` saw in `column`; `says_json` is
    why the column says it holds JSON (pgferry.sqlite.census.json_declaration), if it does."""
    declared = column.declared_type
    if says_json and census.non_null == 0:
        return TypeChoice("jsonb", "json_any", f"empty column that says it holds JSON ({says_json})")
    if census.non_null == 0:
        return _from_declaration(column, is_key)
    classes = census.storage_classes
    if says_json and census.values_json and "blob" not in classes and not census.text_with_nul:
        converter = "json_any" if classes == ("text",) else "json_numbers"
        return _json(census, converter, f"every value is valid JSON and {says_json}")
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
    """An empty column: the declaration is all there is, taken at its widest."""
    declared = column.declared_type
    upper = declared.upper()
    kind = affinity(declared)
    reason = f"empty column declared {declared or 'without a type'}"
    precision = decimal_precision(declared)
    if precision is not None:
        return TypeChoice(precision.pg_type, "numeric", reason)
    if "BOOL" in upper:
        return TypeChoice("boolean", "bool", reason)
    if declares_time_of_day(declared):
        return TypeChoice("time", "time_text", reason)
    if UUID_NAMES.match(declared):
        return TypeChoice("uuid", "uuid_text", reason)
    if _declares_time(declared):
        pg = "date" if upper.strip() == "DATE" else "timestamp"
        return TypeChoice(pg, "timestamp_text", reason)
    if kind == "INTEGER":
        pg_type, _bounds = NARROW_INTEGERS.get(upper.strip(), ("bigint", None))
        return TypeChoice(pg_type, "int", reason)
    limit = char_length(declared)
    if limit is not None and kind == "TEXT":
        return TypeChoice(f"varchar({limit})", "text", reason)
    mapping = {
        "TEXT": ("text", "text"),
        "BLOB": ("bytea", "bytes"),
        "REAL": ("double precision", "float"),
        "NUMERIC": ("numeric", "numeric"),
    }
    pg, converter = mapping[kind]
    return TypeChoice(pg, converter, f"{reason} ({kind} affinity)")


def integer_choice(pg_type: str, census: ColumnCensus, reason: str) -> TypeChoice:
    """`pg_type` (smallint, integer or bigint) when it holds every integer, else the narrowest that does."""
    low, high = census.int_min, census.int_max
    if pg_type == "smallint" and not (census.integers and not _within(low, high, INT2)):
        return TypeChoice("smallint", "int", reason)
    if pg_type in ("smallint", "integer") and not (census.integers and not _within(low, high, INT4)):
        note = None if pg_type == "integer" else f"{reason}, but integers from {low} to {high}: integer"
        return TypeChoice("integer", "int", reason, note=note)
    note = None if pg_type == "bigint" else f"{reason}, but integers from {low} to {high}: bigint"
    return TypeChoice("bigint", "int", reason, note=note)


def numeric_choice(declared: str, census: ColumnCensus) -> TypeChoice:
    """numeric(p, s) as declared when every number fits it exactly, else plain numeric (reported)."""
    precision = decimal_precision(declared)
    if precision is None or precision.precision is None:
        return TypeChoice("numeric", "numeric", f"declared {declared or 'NUMERIC'}: numbers kept exact")
    if not census.decimal_misfits:
        return TypeChoice(precision.pg_type, "numeric", f"declared {declared}, every number fits")
    return TypeChoice(
        "numeric",
        "numeric",
        f"declared {declared}",
        note=f"declared {declared} but {census.decimal_misfits} numbers have more digits than it allows: "
        "plain numeric keeps them exact (numeric(p, s) would round them)",
    )


def _integers(column: Column, census: ColumnCensus, is_key: bool) -> TypeChoice:
    declared = column.declared_type
    low, high = census.int_min, census.int_max
    if census.only_flags and ("BOOL" in declared.upper() or FLAG_NAME.search(column.name)):
        return TypeChoice("boolean", "bool", "only 0/1 values in a flag column")
    if decimal_precision(declared) is not None:
        return numeric_choice(declared, census)
    if _declares_time(declared):
        if _within(low, high, EPOCH_SECONDS):
            return TypeChoice("timestamptz", "epoch_seconds", f"declared {declared}, integers are epoch seconds")
        if _within(low, high, EPOCH_MILLIS):
            return TypeChoice("timestamptz", "epoch_millis", f"declared {declared}, integers are epoch milliseconds")
    narrow = NARROW_INTEGERS.get(declared.upper().strip())
    if narrow is not None and not is_key:
        return integer_choice(narrow[0], census, f"declared {declared}")
    key = " (key column)" if is_key else ""
    return TypeChoice("bigint", "int", f"integers from {low} to {high}{key}; SQLite integers are 64-bit")


def _reals(column: Column, census: ColumnCensus) -> TypeChoice:
    declared = column.declared_type
    if decimal_precision(declared) is not None:
        return numeric_choice(declared, census)
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
    if census.texts_time and declares_time_of_day(declared):
        return TypeChoice("time", "time_text", f"declared {declared}, every value is a time of day")
    if census.texts_uuid and UUID_NAMES.match(declared):
        return TypeChoice("uuid", "uuid_text", f"declared {declared}, every value is a UUID")
    if census.texts_json:
        return _json(census, "json_text", "every value is a JSON object or array")
    note = None
    if affinity(declared) in ("INTEGER", "REAL", "NUMERIC"):
        note = f"declared {declared} but holds {census.texts} text values: stored as text"
    limit = char_length(declared)
    if limit is not None and note is None:
        if census.text_max_chars <= limit:
            return TypeChoice(f"varchar({limit})", "text", f"declared {declared}, every value fits")
        note = f"declared {declared} but holds values up to {census.text_max_chars} characters: stored as text"
    return TypeChoice("text", "text", "text values", note=note)


# A --cast target (or an --into-existing column's type) and the converter that brings the census's values
# to it; text_any hands PostgreSQL the values as text (its own parser decides, and a value it refuses
# stops the copy on that row, naming it).
TEXT_TYPES = ("text", "varchar", "char", "bpchar", "citext")


def cast_choice(
    pg_type: str, column: Column, census: ColumnCensus, reason: str | None = None, category: str | None = None
) -> TypeChoice:
    """The choice a --cast file (or the target's column) sets, rendered the way the target type reads the
    values the column holds. `category` is PostgreSQL's typcategory of the type when known ('S' string,
    'E' enum): text values go to those as they are."""
    classes = set(census.storage_classes)
    base = pg_type.split("(")[0].strip().lower()
    texts, integers, numbers = classes <= {"text"}, classes <= {"integer"}, classes <= {"integer", "real"}
    converter = "text_any"
    if base == "bytea":
        converter = "bytes" if classes <= {"blob"} else "text_bytes" if texts else "text_any"
    elif (base in TEXT_TYPES or category in ("S", "E")) and texts:
        converter = "text"  # an enum reads its labels as text; varchar(n) refuses a longer value
    elif base in ("json", "jsonb") and classes and "blob" not in classes:
        converter = "json_any" if texts else "json_numbers"  # numbers stored as numbers: Python's exact repr
    elif base in ("uuid", "time", "inet") and texts:
        hex32 = (char_length(column.declared_type) or 0) == 32
        converter = {"uuid": "uuid_hex" if hex32 else "uuid_text", "time": "time_text", "inet": "inet_text"}[base]
    elif base == "timestamptz" and texts:
        converter = "timestamp_text" if census.texts_with_zone else "utc_text"
    elif base == "timestamptz" and integers:
        millis = _within(census.int_min, census.int_max, EPOCH_MILLIS)
        converter = "epoch_millis" if millis else "epoch_seconds"
    elif base in ("timestamp", "date") and texts:
        converter = "timestamp_text"
    elif base == "interval" and integers:
        converter = "micros_interval"  # Django's DurationField: integer microseconds
    elif base == "interval" and texts:
        converter = "epoch_text_interval"  # SQLAlchemy's Interval: 1970-01-01 plus the duration, as a DATETIME
    elif base == "boolean" and integers:
        converter = "bool"
    elif base in ("smallint", "integer", "bigint") and integers:
        converter = "int"
    elif base in ("numeric", "decimal") and numbers:
        # numeric(p, s) rounds a value with more decimals without a word: every value is checked.
        exact = decimal_precision(pg_type.replace("decimal", "numeric"))
        converter = "numeric_fit" if exact is not None and exact.precision is not None else "numeric"
    return TypeChoice(pg_type, converter, reason or f"--cast file sets {pg_type}")


def _json(census: ColumnCensus, converter: str, reason: str) -> TypeChoice:
    """jsonb, or json when a value holds the escape \\u0000: jsonb cannot hold U+0000 and would refuse
    the row, json keeps each text exactly as it is (and still offers the JSON operators)."""
    if not census.json_nul_escapes:
        return TypeChoice("jsonb", converter, reason)
    return TypeChoice(
        "json",
        converter,
        reason,
        note=f"{census.json_nul_escapes} values hold the JSON escape \\u0000, which jsonb cannot hold: "
        "json keeps every text exactly as it is (no jsonb operators or GIN indexes on it)",
    )
