"""Prove a copy lost nothing: row counts, then chunked checksums, drilling down to differing rows.

Both sides are read as text and brought to one canonical form per PostgreSQL type: SQLite values
through the same rendering the copy used (pgferry.migrate.rowformat), PostgreSQL values through
their `::text` output in a UTC session. Tables with a primary key are compared chunk by chunk in key
order (pt-table-checksum style), and only a chunk whose checksum differs is compared row by row;
tables without a key are compared as multisets of row hashes, so a duplicated or missing copy of a
duplicate row is still seen.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgferry.dsn import redact
from pgferry.migrate import control
from pgferry.migrate.checksum import has_lines, pg_line, sqlite_line
from pgferry.migrate.errors import user_errors
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.plan import ColumnPlan, MigrationPlan, TablePlan
from pgferry.migrate.rowformat import python_text, rendered_in_python, text_expression
from pgferry.migrate.source import Source, open_source
from pgferry.migrate.types import JULIAN_DAYS
from pgferry.pg.connect import connect
from pgferry.sqlite.keyset import columns_keyset
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
    exact_chunks: int = 0  # chunks compared value by value (no line form, or the line hashes differed)

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


def _canonical(column: ColumnPlan, text: str | None, json_as_is: bool = False) -> Any:
    """The value in a form both sides agree on; with `json_as_is`, jsonb text is already PostgreSQL's."""
    if text is None:
        return None
    if json_as_is and column.choice.pg_type == "jsonb":
        return text
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


def _sqlite_chunk(
    conn: sqlite3.Connection, table: Table, items: str, key: list[ColumnPlan], low: tuple | None, chunk: int
) -> list[tuple]:
    """Up to `chunk` rows after `low` in key order (bytewise, as PostgreSQL's "C" order), key columns first."""
    keyset = columns_keyset(table, [c.source for c in key], binary=True)
    query, params = keyset.select([*keyset.keys, items], low, None, chunk)
    return _fetchall(conn, query, params)


@contextlib.contextmanager
def _lenient_text(conn: sqlite3.Connection) -> Iterator[None]:
    """Read text that is not UTF-8 with its bad bytes as lone surrogates: such a value equals no value
    PostgreSQL can hold, so its row is reported as differing or missing (a copy with --on-error reject
    left it out) instead of verify stopping on it."""
    conn.text_factory = lambda data: data.decode("utf-8", "surrogateescape")
    try:
        yield
    finally:
        conn.text_factory = str


def _fetchall(conn: sqlite3.Connection, query: str, params: list[Any]) -> list[tuple]:
    try:
        return conn.execute(query, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc).lower():
            raise
    with _lenient_text(conn):
        return conn.execute(query, params).fetchall()


UNIX_EPOCH = datetime(1970, 1, 1)
UNIX_EPOCH_JULIAN_MS = 210_866_760_000_000  # 1970-01-01 as a Julian day number, in milliseconds


def _julian(value: Any) -> Any:
    if not isinstance(value, int | float) or not JULIAN_DAYS[0] <= value <= JULIAN_DAYS[1]:
        return ("unparsed", value)
    milliseconds = int(value * 86_400_000.0 + 0.5)  # SQLite's own rounding of a Julian day number
    return UNIX_EPOCH + timedelta(milliseconds=milliseconds - UNIX_EPOCH_JULIAN_MS)


def _epoch(scale: int) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if type(value) is not int:
            return ("unparsed", value)
        return (UNIX_EPOCH + timedelta(milliseconds=value * scale)).replace(tzinfo=UTC)

    return convert


# Converted values are computed here from the raw SQLite value (SQL to fetch it, then Python), not
# taken from the copy's own rendering (pgferry.migrate.rowformat): a conversion bug the copy and verify
# shared would look identical. Two did, before this: NULL BLOBs sent as empty bytea, and Core Data
# dates sent as NULL.
AS_BYTEA: tuple[str, Callable[[Any], Any]] = ("CAST({} AS BLOB)", lambda v: "\\x" + v.hex())
RECOMPUTED: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "bytes": AS_BYTEA,
    "text_bytes": AS_BYTEA,
    "epoch_seconds": ("{}", _epoch(1000)),
    "epoch_millis": ("{}", _epoch(1)),
    "julian_day": ("{}", _julian),
}


def _source_item(column: ColumnPlan, in_sqlite: bool) -> str:
    c = quote_ident(column.source)
    recomputed = RECOMPUTED.get(column.choice.converter)
    if recomputed is not None:
        return recomputed[0].format(c)
    return text_expression(column) if in_sqlite else c


