"""One captured table on the PostgreSQL side: COPY the batch's rows into a temporary staging table,
upsert them, delete the keys gone from SQLite, and clear the rows that stand in an upsert's way.

Staging with COPY takes the very lines the copy writes (pgferry.capture.current), parsed by the same
input functions. The upsert is one INSERT ... ON CONFLICT (key) DO UPDATE per table and batch, so
PostgreSQL checks a non-deferrable foreign key once the statement is through: rows of a table that
references itself may come in any order within it.

A row that SQLite removed without logging it (INSERT OR REPLACE evicting another key through a UNIQUE
column fires no DELETE trigger unless the writer set recursive_triggers) still sits in PostgreSQL and
breaks that unique constraint. `clear_conflicts` finds the PostgreSQL rows that share the violated
index's values with staged rows under another key, deletes them and returns their keys, so the
applier can look each up in SQLite: gone rows stay deleted, rows still there are staged again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from pgferry.migrate.identity import RowIdentity
from pgferry.pg.connect import statement


@dataclass(frozen=True)
class TargetTable:
    number: int  # the registry's table number: names the staging tables
    schema: str
    identity: RowIdentity
    replace: bool = False  # key widened by the partition column: delete by source key, then insert

    @property
    def qualified(self) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(self.identity.target))

    @property
    def stage(self) -> sql.Composed:
        return sql.SQL("pg_temp.{}").format(sql.Identifier(f"_pgferry_stage_{self.number}"))

    @property
    def gone(self) -> sql.Composed:
        return sql.SQL("pg_temp.{}").format(sql.Identifier(f"_pgferry_gone_{self.number}"))

    def _names(self, names: list[str] | tuple[str, ...], alias: str = "") -> sql.Composable:
        prefix = sql.SQL(f"{alias}.") if alias else sql.SQL("")
        return sql.SQL(", ").join(prefix + sql.Identifier(n) for n in names)

    def _key_match(self, alias: str) -> sql.Composable:
        """`t.k1 = alias.k1 AND ...`: the target row `t` with the keys of the row `alias`."""
        return sql.SQL(" AND ").join(
            sql.SQL("t.{0} = {1}.{0}").format(sql.Identifier(k), sql.Identifier(alias)) for k in self.keys
        )

    @property
    def columns(self) -> list[str]:
        return [c.target for c in self.identity.columns]

    @property
    def keys(self) -> tuple[str, ...]:
        return self.identity.target_keys

    def prepare(self, pg: psycopg.Connection) -> None:
        """The session's staging tables (temporary, emptied at every commit)."""
        for table, names in ((self.stage, self.columns), (self.gone, list(self.keys))):
            create = "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA"
            pg.execute(sql.SQL(create).format(table, self._names(names), self.qualified))

    def copy_rows(self, pg: psycopg.Connection, lines: list[str]) -> None:
        self._copy(pg, self.stage, self.columns, lines)

    def copy_gone(self, pg: psycopg.Connection, lines: list[str]) -> None:
        self._copy(pg, self.gone, list(self.keys), lines)

    def _copy(self, pg: psycopg.Connection, table: sql.Composed, names: list[str], lines: list[str]) -> None:
        if not lines:
            return
        statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(table, self._names(names))
        with pg.cursor() as cur, cur.copy(statement) as copy:
            copy.write("".join(lines))

    def upsert(self, pg: psycopg.Connection, distinct: bool = False) -> int:
        """INSERT the staged rows or update the rows with their keys; `distinct` when a row may be
        staged twice (restaged after a conflict)."""
        identity = {c.target for c in self.identity.columns if c.identity}
        rest = [n for n in self.columns if n not in identity]
        action = (
            sql.SQL("UPDATE SET ")
            + sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(n)) for n in rest)
            if rest
            else sql.SQL("NOTHING")
        )
        pick = sql.SQL("DISTINCT ON ({}) ").format(self._names(self.keys)) if distinct else sql.SQL("")
        if self.replace:
            return self._replace(pg, pick)
        insert = sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {}{} FROM {} ON CONFLICT ({}) DO {}")
        names = self._names(self.columns)
        return pg.execute(
            insert.format(self.qualified, names, pick, names, self.stage, self._names(self.keys), action)
        ).rowcount

    def _replace(self, pg: psycopg.Connection, pick: sql.Composable) -> int:
        """Delete the rows with the staged source keys, then insert the staged rows: a partitioned table's
        key may be widened with the partition column, and an UPDATE of that column moves the row to
        another partition under another PostgreSQL key, which ON CONFLICT (source key) cannot follow."""
        match = self._key_match("s")
        pg.execute(sql.SQL("DELETE FROM {} AS t USING {} AS s WHERE {}").format(self.qualified, self.stage, match))
        names = self._names(self.columns)
        insert = sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {}{} FROM {}")
        return pg.execute(insert.format(self.qualified, names, pick, names, self.stage)).rowcount

    def delete_gone(self, pg: psycopg.Connection) -> int:
        match = self._key_match("g")
        delete = sql.SQL("DELETE FROM {} AS t USING {} AS g WHERE {}").format(self.qualified, self.gone, match)
        return pg.execute(delete).rowcount

    def delete_absent(self, pg: psycopg.Connection) -> int:
        """Delete the rows whose keys are not staged (a table copied again whole: its rows are the stage)."""
        match = self._key_match("s")
        delete = sql.SQL("DELETE FROM {} AS t WHERE NOT EXISTS (SELECT 1 FROM {} AS s WHERE {})").format(
            self.qualified, self.stage, match
        )
        return pg.execute(delete).rowcount

    def clear_conflicts(self, pg: psycopg.Connection, index: str) -> list[tuple[Any, ...]] | None:
        """Delete the rows holding another key's values of unique index `index`, return their keys
        (None: `index` is not a unique index of this table whose expressions the staging table has)."""
        found = pg.execute(
            "SELECT i.indnkeyatts, pg_get_expr(i.indpred, i.indrelid, true) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE i.indrelid = %s::regclass AND c.relname = %s AND n.nspname = %s AND i.indisunique",
            [self.qualified.as_string(pg), index, self.schema],
        ).fetchone()
        if found is None:
            return None
        width, predicate = found
        expressions = [
            row[0]
            for row in pg.execute(
                "SELECT pg_get_indexdef(c.oid, n, true) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace,"
                " generate_series(1, %s) AS n WHERE c.relname = %s AND s.nspname = %s ORDER BY n",
                [width, index, self.schema],
            )
        ]

        def side(table: sql.Composable) -> sql.Composed:
            # the index's own expressions, over either table; column names resolve to that table alone
            values = sql.SQL(", ").join(statement(f"({e}) AS _v{i}") for i, e in enumerate(expressions))
            where = statement(f" WHERE {predicate}") if predicate else sql.SQL("")
            return sql.SQL("SELECT {}, {} FROM {}{}").format(self._names(self.keys), values, table, where)

        same = sql.SQL(" AND ").join(statement(f"a._v{i} = b._v{i}") for i in range(len(expressions)))
        other_key = sql.SQL("({}) IS DISTINCT FROM ({})").format(
            self._names(self.keys, "a"), self._names(self.keys, "b")
        )
        match = self._key_match("c")
        delete = sql.SQL(
            "DELETE FROM {} AS t USING (SELECT DISTINCT {} FROM ({}) a JOIN ({}) b ON {} WHERE {}) AS c"
            " WHERE {} RETURNING {}"
        ).format(
            self.qualified,
            self._names(self.keys, "a"),
            side(self.qualified),
            side(self.stage),
            same,
            other_key,
            match,
            self._names(self.keys, "t"),
        )
        return [tuple(row) for row in pg.execute(delete).fetchall()]
