"""Copy a SQLite database into PostgreSQL: one read snapshot, keyset chunks, COPY, checkpoints.

Shape of a run:
1. Open the source read-only and BEGIN: schema, sqlite_sequence, census and every chunk are read
   in this one transaction, so all tables come from one consistent snapshot (worker threads share
   the connection, each with its own cursor; SQLite serialises their steps).
2. Build the plan (types from the census), create the target tables without indexes.
3. Worker threads (`jobs`) copy key ranges: SQLite renders COPY text (see rowformat), Python
   moves lines, each chunk commits together with its checkpoint.
4. Primary keys, identity restarts, indexes and CHECKs run in parallel, then foreign keys, views
   and ANALYZE. Anything PostgreSQL refuses is reported, never dropped silently.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import queue
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from pgferry.dsn import redact
from pgferry.errors import PgferryError, SourceError, TargetError, UsageError
from pgferry.migrate import control
from pgferry.migrate.control import Checkpoint
from pgferry.migrate.plan import MigrationPlan, Skipped, TablePlan, build_plan, create_table_sql, load_casts
from pgferry.migrate.rowformat import line_maker, select_list
from pgferry.sqlite.census import TableCensus, merge_censuses, take_census
from pgferry.sqlite.schema import Schema, Table, quote_ident, read_schema
from pgferry.sqlite.snapshot import Snapshot, open_snapshot

ROWS_PER_PART = 200_000
STREAM_ROWS = 2_000  # rows read and written at a time inside a chunk
ROWID_NAMES = ("rowid", "_rowid_", "oid")
Progress = Callable[[str, int, int], None]  # (table, rows copied so far, rows in table)
CensusProgress = Callable[[int, int], None]  # (parts measured so far, parts in all)


class CopyDataError(PgferryError):
    """A value PostgreSQL cannot hold; the message names table, row key, column and value."""


@dataclass(frozen=True)
class CopyOptions:
    schema: str = "public"
    jobs: int = 2
    resume: bool = False
    casts_file: str | None = None
    on_error: str = "stop"  # or "reject"
    reject_file: str | None = None
    keep_case: bool = False
    chunk_rows: int = 20_000


@dataclass
class TableResult:
    source: str
    target: str
    rows: int
    rejected: int = 0


@dataclass
class CopyReport:
    source: str
    target: str
    schema: str
    tables: list[TableResult]
    seconds: float
    choices: list[dict[str, Any]]
    skipped: list[Skipped]
    not_carried: list[Skipped]
    rejected: int
    resumed: bool
    snapshot: str
    phases: dict[str, float] = field(default_factory=dict)
    plan: MigrationPlan | None = field(default=None, repr=False, compare=False)  # for verify_copy

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "schema": self.schema,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows / self.seconds) if self.seconds else None,
            "resumed": self.resumed,
            "snapshot": self.snapshot,
            "rejected": self.rejected,
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
            "tables": [t.__dict__ for t in self.tables],
            "type_choices": self.choices,
            "skipped": [s.__dict__ for s in self.skipped],
            "not_carried": [s.__dict__ for s in self.not_carried],
        }


@dataclass
class Source:
    """The open source: connections sharing one read snapshot, and what was read in it."""

    path: Path
    snapshot: Snapshot
    schema: Schema
    plan: MigrationPlan
    journal_mode: str
    pool: queue.Queue[sqlite3.Connection] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        for conn in self.snapshot.connections:
            self.pool.put(conn)

    @property
    def conn(self) -> sqlite3.Connection:
        return self.snapshot.connections[0]

    @contextlib.contextmanager
    def borrow(self) -> Iterator[sqlite3.Connection]:
        """A connection of the snapshot for this thread alone, returned afterwards."""
        conn = self.pool.get()
        try:
            yield conn
        finally:
            self.pool.put(conn)

    def close(self) -> None:
        self.snapshot.close()


def _row_ranges(conn: sqlite3.Connection, table: Table, parts: int) -> list[tuple[str, tuple]]:
    """WHERE clauses splitting a big rowid table into `parts` ranges (one range otherwise)."""
    if parts <= 1 or table.without_rowid:
        return [("", ())]
    # The rowid span (two b-tree seeks) decides, not count(*): that is a full scan, and the census
    # counts the rows anyway.
    key = _rowid_name(table)
    low, high = conn.execute(f"SELECT min({key}), max({key}) FROM {quote_ident(table.name)}").fetchone()
    if low is None or high - low + 1 <= ROWS_PER_PART:
        return [("", ())]
    step = (high - low + 1) / parts
    bounds = [low - 1] + [low - 1 + round(step * i) for i in range(1, parts)] + [high]
    return [(f" WHERE {key} > ? AND {key} <= ?", (bounds[i], bounds[i + 1])) for i in range(parts)]


@contextlib.contextmanager
def _naming_table(source: Source, table: Table) -> Iterator[None]:
    """A corrupt page met while reading `table` becomes one line that names the table."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError):
            raise  # locked, interrupted: said as it is by the caller
        raise SourceError(
            f"{source.path}: table {table.name!r} cannot be read ({exc}); "
            f"`sqlite3 {source.path} 'PRAGMA integrity_check'` shows where"
        ) from None