def _canonical_items(plan: TablePlan) -> tuple[str, list[bool]]:
    in_sqlite = [c.copied and not rendered_in_python(c) for c in plan.columns]
    exprs = ", ".join(_source_item(c, sq) for c, sq in zip(plan.columns, in_sqlite, strict=True))
    return exprs, in_sqlite


def _canonical_source(column: ColumnPlan, in_sqlite: bool, value: Any, json_as_is: bool) -> Any:
    if value is None:
        return None
    recomputed = RECOMPUTED.get(column.choice.converter)
    if recomputed is not None:
        return recomputed[1](value)
    return _canonical(column, str(value) if in_sqlite else python_text(value), json_as_is)


def _canonical_row(plan: TablePlan, in_sqlite: list[bool], values: tuple, json_as_is: bool = False) -> tuple:
    return tuple(
        _canonical_source(c, sq, v, json_as_is) for c, sq, v in zip(plan.columns, in_sqlite, values, strict=True)
    )


def _jsonb_by_postgres(pg: psycopg.Connection, rows: list[tuple], positions: list[int]) -> list[tuple] | None:
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


def _sqlite_rows(conn: sqlite3.Connection, table: Table, plan: TablePlan, chunk: int) -> Iterator[list[tuple]]:
    """Chunks of canonical rows of a keyless table, in rowid order."""
    exprs, in_sqlite = _canonical_items(plan)
    with _lenient_text(conn):
        cursor = conn.execute(f"SELECT {exprs} FROM {quote_ident(table.name)}")
        while rows := cursor.fetchmany(chunk):
            yield [((), _canonical_row(plan, in_sqlite, row)) for row in rows]


def _line_digests(lines: list[str]) -> list[str] | None:
    try:
        return [hashlib.md5(line.encode("utf-8"), usedforsecurity=False).hexdigest() for line in lines]
    except UnicodeEncodeError:
        return None


def _pg_select(plan: TablePlan, schema: str, key: list[ColumnPlan]) -> sql.Composed:
    cols = sql.SQL(", ").join(
        sql.SQL("{}::text AS {}").format(sql.Identifier(c.target), sql.Identifier(f"pgferry_v{i}"))
        for i, c in enumerate(plan.columns)
    )
    keys = [sql.Identifier(c.target) for c in key]
    return sql.SQL("SELECT {} FROM {}.{}").format(
        sql.SQL(", ").join([*keys, cols]) if keys else cols, sql.Identifier(schema), sql.Identifier(plan.target)
    )


def _pg_range(
    key: list[ColumnPlan], low: tuple | None, high: tuple
) -> tuple[sql.Composable, sql.Composable, list[Any]]:
    """Key list in bytewise order and the WHERE for keys in (low, high], as SQLite orders them."""

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
    return keys, where, params


def _pg_chunk(
    pg: psycopg.Connection, plan: TablePlan, schema: str, key: list[ColumnPlan], low: tuple | None, high: tuple
) -> list[tuple]:
    keys, where, params = _pg_range(key, low, high)
    query = _pg_select(plan, schema, key) + sql.SQL(" WHERE ") + where + sql.SQL(" ORDER BY ") + keys
    return pg.execute(query, params).fetchall()


# A chunk whose lines are smaller than this is hashed as one string on both sides (one md5 call, no
# Python work per row); a bigger one row by row, so PostgreSQL's string_agg stays far from its 1 GB limit.
WHOLE_CHUNK_BYTES = 64 << 20


def _pg_digest(
    pg: psycopg.Connection,
    plan: TablePlan,
    schema: str,
    key: list[ColumnPlan],
    low: tuple | None,
    high: tuple,
    whole: bool,
) -> tuple[str | None, int]:
    """md5 of the lines for keys in (low, high] in key order (or of their md5s), and the row count."""
    keys, where, params = _pg_range(key, low, high)
    line = sql.SQL(pg_line(plan) or "''")
    hashed = line if whole else sql.SQL("md5({})").format(line)
    query = sql.SQL("SELECT md5(string_agg({}, '' ORDER BY {})), count(*) FROM {}.{} WHERE {}").format(
        hashed, keys, sql.Identifier(schema), sql.Identifier(plan.target), where
    )
    digest, count = pg.execute(query, params).fetchone()
    return digest, int(count)


# One chunk of SQLite row lines: (rows, the last key, the md5 of the lines or of their md5s or None,
# whether the digest is of the lines as one string).
Lines = tuple[int, tuple | None, str | None, bool]


