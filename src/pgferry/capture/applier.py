"""The applier: changelog entries after its position, in batches, made true in PostgreSQL.

One batch:
1. one SQLite read transaction: `PRAGMA schema_version` (a moved schema is compared with what
   capture installed, and a real change stops the applier), the entries after the position, and the
   current row of each distinct key they name (pgferry.capture.current);
2. one PostgreSQL transaction: per table, the rows COPY-ed into a staging table and upserted, the
   keys gone from SQLite deleted, and the position saved (pgferry.capture.pgstate), then COMMIT;
3. the applied entries pruned from the changelog, now and then (never the newest one).

One applier per migration: it holds a session advisory lock on its PostgreSQL connection (a second
one is refused, `ApplierBusy`; a cutover that finds one running waits for it to drain instead). Once
the route is `postgres` (a cutover committed) it applies nothing more: SQLite's changes after the
flip are the reverse applier's own writes, already in PostgreSQL.

A kill -9 before the commit leaves the position where it was (the batch is applied again: upserts and
deletes of current rows are idempotent); after it, the position names the batch. The session runs
with session_replication_role = replica where allowed (as PostgreSQL's logical replication workers
do): foreign keys and the target's triggers do not fire, because each batch makes the rows equal to
one consistent SQLite snapshot, whose foreign keys hold. Without that privilege ("ordered" mode)
parents are upserted before children and children deleted before parents.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from psycopg import errors as pgerrors

from pgferry import killpoints
from pgferry.capture import changelog, pgstate, rebuild, verifystate
from pgferry.capture.changelog import Captured, Entry
from pgferry.capture.copied import captured_tables
from pgferry.capture.current import ApplyError, CurrentRows, Key, current_rows, refuse_null_key
from pgferry.capture.install import schema_drift, schema_version
from pgferry.capture.loop import run_batches
from pgferry.capture.order import parents_first
from pgferry.capture.target import TargetTable
from pgferry.errors import PgferryError
from pgferry.migrate.chunked import HeldBack, build_held_back
from pgferry.migrate.converters import converter_for
from pgferry.pg.connect import connect, first_line
from pgferry.runtime.route import Route, read_route
from pgferry.sqlite.atomic import atomic
from pgferry.sqlite.connect import open_readonly, open_writable

BATCH_ENTRIES = 2_000
CONFLICT_ROUNDS = 8  # unique conflicts cleared per table and batch before giving up
DEADLOCK_RETRIES = 3  # a batch PostgreSQL chose as a deadlock's victim is run again this often
PRUNE_EVERY_S = 1.0
PRUNE_WAIT_MS = 20  # a prune waits this long for the write lock, then tries again a second later
HEARTBEAT_S = 1.0
IDLE_SLEEP_S = 0.02
FROZEN_SLEEP_S = 0.001  # while a cutover waits on this applier's drain, every millisecond counts
RATE_WINDOW_S = 10.0
GRANT_HINT = (
    "run the applier as a role allowed to SET session_replication_role (a superuser, or on PostgreSQL 15+ "
    "GRANT SET ON PARAMETER session_replication_role TO that role), so each batch is checked as a whole"
)


class ApplierBusy(ApplyError):
    """Another applier follows this migration (it holds the migration's advisory lock)."""


class SchemaChanged(PgferryError):
    """The SQLite schema changed under capture; the message says what and what to do."""


@dataclass(frozen=True)
class Batch:
    """What one batch applied."""

    first_seq: int
    last_seq: int
    entries: int
    upserted: int
    deleted: int
    conflicts: int  # rows cleared out of an upsert's way (evicted by REPLACE, or moved)
    lag_s: float  # commit time minus the instant since which its entries were pending (upper bound)
    drained: bool = False  # it applied every entry there was when it began (the applier was caught up)


@dataclass(frozen=True)
class Rebuilt:
    """A table rebuilt under capture and taken up again (pgferry.capture.rebuild)."""

    table: str
    rows: int  # rows copied again
    changed: list[str]  # what else changed, that PostgreSQL keeps as the copy made it


@dataclass(frozen=True)
class Table:
    captured: Captured
    current: CurrentRows
    target: TargetTable
    reverse: tuple[Callable[[object], object], ...]  # PostgreSQL key values -> SQLite ones


class Applier:
    """Follows the changelog of `path` into the copy in `dsn`; see the module docstring."""

    def __init__(
        self,
        path: str | Path,
        dsn: str,
        schema: str,
        batch_entries: int = BATCH_ENTRIES,
        record_keys: bool = True,
        on_rebuild: Callable[[Rebuilt], None] | None = None,
        on_constraints: Callable[[HeldBack], None] | None = None,
    ) -> None:
        """`on_constraints`: called once the constraints the chunked copy held back are built."""
        self.path, self.dsn, self.schema, self.batch_entries = Path(path), dsn, schema, batch_entries
        self.record_keys = record_keys  # each batch's keys for verification (pgferry.capture.verifystate)
        self.on_rebuild, self.on_constraints = on_rebuild, on_constraints
        self.conn = open_readonly(path)
        self.pg = connect(dsn)
        self.writer: sqlite3.Connection | None = None
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    def _load(self) -> None:
        install = changelog.read_install(self.conn)
        if install is None:
            raise ApplyError(f"{self.path}: change capture is not installed")
        self.width = install.width
        self.version = install.schema_version
        self.registry = changelog.read_registry(self.conn)
        state = pgstate.read(self.pg, self.schema)
        if state is None:
            raise ApplyError(f"schema {self.schema!r}: no copy to follow (no stored plan or capture state)")
        self.position = state.applied_seq if state.applied_seq is not None else (state.start_seq or 0)
        rebuilt = self._check_schema()  # a table rebuilt while nobody followed: before anything reads it
        if rebuilt:
            self._reinstall(rebuilt)
            return self._load()
        copied = captured_tables(self.conn, self.pg, self.schema)
        plan = self.plan = copied.plan
        self.constraints_pending = state.constraints == "pending"  # held back by the chunked copy
        self.tables: dict[int, Table] = {}
        for copied_table in copied.tables:
            captured, identity = copied_table.captured, copied_table.identity
            layout = copied_table.plan.partition  # widened key: no unique index on the source key alone
            widened = layout is not None and layout.column not in identity.target_keys
            target = TargetTable(captured.id, self.schema, identity, widened)
            reverse = tuple(converter_for(c).reverse for c in identity.key)
            self.tables[captured.id] = Table(
                captured, current_rows(captured.table, captured.key, copied_table.plan), target, reverse
            )
        order = parents_first(plan, [c.table for c in self.registry])
        by_name = {t.captured.table: t for t in self.tables.values()}
        self.order = [by_name[name] for name in order]
        self._own(pgstate.applier_lock_key(self.schema))
        self.mode = self._replica_mode()
        for table in self.order:
            table.target.prepare(self.pg)
        with self.pg.transaction():
            verifystate.ensure(self.pg)
        self.behind_since = state.behind_since if state.behind_since is not None else time.time()
        self.observed: collections.deque[tuple[int, float]] = collections.deque()
        self.applied: collections.deque[tuple[float, int]] = collections.deque([(time.time(), 0)])
        self.total = 0
        self.last_prune = 0.0
        self.last_beat = 0.0
        self.cut_over = False
        self.frozen = False  # a cutover's freeze is up: it waits for this applier to drain
        for name in rebuild.pending(self.conn):  # reinstalled, not copied again yet (a kill between)
            self._recopy(by_name[name])

    def _own(self, key: int) -> None:
        """Take the migration's advisory lock (held for the connection's life), or say who has it."""
        row = self.pg.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
        if row is not None and row[0]:
            return
        holder = pgstate.applier_pid(self.pg, key)
        raise ApplierBusy(
            f"another applier follows the migration into schema {self.schema!r} (PostgreSQL backend pid {holder}): "
            "one `pgferry migrate follow` at a time; stop it first"
        )

    def _replica_mode(self) -> str:
        try:
            self.pg.execute("SET session_replication_role = replica")
        except pgerrors.InsufficientPrivilege:
            return "ordered"
        return "replica"

    def close(self) -> None:
        for conn in (self.conn, self.writer):
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
        pgstate.release_and_close(self.pg)

    # --- one batch ---------------------------------------------------------------------------------

    def step(self, prune: bool = True) -> Batch | None:
        """Apply one batch; None when there was nothing to apply (the applier is caught up, or the
        route is `postgres`: then `cut_over` is set). `prune=False` while a cutover holds the write lock."""
        self.conn.execute("BEGIN")
        batch = None
        rebuilt: list[rebuild.Change] = []
        try:
            route = read_route(self.conn)
            if route.route is Route.POSTGRES:  # after a cutover: the reverse applier's turn
                self.cut_over = True
                return None
            self.frozen = route.frozen()
            rebuilt = self._check_schema()
            if not rebuilt:
                observed_at = time.time()
                head = changelog.head(self.conn)
                entries = changelog.entries(self.conn, self.position, self.batch_entries, self.width)
                self.observed.append((head, observed_at))
                batch = self._apply(entries) if entries else None
                if batch is not None and batch.last_seq >= head:
                    batch = dataclasses.replace(batch, drained=True)
                if batch is None:
                    self._caught_up(observed_at)
        finally:
            self.conn.execute("COMMIT")  # ends the read transaction: checkpoints and writers go on
        if rebuilt:  # capture back on the rebuilt tables, each copied again; then the batch
            if not prune:  # a cutover holds the write lock the reinstall needs
                names = ", ".join(repr(c.captured.table) for c in rebuilt)
                raise SchemaChanged(
                    f"{self.path}: table(s) {names} were rebuilt in SQLite and not taken up yet; `pgferry migrate "
                    "follow` reinstalls capture and copies them again: let it, then cut over"
                )
            self._reinstall(rebuilt)
            self._load()
            return self.step(prune)
        if prune and not self.frozen:  # a cutover holds (or is about to take) the write lock
            self._prune(time.time())  # outside it: in rollback-journal mode a reader blocks the commit
        return batch

    def _check_schema(self) -> list[rebuild.Change]:
        """The tables rebuilt with the same columns, to take up; SchemaChanged for anything else."""
        version = schema_version(self.conn)
        if version == self.version:
            return []
        found = rebuild.changes(self.conn, self.registry)
        same = [c for c in found if c.same]
        drift = schema_drift(self.conn, self.registry, skip=frozenset(c.captured.table for c in same))
        if drift:
            detail = {c.captured.table: c.what for c in found if not c.same}
            said = [f"table {t!r}: {', '.join(what)}" for t, what in detail.items()]
            raise SchemaChanged(
                f"{self.path}: the schema changed under change capture: {'; '.join(said or drift)}. The applier "
                f"stopped at entry {self.position}; nothing after it was applied. Capture follows a table rebuilt "
                "with the same columns, not a change of its columns: undo the change, or run `pgferry migrate "
                "abort`, drop the copied schema, and `pgferry migrate start` again"
            )
        if not same:
            self.version = version  # ANALYZE, VACUUM, an index: nothing capture depends on changed
        return same

    def _reinstall(self, found: list[rebuild.Change]) -> None:
        writer = open_writable(self.path)
        try:
            for change in found:
                rebuild.reinstall(writer, change)
        finally:
            writer.close()
        killpoints.reached("rebuild:before_recopy")

    def _recopy(self, table: Table) -> None:
        """Copy a reinstalled table again from a fresh snapshot, in one PostgreSQL transaction."""
        lines = rebuild.table_lines(self.conn, table.current)
        name = table.captured.table
        with self.pg.transaction():
            self.pg.execute("SET CONSTRAINTS ALL DEFERRED")
            self._upsert(table, lines)
            table.target.delete_absent(self.pg)
            verifystate.clear_table(self.pg, self.schema, name)
        killpoints.reached("rebuild:after_recopy")
        writer = open_writable(self.path)
        try:
            changed = rebuild.done(writer, name, len(lines))
        finally:
            writer.close()
        if self.on_rebuild is not None:
            self.on_rebuild(Rebuilt(name, len(lines), changed))

    def _apply(self, batch: list[Entry]) -> Batch:
        keys: dict[int, dict[Key, None]] = {}
        for entry in batch:
            table = self.tables.get(entry.table_id)
            if table is None:
                raise ApplyError(f"changelog entry {entry.seq} names table number {entry.table_id}, not captured")
            key = entry.key[: len(table.captured.key)]
            if any(v is None for v in key):
                if table.current.holds(self.conn, key):
                    refuse_null_key(table.captured.table, table.captured.key, key, f"was written (entry {entry.seq})")
                continue  # given a key since (logged under it) or deleted: PostgreSQL never had it
            keys.setdefault(entry.table_id, {})[key] = None
        staged: list[tuple[Table, list[str], list[str]]] = []
        for table in self.order:
            wanted = list(keys.get(table.captured.id, {}))
            if not wanted:
                continue
            lines, found = table.current.read(self.conn, wanted)
            gone = table.current.gone(self.conn, [k for k in wanted if k not in found])
            staged.append((table, lines, gone))
        behind_since = self._behind_since(batch[-1].seq)  # once per batch, however many attempts
        rate = self._rate(time.time(), len(batch))
        for attempt in range(DEADLOCK_RETRIES + 1):
            try:
                return self._commit(batch, staged, behind_since, rate)
            except pgerrors.DeadlockDetected:  # rolled back, nothing applied: the batch is run again
                if attempt == DEADLOCK_RETRIES:
                    raise
        raise AssertionError("unreachable")

    def _commit(
        self,
        batch: list[Entry],
        staged: list[tuple[Table, list[str], list[str]]],
        behind_since: float,
        rate: float | None,
    ) -> Batch:
        """The batch's one PostgreSQL transaction (module docstring, step 2)."""
        upserted = deleted = conflicts = 0
        try:
            with self.pg.transaction():
                self.pg.execute("SET CONSTRAINTS ALL DEFERRED")
                if self.mode == "replica":  # no foreign keys checked: deletes first free unique values
                    deleted = sum(self._delete(t, gone) for t, _lines, gone in staged)
                for table, lines, _gone in staged:
                    done, cleared = self._upsert(table, lines)
                    upserted, conflicts = upserted + done, conflicts + cleared
                if self.mode != "replica":  # children before parents
                    deleted = sum(self._delete(t, gone) for t, _lines, gone in reversed(staged))
                if self.record_keys:
                    for table, _lines, _gone in staged:
                        verifystate.record_batch(self.pg, table.target, batch[-1].seq)
                lag = time.time() - self.behind_since
                pgstate.save_position(self.pg, self.schema, batch[-1].seq, len(batch), rate, behind_since, lag)
                killpoints.reached("apply:before_commit")
        except pgerrors.ForeignKeyViolation as exc:
            raise ApplyError(f"{self._where(batch)}: {first_line(exc)}; {GRANT_HINT}") from None
        except (pgerrors.DataError, pgerrors.IntegrityError) as exc:
            raise ApplyError(
                f"{self._where(batch)}: PostgreSQL refused a changed row: {first_line(exc)}. A value that no longer "
                "fits the type the copy chose is refused, not converted; fix the row in SQLite or the column's type "
                "in PostgreSQL, then follow again"
            ) from None
        killpoints.reached("apply:after_commit")
        self.position, self.behind_since = batch[-1].seq, behind_since
        return Batch(batch[0].seq, batch[-1].seq, len(batch), upserted, deleted, conflicts, lag)

    def _where(self, batch: list[Entry]) -> str:
        return f"changelog entries {batch[0].seq}-{batch[-1].seq}"

    def _delete(self, table: Table, gone: list[str]) -> int:
        if not gone:
            return 0
        table.target.copy_gone(self.pg, gone)
        return table.target.delete_gone(self.pg)

    def _upsert(self, table: Table, lines: list[str]) -> tuple[int, int]:
        """Upsert the rows; on a unique violation clear the rows in the way (see pgferry.capture.target)
        and retry. Returns (rows upserted, rows cleared)."""
        if not lines:
            return 0, 0
        target = table.target
        target.copy_rows(self.pg, lines)
        cleared = 0
        for round_ in range(CONFLICT_ROUNDS + 1):
            try:
                with self.pg.transaction():
                    return target.upsert(self.pg, distinct=round_ > 0), cleared
            except pgerrors.UniqueViolation as exc:
                name = table.captured.table
                if round_ == CONFLICT_ROUNDS:
                    raise ApplyError(f"table {name!r}: {first_line(exc)}, still after {round_} rounds") from None
                with self.pg.transaction():
                    removed = target.clear_conflicts(self.pg, exc.diag.constraint_name or "")
                if not removed:
                    raise ApplyError(f"table {name!r}: {first_line(exc)} (no row in PostgreSQL explains it)") from None
                source_keys = [tuple(r(v) for r, v in zip(table.reverse, key, strict=True)) for key in removed]
                moved, found = table.current.read(self.conn, source_keys)
                if found and self.mode != "replica":
                    raise ApplyError(
                        f"table {name!r}: rows whose unique values moved to other rows ({list(found)[:5]}) must "
                        f"be deleted and written again within one batch; {GRANT_HINT}"
                    ) from None
                target.copy_rows(self.pg, moved)
                cleared += len(removed)
        raise AssertionError("unreachable")

    # --- lag, rate, pruning ------------------------------------------------------------------------

    def _behind_since(self, applied: int) -> float:
        """The latest instant at which no entry after `applied` existed yet (an observation of the
        head at or below it); every entry still unapplied was written after it."""
        since = self.behind_since
        while self.observed and self.observed[0][0] <= applied:
            since = self.observed.popleft()[1]
        return since

    def _rate(self, now: float, entries: int) -> float | None:
        self.total += entries
        self.applied.append((now, self.total))
        while len(self.applied) > 2 and now - self.applied[1][0] > RATE_WINDOW_S:
            self.applied.popleft()
        then, before = self.applied[0]
        return (self.total - before) / (now - then) if now > then else None

    def _caught_up(self, observed_at: float) -> None:
        self.observed.clear()
        self.behind_since = observed_at
        if observed_at - self.last_beat >= HEARTBEAT_S:
            self.last_beat = observed_at
            rate = self._rate(observed_at, 0)
            pgstate.heartbeat(self.pg, self.schema, observed_at, rate)

    def _prune(self, now: float) -> None:
        """Drop applied entries; skipped when writers hold the lock (the next round tries again)."""
        if now - self.last_prune < PRUNE_EVERY_S:
            return
        self.last_prune = now
        if self.writer is None:
            self.writer = open_writable(self.path, busy_timeout_ms=PRUNE_WAIT_MS)
        try:
            with atomic(self.writer, what="pruning the changelog"):
                changelog.prune(self.writer, self.position)
        except (sqlite3.OperationalError, PgferryError):
            return
        killpoints.reached("apply:after_prune")

    # --- the loop ----------------------------------------------------------------------------------

    def _step_then_constraints(self) -> Batch | None:
        """A batch; the first time one finds the applier caught up, the constraints the chunked copy
        held back are built (PostgreSQL then holds one SQLite instant's rows, which keep them)."""
        batch = self.step()
        if self.constraints_pending and not self.cut_over and (batch is None or batch.drained):
            self.build_constraints()
        return batch

    def build_constraints(self) -> HeldBack:
        """Build the held-back UNIQUE indexes and foreign keys now (the caller has just caught up)."""
        killpoints.reached("apply:before_constraints")
        built = build_held_back(self.dsn, self.plan)
        with self.pg.transaction():
            pgstate.constraints_built(self.pg, self.schema)
        self.constraints_pending = False
        if self.on_constraints is not None:
            self.on_constraints(built)
        return built

    def run(
        self,
        stop: threading.Event | None = None,
        until_caught_up: bool = False,
        on_batch: Callable[[Batch | None], None] | None = None,
    ) -> int:
        """Apply batches until `stop` is set (or, with `until_caught_up`, until nothing is left, or
        until the route is `postgres`); returns the entries applied."""
        return run_batches(
            self._step_then_constraints,
            lambda: self.cut_over,
            stop,
            until_caught_up,
            on_batch,
            lambda: FROZEN_SLEEP_S if self.frozen else IDLE_SLEEP_S,
        )