def _census_all(source: Source, jobs: int, progress: CensusProgress | None = None) -> dict[str, TableCensus]:
    """Census of every table, big tables split by rowid range, on all the snapshot's connections."""
    tasks = []
    for table in source.schema.tables:
        with _naming_table(source, table):
            tasks += [(table, where, params) for where, params in _row_ranges(source.conn, table, jobs)]
    done = [0]
    lock = threading.Lock()

    def run(task: tuple[Table, str, tuple]) -> TableCensus:
        table, where, params = task
        with source.borrow() as conn, _naming_table(source, table):
            census = take_census(conn, table, where, params)
        if progress is not None:
            with lock:
                done[0] += 1
                progress(done[0], len(tasks))
        return census

    with ThreadPoolExecutor(max_workers=max(1, len(source.snapshot.connections))) as pool:
        results = list(pool.map(run, tasks))
    by_table: dict[str, list[TableCensus]] = {}
    for census in results:
        by_table.setdefault(census.table, []).append(census)
    return {name: merge_censuses(parts) for name, parts in by_table.items()}


def open_source(
    path: str | Path,
    options: CopyOptions,
    plan: MigrationPlan | None = None,
    census_progress: CensusProgress | None = None,
) -> Source:
    """Open `jobs` connections in one snapshot, read the schema, take the census, build the plan
    (or use `plan`, made by an earlier open_source of the same file, and skip the census).

    The connections stay inside their read transactions until `Source.close()`.
    """
    snapshot = open_snapshot(path, max(1, options.jobs))
    conn = snapshot.connections[0]
    schema = read_schema(conn)
    sequences: dict[str, int] = {}
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        sequences = {name: int(seq) for name, seq in conn.execute("SELECT name, seq FROM sqlite_sequence")}
    source = Source(Path(path), snapshot, schema, MigrationPlan(options.schema, [], [], [], []), snapshot.journal_mode)
    if plan is not None:
        source.plan = plan
        return source
    censuses = _census_all(source, options.jobs, census_progress)
    source.plan = build_plan(
        schema,
        censuses,
        sequences,
        target_schema=options.schema,
        keep_case=options.keep_case,
        casts=load_casts(options.casts_file),
    )
    return source


def not_carried(schema: Schema) -> list[Skipped]:
    """Objects the copy does not recreate, each with the reason."""
    items = [
        Skipped(
            "trigger", t.name, "SQLite trigger bodies are not translated; recreate it as a PostgreSQL trigger function"
        )
        for t in schema.triggers
    ]
    items += [
        Skipped(
            "virtual table",
            v.name,
            "virtual tables (FTS, R*Tree, ...) have no PostgreSQL "
            "equivalent; use PostgreSQL full-text search or an extension",
        )
        for v in schema.virtual_tables
    ]
    return items


def dry_run_sql(plan: MigrationPlan, schema: Schema) -> str:
    """The DDL a copy would run, with a comment on every type choice and every skipped object."""
    out = [f"-- pgferry copy plan: {len(plan.tables)} tables into schema {plan.schema}"]
    out += [f"CREATE EXTENSION IF NOT EXISTS {ext};" for ext in plan.extensions]
    for table in plan.tables:
        out.append(f"\n-- {table.source}: {table.rows} rows")
        for column in table.columns:
            note = f"  [{column.choice.note}]" if column.choice.note else ""
            out.append(f"--   {column.target} {column.choice.pg_type}: {column.choice.reason}{note}")
        out.append(create_table_sql(table, plan.schema) + ";")
    out.append("\n-- after the data:")
    out += [step.sql + ";" for step in plan.steps]
    for item in plan.skipped + not_carried(schema):
        out.append(f"-- NOT CARRIED {item.kind} {item.name}: {item.reason}")
    return "\n".join(out) + "\n"


