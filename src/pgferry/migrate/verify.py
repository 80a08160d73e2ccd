"""Prove a copy lost nothing: row counts, then chunked checksums, drilling down to differing rows.

Both sides are read as text and brought to one canonical form per PostgreSQL type (the chunk
readers and canonical rows are in pgferry.migrate.verify_chunks; the forms themselves belong to
each converter, pgferry.migrate.converters). Tables with a primary key (pgferry.migrate.identity)
are compared chunk by chunk in key order (pt-table-checksum style), and only a chunk whose checksum
differs is compared row by row; tables without a key are compared as multisets of row hashes, so a
duplicated or missing copy of a duplicate row is still seen.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgferry.dsn import redact
from pgferry.events import Event, Listener, no_events
from pgferry.migrate import control
from pgferry.migrate.checksum import has_lines, pg_line, sqlite_line
from pgferry.migrate.converters import converter_for
from pgferry.migrate.errors import user_errors
from pgferry.migrate.identity import RowIdentity, row_identity
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.plan import MigrationPlan, TablePlan
from pgferry.migrate.source import Source, open_source
from pgferry.migrate.verify_chunks import (
    ChunkKey,
    Row,
    canonical,
    canonical_items,
    canonical_row,
    grouped_lines,
    jsonb_by_postgres,
    line_digests,
    pg_chunk,
    pg_count_after,
    pg_digest,
    pg_select,
    row_digest,
    sqlite_chunk,
    sqlite_lines,
    sqlite_rows,
)
from pgferry.pg.connect import connect
from pgferry.sqlite.schema import Table
from pgferry.sqltext import quote_ident

MAX_DIFFERENCES = 20


@dataclass
class TableVerdict:
    table: str
    source_rows: int
    target_rows: int
    differing_keys: list[Any] = field(default_factory=list)
    # Source column -> rows whose value there differs (of the rows compared value by value).
    differing_columns: dict[str, int] = field(default_factory=dict)
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


PgConn = psycopg.Connection[Any]
# One chunk the SQLite side hashed, waiting for PostgreSQL's digest: (its low key, rows, digest, future).
Pending = tuple[ChunkKey | None, int, str | None, "Future[tuple[str | None, int]]"]


def _verify_keyed(
    conn: sqlite3.Connection,
    pg: PgConn,
    identity: RowIdentity,
    plan: TablePlan,
    schema: str,
    verdict: TableVerdict,
    chunk: int,
) -> None:
    """Chunk by chunk in key order: hash lines (checksum.py) where the types allow, else or when the
    hashes differ, compare canonical values and drill down to the differing keys.

    On the fast path PostgreSQL hashes chunk i in a second thread while SQLite reads chunk i+1: the two
    sides took about the same time, one after the other."""
    key = identity.key
    low: ChunkKey | None = None
    if not has_lines(plan):
        while True:
            high, count = _exact_chunk(conn, pg, identity, plan, schema, low, chunk, verdict)
            if count == 0:
                break
            low = high
            if count < chunk:
                break
        verdict.extra_in_target += pg_count_after(pg, plan, schema, key, low)
        return
    pending: deque[Pending] = deque()

    def settle(entry: Pending) -> None:
        start, count, left, future = entry
        right, theirs = future.result()
        if left is None or left != right or theirs != count:
            _exact_chunk(conn, pg, identity, plan, schema, start, chunk, verdict)

    one_integer_key = len(key) == 1 and converter_for(key[0]).name == "int"
    with ThreadPoolExecutor(max_workers=1) as hasher:
        while True:
            grouped = grouped_lines(conn, identity, plan, low, chunk) if one_integer_key else None
            count, high, left, whole = grouped or sqlite_lines(conn, identity, plan, low, chunk)
            if count and high is not None:
                verdict.chunks += 1
                future = hasher.submit(pg_digest, pg, plan, schema, key, low, high, whole)
                pending.append((low, count, left, future))
                low = high
            done = count < chunk
            while pending and (done or len(pending) > 1):
                settle(pending.popleft())
            if done:
                break
    verdict.extra_in_target += pg_count_after(pg, plan, schema, key, low)


def _exact_chunk(
    conn: sqlite3.Connection,
    pg: PgConn,
    identity: RowIdentity,
    plan: TablePlan,
    schema: str,
    low: ChunkKey | None,
    chunk: int,
    verdict: TableVerdict,
) -> tuple[ChunkKey | None, int]:
    """Compare the chunk after `low` value by value; returns (its last key, its rows)."""
    exprs, _in_sqlite = canonical_items(plan)
    key = identity.key
    n = len(key)
    rows = sqlite_chunk(conn, identity, exprs, low, chunk)
    if not rows:
        return None, 0
    verdict.exact_chunks += 1
    if not has_lines(plan):
        verdict.chunks += 1
    high = tuple(rows[-1][:n])
    mine, theirs = canonical_sides(pg, plan, rows, pg_chunk(pg, plan, schema, key, low, high), n)
    if mine != theirs:
        _drill_down(mine, theirs, verdict, [c.source for c in plan.columns])
    return high, len(rows)


def canonical_sides(
    pg: PgConn, plan: TablePlan, rows: list[Row], target: list[Row], n: int
) -> tuple[dict[ChunkKey, Row], dict[ChunkKey, Row]]:
    """Both sides' rows in canonical form, keyed by their first `n` values: `rows` read from SQLite
    with `canonical_items`, `target` from PostgreSQL as `pg_select` reads them."""
    _exprs, in_sqlite = canonical_items(plan)
    jsonb = [n + i for i, c in enumerate(plan.columns) if c.choice.pg_type == "jsonb" and in_sqlite[i]]
    by_postgres = jsonb_by_postgres(pg, rows, jsonb) if jsonb else None
    as_is = by_postgres is not None
    mine = {tuple(row[:n]): canonical_row(plan, in_sqlite, row[n:], as_is) for row in by_postgres or rows}
    theirs = {
        tuple(r[:n]): tuple(
            canonical(c, t, as_is and sq) for c, t, sq in zip(plan.columns, r[n:], in_sqlite, strict=True)
        )
        for r in target
    }
    return mine, theirs


@dataclass(frozen=True)
class RowDifference:
    """One row that is not the same on both sides: `kind` is differs, missing (in the target) or
    extra (in the target); `columns` the source columns whose values differ."""

    key: ChunkKey
    kind: str
    columns: tuple[str, ...] = ()


def row_differences(mine: dict[ChunkKey, Row], theirs: dict[ChunkKey, Row], columns: list[str]) -> list[RowDifference]:
    """The rows of two canonical sides that differ; keys are matched as verify matches them
    (`normal_key`), an extra row keeps the target's key."""
    out = []
    matched: set[ChunkKey] = set()
    for key, values in mine.items():
        found = normal_key(key, theirs)
        other = theirs.get(found)
        if other is None:
            out.append(RowDifference(key, "missing"))
            continue
        matched.add(found)
        if other != values:
            differing = tuple(c for c, a, b in zip(columns, values, other, strict=True) if a != b)
            out.append(RowDifference(key, "differs", differing))
    out += [RowDifference(key, "extra") for key in theirs if key not in matched]
    return out