def _sqlite_lines(
    conn: sqlite3.Connection, table: Table, plan: TablePlan, key: list[ColumnPlan], low: tuple | None, chunk: int
) -> Lines:
    """The chunk of lines after `low`; the digest is None when a line cannot be hashed (text that is not
    UTF-8: the exact path names it)."""
    rows = _sqlite_chunk(conn, table, sqlite_line(plan) or "''", key, low, chunk)
    high = tuple(rows[-1][: len(key)]) if rows else None
    try:
        data = "".join(row[-1] for row in rows).encode("utf-8")
    except UnicodeEncodeError:
        return len(rows), high, None, True
    if len(data) < WHOLE_CHUNK_BYTES:
        return len(rows), high, hashlib.md5(data, usedforsecurity=False).hexdigest(), True
    digests = _line_digests([row[-1] for row in rows]) or []
    return len(rows), high, hashlib.md5("".join(digests).encode("ascii"), usedforsecurity=False).hexdigest(), False


def _grouped_lines(
    conn: sqlite3.Connection, table: Table, plan: TablePlan, key: list[ColumnPlan], low: tuple | None, chunk: int
) -> Lines | None:
    """_sqlite_lines for a table keyed by one integer column, with its lines joined by SQLite
    (group_concat): Python gets one value per chunk instead of a row per line. None when the chunk is
    too big to hash whole. Were SQLite ever to join the lines out of key order, the digests would
    differ and the chunk would go the exact way: slower, never wrong."""
    keyset = columns_keyset(table, [key[0].source])  # integers: their order needs no collation
    line = sqlite_line(plan) or "''"
    inner, params = keyset.select([f"{line} AS line", f"{keyset.keys[0]} AS k"], low, None, chunk)
    query = f"SELECT group_concat(line, ''), count(*), max(k) FROM ({inner})"
    conn.text_factory = bytes  # md5 of the bytes as stored: text that is not UTF-8 just hashes unequal
    try:
        data, count, last = conn.execute(query, params).fetchone()
    finally:
        conn.text_factory = str
    if count and len(data) >= WHOLE_CHUNK_BYTES:
        return None
    high = (last,) if count else None
    return count, high, hashlib.md5(data or b"", usedforsecurity=False).hexdigest(), True


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
    """Chunk by chunk in key order: hash lines (checksum.py) where the types allow, else or when the
    hashes differ, compare canonical values and drill down to the differing keys.

    On the fast path PostgreSQL hashes chunk i in a second thread while SQLite reads chunk i+1: the two
    sides took about the same time, one after the other."""
    low: tuple | None = None
    if not has_lines(plan):
        while True:
            high, count = _exact_chunk(conn, pg, table, plan, schema, key, low, chunk, verdict)
            if count == 0:
                break
            low = high
            if count < chunk:
                break
        _count_extra(pg, plan, schema, key, low, verdict)
        return
    pending: deque[tuple[tuple | None, int, str | None, Future]] = deque()

    def settle(entry: tuple[tuple | None, int, str | None, Future]) -> None:
        start, count, left, future = entry
        right, theirs = future.result()
        if left is None or left != right or theirs != count:
            _exact_chunk(conn, pg, table, plan, schema, key, start, chunk, verdict)

    one_integer_key = len(key) == 1 and key[0].choice.converter == "int"
    with ThreadPoolExecutor(max_workers=1) as hasher:
        while True:
            grouped = _grouped_lines(conn, table, plan, key, low, chunk) if one_integer_key else None
            count, high, left, whole = grouped or _sqlite_lines(conn, table, plan, key, low, chunk)
            if count:
                verdict.chunks += 1
                future = hasher.submit(_pg_digest, pg, plan, schema, key, low, high, whole)
                pending.append((low, count, left, future))
                low = high
            done = count < chunk
            while pending and (done or len(pending) > 1):
                settle(pending.popleft())
            if done:
                break
    _count_extra(pg, plan, schema, key, low, verdict)


def _exact_chunk(
    conn: sqlite3.Connection,
    pg: psycopg.Connection,
    table: Table,
    plan: TablePlan,
    schema: str,
    key: list[ColumnPlan],
    low: tuple | None,
    chunk: int,
    verdict: TableVerdict,
) -> tuple[tuple | None, int]:
    """Compare the chunk after `low` value by value; returns (its last key, its rows)."""
    exprs, in_sqlite = _canonical_items(plan)
    n = len(key)
    rows = _sqlite_chunk(conn, table, exprs, key, low, chunk)
    if not rows:
        return None, 0
    verdict.exact_chunks += 1
    if not has_lines(plan):
        verdict.chunks += 1
    high = tuple(rows[-1][:n])
    jsonb = [n + i for i, c in enumerate(plan.columns) if c.choice.pg_type == "jsonb" and in_sqlite[i]]
    by_postgres = _jsonb_by_postgres(pg, rows, jsonb) if jsonb else None
    as_is = by_postgres is not None
    mine = {tuple(row[:n]): _canonical_row(plan, in_sqlite, row[n:], as_is) for row in by_postgres or rows}
    target = _pg_chunk(pg, plan, schema, key, low, high)
    theirs = {
        tuple(r[:n]): tuple(_canonical(c, t, as_is) for c, t in zip(plan.columns, r[n:], strict=True)) for r in target
    }
    if mine != theirs:
        _drill_down(mine, theirs, verdict)
    return high, len(rows)


