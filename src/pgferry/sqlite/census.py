"""A census of a table's data: what each column really holds.

SQLite's declared types are suggestions (type affinity); a column declared INTEGER can hold text,
and a TEXT column of timestamps is the norm in legacy apps. Choosing a PostgreSQL type, finding
sparse columns, or checking a split all need the facts. The census gets them cheaply:

- one scan per table, all columns at once, of aggregates evaluated in C: NULLs, storage classes,
  ranges, sizes, and "is every text value of format F" as min() over a predicate;
- predicates are nested CASEs so the expensive part (date(), json_valid()) only runs on values
  that passed the cheap test (a GLOB, a first character): a column of prose costs almost nothing.
  Reading a wide table once matters more than anything else: the scale-1 forum replies are 425 MB.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from dataclasses import dataclass
from typing import Any

from pgferry.sqlite.declared import IP_FUNCTION, check_functions, declared_checks, every_text, json_validated
from pgferry.sqlite.schema import Table
from pgferry.sqltext import quote_ident

# SQLite caps result columns (SQLITE_MAX_COLUMN, 2000 by default): wide tables are measured in
# several scans of at most this many columns each.
COLUMNS_PER_SCAN = 100
ISO_DATE_GLOB = "[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]*"
FIELDS = (
    "nulls",
    "integers",
    "reals",
    "texts",
    "blobs",
    "int_min",
    "int_max",
    "real_abs_max",
    "real_min",
    "text_max_chars",
    "text_with_nul",
    "text_not_utf8",
    "blob_max_bytes",
    "date_candidate",
    "json_candidate",
)
DATE_FIELDS = ("texts_iso_datetime", "texts_iso_date_only", "texts_with_zone", "texts_without_zone")
# What the date checks measure: two "every text is" flags and the number of texts with a zone (one
# sum answers both "all zoned" and "none zoned").
DATE_CHECKS = ("texts_iso_datetime", "texts_iso_date_only", "zoned_texts")


@dataclass(frozen=True)
class ColumnCensus:
    """What one column holds; counts are over all rows of the table."""

    name: str
    rows: int
    nulls: int = 0
    integers: int = 0
    reals: int = 0
    texts: int = 0
    blobs: int = 0
    int_min: int | None = None
    int_max: int | None = None
    real_abs_max: float | None = None
    real_min: float | None = None
    text_max_chars: int = 0  # measured for CHAR(n) / VARCHAR(n) declarations, whose n counts characters
    text_with_nul: int = 0
    text_not_utf8: int = 0  # text values whose bytes are not valid UTF-8 (PostgreSQL text refuses them)
    blob_max_bytes: int = 0
    # Formats shared by every text value (False when there are no texts).
    texts_iso_datetime: bool = False  # each is an ISO-8601 date or date-time that exists
    texts_iso_date_only: bool = False
    texts_with_zone: bool = False  # each carries Z or a +hh:mm offset
    texts_without_zone: bool = False
    texts_json: bool = False  # each is a JSON object or array
    # Checks a declaration calls for (pgferry.sqlite.declared): False / None when not asked.
    texts_time: bool = False  # each is 'HH:MM:SS[.ffffff]' (declared TIME)
    texts_uuid: bool = False  # each is 32 hex digits or a dashed UUID (declared UUID, CHAR(32), CHAR(36))
    texts_inet: bool = False  # each is an IP address (declared INET, CHAR(15), CHAR(39))
    decimal_misfits: int | None = None  # numbers a declared DECIMAL(p, s) does not hold exactly
    # Measured only where JSON is likely (see json_declaration): every non-NULL value is valid JSON
    # (numbers included), and how many texts hold the escape \u0000, which jsonb cannot hold.
    values_json: bool = False
    json_nul_escapes: int = 0

    @property
    def non_null(self) -> int:
        return self.rows - self.nulls

    @property
    def null_fraction(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    @property
    def storage_classes(self) -> tuple[str, ...]:
        """The storage classes present, in SQLite's order."""
        counts = {"integer": self.integers, "real": self.reals, "text": self.texts, "blob": self.blobs}
        return tuple(name for name, count in counts.items() if count)

    @property
    def only_flags(self) -> bool:
        """Every integer is 0 or 1."""
        return self.integers > 0 and self.int_min is not None and self.int_min >= 0 and (self.int_max or 0) <= 1

    @property
    def real_nonfinite(self) -> bool:
        return self.real_abs_max is not None and self.real_abs_max > 1.7976931348623157e308