def _drill_down(
    mine: dict[ChunkKey, Row], theirs: dict[ChunkKey, Row], verdict: TableVerdict, columns: list[str]
) -> None:
    """Count the rows missing, extra and differing, and name the columns that differ."""
    for difference in row_differences(mine, theirs, columns):
        if difference.kind == "extra":
            verdict.extra_in_target += 1
            continue
        _note(verdict, difference.key)
        if difference.kind == "missing":
            verdict.missing_in_target += 1
        for column in difference.columns:
            verdict.differing_columns[column] = verdict.differing_columns.get(column, 0) + 1


def normal_key(key: ChunkKey, theirs: dict[ChunkKey, Row]) -> ChunkKey:
    """`key` as `theirs` spells it (a SQLite key read as text matches PostgreSQL's by its text)."""
    if key in theirs:
        return key
    as_text = tuple(str(k) for k in key)
    for candidate in theirs:
        if tuple(str(c) for c in candidate) == as_text:
            return candidate
    return key


def _note(verdict: TableVerdict, key: ChunkKey) -> None:
    if len(verdict.differing_keys) < MAX_DIFFERENCES:
        verdict.differing_keys.append(list(key))


def _multiset_lines_match(
    conn: sqlite3.Connection, pg: PgConn, table: Table, plan: TablePlan, schema: str, chunk: int
) -> bool:
    """Fast path for a keyless table: the same multiset of row-line digests on both sides."""
    counts: Counter[str] = Counter()
    try:
        cursor = conn.execute(f"SELECT {sqlite_line(plan)} FROM {quote_ident(table.name)}")
        while rows := cursor.fetchmany(chunk):
            digests = line_digests([row[0] for row in rows])
            if digests is None:
                return False
            counts.update(digests)
    except sqlite3.OperationalError:
        return False
    query = sql.SQL("SELECT md5({}) FROM {}.{}").format(
        sql.SQL(pg_line(plan) or "''"), sql.Identifier(schema), sql.Identifier(plan.target)
    )
    with pg.cursor(name="pgferry_verify_lines") as named:
        named.execute(query)
        for (digest,) in named:
            counts[digest] -= 1
    return not any(counts.values())


