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
    "real_abs_max",
    "text_max_bytes",
    "text_with_nul",
    "blob_max_bytes",
    "date_candidate",
    "json_candidate",
)
DATE_FIELDS = ("texts_iso_datetime", "texts_iso_date_only", "texts_with_zone", "texts_without_zone")


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


def _when_text(c: str, predicate: str) -> str:
    """1 when every text value satisfies `predicate`, 0 when one does not, NULL without texts."""
    return f"min(CASE WHEN typeof({c}) = 'text' THEN {predicate} END)"


def _iso(c: str) -> str:
    # date() with a modifier normalises, so '2024-02-30' no longer compares equal to itself
    return (
        f"CASE WHEN {c} GLOB '{ISO_DATE_GLOB}' THEN CASE WHEN date(substr({c}, 1, 10), '+0 days') = "
        f"substr({c}, 1, 10) AND (length({c}) = 10 OR datetime({c}) IS NOT NULL) THEN 1 ELSE 0 END ELSE 0 END"
    )


def _zone(c: str) -> str:
    return f"({c} GLOB '*[+-][0-9][0-9]:[0-9][0-9]' OR {c} GLOB '*Z')"


def _aggregates(column: str) -> list[str]:
    """The cheap pass: counts, ranges, sizes, and whether every text value even *starts* like a
    date (a GLOB anchored at the first character) or like JSON (its first character)."""
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
        _when_text(c, f"{c} GLOB '{ISO_DATE_GLOB}'"),
        _when_text(c, f"substr({c}, 1, 1) IN ('{{', '[')"),
    ]


def _format_checks(column: str, dates: bool) -> list[str]:
    """The second pass, only for candidate columns: the full checks, each a min() over all texts."""
    c = quote_ident(column)
    if dates:
        iso = _iso(c)
        return [
            _when_text(c, iso),
            _when_text(c, f"length({c}) = 10"),
            _when_text(c, _zone(c)),
            _when_text(c, f"NOT {_zone(c)}"),
        ]
    return [_when_text(c, f"coalesce(json_valid({c}), 0)")]


def take_census(conn: sqlite3.Connection, table: Table) -> TableCensus:
    """Measure every column of `table`: one cheap scan, then one scan of the candidate columns."""
    source = quote_ident(table.name)
    rows = conn.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    names = [column.name for column in table.columns]
    measured: dict[str, dict] = {}
    width = len(FIELDS)
    for start in range(0, len(names), COLUMNS_PER_SCAN):
        batch = names[start : start + COLUMNS_PER_SCAN]
        select = ", ".join(expr for name in batch for expr in _aggregates(name))
        values = conn.execute(f"SELECT {select} FROM {source}").fetchone()
        for offset, name in enumerate(batch):
            chunk = values[offset * width : (offset + 1) * width]
            measured[name] = {key: value for key, value in zip(FIELDS, chunk, strict=True) if value is not None}
    checks: list[tuple[str, tuple[str, ...], str]] = []
    for name, counts in measured.items():
        if counts.pop("date_candidate", 0):
            checks += [(name, DATE_FIELDS, expr) for expr in [" , ".join(_format_checks(name, True))]]
        if counts.pop("json_candidate", 0):
            checks.append((name, ("texts_json",), _format_checks(name, False)[0]))
    for start in range(0, len(checks), COLUMNS_PER_SCAN):
        batch_checks = checks[start : start + COLUMNS_PER_SCAN]
        values = conn.execute(f"SELECT {', '.join(expr for _n, _f, expr in batch_checks)} FROM {source}").fetchone()
        position = 0
        for name, fields, _expr in batch_checks:
            for field_name in fields:
                measured[name][field_name] = bool(values[position])
                position += 1
    for counts in measured.values():
        iso = counts.get("texts_iso_datetime", False)
        for field_name in DATE_FIELDS[1:]:
            counts[field_name] = counts.get(field_name, False) and iso
    columns = tuple(ColumnCensus(name=name, rows=rows, **counts) for name, counts in measured.items())
    return TableCensus(table=table.name, rows=rows, columns=columns)