@dataclass(frozen=True)
class TableCensus:
    table: str
    rows: int
    columns: tuple[ColumnCensus, ...]
    # Set when the columns were measured on a sample of this many rows (`rows` is still the whole
    # table): the facts then hold for the sample only, and whoever relies on them checks every row.
    sample_rows: int | None = None

    def column(self, name: str) -> ColumnCensus:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


STRICT_DATETIME = "[0-9][0-9][0-9][0-9]-[01][0-9]-[0-3][0-9][ T][0-2][0-9]:[0-5][0-9]:[0-5][0-9]"


# A fraction of a second finer than PostgreSQL's microseconds, which it would round away.
SUB_MICROSECOND = "*.[0-9][0-9][0-9][0-9][0-9][0-9][0-9]*"


def iso_predicate(c: str) -> str:
    """1 when the text is an ISO-8601 date or date-time that exists, else 0.

    The common shape 'YYYY-MM-DD HH:MM:SS' is recognised by a GLOB plus substring comparisons;
    only days 29-31 need date(), which normalises with a modifier, so '2024-02-30' no longer
    compares equal to itself. Other shapes go through datetime(), which accepts stray spaces that
    PostgreSQL would trim or collapse: such a value must end in a digit or Z and hold no double
    space, and more than six digits of a second, which PostgreSQL would round, make it text.
    date() costs about a microsecond a call, which is seconds on a table of timestamps.
    """
    day_exists = f"date(substr({c}, 1, 10), '+0 days') = substr({c}, 1, 10)"
    plain_day = f"substr({c}, 9, 2) BETWEEN '01' AND '28' AND substr({c}, 6, 2) BETWEEN '01' AND '12'"
    return (
        f"CASE WHEN length({c}) <> length(CAST({c} AS BLOB)) THEN 0 "  # not ASCII, or a NUL byte
        f"WHEN {c} GLOB '{STRICT_DATETIME}' THEN CASE WHEN substr({c}, 12, 2) > '23' THEN 0 "
        f"WHEN {plain_day} THEN 1 WHEN {day_exists} THEN 1 ELSE 0 END "
        f"WHEN {c} GLOB '{ISO_DATE_GLOB}' THEN CASE WHEN {day_exists} AND (length({c}) = 10 OR "
        f"(datetime({c}) IS NOT NULL AND {c} GLOB '*[0-9Z]' AND instr({c}, '  ') = 0 "
        f"AND {c} NOT GLOB '{SUB_MICROSECOND}')) THEN 1 ELSE 0 END "
        "ELSE 0 END"
    )


def zone_predicate(c: str) -> str:
    return f"(CASE WHEN length({c}) > 19 THEN {c} GLOB '*[+-][0-9][0-9]:[0-9][0-9]' OR {c} GLOB '*Z' ELSE 0 END)"


def _format_checks(column: str) -> list[str]:
    """Full date checks for a candidate column over all its text values (DATE_CHECKS)."""
    c = quote_ident(column)
    return [
        every_text(c, iso_predicate(c)),
        every_text(c, f"length({c}) = 10"),
        f"sum(CASE WHEN typeof({c}) = 'text' THEN {zone_predicate(c)} END)",
    ]


def _json_checks(column: str) -> list[tuple[str, str]]:
    """(field, aggregate) of the JSON checks: every non-NULL value valid JSON, texts holding \\u0000.
    instr() is a byte search: it only runs on the columns a cheap test or the declaration picked."""
    c = quote_ident(column)
    return [
        ("values_json", f"min(CASE WHEN {c} IS NOT NULL THEN coalesce(json_valid({c}), 0) END)"),
        ("json_nul_escapes", f"sum(CASE WHEN typeof({c}) = 'text' THEN instr({c}, '\\u0000') > 0 END)"),
    ]