@contextlib.contextmanager
def user_errors(dsn: str) -> Iterator[None]:
    """Turn driver errors that escape a run into one-line pgferry errors (passwords redacted)."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise SourceError(f"reading the SQLite source failed: {exc}") from None
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TargetError(f"PostgreSQL ({redact(dsn)}): {redact(first)}") from None


def _connect(dsn: str) -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or "connection failed"
        raise TargetError(f"cannot connect to {redact(dsn)}: {redact(message)}") from None


def _rowid_name(table: Table) -> str:
    names = {c.name.lower() for c in table.columns}
    for candidate in ROWID_NAMES:
        if candidate not in names:
            return candidate
    raise UsageError(f"table {table.name!r} has columns named rowid, _rowid_ and oid and no usable key")


def _key_columns(table: Table) -> list[str]:
    """What a chunk is ordered and bounded by: the rowid, or the primary key of WITHOUT ROWID tables."""
    if table.without_rowid:
        return [quote_ident(name) for name in table.primary_key]
    return [_rowid_name(table)]


def _initial_parts(source: Source, table: Table, jobs: int, rows: int) -> list[Checkpoint]:
    if table.without_rowid or rows <= ROWS_PER_PART or jobs <= 1:
        return [Checkpoint(table.name, 0, None, None, 0, False)]
    key = _key_columns(table)[0]
    low, high = source.conn.execute(f"SELECT min({key}), max({key}) FROM {quote_ident(table.name)}").fetchone()
    parts = min(jobs, math.ceil(rows / ROWS_PER_PART))
    step = (high - low + 1) / parts
    bounds = [low - 1] + [low - 1 + round(step * i) for i in range(1, parts)] + [None]
    return [
        Checkpoint(table.name, i, [bounds[i]], None if bounds[i + 1] is None else [bounds[i + 1]], 0, False)
        for i in range(parts)
    ]


class _Copier:
    """Moves the rows of one run; one instance shared by the worker threads."""

    def __init__(self, source: Source, dsn: str, options: CopyOptions, progress: Progress | None):
        self.source, self.dsn, self.options, self.progress = source, dsn, options, progress
        self.copied: dict[str, int] = {}
        self.rejected: dict[str, int] = {}
        self.lock = threading.Lock()
        self.reject_path = Path(options.reject_file) if options.reject_file else None
        self.makers: dict[str, tuple[int, Callable[[tuple], str] | None]] = {}

    def run_part(self, table: Table, plan: TablePlan, checkpoint: Checkpoint) -> None:
        columns = plan.copied_columns
        keys = _key_columns(table)
        items = select_list(columns)
        self.makers[table.name] = (len(items), line_maker(columns))
        bound = f"({', '.join(keys)}) > ({', '.join('?' * len(keys))})"
        upper = f" AND {keys[0]} <= ?" if checkpoint.upper_key is not None else ""
        order = ", ".join(keys)
        head = f"SELECT {', '.join(items)}, {order} FROM {quote_ident(table.name)}"
        target = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier(self.options.schema),
            sql.Identifier(plan.target),
            sql.SQL(", ").join(sql.Identifier(c.target) for c in columns),
        )
        last, rows = checkpoint.last_key, checkpoint.rows
        self._advance(table.name, 0, plan.rows)  # the table shows up (and its rate's clock starts) now
        with self.source.borrow() as conn, _connect(self.dsn) as pg:
            cursor = conn.cursor()
            while True:
                where, params = self._where(last, bound, upper, checkpoint)
                tail = f"{where} ORDER BY {order}"
                query_params = [*params, self.options.chunk_rows]
                try:
                    scanned, last_seen = self._stream_chunk(
                        cursor, pg, target, head, tail, query_params, table, checkpoint, rows, len(keys)
                    )
                    copied = scanned
                except (
                    sqlite3.OperationalError,
                    pgerrors.DataError,
                    pgerrors.IntegrityError,
                    pgerrors.InternalError_,
                ) as exc:
                    if isinstance(exc, sqlite3.OperationalError) and "decode" not in str(exc).lower():
                        raise
                    # The careful path: materialise the chunk, name or reject the bad values.
                    batch, scanned, last_seen = self._fetch(cursor, head, tail, query_params, table, keys, columns)
                    if scanned == 0:
                        break
                    done = scanned < self.options.chunk_rows
                    copied = self._write(
                        pg,
                        target,
                        batch,
                        table,
                        plan,
                        Checkpoint(table.name, checkpoint.part, last_seen, checkpoint.upper_key, 0, done),
                        rows,
                    )
                if scanned == 0:
                    break
                last = last_seen
                rows += copied
                self._advance(table.name, copied, plan.rows)
                if scanned < self.options.chunk_rows:
                    return
            with pg.transaction():
                control.save_checkpoint(
                    pg,
                    self.options.schema,
                    Checkpoint(table.name, checkpoint.part, last, checkpoint.upper_key, rows, True),
                )

    def _stream_chunk(
        self,
        cursor: sqlite3.Cursor,
        pg: psycopg.Connection,
        target: sql.Composed,
        head: str,
        tail: str,
        params: list[Any],
        table: Table,
        checkpoint: Checkpoint,
        rows_before: int,
        key_width: int,
    ) -> tuple[int, list[Any] | None]:
        """COPY one chunk as it is read, a few thousand rows at a time, and its checkpoint, in one
        transaction: memory stays flat whatever the chunk size. Raises on the first bad value."""
        width, maker = self.makers[table.name]
        scanned, last = 0, None
        with pg.transaction():
            cursor.execute(f"{head}{tail} LIMIT ?", params)
            with pg.cursor() as cur, cur.copy(target, writer=QueuedLibpqWriter(cur)) as copy:
                while batch := cursor.fetchmany(STREAM_ROWS):
                    if maker is None:
                        copy.write("".join(row[0] for row in batch))
                    else:
                        copy.write("".join(maker(row[:width]) for row in batch))
                    scanned += len(batch)
                    last = list(batch[-1][-key_width:])
            if scanned:
                done = scanned < self.options.chunk_rows
                control.save_checkpoint(
                    pg,
                    self.options.schema,
                    Checkpoint(table.name, checkpoint.part, last, checkpoint.upper_key, rows_before + scanned, done),
                )
        return scanned, last

    @staticmethod
    def _where(last: list[Any] | None, bound: str, upper: str, checkpoint: Checkpoint) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if last is not None:
            clauses.append(bound)
            params += last
        if upper:
            clauses.append(upper.removeprefix(" AND "))
            params += checkpoint.upper_key or []
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def _fetch(
        self,
        cursor: sqlite3.Cursor,
        head: str,
        tail: str,
        params: list[Any],
        table: Table,
        keys: list[str],
        columns: list,
    ) -> tuple[list[tuple], int, list[Any] | None]:
        """(rows as (line, *key), rows scanned, last key scanned): rejected rows still move the key on."""
        try:
            batch = cursor.execute(f"{head}{tail} LIMIT ?", params).fetchall()
            scanned, last = len(batch), (list(batch[-1][-len(keys) :]) if batch else None)
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc).lower():
                raise
            batch, scanned, last = self._without_bad_text(cursor.connection, head, tail, params, table, keys, columns)
        width, maker = self.makers[table.name]
        if maker is not None:
            batch = [(maker(row[:width]), *row[width:]) for row in batch]
        return batch, scanned, last

    def _without_bad_text(
        self,
        conn: sqlite3.Connection,
        head: str,
        tail: str,
        params: list[Any],
        table: Table,
        keys: list[str],
        columns: list,
    ) -> tuple[list[tuple], int, list[Any] | None]:
        """Find rows whose text is not valid UTF-8; stop naming the first, or reject them all.

        Reads the chunk again as bytes on the same connection (same snapshot); this thread owns it.
        """
        conn.text_factory = bytes
        try:
            return self._find_bad_text(conn, head, tail, params, table, keys, columns)
        finally:
            conn.text_factory = str

    def _find_bad_text(
        self,
        conn: sqlite3.Connection,
        head: str,
        tail: str,
        params: list[Any],
        table: Table,
        keys: list[str],
        columns: list,
    ) -> tuple[list[tuple], int, list[Any] | None]:
        names = ", ".join(quote_ident(c.source) for c in columns)
        source_part = f"{quote_ident(table.name)}{tail}"
        bad_keys: list[list[Any]] = []
        scanned, last_key = 0, None
        for row in conn.execute(f"SELECT {', '.join(keys)}, {names} FROM {source_part} LIMIT ?", params).fetchall():
            scanned += 1
            key, values = list(row[: len(keys)]), row[len(keys) :]
            last_key = [k.decode("utf-8", "replace") if isinstance(k, bytes) else k for k in key]
            for column, value in zip(columns, values, strict=True):
                if isinstance(value, bytes) and column.choice.pg_type != "bytea":
                    try:
                        value.decode("utf-8")
                    except UnicodeDecodeError as err:
                        problem = f"invalid UTF-8 ({err.reason} at byte {err.start})"
                        self._bad_value(table.name, key, column.source, repr(value[:60]), problem)
                        bad_keys.append(key)
                        break
        if not bad_keys:
            raise CopyDataError(f"table {table.name!r}: a text value could not be decoded as UTF-8")
        exclude = " AND ".join(f"({', '.join(keys)}) <> ({', '.join('?' * len(keys))})" for _ in bad_keys)
        where, order = tail.split(" ORDER BY ")
        where = f"{where} AND {exclude}" if where else f" WHERE {exclude}"
        flat = [v for key in bad_keys for v in key]
        query = f"{head}{where} ORDER BY {order} LIMIT ?"
        conn.text_factory = str
        rows = conn.execute(query, [*params[:-1], *flat, scanned - len(bad_keys)]).fetchall()
        return rows, scanned, last_key

    def _bad_value(self, table: str, key: list[Any], column: str, value: str, problem: str) -> None:
        message = f"table {table!r}, row key {key}, column {column!r}: {problem}; value {value}"
        if self.options.on_error != "reject":
            raise CopyDataError(message + " (use --on-error reject to write such rows to a reject file)")
        with self.lock:
            self.rejected[table] = self.rejected.get(table, 0) + 1
            if self.reject_path is not None:
                with self.reject_path.open("a") as handle:
                    handle.write(
                        json.dumps({"table": table, "key": key, "column": column, "problem": problem, "value": value})
                        + "\n"
                    )

    def _write(
        self,
        pg: psycopg.Connection,
        target: sql.Composed,
        batch: list[tuple],
        table: Table,
        plan: TablePlan,
        checkpoint: Checkpoint,
        rows_before: int,
    ) -> int:
        """COPY a chunk and its checkpoint in one transaction; a refused value stops or is rejected."""
        lines = [row[0] for row in batch]
        while True:
            try:
                with pg.transaction():
                    if lines:
                        with pg.cursor() as cur, cur.copy(target) as copy:
                            copy.write("".join(lines))
                    control.save_checkpoint(
                        pg,
                        self.options.schema,
                        Checkpoint(
                            checkpoint.table,
                            checkpoint.part,
                            checkpoint.last_key,
                            checkpoint.upper_key,
                            rows_before + len(lines),
                            checkpoint.done,
                        ),
                    )
                return len(lines)
            except (pgerrors.DataError, pgerrors.IntegrityError, pgerrors.InternalError_) as exc:
                index, column = _copy_error_position(exc)
                if index is None or index >= len(lines):
                    raise CopyDataError(
                        f"table {table.name!r}: PostgreSQL refused a chunk: {str(exc).splitlines()[0]}"
                    ) from None
                key = list(batch[index][1:])
                fields = next(csv.reader([lines[index]]))
                shown = fields[_column_position(plan, column)] if column else lines[index][:80]
                self._bad_value(table.name, key, column or "?", repr(shown[:80]), str(exc).splitlines()[0])
                del lines[index]
                batch = batch[:index] + batch[index + 1 :]

    def _advance(self, table: str, rows: int, total: int) -> None:
        with self.lock:
            self.copied[table] = self.copied.get(table, 0) + rows
            done = self.copied[table]
        if self.progress is not None:
            self.progress(table, done, total)


_COPY_CONTEXT = re.compile(r"COPY [^,]+, line (\d+)(?:, column ([^:]+))?")


def _copy_error_position(exc: psycopg.Error) -> tuple[int | None, str | None]:
    context = getattr(exc.diag, "context", None) or ""
    match = _COPY_CONTEXT.search(context)
    if not match:
        return None, None
    return int(match.group(1)) - 1, match.group(2)


def _column_position(plan: TablePlan, target_column: str) -> int:
    for position, column in enumerate(plan.copied_columns):
        if column.target == target_column:
            return position
    return 0
