"""The tables on the search path, their columns and indexes, with usage and write counts, read from
PostgreSQL's catalog and statistics views.

The tables come out in the shape the SQLite doctor's predicate reader takes (pgferry.sqlite.schema:
names, columns, primary key), so the same code finds what a statement asks of each table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import psycopg

from pgferry.sqlite.schema import Column, Schema, Table


@dataclass(frozen=True)
class PgIndex:
    name: str
    schema: str
    table: str
    columns: tuple[str | None, ...]  # key columns in order; None for an expression key
    include: tuple[str, ...]
    unique: bool
    primary: bool
    partial: bool
    definition: str
    scans: int  # pg_stat_user_indexes.idx_scan since the statistics were reset
    bytes: int


@dataclass(frozen=True)
class TableStats:
    rows: int  # n_live_tup
    writes: int  # rows inserted, updated and deleted since the statistics were reset
    seq_scans: int


@dataclass
class Catalog:
    schema: Schema  # the tables, by name, as the predicate reader takes them
    qualified: dict[str, str]  # table -> "schema"."table"
    indexes: list[PgIndex]
    stats: dict[str, TableStats]

    def indexes_of(self, table: str) -> list[PgIndex]:
        return [i for i in self.indexes if i.table == table]


def read_catalog(pg: psycopg.Connection[Any]) -> Catalog:
    """Every ordinary or partitioned table in the schemas of the search path (the first one a name
    resolves to wins, as in PostgreSQL)."""
    tables = pg.execute(
        "SELECT n.nspname, c.relname, c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN unnest(current_schemas(false)) WITH ORDINALITY AS p(name, pos) ON p.name = n.nspname"
        " WHERE c.relkind IN ('r', 'p') ORDER BY p.pos, c.relname"
    ).fetchall()
    chosen: dict[str, tuple[str, int]] = {}
    for schema, name, oid in tables:
        chosen.setdefault(name, (schema, int(oid)))
    oids = [oid for _, oid in chosen.values()]
    columns: dict[int, list[Column]] = defaultdict(list)
    # indkey is an int2vector, whose array starts at 0: the position is made 1-based
    for oid, name, type_, notnull, pk in pg.execute(
        "SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
        " coalesce(array_position(i.indkey::int2[], a.attnum) + 1 - array_lower(i.indkey::int2[], 1), 0)"
        " FROM pg_attribute a LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary"
        " WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum",
        [oids],
    ).fetchall():
        columns[int(oid)].append(Column(name, type_, bool(notnull), None, int(pk)))  # pk: 1-based, 0 if not
    built = []
    for name, (_, oid) in chosen.items():
        cols = tuple(columns[oid])
        key = tuple(c.name for c in sorted((c for c in cols if c.pk_position), key=lambda c: c.pk_position))
        built.append(Table(name, cols, key, (), (), (), True, False, False, ""))
    return Catalog(
        Schema(tables=built),
        {name: f'"{schema}"."{name}"' for name, (schema, _) in chosen.items()},
        _indexes(pg, oids),
        _stats(pg, oids),
    )


def _indexes(pg: psycopg.Connection[Any], oids: list[int]) -> list[PgIndex]:
    out = []
    for row in pg.execute(
        "SELECT ic.relname, n.nspname, t.relname, i.indnkeyatts,"
        " array(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(num, pos)"
        "       LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num ORDER BY k.pos),"
        " i.indisunique, i.indisprimary, i.indpred IS NOT NULL, pg_get_indexdef(i.indexrelid),"
        " coalesce(s.idx_scan, 0), pg_relation_size(i.indexrelid)"
        " FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid"
        " JOIN pg_namespace n ON n.oid = t.relnamespace"
        " LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid WHERE i.indrelid = ANY(%s)",
        [oids],
    ).fetchall():
        name, schema, table, nkeys, attnames, unique, primary, partial, definition, scans, size = row
        keys = tuple(attnames[: int(nkeys)])
        include = tuple(a for a in attnames[int(nkeys) :] if a)
        flags = (bool(unique), bool(primary), bool(partial))
        out.append(PgIndex(name, schema, table, keys, include, *flags, definition, int(scans), int(size)))
    return out


def _stats(pg: psycopg.Connection[Any], oids: list[int]) -> dict[str, TableStats]:
    return {
        name: TableStats(int(rows), int(writes), int(seq))
        for name, rows, writes, seq in pg.execute(
            "SELECT relname, n_live_tup, n_tup_ins + n_tup_upd + n_tup_del, coalesce(seq_scan, 0)"
            " FROM pg_stat_user_tables WHERE relid = ANY(%s)",
            [oids],
        ).fetchall()
    }
