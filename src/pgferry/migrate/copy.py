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
import os
import queue
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
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
from pgferry.migrate.plan import MigrationPlan, Skipped, Step, TablePlan, build_plan, create_table_sql, load_casts
from pgferry.migrate.rowformat import line_maker, select_list
from pgferry.sqlite.census import ColumnCensus, TableCensus, merge_censuses, take_census, take_sample_census
from pgferry.sqlite.schema import Schema, Table, quote_ident, read_schema
from pgferry.sqlite.snapshot import Snapshot, open_snapshot

ROWS_PER_PART = 200_000
# Tables with more rows are typed from a sample and every value is checked as it is copied (see
# pgferry.migrate.rowformat, guarded rendering); a full census of them would cost a second full read.
SAMPLE_ABOVE_ROWS = 10_000
STREAM_ROWS = 2_000  # rows read and written at a time inside a chunk
Progress = Callable[[str, int, int], None]  # (table, rows copied so far, rows in table)
CensusProgress = Callable[[int, int], None]  # (parts measured so far, parts in all)


class CopyDataError(PgferryError):
    """A value PostgreSQL cannot hold; the message names table, row key, column and value."""


def default_jobs() -> int:
    """Workers for a machine: one per CPU and one more, at most 8. Each worker alternates between
    SQLite (rendering), the network and PostgreSQL (parsing, committing); a spare one keeps every CPU
    busy through those waits (the scale-1 forum on 2 vCPUs: 3 workers about 8% faster than 2, 4 slower)."""
    return min(8, (os.cpu_count() or 1) + 1)


@dataclass(frozen=True)
class CopyOptions:
    schema: str = "public"
    jobs: int = field(default_factory=default_jobs)
    resume: bool = False
    casts_file: str | None = None
    on_error: str = "stop"  # or "reject"
    reject_file: str | None = None
    keep_case: bool = False
    chunk_rows: int = 20_000
    full_census: bool = False  # type big tables from a census of every row instead of a sample


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
    replanned: list[Replan] = field(default_factory=list)

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
            "replanned": [r.as_dict() for r in self.replanned],
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
    censuses: dict[str, TableCensus] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)

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

    def plan_with(self, census: TableCensus, options: CopyOptions) -> MigrationPlan:
        """A plan whose table `census.table` is planned from `census`; take only that table's part.

        A resumed copy has no census of the other tables (its plan was stored): they are planned
        from empty stand-ins, which changes nothing of this table's plan or steps."""
        self.censuses[census.table] = census
        stand_in = {
            t.name: TableCensus(t.name, 0, tuple(ColumnCensus(c.name, 0) for c in t.columns))
            for t in self.schema.tables
            if t.name not in self.censuses
        }
        return _build(self.schema, {**stand_in, **self.censuses}, self.sequences, options)


def _build(
    schema: Schema, censuses: dict[str, TableCensus], sequences: dict[str, int], options: CopyOptions
) -> MigrationPlan:
    return build_plan(
        schema,
        censuses,
        sequences,
        target_schema=options.schema,
        keep_case=options.keep_case,
        casts=load_casts(options.casts_file),
    )


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


