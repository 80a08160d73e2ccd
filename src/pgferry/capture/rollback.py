"""`pgferry migrate rollback`: back from PostgreSQL to SQLite after a cutover, losing nothing written
on PostgreSQL.

    1. the reverse applier catches up (outside any lock: what is left for step 4 is a few entries)
    2. freeze SQLite's route row: writers that begin from now wait (routers peek it first)
    3. one PostgreSQL transaction, with lock_timeout: the reverse applier's advisory lock, then the
       mirrored route row FOR UPDATE, which waits for every writer in flight on PostgreSQL (they hold
       it FOR SHARE) and keeps new ones out
    4. drain the reverse changelog into SQLite; the last batch, the AUTOINCREMENT marks raised to the
       ids PostgreSQL gave (pgferry.capture.idmarks), the route set to `sqlite` (mirrored in step 3's
       transaction), the forward changelog's head and a record of the rollback commit in one SQLite
       transaction: writers that waited go to SQLite from here
    5. step 3's transaction deletes the drained entries, moves the forward applier's position to that
       head (every forward entry below it is PostgreSQL's rows coming back), and commits; or, when
       something wrote to SQLite after the cutover (pgferry.capture.strays), to just below the first
       such stray write, named in the record and the report: the forward applier carries their keys'
       SQLite rows to PostgreSQL (entries of the reverse applier's own writes are deleted as it
       writes, so every entry above the cutover's position is a stray write)
    6. reverse capture removed (triggers, functions, entries), then the record

A lock not had within the timeout (a long PostgreSQL transaction): the freeze is lifted, nothing
else changed, RollbackTimeout. A kill before step 4's commit leaves the route `postgres` (the freeze
lapses by itself; what was drained is in SQLite, and entries drained again are re-read rows: no
harm). A kill after it leaves the record: writers are already on SQLite (the mirror is only read
while SQLite's row says `postgres`), and `rollback` run again finishes steps 5 and 6 from it.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from pgferry import killpoints
from pgferry.capture import changelog, pgstate
from pgferry.capture.changelog import STATE
from pgferry.capture.idmarks import autoincrement_tables, given_on_postgres, raise_autoincrement_marks
from pgferry.capture.migration import install_schema
from pgferry.capture.reverse import ReverseApplier, log
from pgferry.capture.reverse.applier import BATCH_ENTRIES
from pgferry.capture.strays import NONE, cutover_position, forget_overwritten, strays_above
from pgferry.dsn import redact
from pgferry.errors import PgferryError, TargetError, UsageError
from pgferry.migrate.errors import user_errors
from pgferry.pg.connect import connect, first_line
from pgferry.runtime.route import Route, freeze, mirror, read_route, set_route, thaw
from pgferry.sqlite.atomic import atomic
from pgferry.sqlite.connect import check_sqlite_file, open_writable

LOCK_TIMEOUT_S = 3.0
FREEZE_MARGIN_S = 1.5  # the freeze outlasts the lock timeout by this much (it lapses by itself if killed);
# 3 s + 1.5 s stays under a router's default freeze_wait_s (5 s): past the freeze writers queue on the
# mirrored row instead, which the rollback holds until its flip, and none gets route_frozen
RECORD = "rollback"  # the row of the SQLite control table STATE a flipped rollback leaves until finished
REMOVE_ATTEMPTS = 3


class RollbackTimeout(PgferryError):
    """The locks were not had in time; nothing changed."""


@dataclass(frozen=True)
class Flip:
    """What step 4 committed with the route, kept in SQLite until steps 5 and 6 are done."""

    drained_upto: int  # the highest reverse entry drained (0: none)
    forward_head: int  # the forward changelog's head at the flip
    forward_from: int | None = None  # just below the first stray write (None: none, from the head)
    strays: dict[str, Any] | None = None  # the stray writes at the flip (Strays.as_dict)

    @property
    def position(self) -> int:
        """Where the forward applier starts: the stray writes' entries are applied, the rest skipped."""
        return self.forward_head if self.forward_from is None else self.forward_from


