"""Verify's readers: one chunk of a table from each side, as canonical values or as hashed lines.

Both sides are read as text and brought to one canonical form per PostgreSQL type
(`Converter.canonical`, pgferry.migrate.converters): SQLite values through the same rendering the
copy used (pgferry.migrate.rowformat) or recomputed from the raw value (`Converter.recompute`),
PostgreSQL values through their `::text` output in a UTC session. A chunk is the rows after one
key and up to the next, in the order of the table's primary key (pgferry.migrate.identity).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg import sql

from pgferry.migrate.checksum import pg_line, sqlite_line
from pgferry.migrate.converters import converter_for
from pgferry.migrate.identity import RowIdentity
from pgferry.migrate.plan import ColumnPlan, TablePlan
from pgferry.migrate.rowformat import python_text, rendered_in_python, text_expression
from pgferry.sqlite.connect import text_as
from pgferry.sqltext import quote_ident

Row = tuple[Any, ...]
ChunkKey = tuple[Any, ...]
# One chunk of SQLite row lines: (rows, the last key, the md5 of the lines or of their md5s or None,
# whether the digest is of the lines as one string).
Lines = tuple[int, ChunkKey | None, str | None, bool]
# A chunk whose lines are smaller than this is hashed as one string on both sides (one md5 call, no
# Python work per row); a bigger one row by row, so PostgreSQL's string_agg stays far from its 1 GB limit.
WHOLE_CHUNK_BYTES = 64 << 20


def canonical(column: ColumnPlan, text: str | None, json_as_is: bool = False) -> Any:
    """The value in a form both sides agree on; with `json_as_is`, jsonb text is already PostgreSQL's."""
    if text is None:
        return None
    if json_as_is and column.choice.pg_type == "jsonb":
        return text
    try:
        return converter_for(column).canonical(column.choice.pg_type, text)
    except (ValueError, TypeError):
        return ("unparsed", text)


def source_item(column: ColumnPlan, in_sqlite: bool) -> str:
    """What to SELECT for a column: the raw value to recompute, the copy's rendering, or the raw value
    Python renders."""
    c = quote_ident(column.source)
    recompute = converter_for(column).recompute
    if recompute is not None:
        return recompute.sql.format(c)
    return text_expression(column) if in_sqlite else c


def canonical_items(plan: TablePlan) -> tuple[str, list[bool]]:
    """The SELECT list of a table's canonical values, and which of them SQLite renders."""
    in_sqlite = [c.copied and not rendered_in_python(c) for c in plan.columns]
    exprs = ", ".join(source_item(c, sq) for c, sq in zip(plan.columns, in_sqlite, strict=True))
    return exprs, in_sqlite


def canonical_source(column: ColumnPlan, in_sqlite: bool, value: Any, json_as_is: bool) -> Any:
    if value is None:
        return None
    recompute = converter_for(column).recompute
    if recompute is not None:
        return recompute.python(value)
    return canonical(column, str(value) if in_sqlite else python_text(value), json_as_is)


def canonical_row(plan: TablePlan, in_sqlite: list[bool], values: Sequence[Any], json_as_is: bool = False) -> Row:
    return tuple(
        # jsonb_by_postgres replaced only the texts SQLite rendered: Python-rendered JSON is parsed.
        canonical_source(c, sq, v, json_as_is and sq)
        for c, sq, v in zip(plan.columns, in_sqlite, values, strict=True)
    )


def row_digest(values: Row) -> bytes:
    return hashlib.blake2b(repr(values).encode("utf-8", "surrogatepass"), digest_size=12).digest()


def line_digests(lines: list[str]) -> list[str] | None:
    try:
        return [hashlib.md5(line.encode("utf-8"), usedforsecurity=False).hexdigest() for line in lines]
    except UnicodeEncodeError:
        return None


@contextlib.contextmanager
def lenient_text(conn: sqlite3.Connection) -> Iterator[None]:
    """Read text that is not UTF-8 with its bad bytes as lone surrogates: such a value equals no value
    PostgreSQL can hold, so its row is reported as differing or missing (a copy with --on-error reject
    left it out) instead of verify stopping on it."""
    with text_as(conn, lambda data: data.decode("utf-8", "surrogateescape")):
        yield