def _census_all(
    source: Source, jobs: int, progress: CensusProgress | None = None, sample_above: int | None = None
) -> dict[str, TableCensus]:
    """Census of every table, big tables split by rowid range, on all the snapshot's connections.

    With `sample_above`, a rowid table with more rows is measured on a sample (take_sample_census)."""
    tasks: list[tuple[Table, str, tuple | int]] = []
    for table in source.schema.tables:
        with _naming_table(source, table):
            if sample_above is not None and not table.without_rowid:
                rows = source.conn.execute(f"SELECT count(*) FROM {quote_ident(table.name)}").fetchone()[0]
                if rows > sample_above:
                    tasks.append((table, "sample", rows))
                    continue
            tasks += [(table, where, params) for where, params in _row_ranges(source.conn, table, jobs)]
    done = [0]
    lock = threading.Lock()

    def run(task: tuple[Table, str, tuple | int]) -> TableCensus:
        table, where, params = task
        with source.borrow() as conn, _naming_table(source, table):
            if isinstance(params, int):
                census = take_sample_census(conn, table, params)
            else:
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
    sample: bool = False,
) -> Source:
    """Open `jobs` connections in one snapshot, read the schema, take the census, build the plan
    (or use `plan`, made by an earlier open_source of the same file, and skip the census).

    With `sample` (the copy, unless --full-census), tables above SAMPLE_ABOVE_ROWS rows are typed
    from a sample; one whose sample already breaks its declared types (a note) gets a full census,
    so every note's figures are the whole table's. The connections stay inside their read
    transactions until `Source.close()`.
    """
    snapshot = open_snapshot(path, max(1, options.jobs))
    conn = snapshot.connections[0]
    schema = read_schema(conn)
    sequences: dict[str, int] = {}
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        sequences = {name: int(seq) for name, seq in conn.execute("SELECT name, seq FROM sqlite_sequence")}
    empty = MigrationPlan(options.schema, [], [], [], [])
    source = Source(Path(path), snapshot, schema, empty, snapshot.journal_mode, sequences=sequences)
    if plan is not None:
        source.plan = plan
        return source
    sample_above = SAMPLE_ABOVE_ROWS if sample and not options.full_census else None
    source.censuses = _census_all(source, options.jobs, census_progress, sample_above)
    source.plan = _build(schema, source.censuses, sequences, options)
    noted = [schema.table(t.source) for t in source.plan.tables if t.sampled_rows is not None and t.notes]
    for table in noted:
        with source.borrow() as conn, _naming_table(source, table):
            source.censuses[table.name] = take_census(conn, table)
    if noted:
        source.plan = _build(schema, source.censuses, sequences, options)
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
    if table.rowid_name is not None:
        return table.rowid_name
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


REFUSALS = (sqlite3.OperationalError, pgerrors.DataError, pgerrors.IntegrityError, pgerrors.InternalError_)


@dataclass(frozen=True)
class _Render:
    """How one table's chunks are read and written under the plan of the moment."""

    plan: TablePlan
    head: str  # SELECT items, keys FROM table
    target: sql.Composed  # COPY ... FROM STDIN
    width: int  # items before the keys
    maker: Callable[[tuple], str] | None  # None: item 0 is the finished line
    guarded: bool  # types from a sample: every value checked (see rowformat)
    # Rowid tables whose lines SQLite finishes: a batch of lines joined in SQLite, read as one value
    # (head + WHERE + tail). A Python row per line cost more than rendering the line did.
    grouped: tuple[str, str] | None = None


