"""Row identity: how one table's rows are walked in SQLite and found again in PostgreSQL.

Two keys, on purpose. The copy pages a rowid table by its rowid (one b-tree, the cheapest order)
and a WITHOUT ROWID table by its primary key (`TablePlan.key`). A row is identified across the two
databases by its primary key only: the rowid of a table without an INTEGER PRIMARY KEY is not
copied, so PostgreSQL has nothing to find such a row by, and catch-up can only upsert tables with
a primary key (`upsertable`). Verify walks keyed tables by that key, bytewise, as PostgreSQL's "C"
collation orders them. A primary key holding NULLs (`TablePlan.key_nulls`) identifies no row: such a
table is treated as keyless.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from pgferry.migrate.plan import ColumnPlan, TablePlan
from pgferry.sqlite.keyset import Keyset, rowid_name
from pgferry.sqlite.schema import Table
from pgferry.sqltext import quote_ident


@dataclass(frozen=True)
class RowIdentity:
    """The keys of one table (source names and SQL, target names) and what they allow."""

    table: str  # source table
    target: str  # target table
    page_keys: tuple[str, ...]  # SQLite expressions the copy pages by: the rowid, or the primary key
    key: tuple[ColumnPlan, ...]  # the primary key's columns as planned; empty: the table has none
    columns: tuple[ColumnPlan, ...]  # the copied columns, in COPY order

    @property
    def upsertable(self) -> bool:
        """A row can be found again in PostgreSQL by a unique key (the primary key, an INTEGER
        PRIMARY KEY included); a keyless rowid table's rowid is not copied, so it cannot."""
        return bool(self.key)

    @property
    def source_keys(self) -> tuple[str, ...]:
        """SQLite expressions of the primary key (quoted columns)."""
        return tuple(quote_ident(c.source) for c in self.key)

    @property
    def target_keys(self) -> tuple[str, ...]:
        return tuple(c.target for c in self.key)

    def page_keyset(self, binary: bool = False) -> Keyset:
        """The copy's walk: rowid order, or primary-key order for a WITHOUT ROWID table."""
        return Keyset(self.table, self.page_keys, binary)

    def key_keyset(self, binary: bool = True) -> Keyset:
        """Primary-key order; bytewise by default, the order verify compares chunks in."""
        return Keyset(self.table, self.source_keys, binary)

    def upsert_sql(self, schema: str) -> sql.Composed:
        """INSERT one row (a %s per copied column, in `columns` order), or update the row with its key.

        Catch-up runs it for every changed key, so it must be idempotent: running it twice leaves the
        same row. A table whose columns are all key columns has nothing to update: DO NOTHING."""
        if not self.upsertable:
            raise ValueError(f"table {self.table!r} has no primary key: its rows cannot be upserted")
        names = [sql.Identifier(c.target) for c in self.columns]
        keys = set(self.target_keys)
        rest = [sql.Identifier(c.target) for c in self.columns if c.target not in keys]
        action = (
            sql.SQL("UPDATE SET ") + sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(n) for n in rest)
            if rest
            else sql.SQL("NOTHING")
        )
        return sql.SQL("INSERT INTO {}.{} ({}) VALUES ({}) ON CONFLICT ({}) DO {}").format(
            sql.Identifier(schema),
            sql.Identifier(self.target),
            sql.SQL(", ").join(names),
            sql.SQL(", ").join(sql.Placeholder() * len(names)),
            sql.SQL(", ").join(sql.Identifier(k) for k in self.target_keys),
            action,
        )

    def delete_sql(self, schema: str) -> sql.Composed:
        """DELETE the row with a key (a %s per key column): catch-up's answer to a row gone from SQLite."""
        if not self.upsertable:
            raise ValueError(f"table {self.table!r} has no primary key: its rows cannot be deleted by key")
        return sql.SQL("DELETE FROM {}.{} WHERE ({}) = ({})").format(
            sql.Identifier(schema),
            sql.Identifier(self.target),
            sql.SQL(", ").join(sql.Identifier(k) for k in self.target_keys),
            sql.SQL(", ").join(sql.Placeholder() * len(self.key)),
        )


def row_identity(table: Table, plan: TablePlan) -> RowIdentity:
    """The identity of `table` as `plan` copies it."""
    by_source = {c.source: c for c in plan.columns}
    pages = tuple(quote_ident(name) for name in plan.key) if plan.key else (rowid_name(table),)
    return RowIdentity(
        table=table.name,
        target=plan.target,
        page_keys=pages,
        key=() if plan.key_nulls else tuple(by_source[name] for name in table.primary_key),
        columns=tuple(plan.copied_columns),
    )