def json_declaration(table: Table, column: str) -> str | None:
    """Why `column` says it holds JSON, or None: a declared type naming JSON (SQLAlchemy's JSON), or a
    CHECK calling json_valid() on it (Django's JSONField declares text with one)."""
    declared = table.column(column).declared_type
    if "JSON" in declared.upper():
        return f"declared {declared}"
    checks = (*table.checks, *(check for c in table.columns for check in c.checks))  # any CHECK may name it
    validated = any(column.lower() in json_validated(check) for check in checks)
    return "a CHECK calls json_valid() on it" if validated else None


def _second_pass(column: str, shape: str, declared_varchar: bool) -> list[tuple[str, str]]:
    """(field, aggregate) pairs still needed for a column, given what count/min/max showed."""
    c = quote_ident(column)
    kind = f"typeof({c})"
    numeric = [
        ("reals", f"sum({kind} = 'real')"),
        ("int_min", f"min(CASE WHEN {kind} = 'integer' THEN {c} END)"),
        ("int_max", f"max(CASE WHEN {kind} = 'integer' THEN {c} END)"),
        ("real_abs_max", f"max(CASE WHEN {kind} = 'real' THEN abs({c}) END)"),
        ("real_min", f"min(CASE WHEN {kind} = 'real' THEN {c} END)"),
    ]
    # length() counts characters up to the first NUL: as many characters as bytes proves an ASCII
    # value without NUL, and that count is cheaper than instr()'s search; only other values are searched.
    nul = f"CASE WHEN length({c}) = length(CAST({c} AS BLOB)) THEN 0 ELSE instr({c}, char(0)) > 0 END"
    # SQLite never checks UTF-8. Equal lengths mean no continuation byte: the text is ASCII, or holds a
    # lead byte with none after it (Latin-1's é), which SQLite's GLOB reads as U+FFFD (a real U+FFFD
    # has continuation bytes). Only other values, non-ASCII ones, go to Python's decoder.
    utf8 = (
        f"CASE WHEN length({c}) = length(CAST({c} AS BLOB)) THEN {c} GLOB '*' || char(65533) || '*' "
        f"ELSE {NOT_UTF8}(CAST({c} AS BLOB)) END"
    )
    text = [
        ("text_with_nul", f"sum(CASE WHEN {kind} = 'text' THEN {nul} END)"),
        ("text_not_utf8", f"sum(CASE WHEN {kind} = 'text' THEN {utf8} END)"),
    ]
    if declared_varchar:
        text.append(("text_max_chars", f"max(CASE WHEN {kind} = 'text' THEN length({c}) END)"))
    if shape == "numeric":
        return numeric
    if shape == "text":
        return text
    if shape == "mixed":
        return [
            ("integers", f"sum({kind} = 'integer')"),
            ("texts", f"sum({kind} = 'text')"),
            ("blobs", f"sum({kind} = 'blob')"),
            *numeric,
            *text,
        ]
    return []


NOT_UTF8 = "pgferry_not_utf8"


def not_utf8(data: bytes | None) -> int:
    """1 when `data` is not valid UTF-8 (SQL function NOT_UTF8, called on non-ASCII text only)."""
    try:
        (data or b"").decode("utf-8")
    except UnicodeDecodeError:
        return 1
    return 0


def _run_aggregates(
    conn: sqlite3.Connection, source: str, wanted: list[tuple[str, str, str]], params: tuple[Any, ...] = ()
) -> dict[str, dict[str, Any]]:
    """Evaluate (column, field, aggregate) triples in as few scans as SQLite's column limit allows."""
    results: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), COLUMNS_PER_SCAN):
        batch = wanted[start : start + COLUMNS_PER_SCAN]
        row = conn.execute(f"SELECT {', '.join(expr for _c, _f, expr in batch)} FROM {source}", params).fetchone()
        for (column, field_name, _expr), value in zip(batch, row, strict=True):
            results.setdefault(column, {})[field_name] = value
    return results


