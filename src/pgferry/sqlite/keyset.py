"""Keyset chunks of a SQLite table: `WHERE (key) > (last) [AND key <= upto] ORDER BY key LIMIT n`.

Copy, verify and (next) catch-up all read a table this way: each chunk is one b-tree seek and a
range scan, whatever the table's size, and the last key read is all it takes to go on, or resume.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pgferry.errors import UsageError
from pgferry.sqlite.schema import Table
from pgferry.sqltext import quote_ident

Key = list[Any]


@dataclass(frozen=True)
class Keyset:
    """How one table is walked in key order.

    `keys` are SQL expressions (quoted columns, or the rowid). With `binary`, keys compare and sort
    bytewise (COLLATE BINARY), as PostgreSQL's "C" collation does; without it, in the columns' own
    collation, which lets SQLite walk the key's index."""

    table: str
    keys: tuple[str, ...]
    binary: bool = False

    @property
    def source(self) -> str:
        return quote_ident(self.table)

    def _ordered(self) -> str:
        return ", ".join(f"{k} COLLATE BINARY" if self.binary else k for k in self.keys)

    def order_by(self) -> str:
        return f" ORDER BY {self._ordered()}"

    def where(
        self,
        after: Sequence[Any] | None = None,
        upto: Sequence[Any] | None = None,
        extra: str = "",
        extra_params: Sequence[Any] = (),
    ) -> tuple[str, list[Any]]:
        """` WHERE ...` for the keys after `after` and (on the first key) up to `upto`, both optional,
        and an `extra` condition with its parameters; ("", []) when there is no condition."""
        clauses, params = [], []
        if after is not None:
            clauses.append(f"({self._ordered()}) > ({', '.join('?' * len(self.keys))})")
            params += list(after)
        if upto is not None:
            clauses.append(f"{self.keys[0]} <= ?")
            params += list(upto)
        if extra:
            clauses.append(extra)
            params += list(extra_params)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def select(
        self,
        items: Sequence[str],
        after: Sequence[Any] | None = None,
        upto: Sequence[Any] | None = None,
        limit: int | None = None,
        extra: str = "",
        extra_params: Sequence[Any] = (),
    ) -> tuple[str, list[Any]]:
        """One chunk's query and parameters: `items`, in key order (list the keys in `items` to get them)."""
        where, params = self.where(after, upto, extra, extra_params)
        query = f"SELECT {', '.join(items)} FROM {self.source}{where}{self.order_by()}"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        return query, params

    def excluding(self, keys: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
        """A condition leaving out the rows with these keys, and its parameters."""
        row = f"({', '.join(self.keys)}) <> ({', '.join('?' * len(self.keys))})"
        return " AND ".join(row for _ in keys), [value for key in keys for value in key]


def rowid_name(table: Table) -> str:
    """The name that reaches `table`'s rowid; a clear error when its columns hide all three."""
    if table.rowid_name is not None:
        return table.rowid_name
    raise UsageError(f"table {table.name!r} has columns named rowid, _rowid_ and oid and no usable key")


def table_keyset(table: Table, binary: bool = False) -> Keyset:
    """Rowid order for a rowid table, primary-key order for a WITHOUT ROWID one."""
    if table.without_rowid:
        return Keyset(table.name, tuple(quote_ident(name) for name in table.primary_key), binary)
    return Keyset(table.name, (rowid_name(table),), binary)


def columns_keyset(table: Table, columns: Sequence[str], binary: bool = False) -> Keyset:
    """Order by the named columns (verify walks a table by its primary key, as the target has it)."""
    return Keyset(table.name, tuple(quote_ident(name) for name in columns), binary)


def rowid_ranges(
    conn: sqlite3.Connection, table: Table, parts: int, min_rows: int, rows: int | None = None
) -> list[tuple[Key | None, Key | None]]:
    """Split a rowid table into up to `parts` consecutive (after, upto] rowid ranges of about
    `min_rows` rows or more each; one open range [(None, None)] for a WITHOUT ROWID or small table.

    `rows` is the table's row count when known (the census counted it); otherwise the rowid span
    (two b-tree seeks) stands in for it, not count(*), which would be a full scan. The ranges split
    the span evenly; the first is open below and the last open above, so together they cover every
    row whatever its rowid."""
    if parts <= 1 or table.without_rowid:
        return [(None, None)]
    key = rowid_name(table)
    low, high = conn.execute(f"SELECT min({key}), max({key}) FROM {quote_ident(table.name)}").fetchone()
    if low is None:
        return [(None, None)]
    size = high - low + 1 if rows is None else rows
    parts = min(parts, math.ceil(size / max(1, min_rows)))
    if parts <= 1:
        return [(None, None)]
    step = (high - low + 1) / parts
    bounds: list[Key | None] = [None] + [[low - 1 + round(step * i)] for i in range(1, parts)] + [None]
    return [(bounds[i], bounds[i + 1]) for i in range(parts)]