@dataclass
class RollbackReport:
    source: str
    target: str
    schema: str
    applied_before: int  # reverse entries applied before the freeze
    drained: int  # entries drained under the lock
    lock_wait_s: float  # freeze until the locks were had
    pause_s: float  # freeze until the flip committed: the longest any writer waited
    forward_position: int
    reverse_removed: bool  # False: `rollback` again removes it
    late_entries: int  # entries written on PostgreSQL after the flip (not by a router), not carried back
    resumed: bool  # this run finished a rollback killed after its flip
    marks_raised: dict[str, int] = field(default_factory=dict)  # AUTOINCREMENT marks set to PostgreSQL's ids
    strays: dict[str, Any] | None = None  # writes committed to SQLite after the cutover, carried forward now

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rollback(
    path: str | Path,
    dsn: str,
    schema: str | None = None,
    lock_timeout_s: float = LOCK_TIMEOUT_S,
    batch_entries: int = BATCH_ENTRIES,
) -> RollbackReport:
    """Go back to SQLite: see the module docstring."""
    if not 0 < lock_timeout_s <= 60:
        raise UsageError(f"--lock-timeout is more than 0 and at most 60 s, not {lock_timeout_s}")
    path = check_sqlite_file(path)
    schema = install_schema(path, schema)
    with user_errors(dsn):
        conn = open_writable(path)
        try:
            return _rollback(path, conn, dsn, schema, lock_timeout_s, batch_entries)
        finally:
            conn.close()


def _rollback(
    path: Path, conn: sqlite3.Connection, dsn: str, schema: str, lock_timeout_s: float, batch_entries: int
) -> RollbackReport:
    flip = read_flip(conn)
    report = RollbackReport(str(path), redact(dsn), schema, 0, 0, 0.0, 0.0, 0, False, 0, flip is not None)
    if read_route(conn).route is not Route.POSTGRES:
        if flip is None:
            raise UsageError(
                f"{path}: the route is {read_route(conn).route.value}, not postgres: there is nothing to roll back "
                "(rollback follows a `pgferry migrate cutover`)"
            )
        return _finish(conn, dsn, schema, flip, lock_timeout_s, report)
    applier = ReverseApplier(path, dsn, schema, batch_entries)
    try:
        report.applied_before = _catch_up(applier)
        if applier.routed_away:
            raise UsageError(f"{path}: another rollback set the route to sqlite meanwhile")
        flip = _flip(applier, conn, lock_timeout_s, report)
    finally:
        applier.close()
    return _finish(conn, dsn, schema, flip, lock_timeout_s, report)


def _catch_up(applier: ReverseApplier) -> int:
    """Step 1: batches until one is not full (writers on PostgreSQL may never let it reach zero)."""
    applied = 0
    while (batch := applier.step()) is not None:
        applied += batch.entries
        if batch.entries < applier.batch_entries:
            break
    return applied


def _lock_timeout(pg: psycopg.Connection, seconds: float) -> None:
    pg.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(seconds * 1000)}ms"])