def fetchall(conn: sqlite3.Connection, query: str, params: list[Any]) -> list[Row]:
    try:
        return conn.execute(query, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc).lower():
            raise
    with lenient_text(conn):
        return conn.execute(query, params).fetchall()


def sqlite_chunk(
    conn: sqlite3.Connection, identity: RowIdentity, items: str, low: ChunkKey | None, chunk: int
) -> list[Row]:
    """Up to `chunk` rows after `low` in key order (bytewise, as PostgreSQL's "C" order), key columns first."""
    keyset = identity.key_keyset(binary=True)
    query, params = keyset.select([*keyset.keys, items], low, None, chunk)
    return fetchall(conn, query, params)


def sqlite_rows(conn: sqlite3.Connection, table: str, plan: TablePlan, chunk: int) -> Iterator[list[Row]]:
    """Chunks of canonical rows of a keyless table, in rowid order."""
    exprs, in_sqlite = canonical_items(plan)
    with lenient_text(conn):
        cursor = conn.execute(f"SELECT {exprs} FROM {quote_ident(table)}")
        while rows := cursor.fetchmany(chunk):
            yield [canonical_row(plan, in_sqlite, row) for row in rows]


def jsonb_by_postgres(pg: psycopg.Connection[Any], rows: list[Row], positions: list[int]) -> list[Row] | None:
    """The rows with each JSON text at `positions` replaced by PostgreSQL's jsonb text of it: what the
    copy stored from that text, compared as strings. Parsing and re-serialising JSON in Python cost
    about 3 s of the forum's 12 s verify, and Python floats could hide a changed digit. None when a
    value cannot be sent or is not JSON: the caller compares in Python."""
    # The texts go as one JSON array of strings: json.dumps is C, psycopg's text[] literal is Python.
    query = "SELECT v::jsonb::text FROM jsonb_array_elements_text(%s::jsonb) WITH ORDINALITY AS t(v, i) ORDER BY i"
    columns = {}
    try:
        with pg.transaction():
            for at in positions:
                texts = json.dumps([row[at] for row in rows])  # NUL and lone surrogates go as \u escapes
                columns[at] = [r[0] for r in pg.execute(query, [texts]).fetchall()]
    except (psycopg.DataError, TypeError):  # not JSON; a \u0000 or lone surrogate jsonb refuses; a BLOB
        return None
    return [tuple(columns[i][r] if i in columns else v for i, v in enumerate(row)) for r, row in enumerate(rows)]


def pg_select(plan: TablePlan, schema: str, key: Sequence[ColumnPlan]) -> sql.Composed:
    """SELECT the key columns, then every column as ::text."""
    cols = sql.SQL(", ").join(
        sql.SQL("{}::text AS {}").format(sql.Identifier(c.target), sql.Identifier(f"pgferry_v{i}"))
        for i, c in enumerate(plan.columns)
    )
    keys = [sql.Identifier(c.target) for c in key]
    return sql.SQL("SELECT {} FROM {}.{}").format(
        sql.SQL(", ").join([*keys, cols]) if keys else cols, sql.Identifier(schema), sql.Identifier(plan.target)
    )


def pg_range(
    key: Sequence[ColumnPlan], low: ChunkKey | None, high: ChunkKey | None
) -> tuple[sql.Composable, sql.Composable, list[Any]]:
    """Key list in bytewise order and the WHERE for keys in (low, high], as SQLite orders them
    (no upper bound when `high` is None)."""

    def ordered(column: ColumnPlan) -> sql.Composable:
        ident = sql.Identifier(column.target)
        text_like = column.choice.pg_type in ("text", "citext") or column.choice.pg_type.startswith("varchar")
        return sql.SQL('{}::text COLLATE "C"').format(ident) if text_like else ident

    keys = sql.SQL(", ").join(ordered(c) for c in key)
    marks = sql.SQL(", ").join(sql.Placeholder() * len(key))
    where: sql.Composable = sql.SQL("TRUE") if high is None else sql.SQL("({}) <= ({})").format(keys, marks)
    params = [] if high is None else list(high)
    if low is not None:
        where = sql.SQL("({}) > ({}) AND ").format(keys, marks) + where
        params = list(low) + params
    return keys, where, params


