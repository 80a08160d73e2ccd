"""One copied table read back: the current PostgreSQL rows of the keys a batch's entries name,
converted to SQLite values (each converter's `reverse`), and written into SQLite.

The keys are looked up with one LEFT JOIN from the entries to the table (each key's text form cast
back to the column's type, so the primary key's index finds it): a key that finds a row is upserted,
one that finds none is deleted. SQLite gets `DELETE` for the keys that are gone and `INSERT OR
REPLACE` for the rows that exist. REPLACE also clears a stale SQLite row in the way of a UNIQUE value
(two rows that swapped values in PostgreSQL): that row changed in PostgreSQL before the one taking
its value could, so its own entry is in this batch or was applied before (a lower seq: its
transaction committed first). A table truncated in PostgreSQL is emptied first.

The applier's connection runs with `foreign_keys = OFF`, as PostgreSQL's logical replication workers
skip foreign keys: a REPLACE of a parent must not cascade to its children, and PostgreSQL already
checked every row it sends. Every row of a batch is read in one snapshot; a batch cut by its size
may leave a related row's change to the next one, so a foreign key can dangle in SQLite between two
batches, and holds again once the changelog is drained (always, at the rollback's flip).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pgferry.capture.copied import CopiedTable
from pgferry.capture.current import ApplyError
from pgferry.capture.reverse.log import CHANGELOG
from pgferry.migrate.converters import converter_for
from pgferry.pg.connect import statement
from pgferry.sqltext import quote_ident as q

Row = tuple[Any, ...]


@dataclass
class Changes:
    """What one table's entries come to: rows to write, keys to delete (SQLite values)."""

    rows: list[Row] = field(default_factory=list)
    gone: list[Row] = field(default_factory=list)
    truncated: bool = False  # TRUNCATE-d in PostgreSQL: emptied before the rows are written
    columns: list[str] = field(default_factory=list)  # the table's live columns, as the read found them


def _back(reverse: Sequence[Callable[[Any], Any]], values: Sequence[Any]) -> Row:
    return tuple(None if v is None else r(v) for r, v in zip(reverse, values, strict=True))


@dataclass(frozen=True)
class ReverseTable:
    copied: CopiedTable
    schema: str
    key_types: tuple[str, ...]  # the key columns' PostgreSQL types (format_type), for the lookup casts

    @classmethod
    def load(cls, pg: psycopg.Connection, schema: str, copied: CopiedTable) -> ReverseTable:
        identity = copied.identity
        qualified = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(identity.target)).as_string(pg)
        types: dict[str, str] = dict(
            pg.execute(
                "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                [qualified],
            ).fetchall()
        )
        return cls(copied, schema, tuple(types[k] for k in identity.target_keys))

    @property
    def target(self) -> str:
        return self.copied.identity.target

    @property
    def planned_columns(self) -> set[str]:
        """The columns the copy made (generated ones too, which it does not copy)."""
        return {c.target for c in self.copied.plan.columns}

    def read(self, pg: psycopg.Connection, seqs: Sequence[int], truncated: bool = False) -> Changes:
        """The current row (or its absence) of every key the entries `seqs` name for this table, and the
        table's live columns (`t.*`: a schema change shows in the same query, no catalog query); when
        a copied column is missing, no rows (the caller stops on the drift)."""
        identity = self.copied.identity
        keys = [sql.SQL("(e.key->>{})::{}").format(sql.Literal(i), statement(t)) for i, t in enumerate(self.key_types)]
        match = sql.SQL(" AND ").join(
            sql.SQL("t.{} = {}").format(sql.Identifier(c), k) for c, k in zip(identity.target_keys, keys, strict=True)
        )
        query = sql.SQL(
            "SELECT {keys}, t.ctid IS NOT NULL, t.* FROM (SELECT DISTINCT key FROM {log}"
            " WHERE seq = ANY(%s) AND target_schema = %s AND tbl = %s AND jsonb_typeof(key) = 'array') e"
            " LEFT JOIN {schema}.{table} t ON {match}"
        ).format(
            keys=sql.SQL(", ").join(keys),
            log=CHANGELOG,
            schema=sql.Identifier(self.schema),
            table=sql.Identifier(self.target),
            match=match,
        )
        width = len(keys)
        key_reverse = [converter_for(c).reverse for c in identity.key]
        row_reverse = [converter_for(c).reverse for c in identity.columns]
        cur = pg.execute(query, [list(seqs), self.schema, self.target])
        live = [d.name for d in (cur.description or [])[width + 1 :]]
        changes = Changes(truncated=truncated, columns=live)
        if not {c.target for c in identity.columns} <= set(live):
            return changes  # a copied column is gone (reverse.drift stops the batch): nothing to convert
        at = [width + 1 + live.index(c.target) for c in identity.columns]
        for row in cur:
            try:
                if row[width]:
                    changes.rows.append(_back(row_reverse, [row[i] for i in at]))
                else:
                    changes.gone.append(_back(key_reverse, row[:width]))
            except (ValueError, TypeError, OverflowError) as exc:
                raise ApplyError(
                    f"table {self.target!r}: the row with key {list(row[:width])} has a value SQLite's column "
                    f"cannot take back as the copy converted it ({exc}); fix it in PostgreSQL, then follow again"
                ) from None
        return changes

    def written_keys(self, changes: Changes) -> set[Row]:
        """The SQLite keys `changes` writes or deletes (a truncate's aside: it empties the table)."""
        names = [c.source for c in self.copied.identity.columns]
        at = [names.index(k.source) for k in self.copied.identity.key]
        return {tuple(row[i] for i in at) for row in changes.rows} | set(changes.gone)

    def delete(self, conn: sqlite3.Connection, changes: Changes) -> None:
        table = q(self.copied.captured.table)
        if changes.truncated:
            conn.execute(f"DELETE FROM {table}")
        elif changes.gone:
            where = " AND ".join(f"{q(c.source)} = ?" for c in self.copied.identity.key)
            conn.executemany(f"DELETE FROM {table} WHERE {where}", changes.gone)

    def replace(self, conn: sqlite3.Connection, rows: Sequence[Row]) -> None:
        if not rows:
            return
        names = [c.source for c in self.copied.identity.columns]
        marks = ", ".join("?" * len(names))
        try:
            conn.executemany(
                f"INSERT OR REPLACE INTO {q(self.copied.captured.table)} ({', '.join(map(q, names))}) VALUES ({marks})",
                rows,
            )
        except sqlite3.IntegrityError as exc:  # a CHECK or NOT NULL SQLite has and PostgreSQL has not
            raise ApplyError(
                f"table {self.copied.captured.table!r}: SQLite refused a row PostgreSQL holds ({exc}); make the "
                "constraints agree (or fix the row in PostgreSQL), then follow again"
            ) from None