def _verify_multiset(
    conn: sqlite3.Connection,
    pg: PgConn,
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
    for rows in sqlite_rows(conn, table.name, plan, chunk):
        counts.update(row_digest(values) for values in rows)
    verdict.chunks = 1
    with pg.cursor(name="pgferry_verify") as cursor:
        cursor.execute(pg_select(plan, schema, []))
        for row in cursor:
            counts[row_digest(tuple(canonical(c, t) for c, t in zip(plan.columns, row, strict=True)))] -= 1
    verdict.missing_in_target = sum(v for v in counts.values() if v > 0)
    verdict.extra_in_target = -sum(v for v in counts.values() if v < 0)


def verify_copy(
    sqlite_path: str | Path,
    dsn: str,
    schema: str = "public",
    keep_case: bool = False,
    casts_file: str | None = None,
    chunk_rows: int = 10_000,
    events: Listener = no_events,
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
                        pool.map(lambda t: _verify_table(source, dsn, t, chunk_rows, events), tables),
                        strict=True,
                    )
                )
        finally:
            source.close()
    verdicts = [done[t.name] for t in source.schema.tables]
    return VerifyReport(str(sqlite_path), redact(dsn), schema, verdicts)


def comparing_session(pg: PgConn) -> None:
    """The session settings PostgreSQL's ::text output is compared under (canonical forms assume them)."""
    pg.execute("SET TimeZone = 'UTC'")
    pg.execute("SET extra_float_digits = 1")
    pg.execute("SET DateStyle = 'ISO, YMD'")
    pg.execute("SET IntervalStyle = 'postgres'")


def _verify_table(source: Source, dsn: str, table: Table, chunk_rows: int, events: Listener) -> TableVerdict:
    plan = source.plan.table(table.name)
    schema = source.plan.schema
    with source.borrow() as conn, connect(dsn) as pg, source.naming(table):
        comparing_session(pg)
        source_rows = conn.execute(f"SELECT count(*) FROM {quote_ident(table.name)}").fetchone()[0]
        target_rows = pg_count_after(pg, plan, schema, (), None)
        verdict = TableVerdict(table.name, int(source_rows), target_rows)
        events(Event("verify", table.name, 0, verdict.source_rows))
        identity = row_identity(table, plan)
        with pg.transaction():
            if identity.key:  # keyed by the primary key, as the target has it
                _verify_keyed(conn, pg, identity, plan, schema, verdict, chunk_rows)
            else:
                _verify_multiset(conn, pg, table, plan, schema, verdict, chunk_rows)
    events(Event("verify", table.name, verdict.source_rows, verdict.source_rows))
    return verdict
