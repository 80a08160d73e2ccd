"""A census of a table's data: what each column really holds.

SQLite's declared types are suggestions (type affinity); a column declared INTEGER can hold text,
and a TEXT column of timestamps is the norm in legacy apps. Choosing a PostgreSQL type, finding
sparse columns, or checking a split all need the facts. The census gets them cheaply:

- one scan per table of plain aggregates (NULLs, storage classes, ranges, sizes), evaluated in C;
- then, for text columns only, "is every value of format F?" asked as a search for one
  counterexample (`LIMIT 1`): a column of prose fails on its first row, so only columns that
  really hold timestamps or JSON are read to the end.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from pgferry.sqlite.schema import Table, quote_ident

# SQLite caps result columns (SQLITE_MAX_COLUMN, 2000 by default): wide tables are measured in
# several scans of at most this many columns each.
COLUMNS_PER_SCAN = 150
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
    "text_max_bytes",
    "text_with_nul",
    "blob_max_bytes",
)


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
    text_max_bytes: int = 0
    text_with_nul: int = 0
    blob_max_bytes: int = 0
    # Formats shared by every text value (False when there are no texts).
    texts_iso_datetime: bool = False  # each is an ISO-8601 date or date-time that exists
    texts_iso_date_only: bool = False
    texts_with_zone: bool = False  # each carries Z or a +hh:mm offset
    texts_without_zone: bool = False
    texts_json: bool = False  # each is a JSON object or array

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

    def column(self, name: str) -> ColumnCensus:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


def _aggregates(column: str) -> list[str]:
    c = quote_ident(column)
    kind = f"typeof({c})"
    return [
        f"count(*) - count({c})",
        f"sum({kind} = 'integer')",
        f"sum({kind} = 'real')",
        f"sum({kind} = 'text')",
        f"sum({kind} = 'blob')",
        f"min(CASE WHEN {kind} = 'integer' THEN {c} END)",
        f"max(CASE WHEN {kind} = 'integer' THEN {c} END)",
        f"max(CASE WHEN {kind} = 'real' THEN abs({c}) END)",
        f"max(CASE WHEN {kind} = 'text' THEN length(CAST({c} AS BLOB)) END)",
        f"sum(CASE WHEN {kind} = 'text' THEN instr({c}, char(0)) > 0 END)",
        f"max(CASE WHEN {kind} = 'blob' THEN length({c}) END)",
    ]


def _iso(c: str) -> str:
    # date() with a modifier normalises, so '2024-02-30' no longer compares equal to itself
    return (
        f"{c} GLOB '{ISO_DATE_GLOB}' AND date(substr({c}, 1, 10), '+0 days') = substr({c}, 1, 10) "
        f"AND (length({c}) = 10 OR datetime({c}) IS NOT NULL)"
    )


def _zone(c: str) -> str:
    return f"({c} GLOB '*[+-][0-9][0-9]:[0-9][0-9]' OR {c} GLOB '*Z')"


def _every_text(conn: sqlite3.Connection, source: str, column: str, predicate: str) -> bool:
    """True when no text value of `column` breaks `predicate` (stops at the first that does)."""
    c = quote_ident(column)
    query = f"SELECT 1 FROM {source} WHERE typeof({c}) = 'text' AND NOT ({predicate}) LIMIT 1"
    return conn.execute(query).fetchone() is None


def _formats(conn: sqlite3.Connection, source: str, column: str) -> dict[str, bool]:
    c = quote_ident(column)
    formats = {"texts_iso_datetime": _every_text(conn, source, column, f"coalesce({_iso(c)}, 0)")}
    if formats["texts_iso_datetime"]:
        formats["texts_iso_date_only"] = _every_text(conn, source, column, f"length({c}) = 10")
        formats["texts_with_zone"] = _every_text(conn, source, column, _zone(c))
        formats["texts_without_zone"] = _every_text(conn, source, column, f"NOT {_zone(c)}")
    else:
        formats["texts_json"] = _every_text(
            conn, source, column, f"substr(ltrim({c}), 1, 1) IN ('{{', '[') AND coalesce(json_valid({c}), 0)"
        )
    return formats


def take_census(conn: sqlite3.Connection, table: Table) -> TableCensus:
    """Measure every column of `table`: one aggregate scan, then format checks on text columns."""
    source = quote_ident(table.name)
    rows = conn.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    names = [column.name for column in table.columns]
    censuses: list[ColumnCensus] = []
    width = len(FIELDS)
    for start in range(0, len(names), COLUMNS_PER_SCAN):
        batch = names[start : start + COLUMNS_PER_SCAN]
        select = ", ".join(expr for name in batch for expr in _aggregates(name))
        values = conn.execute(f"SELECT {select} FROM {source}").fetchone()
        for offset, name in enumerate(batch):
            chunk = values[offset * width : (offset + 1) * width]
            counts = {key: value for key, value in zip(FIELDS, chunk, strict=True) if value is not None}
            formats = _formats(conn, source, name) if counts.get("texts") else {}
            censuses.append(ColumnCensus(name=name, rows=rows, **counts, **formats))
    return TableCensus(table=table.name, rows=rows, columns=tuple(censuses))
