"""Prove a copy lost nothing: row counts, then chunked checksums, drilling down to differing rows.

Both sides are read as text and brought to one canonical form per PostgreSQL type: SQLite values
through the same rendering the copy used (pgferry.migrate.rowformat), PostgreSQL values through
their `::text` output in a UTC session. Tables with a primary key are compared chunk by chunk in key
order (pt-table-checksum style), and only a chunk whose checksum differs is compared row by row;
tables without a key are compared as multisets of row hashes, so a duplicated or missing copy of a
duplicate row is still seen.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgferry.dsn import redact
from pgferry.migrate.copy import CopyOptions, _connect, open_source, user_errors
from pgferry.migrate.plan import ColumnPlan, TablePlan
from pgferry.migrate.rowformat import python_text, rendered_in_python, text_expression
from pgferry.sqlite.schema import Table, quote_ident

MAX_DIFFERENCES = 20


@dataclass
class TableVerdict:
    table: str
    source_rows: int
    target_rows: int
    differing_keys: list[Any] = field(default_factory=list)
    missing_in_target: int = 0
    extra_in_target: int = 0
    chunks: int = 0

    @property
    def identical(self) -> bool:
        return (
            self.source_rows == self.target_rows
            and not self.differing_keys
            and not self.missing_in_target
            and not self.extra_in_target
        )


@dataclass
class VerifyReport:
    source: str
    target: str
    schema: str
    tables: list[TableVerdict]

    @property
    def identical(self) -> bool:
        return all(t.identical for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "schema": self.schema,
            "identical": self.identical,
            "tables": [{**t.__dict__, "identical": t.identical} for t in self.tables],
        }


def _timestamp(text: str) -> datetime:
    value = text.strip().replace("T", " ").replace("Z", "+00:00")
    if len(value) > 19 and value[-3] in "+-" and value[-6] not in "+-":  # '+00' -> '+00:00'
        value += ":00"
    return datetime.fromisoformat(value)


def _number(text: str) -> Any:
    try:
        return Decimal(text).normalize()
    except InvalidOperation:
        return text.lower()


CANONICAL: dict[str, Callable[[str], Any]] = {
    "boolean": lambda v: v in ("1", "t", "true"),
    "double precision": lambda v: float(v),
    "numeric": _number,
    "timestamp": _timestamp,
    "timestamptz": _timestamp,
    "date": lambda v: v[:10],
    "jsonb": lambda v: json.dumps(json.loads(v), sort_keys=True),
    "bytea": lambda v: v.lower(),
    "citext": lambda v: v,
}


def _canonical(column: ColumnPlan, text: str | None) -> Any:
    if text is None:
        return None
    func = CANONICAL.get(column.choice.pg_type)
    try:
        return func(text) if func else text
    except (ValueError, TypeError):
        return ("unparsed", text)


def _row_digest(values: tuple) -> bytes:
    return hashlib.blake2b(repr(values).encode("utf-8", "surrogatepass"), digest_size=12).digest()


def _key_plan(table: Table, plan: TablePlan) -> list[ColumnPlan]:
    by_source = {c.source: c for c in plan.columns}
    return [by_source[name] for name in table.primary_key]


def _sqlite_rows(
    conn: sqlite3.Connection, table: Table, plan: TablePlan, key: list[ColumnPlan], chunk: int
) -> Iterator[list[tuple]]:
    """Chunks of (key values, canonical row) from SQLite in key order (whole table when keyless)."""
    columns = plan.columns
    in_sqlite = [c.copied and not rendered_in_python(c) for c in columns]
    exprs = ", ".join(
        text_expression(c) if sq else quote_ident(c.source) for c, sq in zip(columns, in_sqlite, strict=True)
    )
    key_cols = [quote_ident(c.source) for c in key]
    source = quote_ident(table.name)
    last: list[Any] | None = None
    while True:
        where, params = "", []
        if key and last is not None:
            where = f" WHERE ({', '.join(key_cols)}) > ({', '.join('?' * len(key_cols))})"
            params = list(last)
        order = f" ORDER BY {', '.join(key_cols)} LIMIT {chunk}" if key else ""
        rows = conn.execute(
            f"SELECT {', '.join([*key_cols, exprs]) if key else exprs} FROM {source}{where}{order}", params
        ).fetchall()
        if not rows:
            return
        n = len(key_cols)
        out = []
        for row in rows:
            values = tuple(
                _canonical(c, (None if v is None else str(v)) if sq else python_text(v))
                for c, sq, v in zip(columns, in_sqlite, row[n:], strict=True)
            )
            out.append((tuple(row[:n]), values))
        yield out
        if not key or len(rows) < chunk:
            return
        last = list(rows[-1][:n])


def _pg_select(plan: TablePlan, schema: str, key: list[ColumnPlan]) -> sql.Composed:
    cols = sql.SQL(", ").join(
        sql.SQL("{}::text AS {}").format(sql.Identifier(c.target), sql.Identifier(f"pgferry_v{i}"))
        for i, c in enumerate(plan.columns)
    )
    keys = [sql.Identifier(c.target) for c in key]
    return sql.SQL("SELECT {} FROM {}.{}").format(
        sql.SQL(", ").join([*keys, cols]) if keys else cols, sql.Identifier(schema), sql.Identifier(plan.target)
    )


def _pg_chunk(
    pg: psycopg.Connection, plan: TablePlan, schema: str, key: list[ColumnPlan], low: tuple | None, high: tuple
) -> list[tuple]:
    def ordered(column: ColumnPlan) -> sql.Composable:
        ident = sql.Identifier(column.target)
        text_like = column.choice.pg_type in ("text", "citext") or column.choice.pg_type.startswith("varchar")
        return sql.SQL('{}::text COLLATE "C"').format(ident) if text_like else ident

    keys = sql.SQL(", ").join(ordered(c) for c in key)
    marks = sql.SQL(", ").join(sql.Placeholder() * len(key))
    where = sql.SQL("({}) <= ({})").format(keys, marks)
    params = list(high)
    if low is not None:
        where = sql.SQL("({}) > ({}) AND ").format(keys, marks) + where
        params = list(low) + params
    query = _pg_select(plan, schema, key) + sql.SQL(" WHERE ") + where + sql.SQL(" ORDER BY ") + keys
    return pg.execute(query, params).fetchall()


def _verify_keyed(
    conn: sqlite3.Connection,
    pg: psycopg.Connection,
    table: Table,
    plan: TablePlan,
    schema: str,
    key: list[ColumnPlan],
    verdict: TableVerdict,
    chunk: int,
) -> None:
    low: tuple | None = None
    n = len(key)
    for rows in _sqlite_rows(conn, table, plan, key, chunk):
        verdict.chunks += 1
        high = rows[-1][0]
        target = _pg_chunk(pg, plan, schema, key, low, high)
        mine = {k: v for k, v in rows}
        theirs = {
            tuple(r[:n]): tuple(_canonical(c, t) for c, t in zip(plan.columns, r[n:], strict=True)) for r in target
        }
        left = hashlib.blake2b(b"".join(_row_digest((k, v)) for k, v in rows)).digest()
        right = hashlib.blake2b(b"".join(_row_digest((k, v)) for k, v in theirs.items())).digest()
        if left != right:
            _drill_down(mine, theirs, verdict)
        low = high
    # rows in the target beyond the last source key
    extra_query = _pg_select(plan, schema, key)
    if low is not None:
        rest = _pg_chunk_after(pg, plan, schema, key, low)
        verdict.extra_in_target += rest
    else:
        verdict.extra_in_target += pg.execute(sql.SQL("SELECT count(*) FROM ({}) s").format(extra_query)).fetchone()[0]


def _pg_chunk_after(pg: psycopg.Connection, plan: TablePlan, schema: str, key: list[ColumnPlan], low: tuple) -> int:
    keys = sql.SQL(", ").join(sql.Identifier(c.target) for c in key)
    marks = sql.SQL(", ").join(sql.Placeholder() * len(key))
    query = sql.SQL("SELECT count(*) FROM {}.{} WHERE ({}) > ({})").format(
        sql.Identifier(schema), sql.Identifier(plan.target), keys, marks
    )
    return int(pg.execute(query, list(low)).fetchone()[0])


def _drill_down(mine: dict, theirs: dict, verdict: TableVerdict) -> None:
    for key, values in mine.items():
        other = theirs.get(_normal_key(key, theirs))
        if other is None:
            verdict.missing_in_target += 1
            _note(verdict, key)
        elif other != values:
            _note(verdict, key)
    mine_keys = {_normal_key(k, theirs) for k in mine}
    verdict.extra_in_target += sum(1 for k in theirs if k not in mine_keys)


def _normal_key(key: tuple, theirs: dict) -> tuple:
    if key in theirs:
        return key
    as_text = tuple(str(k) for k in key)
    for candidate in theirs:
        if tuple(str(c) for c in candidate) == as_text:
            return candidate
    return key


def _note(verdict: TableVerdict, key: tuple) -> None:
    if len(verdict.differing_keys) < MAX_DIFFERENCES:
        verdict.differing_keys.append(list(key))


def _verify_multiset(
    conn: sqlite3.Connection,
    pg: psycopg.Connection,
    table: Table,
    plan: TablePlan,
    schema: str,
    verdict: TableVerdict,
    chunk: int,
) -> None:
    counts: Counter[bytes] = Counter()
    for rows in _sqlite_rows(conn, table, plan, [], chunk):
        counts.update(_row_digest(values) for _key, values in rows)
    verdict.chunks = 1
    with pg.cursor(name="pgferry_verify") as cursor:
        cursor.execute(_pg_select(plan, schema, []))
        for row in cursor:
            counts[_row_digest(tuple(_canonical(c, t) for c, t in zip(plan.columns, row, strict=True)))] -= 1
    verdict.missing_in_target = sum(v for v in counts.values() if v > 0)
    verdict.extra_in_target = -sum(v for v in counts.values() if v < 0)


def verify_copy(
    sqlite_path: str | Path,
    dsn: str,
    schema: str = "public",
    keep_case: bool = False,
    casts_file: str | None = None,
    chunk_rows: int = 10_000,
    progress: Callable[[str], None] | None = None,
) -> VerifyReport:
    """Compare every copied table of `sqlite_path` with its copy in `dsn`."""
    with user_errors(dsn):
        return _verify(sqlite_path, dsn, schema, keep_case, casts_file, chunk_rows, progress)


def _verify(
    sqlite_path: str | Path,
    dsn: str,
    schema: str,
    keep_case: bool,
    casts_file: str | None,
    chunk_rows: int,
    progress: Callable[[str], None] | None,
) -> VerifyReport:
    source = open_source(sqlite_path, CopyOptions(schema=schema, keep_case=keep_case, casts_file=casts_file))
    verdicts = []
    with _connect(dsn) as pg:
        pg.execute("SET TimeZone = 'UTC'")
        pg.execute("SET extra_float_digits = 1")
        for table in source.schema.tables:
            plan = source.plan.table(table.name)
            if progress:
                progress(table.name)
            target_rows = pg.execute(
                sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(plan.target))
            ).fetchone()[0]
            verdict = TableVerdict(table.name, plan.rows, int(target_rows))
            key = _key_plan(table, plan)
            with pg.transaction():
                if key:
                    _verify_keyed(source.conn, pg, table, plan, schema, key, verdict, chunk_rows)
                else:
                    _verify_multiset(source.conn, pg, table, plan, schema, verdict, chunk_rows)
            verdicts.append(verdict)
    source.close()
    return VerifyReport(str(sqlite_path), redact(dsn), schema, verdicts)
