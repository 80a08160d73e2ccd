"""Reading one table's chunks as COPY lines, under the plan of the moment.

SQLite renders the CSV line itself where it can (see pgferry.migrate.rowformat); Python finishes the
others. A rowid table whose lines SQLite finishes is read as one joined value per batch: a Python row
per line cost more than rendering the line did.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from pgferry.migrate.errors import CopyDataError, is_decode_error
from pgferry.migrate.identity import row_identity
from pgferry.migrate.plan import ColumnPlan, TablePlan
from pgferry.migrate.rejects import Record, record_of, typed_items
from pgferry.migrate.rowformat import line_maker, select_list
from pgferry.sqlite.connect import text_as
from pgferry.sqlite.keyset import Key, Keyset
from pgferry.sqlite.schema import Table
from pgferry.sqltext import quote_ident

STREAM_ROWS = 2_000  # rows read and written at a time inside a chunk
Batch = tuple[bytes | str, int, Key]  # (lines, rows, last key)
# (table, row key, source column, value shown, problem, the whole row if read): stops the copy or
# rejects the row (pgferry.migrate.sink.RejectPolicy).
BadValue = Callable[[str, Key, str, str, str, Record | None], None]


@dataclass(frozen=True)
class Render:
    """How one table's chunks are read and written under the plan of the moment."""

    table: Table
    plan: TablePlan
    keyset: Keyset
    items: tuple[str, ...]  # SELECT items before the keys
    target: sql.Composed  # COPY ... FROM STDIN
    maker: Callable[[tuple[Any, ...]], str] | None  # None: item 0 is the finished line
    guarded: bool  # types from a sample: every value checked (see rowformat)

    @property
    def grouped(self) -> bool:
        """Lines finished by SQLite, joined in SQLite, read as bytes (no decode and encode again): paged
        by rowid (one key, max() of it the last)."""
        return self.maker is None and not self.table.without_rowid and not self.plan.key

    def batches(self, cursor: sqlite3.Cursor, after: Key | None, upto: Key | None, limit: int) -> Iterator[Batch]:
        """Up to `limit` rows after `after` (and up to `upto`), a few thousand at a time. The caller
        reads with text as bytes when `grouped` (see pgferry.sqlite.connect)."""
        if self.grouped:
            yield from self._grouped_batches(cursor, after, upto, limit)
            return
        query, params = self.keyset.select([*self.items, *self.keyset.keys], after, upto, limit)
        width, keys, maker = len(self.items), len(self.keyset.keys), self.maker
        cursor.execute(query, params)
        while batch := cursor.fetchmany(STREAM_ROWS):
            if maker is None:
                first = batch[0][0]
                lines: bytes | str = (b"" if isinstance(first, bytes) else "").join(row[0] for row in batch)
            else:
                lines = "".join(maker(row[:width]) for row in batch)
            yield lines, len(batch), list(batch[-1][-keys:])

    def _grouped_batches(
        self, cursor: sqlite3.Cursor, after: Key | None, upto: Key | None, limit: int
    ) -> Iterator[Batch]:
        """The same batches, each joined in SQLite by one keyset query."""
        key = self.keyset.keys[0]
        left = limit
        while left > 0:
            want = min(STREAM_ROWS, left)
            inner, params = self.keyset.select([f"{self.items[0]} AS line", f"{key} AS k"], after, upto, want)
            query = f"SELECT group_concat(line, ''), count(*), count(line), max(k) FROM ({inner})"
            lines, rows, rendered, last = cursor.execute(query, params).fetchone()
            if rows != rendered:  # group_concat skips NULLs: a row must never go missing that way
                raise CopyDataError(f"table {self.table.name!r}: a row after key {after} rendered as NULL")
            if rows == 0:
                return
            after = [last]
            yield lines, rows, after
            if rows < want:
                return
            left -= rows

    def careful_rows(
        self, cursor: sqlite3.Cursor, after: Key | None, upto: Key | None, limit: int, bad_value: BadValue
    ) -> tuple[list[tuple[Any, ...]], int, Key | None]:
        """The chunk materialised as (line, *key) rows, text that is not UTF-8 named (or its rows
        rejected) by `bad_value`: (rows, rows scanned, last key scanned). Rejected rows still move the
        key on."""
        query, params = self.keyset.select([*self.items, *self.keyset.keys], after, upto, limit)
        try:
            batch = cursor.execute(query, params).fetchall()
            scanned, last = len(batch), (list(batch[-1][-len(self.keyset.keys) :]) if batch else None)
        except sqlite3.OperationalError as exc:
            if not is_decode_error(exc):
                raise
            batch, scanned, last = self._without_bad_text(cursor.connection, after, upto, limit, bad_value)
        width, maker = len(self.items), self.maker
        if maker is not None:
            batch = [(maker(row[:width]), *row[width:]) for row in batch]
        return batch, scanned, last

    def _without_bad_text(
        self, conn: sqlite3.Connection, after: Key | None, upto: Key | None, limit: int, bad_value: BadValue
    ) -> tuple[list[tuple[Any, ...]], int, Key | None]:
        """Find the rows whose text is not valid UTF-8, hand each to `bad_value`, read the others.

        Reads the chunk again as bytes on the same connection (same snapshot); this thread owns it."""
        keys, columns = self.keyset.keys, self.plan.copied_columns
        names = [quote_ident(c.source) for c in columns]
        kinds = [f"typeof({k}) = 'text'" for k in keys]  # text keys come as bytes too: told from BLOB keys
        with text_as(conn, bytes):
            query, params = self.keyset.select([*keys, *kinds, *names, *typed_items(self.table)], after, upto, limit)
            raw = conn.execute(query, params).fetchall()
        bad_keys: list[Key] = []
        last_key: Key | None = None
        n = len(keys)
        for row in raw:
            key = [k.decode("utf-8", "replace") if text else k for k, text in zip(row[:n], row[n : 2 * n], strict=True)]
            values = row[2 * n : 2 * n + len(names)]
            last_key = key
            problem = _first_bad_text(columns, values)
            if problem is not None:
                column, value, why = problem
                bad_value(self.table.name, key, column, value, why, record_of(self.table, row[2 * n + len(names) :]))
                bad_keys.append(key)
        if not bad_keys:
            raise CopyDataError(f"table {self.table.name!r}: a text value could not be decoded as UTF-8")
        exclude, flat = self.keyset.excluding(bad_keys)
        query, params = self.keyset.select([*self.items, *keys], after, upto, len(raw) - len(bad_keys), exclude, flat)
        return conn.execute(query, params).fetchall(), len(raw), last_key


def _first_bad_text(columns: Sequence[ColumnPlan], values: Sequence[Any]) -> tuple[str, str, str] | None:
    """(column, value shown, problem) of the first text value in a row that is not UTF-8."""
    for column, value in zip(columns, values, strict=True):
        if isinstance(value, bytes) and column.choice.pg_type != "bytea":
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as err:
                return column.source, repr(value[:60]), f"invalid UTF-8 ({err.reason} at byte {err.start})"
    return None


def render_table(table: Table, plan: TablePlan, schema: str) -> Render:
    """The render of `table` under `plan`, COPY-ing into `schema`."""
    columns = plan.copied_columns
    guarded = plan.sampled_rows is not None
    target = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(schema),
        sql.Identifier(plan.target),
        sql.SQL(", ").join(sql.Identifier(c.target) for c in columns),
    )
    items = tuple(select_list(columns, guarded))
    keyset = row_identity(table, plan).page_keyset()
    return Render(table, plan, keyset, items, target, line_maker(columns, guarded), guarded)
