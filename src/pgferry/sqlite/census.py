"""A census of a table's data: what each column really holds, measured in one scan.

SQLite's declared types are suggestions (type affinity); a column declared INTEGER can hold text,
and a TEXT column of timestamps is the norm in legacy apps. Choosing a PostgreSQL type, finding
sparse columns, or checking a split all need the facts, so the census counts them with SQL
aggregates: one pass over the table, evaluated in C, whatever the table's size.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from pgferry.sqlite.schema import Table, quote_ident

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
    "bool_ints",
    "real_nonfinite",
    "real_integral",
    "text_max_bytes",
    "text_with_nul",
    "text_iso_datetime",
    "text_iso_date_only",
    "text_with_zone",
    "text_json",
    "text_integer_like",
    "text_real_like",
    "blob_max_length",
)


@dataclass(frozen=True)
class ColumnCensus:
    """Counts of what one column holds; every count is over all rows of the table."""

    name: str
    rows: int
    nulls: int = 0
    integers: int = 0
    reals: int = 0
    texts: int = 0
    blobs: int = 0
    int_min: int | None = None
    int_max: int | None = None
    bool_ints: int = 0  # integers that are 0 or 1
    real_nonfinite: int = 0
    real_integral: int = 0  # reals with no fractional part
    text_max_bytes: int = 0
    text_with_nul: int = 0
    text_iso_datetime: int = 0  # texts that are a valid ISO-8601 date or date-time
    text_iso_date_only: int = 0
    text_with_zone: int = 0  # ISO date-times carrying Z or a +hh:mm offset
    text_json: int = 0  # texts that are a JSON object or array
    text_integer_like: int = 0
    text_real_like: int = 0  # texts that read as a number (integer or real)
    blob_max_length: int = 0

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


@dataclass(frozen=True)
class TableCensus:
    table: str
    rows: int
    columns: tuple[ColumnCensus, ...]

    def column(self, name: str) -> ColumnCensus:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def _aggregates(column: str) -> list[str]:
    c = quote_ident(column)
    is_int, is_real, is_text = f"typeof({c}) = 'integer'", f"typeof({c}) = 'real'", f"typeof({c}) = 'text'"
    # date() with a modifier normalises, so '2024-02-30' no longer compares equal to itself
    iso = f"{is_text} AND {c} GLOB '{ISO_DATE_GLOB}' AND date(substr({c}, 1, 10), '+0 days') = substr({c}, 1, 10)"
    return [
        f"sum({c} IS NULL)",
        f"sum({is_int})",
        f"sum({is_real})",
        f"sum({is_text})",
        f"sum(typeof({c}) = 'blob')",
        f"min(CASE WHEN {is_int} THEN {c} END)",
        f"max(CASE WHEN {is_int} THEN {c} END)",
        f"sum({is_int} AND {c} IN (0, 1))",
        f"sum({is_real} AND abs({c}) > 1.7976931348623157e308)",
        f"sum({is_real} AND abs({c}) < 9.2e18 AND {c} = CAST({c} AS INTEGER))",
        f"max(CASE WHEN {is_text} THEN length(CAST({c} AS BLOB)) END)",
        f"sum({is_text} AND instr({c}, char(0)) > 0)",
        f"sum({iso} AND (length({c}) = 10 OR datetime({c}) IS NOT NULL))",
        f"sum({iso} AND length({c}) = 10)",
        f"sum({iso} AND length({c}) > 10 AND ({c} GLOB '*[+-][0-9][0-9]:[0-9][0-9]' OR {c} GLOB '*Z'))",
        f"sum({is_text} AND substr(ltrim({c}), 1, 1) IN ('{{', '[') AND json_valid({c}))",
        # canonical integers only: '007' or '+5' would not come back the same from an integer column
        f"sum({is_text} AND CAST({c} AS INTEGER) || '' = {c})",
        f"sum({is_text} AND {c} GLOB '*[0-9]*' AND {c} NOT GLOB '*[^0-9eE.+-]*' "
        f"AND typeof(CAST({c} AS NUMERIC)) IN ('integer', 'real'))",
        f"max(CASE WHEN typeof({c}) = 'blob' THEN length({c}) END)",
    ]


def take_census(conn: sqlite3.Connection, table: Table) -> TableCensus:
    """Measure every column of `table` (one scan per COLUMNS_PER_SCAN columns)."""
    source = quote_ident(table.name)
    rows = conn.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    names = [column.name for column in table.columns]
    censuses: list[ColumnCensus] = []
    for start in range(0, len(names), COLUMNS_PER_SCAN):
        batch = names[start : start + COLUMNS_PER_SCAN]
        select = ", ".join(expr for name in batch for expr in _aggregates(name))
        values = conn.execute(f"SELECT {select} FROM {source}").fetchone()
        width = len(FIELDS)
        for offset, name in enumerate(batch):
            chunk = values[offset * width : (offset + 1) * width]
            counts = {
                key: (value if value is not None else _empty(key))
                for key, value in zip(FIELDS, chunk, strict=True)
            }
            censuses.append(ColumnCensus(name=name, rows=rows, **counts))
    return TableCensus(table=table.name, rows=rows, columns=tuple(censuses))


def _empty(field_name: str) -> int | None:
    return None if field_name in ("int_min", "int_max") else 0