class _TableGate:
    """One table's chunks against a re-plan of that table: chunks run side by side, a re-plan runs
    alone, and `generation` counts the re-plans that changed the table, so a part can tell that its
    rows so far were dropped with the old table."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.active = 0
        self.replanning = False
        self.generation = 0
        self.finished: set[int] = set()  # parts done in this generation

    @contextlib.contextmanager
    def chunk(self) -> Iterator[int]:
        with self.cond:
            while self.replanning:
                self.cond.wait()
            self.active += 1
            generation = self.generation
        try:
            yield generation
        finally:
            with self.cond:
                self.active -= 1
                self.cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self.cond:
            while self.replanning:
                self.cond.wait()
            self.replanning = True
            while self.active:
                self.cond.wait()
        try:
            yield
        finally:
            with self.cond:
                self.replanning = False
                self.cond.notify_all()


@dataclass(frozen=True)
class Replan:
    """A table re-planned during the copy: its sample missed a value its types could not hold."""

    table: str
    refused: str  # what PostgreSQL (or the guard) refused
    changes: list[str]  # "column: old -> new"; empty when the full census confirmed the types

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "refused": self.refused, "changes": self.changes}


Recreate = Callable[[psycopg.Connection, TablePlan], list[Skipped]]


class _Copier:
    """Moves the rows of one run; one instance shared by the worker threads."""

    def __init__(
        self,
        source: Source,
        dsn: str,
        options: CopyOptions,
        progress: Progress | None,
        checkpoints: dict[tuple[str, int], Checkpoint] | None = None,
        recreate: Recreate | None = None,
    ):
        self.source, self.dsn, self.options, self.progress = source, dsn, options, progress
        self.copied: dict[str, int] = {}
        self.rejected: dict[str, int] = {}
        self.lock = threading.Lock()
        self.reject_path = Path(options.reject_file) if options.reject_file else None
        self.gates = {t.name: _TableGate() for t in source.schema.tables}
        self.recreate = recreate
        self.replans: list[Replan] = []
        self.skipped: list[Skipped] = []
        self.renders: dict[str, tuple[TablePlan, int | None, _Render]] = {}
        # Where each part starts over after a re-plan: parts are consecutive key ranges, so a part
        # starts where the one before it ends, and ends where it always did.
        self.restarts: dict[str, list[Checkpoint]] = {}
        for cp in sorted((checkpoints or {}).values(), key=lambda c: (c.table, c.part)):
            parts = self.restarts.setdefault(cp.table, [])
            start = parts[-1].upper_key if parts else None
            parts.append(Checkpoint(cp.table, cp.part, start, cp.upper_key, 0, False))

    def _render(self, table: Table) -> _Render:
        """The render of the plan of the moment, made again only after a re-plan changed it."""
        plan = self.source.plan.table(table.name)
        cached = self.renders.get(table.name)
        if cached is not None and cached[0] is plan and cached[1] == plan.sampled_rows:
            return cached[2]
        columns = plan.copied_columns
        guarded = plan.sampled_rows is not None
        items = select_list(columns, guarded)
        keys = _key_columns(table)
        head = f"SELECT {', '.join(items)}, {', '.join(keys)} FROM {quote_ident(table.name)}"
        target = sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT csv)").format(
            sql.Identifier(self.options.schema),
            sql.Identifier(plan.target),
            sql.SQL(", ").join(sql.Identifier(c.target) for c in columns),
        )
        maker = line_maker(columns, guarded)
        grouped = None
        if maker is None and not table.without_rowid:
            grouped = (
                f"SELECT group_concat(line, ''), count(*), count(line), max(k) FROM (SELECT {items[0]} AS line,"
                f" {keys[0]} AS k FROM {quote_ident(table.name)}",
                f" ORDER BY {keys[0]} LIMIT ?)",
            )
        render = _Render(plan, head, target, len(items), maker, guarded, grouped)
        self.renders[table.name] = (plan, plan.sampled_rows, render)
        return render

    def run_part(self, table: Table, checkpoint: Checkpoint) -> None:
        """Copy one part; a part that re-planned its table also copies again the parts finished before."""
        pending = [(checkpoint, 0)]
        while pending:
            part, generation = pending.pop(0)
            pending += self._copy_part(table, part, generation)

    def _restart_point(self, table: str, part: int) -> Checkpoint:
        return next(cp for cp in self.restarts[table] if cp.part == part)

    def _copy_part(self, table: Table, checkpoint: Checkpoint, generation: int) -> list[tuple[Checkpoint, int]]:
        gate = self.gates[table.name]
        keys = _key_columns(table)
        bound = f"({', '.join(keys)}) > ({', '.join('?' * len(keys))})"
        upper = f" AND {keys[0]} <= ?" if checkpoint.upper_key is not None else ""
        tail_order = f" ORDER BY {', '.join(keys)}"
        last, rows = checkpoint.last_key, checkpoint.rows
        # Lines as bytes straight from SQLite (no decode and encode again) when the key is the rowid.
        as_bytes = not table.without_rowid
        self._advance(table.name, 0)  # the table shows up (and its rate's clock starts) now
        redo: list[tuple[Checkpoint, int]] = []
        with self.source.borrow() as conn, _connect(self.dsn) as pg:
            cursor = conn.cursor()
            while True:
                refused: Exception | None = None
                with gate.chunk() as current:
                    if current != generation:  # the table was re-planned: this part starts over
                        last, rows, generation = self._restart_point(table.name, checkpoint.part).last_key, 0, current
                    render = self._render(table)
                    where, params = self._where(last, bound, upper, checkpoint)
                    tail = f"{where}{tail_order}"
                    query_params = [*params, self.options.chunk_rows]
                    try:
                        conn.text_factory = bytes if as_bytes and render.maker is None else str
                        batches = (
                            self._fetched_batches(cursor, render, tail, query_params, len(keys))
                            if render.grouped is None
                            else self._grouped_batches(cursor, render, last, bound, upper, table, checkpoint)
                        )
                        scanned, last_seen = self._stream_chunk(pg, render, batches, table, checkpoint, rows)
                        copied = scanned
                    except REFUSALS as exc:
                        if isinstance(exc, sqlite3.OperationalError) and "decode" not in str(exc).lower():
                            raise
                        if render.guarded:
                            refused = exc
                        else:
                            conn.text_factory = str
                            scanned, copied, last_seen = self._careful_chunk(
                                cursor, pg, render, tail, query_params, table, keys, checkpoint, rows
                            )
                    finally:
                        conn.text_factory = str
                    if refused is None:
                        if scanned:
                            last = last_seen
                            rows += copied
                            self._advance(table.name, copied)
                        if scanned < self.options.chunk_rows:
                            if scanned == 0:
                                final = Checkpoint(table.name, checkpoint.part, last, checkpoint.upper_key, rows, True)
                                with pg.transaction():
                                    control.save_checkpoint(pg, self.options.schema, final)
                            with gate.cond:
                                gate.finished.add(checkpoint.part)
                            return redo
                if refused is not None:
                    redo += self._replan(table, generation, conn, pg, refused)

    def _careful_chunk(
        self,
        cursor: sqlite3.Cursor,
        pg: psycopg.Connection,
        render: _Render,
        tail: str,
        params: list[Any],
        table: Table,
        keys: list[str],
        checkpoint: Checkpoint,
        rows: int,
    ) -> tuple[int, int, list[Any] | None]:
        """Materialise a refused chunk and name or reject its bad values: (scanned, copied, last key)."""
        batch, scanned, last_seen = self._fetch(cursor, render, tail, params, table, keys)
        if scanned == 0:
            return 0, 0, None
        done = scanned < self.options.chunk_rows
        copied = self._write(
            pg,
            render.target,
            batch,
            table,
            render.plan,
            Checkpoint(table.name, checkpoint.part, last_seen, checkpoint.upper_key, 0, done),
            rows,
        )
        return scanned, copied, last_seen

    def _replan(
        self, table: Table, generation: int, conn: sqlite3.Connection, pg: psycopg.Connection, refused: Exception
    ) -> list[tuple[Checkpoint, int]]:
        """A value broke the sampled types of `table`: take its full census and plan it again.

        Same types: the table keeps its rows and goes on unguarded. Other types: the table is
        dropped and created again, every part starts over (the finished ones are returned, for
        this worker to copy again), in one transaction with the checkpoints and the stored plan,
        so a kill at any point resumes from a consistent state.
        """
        gate = self.gates[table.name]
        with gate.exclusive():
            if gate.generation != generation:
                return []  # another worker re-planned the table already
            old = self.source.plan.table(table.name)
            with _naming_table(self.source, table):
                census = take_census(conn, table)
            fresh = self.source.plan_with(census, self.options)
            new = fresh.table(table.name)
            changes = [
                f"{o.source}: {o.choice.pg_type} -> {n.choice.pg_type}"
                for o, n in zip(old.columns, new.columns, strict=True)
                if (o.choice.pg_type, o.choice.converter) != (n.choice.pg_type, n.choice.converter)
            ]
            why = _refusal(refused)
            self.replans.append(Replan(table.name, why, changes))
            plan = self.source.plan
            if not changes:  # the sample was right: keep the rows, stop guarding
                old.columns[:] = [replace(o, choice=n.choice) for o, n in zip(old.columns, new.columns, strict=True)]
                old.notes, old.sampled_rows = new.notes, None
                with pg.transaction():
                    control.save_plan(pg, self.options.schema, plan.to_dict())
                return []
            plan.tables[plan.tables.index(old)] = new
            plan.steps = _swap_steps(plan.steps, fresh.steps, table.name)
            plan.extensions = sorted(set(plan.extensions) | set(fresh.extensions))
            redo = []
            with pg.transaction():
                for extension in fresh.extensions:
                    pg.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(extension)))
                pg.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(self.options.schema, old.target)))
                if self.recreate is not None:
                    self.skipped += self.recreate(pg, new)
                for restart in self.restarts.get(table.name, []):
                    control.save_checkpoint(pg, self.options.schema, restart)
                    if restart.part in gate.finished:
                        redo.append((restart, generation + 1))
                control.save_plan(pg, self.options.schema, plan.to_dict())
            gate.generation += 1
            gate.finished.clear()
            with self.lock:
                self.copied[table.name] = 0
            return redo

    def _fetched_batches(
        self, cursor: sqlite3.Cursor, render: _Render, tail: str, params: list[Any], key_width: int
    ) -> Iterator[tuple[bytes | str, int, list[Any]]]:
        """(lines, rows, last key) a few thousand rows at a time from one read of the chunk."""
        width, maker = render.width, render.maker
        cursor.execute(f"{render.head}{tail} LIMIT ?", params)
        while batch := cursor.fetchmany(STREAM_ROWS):
            if maker is None:
                first = batch[0][0]
                lines: bytes | str = (b"" if isinstance(first, bytes) else "").join(row[0] for row in batch)
            else:
                lines = "".join(maker(row[:width]) for row in batch)
            yield lines, len(batch), list(batch[-1][-key_width:])

    def _grouped_batches(
        self,
        cursor: sqlite3.Cursor,
        render: _Render,
        last: list[Any] | None,
        bound: str,
        upper: str,
        table: Table,
        checkpoint: Checkpoint,
    ) -> Iterator[tuple[bytes | str, int, list[Any]]]:
        """The same batches, each joined in SQLite by one keyset query (see _Render.grouped)."""
        assert render.grouped is not None
        head, tail = render.grouped
        left = self.options.chunk_rows
        while left > 0:
            where, params = self._where(last, bound, upper, checkpoint)
            want = min(STREAM_ROWS, left)
            lines, rows, rendered, key = cursor.execute(f"{head}{where}{tail}", [*params, want]).fetchone()
            if rows != rendered:  # group_concat skips NULLs: a row must never go missing that way
                raise CopyDataError(f"table {table.name!r}: a row after key {last} rendered as NULL")
            if rows == 0:
                return
            last = [key]
            yield lines, rows, last
            if rows < want:
                return
            left -= rows

    def _stream_chunk(
        self,
        pg: psycopg.Connection,
        render: _Render,
        batches: Iterator[tuple[bytes | str, int, list[Any]]],
        table: Table,
        checkpoint: Checkpoint,
        rows_before: int,
    ) -> tuple[int, list[Any] | None]:
        """COPY one chunk as it is read, a few thousand rows at a time, and its checkpoint, in one
        transaction: memory stays flat whatever the chunk size. Raises on the first bad value."""
        scanned, last = 0, None
        with pg.transaction():
            with pg.cursor() as cur, cur.copy(render.target, writer=QueuedLibpqWriter(cur)) as copy:
                for lines, rows, key in batches:
                    copy.write(lines)
                    scanned, last = scanned + rows, key
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
        render: _Render,
        tail: str,
        params: list[Any],
        table: Table,
        keys: list[str],
    ) -> tuple[list[tuple], int, list[Any] | None]:
        """(rows as (line, *key), rows scanned, last key scanned): rejected rows still move the key on."""
        head, columns = render.head, render.plan.copied_columns
        try:
            batch = cursor.execute(f"{head}{tail} LIMIT ?", params).fetchall()
            scanned, last = len(batch), (list(batch[-1][-len(keys) :]) if batch else None)
        except sqlite3.OperationalError as exc:
            if "decode" not in str(exc).lower():
                raise
            batch, scanned, last = self._without_bad_text(cursor.connection, head, tail, params, table, keys, columns)
        width, maker = render.width, render.maker
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

    def _advance(self, table: str, rows: int) -> None:
        with self.lock:
            self.copied[table] = self.copied.get(table, 0) + rows
            done = self.copied[table]
        if self.progress is not None:
            self.progress(table, done, self.source.plan.table(table).rows)


def _swap_steps(steps: list[Step], fresh: list[Step], table: str) -> list[Step]:
    """`steps` with those of `table` taken from `fresh` (a plan built after a re-plan of it)."""
    mine = [step for step in fresh if step.table == table]
    return [step for step in steps if step.table != table] + mine


_COPY_CONTEXT = re.compile(r"COPY [^,]+, line (\d+)(?:, column ([^:]+))?")


def _copy_error_position(exc: psycopg.Error) -> tuple[int | None, str | None]:
    context = getattr(exc.diag, "context", None) or ""
    match = _COPY_CONTEXT.search(context)
    if not match:
        return None, None
    return int(match.group(1)) - 1, match.group(2)


def _refusal(exc: Exception) -> str:
    """What was refused, for the report: a guard's marker is named as such, with its column."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    _line, column = _copy_error_position(exc) if isinstance(exc, psycopg.Error) else (None, None)
    if '"!"' in first or 'hexadecimal digit: "Z"' in first:  # the markers of rowformat.REFUSED_MARKER
        where = f"column {column}" if column else "a column"
        return f"{where}: a value unlike those in the sample (the type chosen from it would change it)"
    return first + (f" (column {column})" if column and column not in first else "")


def _column_position(plan: TablePlan, target_column: str) -> int:
    for position, column in enumerate(plan.copied_columns):
        if column.target == target_column:
            return position
    return 0
