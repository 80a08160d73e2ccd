"""The reverse applier: while the route is `postgres`, the reverse changelog's entries made true in
SQLite, batch by batch.

One batch, under the schema's advisory lock (one reverse applier at a time):
1. one PostgreSQL REPEATABLE READ transaction: the oldest entries visible in its snapshot, and the
   current row of each key they name, read in that same snapshot (pgferry.capture.reverse.rows);
2. one SQLite transaction (BEGIN IMMEDIATE, busy timeout): the route checked to still be `postgres`
   (a rollback flips it under this same lock: a batch read before it must not land after it), the
   gone keys deleted, the current rows written, and the forward changelog's entries made by these
   writes pruned (they are PostgreSQL's own rows coming back, not changes to carry forward; entries
   other writers made are stray writes, pgferry.capture.strays, and stay); COMMIT;
3. in the PostgreSQL transaction still open, the applied entries deleted by seq; COMMIT.

Why PostgreSQL's out-of-order commits lose nothing: the applier keeps no position. An entry whose
transaction is still in flight is invisible to the batch's snapshot and stays in the table; it is
read by a later batch once committed, whatever its seq. Only entries the batch applied are deleted.
(A reader that keeps a `seq > last` position must stop below `pg_snapshot_xmin` instead; this one
needs no such bound, and not having one keeps every row it writes inside one snapshot, parents
with their children.)

Why a kill -9 at any point loses nothing: before the SQLite COMMIT (`reverse:before_commit`) both
transactions roll back; after it (`reverse:after_commit`) the entries are still in PostgreSQL and
the next batch applies them again. Applying an entry means re-reading its key's current row, so
applying it twice, or after newer changes, leaves SQLite equal to PostgreSQL: at-least-once
delivery is exactly-once in effect.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from pgferry import killpoints
from pgferry.capture import changelog, pgstate
from pgferry.capture.applier import ApplierBusy
from pgferry.capture.copied import captured_tables
from pgferry.capture.current import ApplyError
from pgferry.capture.loop import run_batches
from pgferry.capture.reverse import log
from pgferry.capture.reverse.drift import check_drift, column_drift, stop_on_drift
from pgferry.capture.reverse.rows import Changes, ReverseTable
from pgferry.capture.strays import Stray, cutover_position, list_strays, note_overwritten, overwritten_seqs
from pgferry.pg.connect import connect
from pgferry.runtime.route import Route, read_route
from pgferry.sqlite.atomic import atomic
from pgferry.sqlite.connect import open_writable

BATCH_ENTRIES = 2_000
BUSY_TIMEOUT_MS = 5_000
HEARTBEAT_S = 1.0
STRAYS_READ = 100  # stray writes read per new_strays call (the rest at the next)
STRAYS_CHECKED = 1_000  # stray writes a batch checks its keys against (the oldest)


@dataclass(frozen=True)
class ReverseBatch:
    """What one batch applied."""

    first_seq: int
    last_seq: int
    entries: int
    upserted: int
    deleted: int
    lag_s: float  # commit time minus the oldest applied entry's transaction start (an upper bound)
    drained: bool  # it applied every entry there was when it began (the applier was caught up)


@dataclass(frozen=True)
class Pending:
    """One batch read from PostgreSQL: its entries and what they come to per table."""

    entries: list[log.Entry]
    changes: list[tuple[ReverseTable, Changes]]

    @property
    def seqs(self) -> list[int]:
        return [e.seq for e in self.entries]


class _RoutedAway(Exception):
    """The route is no longer `postgres`: the batch is rolled back and the applier stops."""


class ReverseApplier:
    """Follows PostgreSQL's reverse changelog for `schema` into the SQLite file at `path`."""

    def __init__(
        self, path: str | Path, dsn: str, schema: str, batch_entries: int = BATCH_ENTRIES, *, own: bool = False
    ) -> None:
        """`own`: hold the migration's applier lock for the connection's life, as `migrate follow`'s
        appliers do (one at a time; `finish` sees it). The rollback's applier does not: batches of two
        reverse appliers are kept apart by the per-batch lock anyway."""
        self.path, self.schema, self.batch_entries = Path(path), schema, batch_entries
        self.conn = open_writable(path, busy_timeout_ms=BUSY_TIMEOUT_MS)
        self.pg = connect(dsn)
        self.routed_away = False
        self.last_beat = 0.0
        try:
            if own:
                self._own()
            self.conn.execute("PRAGMA foreign_keys = OFF")  # see pgferry.capture.reverse.rows
            copied = captured_tables(self.conn, self.pg, schema)
            self.plan = copied.plan  # the copy's, as stored
            self.tables = {t.identity.target: ReverseTable.load(self.pg, schema, t) for t in copied.tables}
            self.cutover_at = cutover_position(self.pg, schema) or 0  # entries above it: stray writes
            self.strays_seen = self.cutover_at  # new_strays reads above it
            self.told_overwritten: set[int] = set()
            self.noted_overwritten = False  # a batch of this applier noted overwritten strays since new_strays
        except BaseException:
            self.close()
            raise

    def _own(self) -> None:
        key = pgstate.applier_lock_key(self.schema)
        row = self.pg.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
        if row is None or not row[0]:
            raise ApplierBusy(
                f"another applier follows the migration into schema {self.schema!r} (PostgreSQL backend pid "
                f"{pgstate.applier_pid(self.pg, key)}): one `pgferry migrate follow` at a time; stop it first"
            )

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        pgstate.release_and_close(self.pg)

    # --- the parts a batch (and the rollback's drain) is made of ------------------------------------

    def pending(self, pg: psycopg.Connection, limit: int, check_schema: bool = False) -> Pending:
        """Up to `limit` entries and their current rows, in `pg`'s transaction; SchemaDrift when the
        entries' tables (or with `check_schema` any captured table) changed their columns (reverse.drift)."""
        entries = log.read(pg, self.schema, limit)
        if check_schema:
            check_drift(pg, self.schema, self.tables.values())
        seqs: dict[str, list[int]] = {}
        truncated: set[str] = set()
        for entry in entries:
            if entry.table not in self.tables:
                raise ApplyError(f"reverse changelog entry {entry.seq} names table {entry.table!r}, not copied")
            seqs.setdefault(entry.table, []).append(entry.seq)
            if entry.key is None:
                truncated.add(entry.table)
        changes = [(self.tables[name], self.tables[name].read(pg, s, name in truncated)) for name, s in seqs.items()]
        stop_on_drift([d for t, c in changes if (d := column_drift(t.target, t.planned_columns, c.columns))])
        return Pending(entries, changes)

    def write(self, conn: sqlite3.Connection, pending: Pending) -> tuple[int, int]:
        """Make SQLite hold `pending`'s rows, in `conn`'s transaction: (rows written, keys deleted).
        The forward changelog's entries these writes make are deleted, and only they: an entry below
        them is a stray write (pgferry.capture.strays), kept for the rollback to carry forward."""
        before = changelog.head(conn)  # one writer at a time: our entries are the ones above it
        if before > self.cutover_at:  # there are stray writes: note those whose keys this batch writes
            overwritten = [s.seq for s in self.overwrites(conn, pending)]
            note_overwritten(conn, overwritten)
            self.noted_overwritten |= bool(overwritten)
        for table, changes in pending.changes:  # deletes first: they free UNIQUE values
            table.delete(conn, changes)
        for table, changes in pending.changes:
            table.replace(conn, changes.rows)
        changelog.prune_range(conn, before, changelog.head(conn))  # our writes, logged by forward capture
        return sum(len(c.rows) for _t, c in pending.changes), sum(len(c.gone) for _t, c in pending.changes)

    def overwrites(self, conn: sqlite3.Connection, pending: Pending) -> list[Stray]:
        """The stray writes (the first STRAYS_CHECKED) whose keys `pending` writes PostgreSQL's rows over."""
        strays = list_strays(conn, self.cutover_at, STRAYS_CHECKED)
        hit = []
        for table, changes in pending.changes:
            name = table.copied.captured.table
            mine = [s for s in strays if s.table == name]
            written = table.written_keys(changes) if mine and not changes.truncated else set()
            hit += [s for s in mine if changes.truncated or tuple(s.key.values()) in written]
        return hit

    def new_strays(self, limit: int = STRAYS_READ) -> list[Stray]:
        """Stray writes (pgferry.capture.strays) committed since the last call (up to `limit`), and
        those a batch overwrote since (`overwritten`), each once. Without either (the usual case: it
        runs after every batch of `follow`) one look at the changelog's head."""
        if not self.noted_overwritten and changelog.head(self.conn) <= self.strays_seen:
            return []
        self.noted_overwritten = False
        found = list_strays(self.conn, self.strays_seen, limit)
        if found:
            self.strays_seen = found[-1].seq
        told = self.told_overwritten | {s.seq for s in found if s.overwritten}
        over = overwritten_seqs(self.conn) - told
        self.told_overwritten = told | over
        if over:
            found += [s for s in list_strays(self.conn, self.cutover_at, STRAYS_CHECKED) if s.seq in over]
        return found

    # --- one batch ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        log.lock(self.pg, self.schema)
        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error):
                log.unlock(self.pg, self.schema)

    def step(self) -> ReverseBatch | None:
        """Apply one batch; None when there was nothing to apply, or the route is not `postgres`
        any more (then `routed_away` is set)."""
        batch = None
        try:
            with self._locked(), self.pg.transaction():
                self.pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                pending = self.pending(self.pg, self.batch_entries)
                if pending.entries:
                    batch = self._apply(pending)
                else:
                    self.routed_away = read_route(self.conn).route is not Route.POSTGRES  # a rollback
        except _RoutedAway:
            self.routed_away = True
        self._beat()
        return batch

    def _apply(self, pending: Pending) -> ReverseBatch:
        with atomic(self.conn, what=f"{self.path}: applying PostgreSQL's changes"):
            if read_route(self.conn).route is not Route.POSTGRES:
                raise _RoutedAway
            upserted, deleted = self.write(self.conn, pending)
            killpoints.reached("reverse:before_commit")
        killpoints.reached("reverse:after_commit")
        log.forget(self.pg, pending.seqs)
        entries = pending.entries
        lag = time.time() - min(e.logged_at for e in entries)
        drained = len(entries) < self.batch_entries
        return ReverseBatch(entries[0].seq, entries[-1].seq, len(entries), upserted, deleted, lag, drained)

    def _beat(self) -> None:
        """Say the applier is alive, now and then (status tells a running applier by it)."""
        now = time.time()
        if now - self.last_beat >= HEARTBEAT_S:
            self.last_beat = now
            pgstate.touch(self.pg, self.schema)

    def run(
        self,
        stop: threading.Event | None = None,
        until_caught_up: bool = False,
        on_batch: Callable[[ReverseBatch | None], None] | None = None,
    ) -> int:
        """Apply batches until `stop` is set, the route leaves `postgres`, or (with
        `until_caught_up`) nothing is left; returns the entries applied."""
        return run_batches(self.step, lambda: self.routed_away, stop, until_caught_up, on_batch)