def _starts_like(prefix: bytes | None, dates: bool) -> bool:
    if prefix is None:
        return False
    value = prefix.decode("utf-8", "replace")
    if dates:
        return len(value) >= 10 and value[:4].isdigit() and value[4] == "-" and value[7] == "-"
    return value[:1] in ("{", "[")


def _shape(low_type: str | None, high_type: str | None) -> str:
    """SQLite orders numbers < text < blobs: the classes of min and max bound what lies between."""
    if high_type is None:
        return "empty"
    if high_type in ("integer", "real"):
        return "numeric"
    if low_type == high_type == "text":
        return "text"
    if low_type == "blob":
        return "blob"
    return "mixed"


def _expected_shape(declared: str) -> str:
    upper = declared.upper()
    if "INT" in upper or "REAL" in upper or "FLOA" in upper or "DOUB" in upper or "NUM" in upper or "BOOL" in upper:
        return "numeric"
    if any(word in upper for word in ("CHAR", "CLOB", "TEXT", "DATE", "TIME")):
        return "text"
    return "mixed"


def _first_pass(column: str, expected: str, declared_varchar: bool, declares_time: bool) -> list[tuple[str, str]]:
    c = quote_ident(column)
    basics = [
        ("count", f"count({c})"),
        ("low_type", f"typeof(min({c}))"),
        ("high_type", f"typeof(max({c}))"),
        ("low_prefix", f"CAST(substr(min({c}), 1, 16) AS BLOB)"),
        ("high_prefix", f"CAST(substr(max({c}), 1, 16) AS BLOB)"),
    ]
    # Speculate from the declared type: when the data agrees, one scan answers everything. For a
    # numeric column that is one count of REALs: without any, the integer bounds are min and max.
    if expected == "numeric":
        # Only numbers are read back: a text (maybe not UTF-8) among them would have to be decoded.
        number = "CASE WHEN typeof({0}({1})) IN ('integer', 'real') THEN {0}({1}) END"
        basics += [("low_value", number.format("min", c)), ("high_value", number.format("max", c))]
        guesses = _second_pass(column, expected, declared_varchar)[:1]
    else:
        guesses = _second_pass(column, expected, declared_varchar)
    if declares_time:
        # Dates hold no NUL: the NUL scan is only needed when they turn out not to be dates (retried).
        guesses = [g for g in guesses if g[0] not in ("text_with_nul", "text_not_utf8")]
        guesses += list(zip(DATE_CHECKS, _format_checks(column), strict=True))
    return basics + [(f"guess:{field}", expr) for field, expr in guesses]


