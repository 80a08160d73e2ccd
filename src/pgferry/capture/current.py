"""The current state of changed rows, read from SQLite and rendered as the copy renders them.

Catch-up never replays what a write did: it re-reads the row its key names, as of the batch's read
transaction, and renders it with the copy's own expressions (pgferry.migrate.rowformat over the
stored plan), so the COPY line is the one the copy would have written for that row. Rendering is
always guarded: a value that no longer fits the column's type ('now' in a timestamp column) is
refused by PostgreSQL and stops the applier, instead of being read as something else.

Keys are looked up through a VALUES list joined to the table (one primary-key seek each); a key
that finds no row is gone, and its key alone is rendered the same way for the DELETE.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pgferry.errors import PgferryError
from pgferry.migrate.errors import is_decode_error
from pgferry.migrate.plan import ColumnPlan, TablePlan
from pgferry.migrate.rowformat import line_maker, select_list
from pgferry.sqltext import quote_ident as q

KEYS_PER_QUERY = 500  # far below SQLite's 32,766 bound parameters, whatever the key's width
Key = tuple[Any, ...]


class ApplyError(PgferryError):
    """The applier cannot go on (a value, a key, a constraint); the message says where and what to do."""


def refuse_null_key(table: str, columns: Sequence[str], key: Key, where: str) -> None:
    """An ApplyError when `key` holds a NULL: a rowid table's primary key allows it (capture refuses
    such rows at install), PostgreSQL's cannot, and no lookup by key finds it."""
    if any(v is None for v in key):
        raise ApplyError(
            f"table {table!r}: a row with NULL in its primary key ({', '.join(columns)}) {where}; PostgreSQL "
            "cannot hold it. Give the row a key in SQLite, then follow again"
        )


@dataclass(frozen=True)
class Lines:
    """Items to SELECT and how they become one COPY line (rowformat's select_list and line_maker)."""

    items: tuple[str, ...]
    maker: Callable[[tuple[Any, ...]], str] | None

    @classmethod
    def of(cls, columns: list[ColumnPlan]) -> Lines:
        return cls(tuple(select_list(columns, guarded=True)), line_maker(columns, guarded=True))

    def line(self, row: Sequence[Any]) -> str:
        return str(row[0]) if self.maker is None else self.maker(tuple(row[: len(self.items)]))


@dataclass(frozen=True)
class CurrentRows:
    """How one captured table's rows and keys are read back."""

    table: str
    key: tuple[str, ...]  # source key columns, in the changelog's order
    plan: TablePlan
    rows: Lines  # the copied columns
    keys: Lines  # the key columns alone (rows that are gone)

    def _aliases(self) -> list[str]:
        taken = {c.source.lower() for c in self.plan.columns}
        prefix = "_pgferry_k"
        while any(name.startswith(prefix) for name in taken):
            prefix = "_" + prefix
        return [f"{prefix}{i}" for i in range(len(self.key))]

    def read(self, conn: sqlite3.Connection, keys: Sequence[Key]) -> tuple[list[str], set[Key]]:
        """(COPY lines of the rows these keys find, the keys that found one)."""
        aliases = self._aliases()
        cte = q("_pgferry_keys")
        join = " AND ".join(f"{q(self.table)}.{q(c)} = {cte}.{q(a)}" for c, a in zip(self.key, aliases, strict=True))
        requested = ", ".join(f"{cte}.{q(a)}" for a in aliases)
        lines: dict[str, None] = {}  # two keys finding one row (NOCASE) give one line
        found: set[Key] = set()
        width = len(self.rows.items)
        for chunk, values, params in self._chunks(keys):
            query = (
                f"WITH {cte}({', '.join(q(a) for a in aliases)}) AS (VALUES {values}) "
                f"SELECT {', '.join(self.rows.items)}, {requested} FROM {cte} JOIN {q(self.table)} ON {join}"
            )
            for row in self._run(conn, query, params, chunk):
                lines[self.rows.line(row)] = None
                found.add(tuple(row[width:]))
        return list(lines), found

    def holds(self, conn: sqlite3.Connection, key: Key) -> bool:
        """Whether a row has `key`, NULLs matching NULLs (`IS`): for a key no `=` lookup can find."""
        where = " AND ".join(f"{q(c)} IS ?" for c in self.key)
        return conn.execute(f"SELECT 1 FROM {q(self.table)} WHERE {where} LIMIT 1", list(key)).fetchone() is not None

    def gone(self, conn: sqlite3.Connection, keys: Sequence[Key]) -> list[str]:
        """COPY lines of the key columns of `keys`, rendered as the copy renders those columns."""
        out = []
        names = ", ".join(q(c) for c in self.key)  # the converters' expressions name the source columns
        for chunk, values, params in self._chunks(keys):
            cte = q("_pgferry_gone")
            query = f"WITH {cte}({names}) AS (VALUES {values}) SELECT {', '.join(self.keys.items)} FROM {cte}"
            out += [self.keys.line(row) for row in self._run(conn, query, params, chunk)]
        return out

    def _chunks(self, keys: Sequence[Key]) -> Iterator[tuple[Sequence[Key], str, list[Any]]]:
        one = "(" + ", ".join("?" * len(self.key)) + ")"
        for start in range(0, len(keys), KEYS_PER_QUERY):
            chunk = keys[start : start + KEYS_PER_QUERY]
            yield chunk, ", ".join([one] * len(chunk)), [v for key in chunk for v in key]

    def _run(self, conn: sqlite3.Connection, query: str, params: list[Any], chunk: Sequence[Key]) -> list[Any]:
        try:
            return conn.execute(query, params).fetchall()
        except sqlite3.OperationalError as exc:
            if not is_decode_error(exc):
                raise
            raise ApplyError(
                f"table {self.table!r}: a row among keys {list(chunk)[:5]} holds text that is not valid UTF-8 "
                f"({exc}); fix the row in SQLite (the applier retries it)"
            ) from None


def current_rows(table: str, key: tuple[str, ...], plan: TablePlan) -> CurrentRows:
    by_source = {c.source: c for c in plan.columns}
    missing = [c for c in key if c not in by_source]
    if missing:
        raise ApplyError(f"table {table!r}: key column(s) {missing} are not in the copy's plan")
    return CurrentRows(table, key, plan, Lines.of(plan.copied_columns), Lines.of([by_source[c] for c in key]))