def _count_extra(
    pg: psycopg.Connection,
    plan: TablePlan,
    schema: str,
    key: list[ColumnPlan],
    low: tuple | None,
    verdict: TableVerdict,
) -> None:
    """Rows in the target beyond the last source key (all of them when the source is empty)."""
    if low is not None:
        verdict.extra_in_target += _pg_chunk_after(pg, plan, schema, key, low)
    else:
        count_all = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(plan.target))
        verdict.extra_in_target += pg.execute(count_all).fetchone()[0]


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


def _multiset_lines_match(
    conn: sqlite3.Connection, pg: psycopg.Connection, table: Table, plan: TablePlan, schema: str, chunk: int
) -> bool:
    """Fast path for a keyless table: the same multiset of row-line digests on both sides."""
    counts: Counter[str] = Counter()
    try:
        cursor = conn.execute(f"SELECT {sqlite_line(plan)} FROM {quote_ident(table.name)}")
        while rows := cursor.fetchmany(chunk):
            digests = _line_digests([row[0] for row in rows])
            if digests is None:
                return False
            counts.update(digests)
    except sqlite3.OperationalError:
        return False
    query = sql.SQL("SELECT md5({}) FROM {}.{}").format(
        sql.SQL(pg_line(plan) or "''"), sql.Identifier(schema), sql.Identifier(plan.target)
    )
    with pg.cursor(name="pgferry_verify_lines") as cursor:
        cursor.execute(query)
        for (digest,) in cursor:
            counts[digest] -= 1
    return not any(counts.values())


def _verify_multiset(
    conn: sqlite3.Connection,
    pg: psycopg.Connection,
    table: Table,
    plan: TablePlan,
    schema: str,
    verdict: TableVerdict,
    chunk: int,
) -> None:
    if has_lines(plan) and _multiset_lines_match(conn, pg, table, plan, schema, chunk):
        verdict.chunks = 1
        return
    counts: Counter[bytes] = Counter()
    verdict.exact_chunks = 1
    for rows in _sqlite_rows(conn, table, plan, chunk):
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
    jobs: int = 2,
    plan: MigrationPlan | None = None,
) -> VerifyReport:
    """Compare every copied table of `sqlite_path` with its copy in `dsn`, `jobs` tables at a time.

    `plan` is the copy's own plan (CopyReport.plan): it says how each value was rendered, and
    passing it spares a second census of the source.
    """
    with user_errors(dsn):
        options = CopyOptions(schema=schema, keep_case=keep_case, casts_file=casts_file, jobs=max(1, jobs))
        if plan is None:  # the plan the copy stored, if any: how its values were rendered
            with connect(dsn) as pg:
                stored = control.read_plan(pg, schema)
            plan = None if stored is None else MigrationPlan.from_dict(stored)
        source = open_source(sqlite_path, options, plan=plan)
        try:
            tables = sorted(source.schema.tables, key=lambda t: -source.plan.table(t.name).rows)
            with ThreadPoolExecutor(max_workers=options.jobs) as pool:
                done = dict(
                    zip(
                        [t.name for t in tables],
                        pool.map(lambda t: _verify_table(source, dsn, t, chunk_rows, progress), tables),
                        strict=True,
                    )
                )
        finally:
            source.close()
    verdicts = [done[t.name] for t in source.schema.tables]
    return VerifyReport(str(sqlite_path), redact(dsn), schema, verdicts)


def _verify_table(
    source: Source, dsn: str, table: Table, chunk_rows: int, progress: Callable[[str], None] | None
) -> TableVerdict:
    plan = source.plan.table(table.name)
    schema = source.plan.schema
    if progress:
        progress(table.name)
    with source.borrow() as conn, connect(dsn) as pg:
        pg.execute("SET TimeZone = 'UTC'")
        pg.execute("SET extra_float_digits = 1")
        pg.execute("SET DateStyle = 'ISO, YMD'")
        source_rows = conn.execute(f"SELECT count(*) FROM {quote_ident(table.name)}").fetchone()[0]
        target_rows = pg.execute(
            sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(plan.target))
        ).fetchone()[0]
        verdict = TableVerdict(table.name, int(source_rows), int(target_rows))
        key = _key_plan(table, plan)
        with pg.transaction():
            if key:
                _verify_keyed(conn, pg, table, plan, schema, key, verdict, chunk_rows)
            else:
                _verify_multiset(conn, pg, table, plan, schema, verdict, chunk_rows)
    return verdict