def take_census(conn: sqlite3.Connection, table: Table, where: str = "", params: tuple[Any, ...] = ()) -> TableCensus:
    """Measure every column of `table`, reading it as few times as the data allows.

    Pass 1 asks count, the classes of min and max, and what the declared type suggests will be
    needed (numeric ranges for numeric columns, NUL bytes for text columns). SQLite orders numbers
    < text < blobs, so min and max prove whether a column is all numbers, all text or mixed; only
    columns that broke their declared type need pass 2. Pass 3 runs full date/JSON checks on
    columns whose smallest and largest values look like dates or JSON, and JSON checks on columns that
    say they hold JSON (json_declaration); prose is ruled out unread.
    """
    source = quote_ident(table.name) + where
    conn.create_function(NOT_UTF8, 1, not_utf8, deterministic=True)
    rows = conn.execute(f"SELECT count(*) FROM {source}", params).fetchone()[0]
    varchar = {c.name: "CHAR" in c.declared_type.upper() for c in table.columns}
    expected = {c.name: _expected_shape(c.declared_type) for c in table.columns}
    timeish = {c.name: any(w in c.declared_type.upper() for w in ("DATE", "TIME")) for c in table.columns}
    alias = table.rowid_alias  # the rowid itself: integers, never NULL, bounds from the b-tree ends
    first = [
        (c.name, f, e)
        for c in table.columns
        if c.name != alias
        for f, e in _first_pass(c.name, expected[c.name], varchar[c.name], timeish[c.name])
    ]
    declared = [
        (c.name, f"declared:{f}", e)
        for c in table.columns
        for f, e in declared_checks(quote_ident(c.name), c.declared_type)
    ]
    if any(IP_FUNCTION in expr for _c, _f, expr in declared):
        check_functions(conn)
    first += declared
    results = _run_aggregates(conn, source, first, params) if first else {}
    if alias is not None:
        low, high = conn.execute(f"SELECT min(rowid), max(rowid) FROM {source}", params).fetchone()
        kind = "integer" if rows else None
        results[alias] = {"count": rows, "low_type": kind, "high_type": kind, "low_prefix": None,
                          "high_prefix": None, "low_value": low, "high_value": high, "guess:reals": 0}  # fmt: skip
    measured: dict[str, dict[str, Any]] = {}
    retry: list[tuple[str, str, str]] = []
    shapes: dict[str, str] = {}
    for column in table.columns:
        info = results[column.name]
        shape = _shape(info["low_type"], info["high_type"])
        shapes[column.name] = shape
        counts: dict[str, Any] = {"nulls": rows - info["count"]}
        for key, value in info.items():
            if key.startswith("declared:") and value is not None:
                counts[key[9:]] = value if key == "declared:decimal_misfits" else bool(value)
        if shape == "text":
            counts["texts"] = info["count"]
        elif shape == "blob":
            counts["blobs"] = info["count"]
        if shape == expected[column.name] or shape in ("empty", "blob"):
            counts.update({k[6:]: v for k, v in info.items() if k.startswith("guess:") and v is not None})
            if shape == "numeric" and not counts.get("reals"):
                counts.update(int_min=info["low_value"], int_max=info["high_value"])
            elif shape == "numeric":  # REALs among the integers: bounds per storage class
                retry += [(column.name, f, e) for f, e in _second_pass(column.name, shape, varchar[column.name])[1:]]
            if shape == "text" and timeish[column.name] and not counts.get("texts_iso_datetime"):
                retry += [(column.name, f, e) for f, e in _second_pass(column.name, shape, False)[:2]]
        else:
            retry += [(column.name, f, e) for f, e in _second_pass(column.name, shape, varchar[column.name])]
        measured[column.name] = counts
    for name, values in _run_aggregates(conn, source, retry, params).items():
        measured[name].update({k: v for k, v in values.items() if v is not None})
    checks: list[tuple[str, str, str]] = []
    documents: set[str] = set()  # texts whose smallest and largest look like objects or arrays
    for column in table.columns:
        counts, info = measured[column.name], results[column.name]
        if shapes[column.name] == "numeric":
            counts["integers"] = info["count"] - counts.get("reals", 0)
        shape = shapes[column.name]
        if shape == "text" and _starts_like(info["low_prefix"], False) and _starts_like(info["high_prefix"], False):
            documents.add(column.name)
        if column.name in documents or (shape in ("text", "numeric", "mixed") and json_declaration(table, column.name)):
            checks += [(column.name, f, e) for f, e in _json_checks(column.name)]
        if shape != "text" or "texts_iso_datetime" in counts:
            continue  # no texts, or the date checks were answered by the speculative first pass
        if _starts_like(info["low_prefix"], True) and _starts_like(info["high_prefix"], True):
            checks += list(zip([column.name] * 3, DATE_CHECKS, _format_checks(column.name), strict=True))
    for name, values in _run_aggregates(conn, source, checks, params).items():
        measured[name].update(
            {
                k: v if k == "zoned_texts" else (v or 0) if k == "json_nul_escapes" else bool(v)
                for k, v in values.items()
            }
        )
        measured[name]["texts_json"] = name in documents and bool(values.get("values_json"))
    for counts in measured.values():
        iso = bool(counts.get("texts_iso_datetime", False))
        counts["texts_iso_datetime"] = iso
        zoned = counts.pop("zoned_texts", None)
        if zoned is not None:
            counts["texts_with_zone"] = zoned == counts.get("texts", 0)
            counts["texts_without_zone"] = zoned == 0
        for field_name in DATE_FIELDS[1:]:
            counts[field_name] = bool(counts.get(field_name)) and iso
    columns = tuple(ColumnCensus(name=name, rows=rows, **counts) for name, counts in measured.items())
    return TableCensus(table=table.name, rows=rows, columns=columns)


