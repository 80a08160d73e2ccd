"""The copy's source: one read snapshot of the SQLite file, what was read in it, and its parts.

Everything a run reads comes from this snapshot: the schema, sqlite_sequence, the census and every
chunk, so all tables are copied (and verified) as of one instant while the application writes on.
Under change capture (`chunked`) only the schema, census and watermark are read in it; each chunk
is then read in a read transaction of its own (pgferry.migrate.chunked).
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pgferry.errors import SourceError, UsageError
from pgferry.events import Event, Listener, no_events
from pgferry.migrate.choices import load_casts
from pgferry.migrate.chunked import pages_by_key
from pgferry.migrate.control import Checkpoint
from pgferry.migrate.errors import is_decode_error
from pgferry.migrate.existing import Target, existing_plan, match
from pgferry.migrate.frameworks import framework_named
from pgferry.migrate.native_apply import OutsideReader, apply_native
from pgferry.migrate.native_plan import load_native_plan, partition_specs, resolve
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.partition import Span, SpanReader, lay_out, partition_keys, read_span
from pgferry.migrate.plan import ColumnPlan, MigrationPlan, build_plan
from pgferry.migrate.restart import restart_identity_sql
from pgferry.sqlite.busy import is_busy
from pgferry.sqlite.census import ColumnCensus, TableCensus, merge_censuses, take_census, take_sample_census
from pgferry.sqlite.connect import open_writable
from pgferry.sqlite.control import without_control
from pgferry.sqlite.keyset import rowid_ranges, table_keyset
from pgferry.sqlite.schema import Schema, Table, read_schema
from pgferry.sqlite.snapshot import Snapshot, open_snapshot
from pgferry.sqltext import quote_ident

ROWS_PER_PART = 200_000
# Tables with more rows are typed from a sample and every value is checked as it is copied (see
# pgferry.migrate.rowformat, guarded rendering); a full census of them would cost a second full read.
SAMPLE_ABOVE_ROWS = 10_000

# A read made inside the copy's snapshot, before any row is read: change capture passes one that
# reads its changelog's high-water mark, so catch-up starts exactly where the copied data ends.
SnapshotRead = Callable[[sqlite3.Connection], Any]


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
    watermark: Any = None  # what the SnapshotRead given to open_source returned
    chunked: bool = False  # each chunk in its own read transaction (pgferry.migrate.chunked)
    checkpoints: bool = False  # chunked, WAL and writable: a checkpoint after each chunk (after_chunk)
    _checkpointers: list[sqlite3.Connection] = field(default_factory=list)
    _local: threading.local = field(default_factory=threading.local)
    spans: dict[str, Span] = field(default_factory=dict)  # --partition: Source.span
    outsides: dict[tuple[str, str, tuple[str, ...]], list[str]] = field(default_factory=dict)  # Source.outside

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
        for conn in self._checkpointers:
            conn.close()
        self._checkpointers.clear()

    @contextlib.contextmanager
    def reading(self, conn: sqlite3.Connection) -> Iterator[None]:
        """A read transaction of its own on `conn` when the copy is chunked (else the snapshot's goes on)."""
        if not self.chunked:
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            with contextlib.suppress(sqlite3.Error):  # a read transaction: nothing to lose
                conn.execute("COMMIT")

    def pages_by_key(self, table: Table) -> bool:
        """Whether rowid table `table` is paged by its primary key, not its rowid (chunked:
        pgferry.migrate.chunked)."""
        return self.chunked and pages_by_key(table)

    def end_snapshot(self) -> None:
        """Chunked: what needed one instant was read; end the snapshot's read transactions (each chunk
        begins its own), so WAL checkpoints and writers go on."""
        self.chunked = True
        for conn in self.snapshot.connections:
            conn.execute("COMMIT")
        self.checkpoints = self.journal_mode == "wal"

    def after_chunk(self) -> None:
        """Chunked, WAL: checkpoint the WAL (PASSIVE: it waits for no reader or writer) while this
        thread has no chunk open. A WAL starts over only once it was wholly checkpointed and no reader
        still reads from it; back-to-back chunks under steady writers almost never leave that moment
        by themselves, and the file would grow all along the copy (bench/copy_under_writes.py)."""
        if not self.checkpoints:
            return
        conn = getattr(self._local, "checkpointer", None)
        try:
            if conn is None:
                conn = self._local.checkpointer = open_writable(self.path, busy_timeout_ms=0)
                self._checkpointers.append(conn)
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except SourceError:  # a file this process may not write: no checkpoints from the copy
            self.checkpoints = False
        except sqlite3.OperationalError:  # busy: the application's own checkpoints go on
            pass

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
        return build(self.schema, {**stand_in, **self.censuses}, self.sequences, options)

    def span(self, table: str, column: ColumnPlan) -> Span:
        """A partition column's span (pgferry.migrate.partition.read_span), read once in the snapshot
        while the plan is made (a re-plan keeps the table's partitions: Copier)."""
        if table not in self.spans:
            with self.naming(self.schema.table(table)):
                self.spans[table] = read_span(self.conn, table, column)
        return self.spans[table]

    def outside(self, table: str, column: str, values: tuple[str, ...]) -> list[str]:
        """Up to five values of `column` that `values` does not list (--native-plan's value lists), read
        in the snapshot, each as SQLite's quote() shows it."""
        if (table, column, values) in self.outsides:
            return self.outsides[table, column, values]
        marks = ", ".join("?" * len(values))
        col = quote_ident(column)
        query = (
            f"SELECT DISTINCT quote({col}) FROM {quote_ident(table)} WHERE {col} IS NOT NULL AND {col} NOT IN ({marks})"
            " LIMIT 5"
        )
        with self.naming(self.schema.table(table)):
            found = self.outsides[table, column, values] = [str(row[0]) for row in self.conn.execute(query, values)]
        return found

    @contextlib.contextmanager
    def naming(self, table: Table) -> Iterator[None]:
        """A corrupt page met while reading `table` becomes one line that names the table."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                if is_busy(exc) or is_decode_error(exc) or "interrupt" in str(exc).lower():
                    raise  # locked, interrupted, text not UTF-8: said as it is by the caller
                raise SourceError(f"{self.path}: reading table {table.name!r} failed: {exc}") from None
            raise SourceError(
                f"{self.path}: table {table.name!r} cannot be read ({exc}); "
                f"`sqlite3 {self.path} 'PRAGMA integrity_check'` shows where"
            ) from None

    def parts(self, table: Table, jobs: int, rows: int) -> list[Checkpoint]:
        """The first checkpoints of `table`: a big rowid table in consecutive rowid ranges, one per
        worker (each at least ROWS_PER_PART rows), any other table in one part."""
        if jobs <= 1 or self.pages_by_key(table):
            return [Checkpoint(table.name, 0, None, None, 0, False)]
        ranges = rowid_ranges(self.conn, table, jobs, ROWS_PER_PART, rows)
        return [Checkpoint(table.name, i, after, upto, 0, False) for i, (after, upto) in enumerate(ranges)]


def build(
    schema: Schema,
    censuses: dict[str, TableCensus],
    sequences: dict[str, int],
    options: CopyOptions,
    span_of: SpanReader | None = None,
    outside: OutsideReader | None = None,
) -> MigrationPlan:
    """The plan of `schema` from its censuses, under the options that shape it; `span_of` reads the
    partition columns' spans (--partition), `outside` the values a --native-plan value list lacks, in
    the snapshot."""
    native = resolve(load_native_plan(options.native_plan), schema, options.keep_case) if options.native_plan else []
    specs = options.partition_specs + partition_specs(native)
    tables = [spec.table for spec in specs]
    if len(set(tables)) < len(tables):
        twice = sorted({t for t in tables if tables.count(t) > 1})
        raise UsageError(f"--partition and --native-plan both partition {', '.join(twice)}: keep one of them")
    keys = partition_keys(schema, specs, options.partition_widen_keys)
    plan = build_plan(
        schema,
        censuses,
        sequences,
        target_schema=options.schema,
        keep_case=options.keep_case,
        casts=load_casts(options.casts_file),
        framework=framework_named(options.framework, schema),
        partition_keys=keys,
        widen_keys=options.partition_widen_keys,
        widen_tables=frozenset(spec.table for spec in specs if spec.widen),
    )
    if specs and span_of is not None:
        lay_out(plan, schema, specs, span_of, options.partition_ahead, options.partition_widen_keys)
    if native:
        apply_native(plan, schema, censuses, native, outside)
    return plan


def _census_all(
    source: Source, jobs: int, events: Listener = no_events, sample_above: int | None = None
) -> dict[str, TableCensus]:
    """Census of every table, big tables split by rowid range, on all the snapshot's connections.

    With `sample_above`, a rowid table with more rows is measured on a sample (take_sample_census)."""
    tasks: list[tuple[Table, str, tuple[object, ...], int | None]] = []
    for table in source.schema.tables:
        with source.naming(table):
            if sample_above is not None and not table.without_rowid:
                rows = source.conn.execute(f"SELECT count(*) FROM {quote_ident(table.name)}").fetchone()[0]
                if rows > sample_above:
                    tasks.append((table, "", (), rows))
                    continue
            keyset = table_keyset(table)
            for after, upto in rowid_ranges(source.conn, table, jobs, ROWS_PER_PART):
                where, params = keyset.where(after, upto)
                tasks.append((table, where, tuple(params), None))
    done = [0]
    lock = threading.Lock()

    def run(task: tuple[Table, str, tuple[object, ...], int | None]) -> TableCensus:
        table, where, params, sampled_rows = task
        with source.borrow() as conn, source.naming(table):
            if sampled_rows is not None:
                census = take_sample_census(conn, table, sampled_rows)
            else:
                census = take_census(conn, table, where, params)
        with lock:
            done[0] += 1
            events(Event("census", "what each column holds", done[0], len(tasks), "parts"))
        return census

    with ThreadPoolExecutor(max_workers=max(1, len(source.snapshot.connections))) as pool:
        results = list(pool.map(run, tasks))
    by_table: dict[str, list[TableCensus]] = {}
    for census in results:
        by_table.setdefault(census.table, []).append(census)
    return {name: merge_censuses(parts) for name, parts in by_table.items()}


def sqlite_sequences(conn: sqlite3.Connection) -> dict[str, int]:
    """sqlite_sequence (AUTOINCREMENT's high-water marks), read in the snapshot."""
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
        return {}
    return {name: int(seq) for name, seq in conn.execute("SELECT name, seq FROM sqlite_sequence")}


def restart_above(plan: MigrationPlan, sequences: dict[str, int]) -> None:
    """Identities of a stored plan restart above sqlite_sequence as it is now: the application may
    have written on since the plan was made (each restart also reads the target's max when it runs)."""
    for table in plan.tables:
        sequence = sequences.get(table.source)
        if table.identity_start is None or sequence is None or sequence < table.identity_start:
            continue
        table.identity_start = sequence + 1
        column = next(c.target for c in table.columns if c.identity)
        qualified = f"{quote_ident(plan.schema)}.{quote_ident(table.target)}"
        sql = restart_identity_sql(qualified, column, table.identity_start)
        plan.steps = [
            replace(step, sql=sql) if step.kind == "identity" and step.table == table.source else step
            for step in plan.steps
        ]


def open_source(
    path: str | Path,
    options: CopyOptions,
    plan: MigrationPlan | None = None,
    events: Listener = no_events,
    sample: bool = False,
    watermark: SnapshotRead | None = None,
    target: Target | None = None,
    chunked: bool = False,
) -> Source:
    """Open `jobs` connections in one snapshot, read the schema, take the census, build the plan
    (or use `plan`, made by an earlier open_source of the same file, and skip the census).

    With `sample` (the copy, unless --full-census), tables above SAMPLE_ABOVE_ROWS rows are typed
    from a sample; one whose sample already breaks its declared types (a note) gets a full census,
    so every note's figures are the whole table's. `watermark`, when given, is read in the same
    snapshot as everything else (Source.watermark). The connections stay inside their read
    transactions until `Source.close()`. With `target` (--into-existing), the plan fills the tables
    the target has (pgferry.migrate.existing), typed from a census of every row: a value a sample
    missed could not re-plan a table the copy did not make. `chunked` (change capture): the snapshot
    ends once that is read, each chunk then reads in a transaction of its own (Source.reading).
    """
    snapshot = open_snapshot(path, max(1, options.jobs))
    try:
        source = _read(path, snapshot, options, plan, events, sample, watermark, target)
        if chunked:
            source.end_snapshot()
        return source
    except BaseException:
        snapshot.close()
        raise


def _read(
    path: str | Path,
    snapshot: Snapshot,
    options: CopyOptions,
    plan: MigrationPlan | None,
    events: Listener,
    sample: bool,
    watermark: SnapshotRead | None,
    target: Target | None = None,
) -> Source:
    conn = snapshot.connections[0]
    schema = without_control(read_schema(conn))  # pgferry's own tables stay in SQLite
    sequences = sqlite_sequences(conn)
    empty = MigrationPlan(options.schema, [], [], [], [])
    source = Source(Path(path), snapshot, schema, empty, snapshot.journal_mode, sequences=sequences)
    source.watermark = None if watermark is None else watermark(conn)
    if plan is not None:
        source.plan = plan
        restart_above(plan, sequences)
        return source
    if target is not None:
        matching = match(schema, target)  # before the census: a misfit is told at once
        source.censuses = _census_all(source, options.jobs, events)
        source.plan = existing_plan(schema, source.censuses, target, matching)
        return source
    sample_above = SAMPLE_ABOVE_ROWS if sample and not options.full_census else None
    source.censuses = _census_all(source, options.jobs, events, sample_above)
    source.plan = build(schema, source.censuses, sequences, options, source.span, source.outside)
    noted = [schema.table(t.source) for t in source.plan.tables if t.sampled_rows is not None and t.notes]
    for table in noted:
        with source.borrow() as borrowed, source.naming(table):
            source.censuses[table.name] = take_census(borrowed, table)
    if noted:
        source.plan = build(schema, source.censuses, sequences, options, source.span, source.outside)
    return source
