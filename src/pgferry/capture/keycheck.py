"""Compare given rows of one captured table on both sides, by key: one query per side and 500 keys.

A key is handled in its SQLite form (the values the changelog logs). SQLite finds its row through a
VALUES list joined to the table (pgferry.capture.current does the same for catch-up); PostgreSQL finds
it by the key rendered exactly as the copy renders it (`CurrentRows.gone`: the COPY text of the key
columns), cast to each key column's type, so whatever the converter did to a key (a date, a BLOB),
the lookup agrees with the copy. Each side's rows come back tagged with the key's position in the
request, brought to verify's canonical form (pgferry.migrate.verify) and compared.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from pgferry.capture.changelog import CHANGELOG, Captured, key_names
from pgferry.capture.current import KEYS_PER_QUERY, CurrentRows, Key, current_rows, refuse_null_key
from pgferry.migrate.converters import converter_for
from pgferry.migrate.identity import RowIdentity
from pgferry.migrate.plan import TablePlan
from pgferry.migrate.verify import RowDifference, canonical_sides, row_differences
from pgferry.migrate.verify_chunks import canonical_items, fetchall
from pgferry.sqltext import quote_ident as q


def loose(key: Sequence[Any]) -> tuple[Any, ...]:
    """A key compared across its sources (changelog, SQLite row, PostgreSQL reversed): by text."""
    return tuple(v if isinstance(v, bytes) else str(v) for v in key)


@dataclass(frozen=True)
class KeyCheck:
    """One captured table: how its rows are found by key on both sides."""

    captured: Captured
    plan: TablePlan
    identity: RowIdentity
    schema: str
    types: tuple[str, ...]  # the target's key column types, as format_type spells them
    current: CurrentRows
    reverse: tuple[Callable[[object], object], ...]  # PostgreSQL key values -> SQLite ones

    @property
    def table(self) -> str:
        return self.captured.table

    @property
    def columns(self) -> list[str]:
        return [c.source for c in self.plan.columns]

    def source_key(self, target: Sequence[Any]) -> Key:
        """A key as PostgreSQL returns it (typed), as SQLite holds it."""
        return tuple(r(v) for r, v in zip(self.reverse, target, strict=True))

    def compare(
        self, conn: sqlite3.Connection, pg: psycopg.Connection, keys: Sequence[Key]
    ) -> tuple[list[RowDifference], list[Key]]:
        """(the differences among `keys`, with SQLite keys; the keys found equal). The caller holds
        SQLite's read transaction (or its write lock) around it."""
        differences: list[RowDifference] = []
        equal: list[Key] = []
        for key in keys:
            refuse_null_key(self.table, self.captured.key, key, "is in SQLite")
        for start in range(0, len(keys), KEYS_PER_QUERY):
            chunk = list(keys[start : start + KEYS_PER_QUERY])
            mine, theirs = canonical_sides(
                pg, self.plan, self._sqlite_rows(conn, chunk), self._pg_rows(conn, pg, chunk), 1
            )
            found = {d.key: d for d in row_differences(mine, theirs, self.columns)}
            for i, key in enumerate(chunk):
                difference = found.get((i,))
                if difference is None:
                    equal.append(key)
                else:
                    differences.append(RowDifference(key, difference.kind, difference.columns))
        return differences, equal

    def _aliases(self) -> list[str]:
        taken = {c.source.lower() for c in self.plan.columns}
        prefix = "_pgferry_probe"
        while any(name.startswith(prefix) for name in taken):
            prefix = "_" + prefix
        return [prefix + "_i", *(f"{prefix}{i}" for i in range(len(self.captured.key)))]

    def _sqlite_rows(self, conn: sqlite3.Connection, keys: list[Key]) -> list[tuple[Any, ...]]:
        aliases = self._aliases()
        exprs, _in_sqlite = canonical_items(self.plan)
        cte = q("_pgferry_probe")
        join = " AND ".join(
            f"{q(self.table)}.{q(c)} = {cte}.{q(a)}" for c, a in zip(self.captured.key, aliases[1:], strict=True)
        )
        one = "(" + ", ".join("?" * len(aliases)) + ")"
        query = (
            f"WITH {cte}({', '.join(q(a) for a in aliases)}) AS (VALUES {', '.join([one] * len(keys))}) "
            f"SELECT {cte}.{q(aliases[0])}, {exprs} FROM {cte} JOIN {q(self.table)} ON {join}"
        )
        return fetchall(conn, query, [v for i, key in enumerate(keys) for v in (i, *key)])

    def _pg_rows(self, conn: sqlite3.Connection, pg: psycopg.Connection, keys: list[Key]) -> list[tuple[Any, ...]]:
        texts = [next(csv.reader([line])) for line in self.current.gone(conn, keys)]
        aliases = [sql.Identifier(a) for a in self._aliases()]
        row = sql.SQL("(%s::integer, {})").format(
            sql.SQL(", ").join(sql.SQL("%s::{}").format(sql.SQL(t)) for t in self.types)
        )
        target_keys = self.identity.target_keys
        join = sql.SQL(" AND ").join(
            sql.SQL("t.{} = k.{}").format(sql.Identifier(c), a) for c, a in zip(target_keys, aliases[1:], strict=True)
        )
        values = sql.SQL(", ").join(sql.SQL("t.{}::text").format(sql.Identifier(c.target)) for c in self.plan.columns)
        query = sql.SQL("SELECT k.{}, {} FROM (VALUES {}) AS k ({}) JOIN {}.{} AS t ON {}").format(
            aliases[0],
            values,
            sql.SQL(", ").join([row] * len(texts)),
            sql.SQL(", ").join(aliases),
            sql.Identifier(self.schema),
            sql.Identifier(self.plan.target),
            join,
        )
        return pg.execute(query, [v for i, text in enumerate(texts) for v in (i, *text)]).fetchall()


def key_types(pg: psycopg.Connection, schema: str, identity: RowIdentity) -> tuple[str, ...]:
    rows: dict[str, str] = dict(
        pg.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
            " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped",
            [schema, identity.target],
        ).fetchall()
    )
    return tuple(str(rows[k]) for k in identity.target_keys)


def key_check(
    pg: psycopg.Connection, schema: str, captured: Captured, plan: TablePlan, identity: RowIdentity
) -> KeyCheck:
    return KeyCheck(
        captured,
        plan,
        identity,
        schema,
        key_types(pg, schema, identity),
        current_rows(captured.table, captured.key, plan),
        tuple(converter_for(c).reverse for c in identity.key),
    )


def pending_keys(conn: sqlite3.Connection, captured: Captured, after: int) -> set[tuple[Any, ...]]:
    """The keys of `captured` with changelog entries after `after` (loosely, `loose`): changes not
    applied yet, or applied and not pruned. Bounded by the lag: a range of the changelog's key."""
    names = ", ".join(q(k) for k in key_names(len(captured.key)))
    rows = conn.execute(f"SELECT {names} FROM {q(CHANGELOG)} WHERE seq > ? AND tbl = ?", (after, captured.id))
    return {loose(row) for row in rows}