def _merge_column(parts: list[ColumnCensus]) -> ColumnCensus:
    """Combine the census of row ranges: sums, extremes, and formats shared by every range with texts."""

    def pick(func, name: str):  # type: ignore[no-untyped-def]
        values = [getattr(p, name) for p in parts if getattr(p, name) is not None]
        return func(values) if values else None

    with_texts = [p for p in parts if p.texts]
    merged = {
        name: sum(getattr(p, name) for p in parts)
        for name in ("rows", "nulls", "integers", "reals", "texts", "blobs", "text_with_nul", "text_not_utf8")
    }
    merged.update(
        int_min=pick(min, "int_min"),
        int_max=pick(max, "int_max"),
        real_abs_max=pick(max, "real_abs_max"),
        real_min=pick(min, "real_min"),
        text_max_chars=max(p.text_max_chars for p in parts),
        decimal_misfits=pick(sum, "decimal_misfits"),
        blob_max_bytes=max(p.blob_max_bytes for p in parts),
    )
    for name in (*DATE_FIELDS, "texts_json", "texts_time", "texts_uuid", "texts_inet"):
        merged[name] = bool(with_texts) and all(getattr(p, name) for p in with_texts)
    with_values = [p for p in parts if p.non_null]
    merged["values_json"] = bool(with_values) and all(p.values_json for p in with_values)
    merged["json_nul_escapes"] = sum(p.json_nul_escapes for p in parts)
    return ColumnCensus(name=parts[0].name, **merged)


def merge_censuses(parts: list[TableCensus]) -> TableCensus:
    """One table's census from the censuses of disjoint row ranges."""
    if len(parts) == 1:
        return parts[0]
    columns = tuple(_merge_column([p.columns[i] for p in parts]) for i in range(len(parts[0].columns)))
    return TableCensus(table=parts[0].table, rows=sum(p.rows for p in parts), columns=columns)


SAMPLE_WINDOWS = 32
SAMPLE_WINDOW_ROWS = 128


def take_sample_census(conn: sqlite3.Connection, table: Table, rows: int) -> TableCensus:
    """The census of SAMPLE_WINDOWS runs of consecutive rowids spread over a table of `rows` rows.

    Each run is a b-tree seek plus a short range, so the cost does not grow with the table. The
    result says what the sample holds (`sample_rows` set, `rows` the whole table); the rowid alias
    keeps the bounds of the whole table, read from the b-tree ends.
    """
    key = table.rowid_name
    if table.without_rowid or key is None:  # no rowid to seek by: measure it all
        return take_census(conn, table)
    name = quote_ident(table.name)
    low, high = conn.execute(f"SELECT min({key}), max({key}) FROM {name}").fetchone()
    if low is None:
        return take_census(conn, table)
    span = high - low + 1
    width = max(1, min(span // SAMPLE_WINDOWS, SAMPLE_WINDOW_ROWS * span // max(rows, 1)))
    starts = sorted({low + (span - width) * i // max(1, SAMPLE_WINDOWS - 1) for i in range(SAMPLE_WINDOWS)})
    # One census over all windows: SQLite runs OR'd rowid ranges as one range search each.
    where = " WHERE " + " OR ".join(f"{key} BETWEEN ? AND ?" for _ in starts)
    sample = take_census(conn, table, where, tuple(v for start in starts for v in (start, start + width - 1)))
    columns = sample.columns
    alias = table.rowid_alias
    if alias is not None:
        columns = tuple(dataclasses.replace(c, int_min=low, int_max=high) if c.name == alias else c for c in columns)
    return TableCensus(table=table.name, rows=rows, columns=columns, sample_rows=sample.rows)