def _flip(applier: ReverseApplier, conn: sqlite3.Connection, lock_timeout_s: float, report: RollbackReport) -> Flip:
    """Steps 2 to 5."""
    pg, schema = applier.pg, applier.schema
    autoincrement = autoincrement_tables(conn)
    started = time.monotonic()
    freeze(conn, lock_timeout_s + FREEZE_MARGIN_S, note="rollback")
    flipped = None
    try:
        with pg.transaction():
            _lock_timeout(pg, lock_timeout_s)
            try:
                log.lock(pg, schema, transaction=True)
                held = pg.execute(sql.SQL("SELECT 1 FROM {} WHERE id = 1 FOR UPDATE").format(mirror.TABLE)).fetchone()
            except pgerrors.LockNotAvailable as exc:
                raise RollbackTimeout(
                    f"rollback: PostgreSQL's writers did not pause within --lock-timeout {lock_timeout_s:g} s "
                    f"({first_line(exc)}); the freeze is lifted and nothing changed: the application goes on on "
                    "PostgreSQL. Try again, or with a longer --lock-timeout"
                ) from None
            if held is None:
                raise UsageError(
                    "rollback: PostgreSQL has no mirrored route row (pgferry.route), so writers in flight there "
                    "cannot be waited for; the cutover writes it (set_route with pg=)"
                )
            report.lock_wait_s = time.monotonic() - started
            given = given_on_postgres(pg, applier.plan, autoincrement)
            drained_upto = 0
            while flipped is None:
                pending = applier.pending(pg, applier.batch_entries, check_schema=True)
                drained_upto = max([drained_upto, *pending.seqs])
                last = len(pending.entries) < applier.batch_entries
                done: Flip | None = None
                with atomic(conn, what="rollback: writing PostgreSQL's last changes into SQLite"):
                    applier.write(conn, pending)
                    if last:
                        report.marks_raised = raise_autoincrement_marks(conn, given)
                        done = _flip_record(conn, pg, schema, drained_upto)
                        STATE.write(conn, {"name": RECORD, "value": json.dumps(asdict(done))}, replace=True)
                        set_route(conn, Route.SQLITE, note="rollback", pg=pg)
                flipped = done
                report.pause_s = time.monotonic() - started
                log.forget(pg, pending.seqs)
                report.drained += len(pending.entries)
            killpoints.reached("rollback:after_flip")
            pgstate.jump_position(pg, schema, flipped.position, time.time())
    except psycopg.Error as exc:
        if flipped is None:
            thaw(conn, note="rollback gave up")
            raise
        raise TargetError(
            f"rollback: the route is sqlite (the flip committed; writers are on SQLite), but PostgreSQL's half "
            f"failed ({first_line(exc)}); run `pgferry migrate rollback` again to finish it"
        ) from None
    except BaseException:
        if flipped is None:
            thaw(conn, note="rollback gave up")
        raise
    return flipped


def _flip_record(conn: sqlite3.Connection, pg: psycopg.Connection, schema: str, drained_upto: int) -> Flip:
    """In the flip's SQLite transaction, after the last write: the forward head, and the stray writes
    (pgferry.capture.strays) above the cutover's position, which the forward applier is to carry to
    PostgreSQL (their rows are in SQLite only)."""
    head = changelog.head(conn)
    position = cutover_position(pg, schema)
    strays = NONE if position is None else strays_above(conn, position)
    forget_overwritten(conn)  # named in the record; the forward applier carries SQLite's rows from here
    if not strays.count:
        return Flip(drained_upto, head)
    return Flip(drained_upto, head, strays.first[0].seq - 1, strays.as_dict())


def _finish(
    conn: sqlite3.Connection, dsn: str, schema: str, flip: Flip, lock_timeout_s: float, report: RollbackReport
) -> RollbackReport:
    """Steps 5 (again: idempotent) and 6, retried a few times when the triggers' tables are busy."""
    report.forward_position, report.strays = flip.position, flip.strays
    with connect(dsn) as pg:
        for attempt in range(REMOVE_ATTEMPTS):
            try:
                with pg.transaction():
                    _lock_timeout(pg, lock_timeout_s)
                    mirror.write(pg, read_route(conn))
                    pgstate.jump_position(pg, schema, flip.position, time.time())
                    log.forget_schema(pg, schema, upto=flip.drained_upto)
                    backlog = log.backlog(pg, schema)
                    report.late_entries = 0 if backlog is None else backlog.entries
                    log.uninstall(pg, schema)
            except pgerrors.LockNotAvailable:
                time.sleep(0.1 * (attempt + 1))
                continue
            report.reverse_removed = True
            break
    if report.reverse_removed:
        with atomic(conn, what="rollback: clearing its record"):
            STATE.delete(conn, RECORD)
    return report


def read_flip(conn: sqlite3.Connection) -> Flip | None:
    """The record a rollback killed after its flip left (None: none)."""
    row = next((r for r in STATE.read(conn) if r["name"] == RECORD), None)
    return None if row is None else Flip(**json.loads(row["value"]))