def pg_chunk(
    pg: psycopg.Connection[Any],
    plan: TablePlan,
    schema: str,
    key: Sequence[ColumnPlan],
    low: ChunkKey | None,
    high: ChunkKey | None,
    limit: int | None = None,
) -> list[Row]:
    """The target's rows for keys in (low, high] in key order, key columns first (`pg_select`)."""
    keys, where, params = pg_range(key, low, high)
    query = pg_select(plan, schema, key) + sql.SQL(" WHERE ") + where + sql.SQL(" ORDER BY ") + keys
    if limit is not None:
        query += sql.SQL(" LIMIT {}").format(sql.Literal(int(limit)))
    return pg.execute(query, params).fetchall()


def pg_digest(
    pg: psycopg.Connection[Any],
    plan: TablePlan,
    schema: str,
    key: Sequence[ColumnPlan],
    low: ChunkKey | None,
    high: ChunkKey,
    whole: bool,
) -> tuple[str | None, int]:
    """md5 of the lines for keys in (low, high] in key order (or of their md5s), and the row count."""
    keys, where, params = pg_range(key, low, high)
    line = sql.SQL(pg_line(plan) or "''")
    hashed = line if whole else sql.SQL("md5({})").format(line)
    query = sql.SQL("SELECT md5(string_agg({}, '' ORDER BY {})), count(*) FROM {}.{} WHERE {}").format(
        hashed, keys, sql.Identifier(schema), sql.Identifier(plan.target), where
    )
    row = pg.execute(query, params).fetchone()
    assert row is not None  # an aggregate always returns a row
    digest, count = row
    return digest, int(count)


def pg_count_after(
    pg: psycopg.Connection[Any], plan: TablePlan, schema: str, key: Sequence[ColumnPlan], low: ChunkKey | None
) -> int:
    """Rows of the target after key `low` (all of them when `low` is None)."""
    table = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(plan.target))
    if low is None:
        row = pg.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    else:
        keys = sql.SQL(", ").join(sql.Identifier(c.target) for c in key)
        marks = sql.SQL(", ").join(sql.Placeholder() * len(key))
        query = sql.SQL("SELECT count(*) FROM {} WHERE ({}) > ({})").format(table, keys, marks)
        row = pg.execute(query, list(low)).fetchone()
    assert row is not None
    return int(row[0])


def sqlite_lines(
    conn: sqlite3.Connection, identity: RowIdentity, plan: TablePlan, low: ChunkKey | None, chunk: int
) -> Lines:
    """The chunk of lines after `low`; the digest is None when a line cannot be hashed (text that is not
    UTF-8: the exact path names it)."""
    n = len(identity.key)
    rows = sqlite_chunk(conn, identity, sqlite_line(plan) or "''", low, chunk)
    high = tuple(rows[-1][:n]) if rows else None
    try:
        data = "".join(row[-1] for row in rows).encode("utf-8")
    except UnicodeEncodeError:
        return len(rows), high, None, True
    if len(data) < WHOLE_CHUNK_BYTES:
        return len(rows), high, hashlib.md5(data, usedforsecurity=False).hexdigest(), True
    digests = line_digests([row[-1] for row in rows]) or []
    return len(rows), high, hashlib.md5("".join(digests).encode("ascii"), usedforsecurity=False).hexdigest(), False


def grouped_lines(
    conn: sqlite3.Connection, identity: RowIdentity, plan: TablePlan, low: ChunkKey | None, chunk: int
) -> Lines | None:
    """sqlite_lines for a table keyed by one integer column, with its lines joined by SQLite
    (group_concat): Python gets one value per chunk instead of a row per line. None when the chunk is
    too big to hash whole. Were SQLite ever to join the lines out of key order, the digests would
    differ and the chunk would go the exact way: slower, never wrong."""
    keyset = identity.key_keyset(binary=False)  # integers: their order needs no collation
    line = sqlite_line(plan) or "''"
    inner, params = keyset.select([f"{line} AS line", f"{keyset.keys[0]} AS k"], low, None, chunk)
    query = f"SELECT group_concat(line, ''), count(*), max(k) FROM ({inner})"
    with text_as(conn, bytes):  # md5 of the bytes as stored: text that is not UTF-8 just hashes unequal
        data, count, last = conn.execute(query, params).fetchone()
    if count and len(data) >= WHOLE_CHUNK_BYTES:
        return None
    high = (last,) if count else None
    return count, high, hashlib.md5(data or b"", usedforsecurity=False).hexdigest(), True
