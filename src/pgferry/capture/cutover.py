"""`pgferry migrate cutover`: the switch from SQLite to PostgreSQL while the application writes.

One attempt (issue 16; DESIGN.md, "A migration, end to end"):

    catch up   the applier (this process's own, or a `migrate follow` that is running) within --max-lag
    install    reverse capture (pgferry.capture.reverse) on every copied table, unarmed: its triggers
               log nothing until the mirrored route says postgres. Before the freeze, so its catalog
               writes and table locks are not in the writers' pause (once per command; short lock
               waits, retried, so it neither stalls writers nor deadlocks with them)
    freeze     the route announces the switch: writers that begin now wait (pgferry.runtime.routed)
               instead of queuing for the lock, whose busy handler is unfair
    lock       BEGIN IMMEDIATE, tried every millisecond until the deadline: writers in flight finish
    drain      every changelog entry up to the head (fixed now: nobody else can write) applied
    verify     the keys drained and every failure a verify pass found, compared on both sides (no
               grace needed: nothing is in flight); a difference undoes the attempt, not retried
    flip       one PostgreSQL transaction: identity sequences above SQLite's ids, the route's mirror
               set to postgres, which arms reverse capture (from its commit every PostgreSQL write is
               logged for a rollback; a table a rebuild re-created since the install gets its trigger
               here); COMMIT; then SQLite's route row set to postgres, COMMIT: the writers that waited
               go on PostgreSQL

From `lock` to the end the attempt must fit in --lock-timeout; when it does not, it is undone (both
transactions rolled back, the freeze lifted, writers go on SQLite) and tried again after a backoff.
PostgreSQL commits first. Killed between the two commits, SQLite's row still says sqlite (the route
is SQLite's row, the mirror its echo: route/mirror.py), the freeze lapses by itself, and the next
attempt writes the mirror again.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pgerrors

from pgferry import killpoints
from pgferry.capture import changelog, cutover_log, pgstate, readiness, reverse, verifystate
from pgferry.capture.applier import Applier, ApplierBusy
from pgferry.capture.copied import captured_tables
from pgferry.capture.current import Key
from pgferry.capture.cutover_log import Attempt
from pgferry.capture.hook import run_hook
from pgferry.capture.liveverify import LiveVerifier
from pgferry.capture.migration import install_schema
from pgferry.capture.status import read_status
from pgferry.dsn import redact
from pgferry.errors import PgferryError, UsageError
from pgferry.migrate import control
from pgferry.migrate.plan import MigrationPlan
from pgferry.migrate.source import restart_above, sqlite_sequences
from pgferry.pg.connect import connect, first_line, statement
from pgferry.runtime.route import Route, freeze, read_route, set_route, thaw
from pgferry.sqlite.atomic import WriteLockError
from pgferry.sqlite.connect import check_sqlite_file, open_writable

FREEZE_MARGIN_S = 1.0  # the freeze outlives the lock timeout by this much, then lapses by itself
LOCK_POLL_S = 0.001
INSTALL_LOCK_WAIT_S = 0.05  # the reverse install waits this long for one table's lock, then starts again
INSTALL_RETRY_S = 0.01
DRAIN_POLL_S = 0.002
BACKOFF_CAP_S = 30.0
SEQUENCE_STEPS = ("identity", "sequence")  # the plan's steps that put a sequence above the copied ids
FINAL = ("hook_failed", "verify_failed")  # outcomes a retry would meet again: the operator's to look at


class CutoverFailed(PgferryError):
    """Every attempt was undone (lag, lock, drain, hook): the route is where it was."""

    exit_code = 1


class _GiveUp(Exception):
    """An attempt's outcome other than success; everything it did is undone."""

    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class CutoverOptions:
    max_lag_s: float = 1.0  # refuse an attempt while the applier is further behind than this
    lock_timeout_s: float = 3.0  # lock + drain + flip must fit in this (gh-ost's default)
    attempts: int = 5
    backoff_s: float = 1.0  # after a failed attempt; doubled each time, at most BACKOFF_CAP_S
    postpone_file: Path | None = None  # while it exists, no attempt starts (gh-ost's flag file)
    dry_run: bool = False
    hook: str | None = None  # maintenance cutover: a shell command run with SQLite's write lock held
    hook_timeout_s: float = 60.0


@dataclass
class CutoverReport:
    source: str
    target: str
    schema: str
    route: str  # after the command
    already: bool  # the route was postgres before the command (nothing done)
    dry_run: bool
    applier: str  # "own" (this command applied) or "follower" (a running `migrate follow` did)
    steps: list[str]
    attempts: list[Attempt]
    sequences: int  # identity sequences set

    @property
    def cut_over(self) -> bool:
        return self.route == Route.POSTGRES.value

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cut_over"] = self.cut_over
        return data


def plan_steps(options: CutoverOptions, applier: str, tables: int) -> list[str]:
    """What an attempt does, in order (printed by --dry-run)."""
    who = "this command's applier" if applier == "own" else "the running `migrate follow`"
    steps = [f"wait while {options.postpone_file} exists (the postpone file)"] if options.postpone_file else []
    steps += [
        f"wait until {who} is at most {options.max_lag_s:g} s behind",
        f"in PostgreSQL, before the freeze: install reverse capture on {tables} tables, unarmed until the route "
        "says postgres (once)",
        f"freeze the route for {options.lock_timeout_s + FREEZE_MARGIN_S:g} s: writers that begin wait",
        f"take SQLite's write lock (BEGIN IMMEDIATE), within {options.lock_timeout_s:g} s of the freeze",
        "apply every changelog entry up to the head",
        "compare the drained keys and every failure a verify pass recorded on both sides; a difference undoes "
        "the attempt (not retried)",
        f"in PostgreSQL: set the identity sequences of {tables} tables above SQLite's ids, route mirror to "
        "postgres (which arms reverse capture, for a rollback); COMMIT",
    ]
    if options.hook:
        steps.append(f"run the hook with the write lock held (at most {options.hook_timeout_s:g} s)")
    steps.append("SQLite's route row to postgres; COMMIT: waiting writers go on PostgreSQL")
    steps.append(
        f"on a timeout: undo both, lift the freeze, retry after {options.backoff_s:g} s (doubling), "
        f"{options.attempts} attempts in all"
    )
    return steps


class _Catchup:
    """Who applies the changelog during the cutover: this process (`own`), or a `migrate follow` that
    holds the applier's lock (`follower`: the cutover watches its position move)."""

    def __init__(self, path: Path, dsn: str, schema: str) -> None:
        self.path, self.dsn, self.schema = path, dsn, schema
        self.applier: Applier | None = None
        self.pg = connect(dsn)
        try:
            self.applier = Applier(path, dsn, schema)
        except ApplierBusy:
            self.applier = None

    @property
    def kind(self) -> str:
        return "own" if self.applier is not None else "follower"

    def close(self) -> None:
        if self.applier is not None:
            self.applier.close()
        with contextlib.suppress(psycopg.Error):
            self.pg.close()

    def position(self) -> int:
        if self.applier is not None:
            return self.applier.position
        state = pgstate.read(self.pg, self.schema)
        return 0 if state is None or state.applied_seq is None else state.applied_seq

    def lag_s(self, conn: sqlite3.Connection) -> float:
        """Seconds behind now: 0 when nothing is pending, else since the applier last saw nothing
        pending. This process's applier first applies what is there now (not what arrives meanwhile)."""
        if self.applier is not None:
            head = changelog.head(conn)
            while self.applier.position < head and self.applier.step() is not None:
                pass
        if changelog.pending(conn, self.position()) == 0:
            return 0.0
        if self.applier is not None:
            since: float | None = self.applier.behind_since
        else:
            state = pgstate.read(self.pg, self.schema)
            since = None if state is None else state.behind_since
        return float("inf") if since is None else max(0.0, time.time() - since)

    def drain(self, head: int, deadline: float) -> int:
        """Apply up to `head` before `deadline` (the write lock is held: no entry can follow it)."""
        start = self.position()
        while self.position() < head:
            if time.monotonic() > deadline:
                raise _GiveUp("drain_timeout", f"entries {self.position() + 1}-{head} not applied in time")
            if self.applier is not None:
                self.applier.step(prune=False)
            else:
                time.sleep(DRAIN_POLL_S)
        return head - start


def _lock(conn: sqlite3.Connection, deadline: float) -> None:
    """BEGIN IMMEDIATE, tried every millisecond: SQLite's own busy handler sleeps up to 100 ms per try."""
    conn.execute("PRAGMA busy_timeout = 0")
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                raise _GiveUp("lock_timeout", "writers kept SQLite's write lock past the lock timeout") from None
            time.sleep(LOCK_POLL_S)
    # a rollback-journal COMMIT waits for readers: give it the rest of the time
    conn.execute(f"PRAGMA busy_timeout = {max(1, int((deadline - time.monotonic()) * 1000))}")


def _sequence_sql(stored: dict[str, Any], conn: sqlite3.Connection) -> list[str]:
    """The stored plan's sequence steps, above SQLite's AUTOINCREMENT marks as they are now (under
    the lock: an id given and deleted since the copy is never given again on PostgreSQL)."""
    plan = MigrationPlan.from_dict(stored)
    restart_above(plan, sqlite_sequences(conn))
    return [step.sql for step in plan.steps if step.kind in SEQUENCE_STEPS]


@contextlib.contextmanager
def _timed(phases: dict[str, float], name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        phases[name] = round(time.monotonic() - started, 6)


class _Cutover:
    def __init__(self, path: Path, dsn: str, schema: str, options: CutoverOptions) -> None:
        self.path, self.dsn, self.schema, self.options = path, dsn, schema, options
        self.conn = open_writable(path)
        self.pg = connect(dsn)  # autocommit: the freeze's mirror, the attempt log
        self.flip_pg = connect(dsn)  # the flip's transaction
        self.catchup = _Catchup(path, dsn, schema)
        self.verifier = LiveVerifier(path, dsn, schema)
        self.registry = {c.id: c for c in changelog.read_registry(self.conn)}
        install = changelog.read_install(self.conn)
        self.width = install.width if install is not None else 1
        stored = control.read_plan(self.pg, schema)
        if stored is None:
            self.close()
            raise UsageError(f"schema {schema!r}: no stored copy plan; the copy did not finish")
        self.stored = stored
        try:
            self.copied = captured_tables(self.conn, self.pg, schema).tables  # reverse capture's tables
        except BaseException:
            self.close()
            raise
        self.sequences = 0
        self.installed = False  # reverse capture, unarmed, before the first freeze

    def close(self) -> None:
        self.catchup.close()
        self.verifier.close()
        for pg in (self.pg, self.flip_pg):
            with contextlib.suppress(psycopg.Error):
                pg.close()
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    def attempt(self, number: int) -> Attempt:
        result = Attempt(number, "cut_over")
        phases = result.phases
        try:
            with _timed(phases, "catch_up"):
                lag = self.catchup.lag_s(self.conn)
            if lag > self.options.max_lag_s:
                raise _GiveUp("lag", f"the applier is {lag:.2f} s behind (--max-lag {self.options.max_lag_s:g})")
            if not self.installed:
                with _timed(phases, "install"):
                    self._install_reverse()
            with _timed(phases, "freeze"):
                self._freeze()
            frozen_at = time.monotonic()  # writers that begin from now on wait
            result.frozen_at = time.time()
            deadline = frozen_at + self.options.lock_timeout_s
            try:
                self._locked(result, deadline)
            except BaseException:
                self._undo()
                raise
            finally:
                result.pause_s = round(time.monotonic() - frozen_at, 6)
        except _GiveUp as exc:
            result.outcome, result.message = exc.outcome, str(exc)
        return result

    def _locked(self, result: Attempt, deadline: float) -> None:
        phases = result.phases
        with _timed(phases, "lock"):
            _lock(self.conn, deadline)
        killpoints.reached("cutover:locked")
        head = changelog.head(self.conn)
        start = self.catchup.position()
        with _timed(phases, "drain"):
            result.drained = self.catchup.drain(head, deadline)
        killpoints.reached("cutover:drained")
        with _timed(phases, "verify"):
            keys = self._changed_keys(start, head)
            differences = self.verifier.verify_now(self.conn, keys)
        result.verified = sum(len(k) for k in keys.values())
        if differences:
            shown = "; ".join(
                f"{d.table} {list(d.key)}: {d.kind} {', '.join(d.columns)}".rstrip() for d in differences[:3]
            )
            raise _GiveUp(
                "verify_failed",
                f"{len(differences)} changed rows differ on PostgreSQL ({shown}); `pgferry migrate verify` says more",
            )
        remaining_ms = int((deadline - time.monotonic()) * 1000)
        if remaining_ms <= 0:
            raise _GiveUp("flip_timeout", "no time left for the flip")
        try:
            with _timed(phases, "flip"), self.flip_pg.transaction():
                self.flip_pg.execute(statement(f"SET LOCAL lock_timeout = {remaining_ms}"))
                sequences = _sequence_sql(self.stored, self.conn)
                if sequences:  # one round trip
                    self.flip_pg.execute(statement("; ".join(sequences)))
                rebuilt = reverse.missing(self.flip_pg, self.schema, self.copied)
                if rebuilt:  # re-created by a rebuild since the install: triggers before any writer gets here
                    reverse.install(self.flip_pg, self.schema, rebuilt)
                set_route(self.conn, Route.POSTGRES, note="cutover", pg=self.flip_pg)
                killpoints.reached("cutover:before_pg_commit")
        except pgerrors.LockNotAvailable as exc:
            raise _GiveUp("flip_timeout", f"PostgreSQL: {first_line(exc)}") from None
        self.sequences = len(sequences)
        killpoints.reached("cutover:after_pg_commit")
        if self.options.hook:
            with _timed(phases, "hook"):
                failed = run_hook(self.options.hook, self.path, self.dsn, self.schema, self.options.hook_timeout_s)
                if failed:
                    raise _GiveUp("hook_failed", failed)
        with _timed(phases, "commit"):
            self.conn.execute("COMMIT")
        killpoints.reached("cutover:after_commit")

    def _changed_keys(self, start: int, head: int) -> dict[str, list[Key]]:
        """The keys of the entries drained under the lock and of every failure a verify pass found:
        compared under the lock, they need no grace."""
        keys: dict[str, list[Key]] = {}
        for entry in changelog.entries(self.conn, start, head - start, self.width) if head > start else []:
            captured = self.registry.get(entry.table_id)
            if captured is not None:
                keys.setdefault(captured.table, []).append(entry.key[: len(captured.key)])
        for failure in verifystate.failures(self.pg, self.schema):
            keys.setdefault(failure.table, []).append(failure.key)
        return keys

    def _install_reverse(self) -> None:
        """Reverse capture, unarmed, in a transaction of its own, tried until --lock-timeout. Each
        table's lock is waited for INSTALL_LOCK_WAIT_S at most, then the whole install is rolled back
        and tried again: a writer or the forward applier that holds one table and wants another is
        never held up long, and no wait lasts long enough to meet PostgreSQL's deadlock detector (a
        deadlock found anyway is one more retry)."""
        deadline = time.monotonic() + self.options.lock_timeout_s
        wait_ms = int(INSTALL_LOCK_WAIT_S * 1000)
        while True:
            try:
                with self.pg.transaction():
                    self.pg.execute(statement(f"SET LOCAL lock_timeout = {wait_ms}"))
                    reverse.install(self.pg, self.schema, self.copied)
                break
            except (pgerrors.LockNotAvailable, pgerrors.DeadlockDetected) as exc:
                if time.monotonic() >= deadline:
                    raise _GiveUp("install_timeout", f"installing reverse capture: {first_line(exc)}") from None
                time.sleep(INSTALL_RETRY_S)
        self.installed = True

    def _freeze(self) -> None:
        """Announce the switch (a short write of its own: it queues for the lock like any writer)."""
        self.conn.execute(f"PRAGMA busy_timeout = {int(self.options.lock_timeout_s * 1000)}")
        try:
            freeze(self.conn, self.options.lock_timeout_s + FREEZE_MARGIN_S, note="cutover", pg=self.pg)
        except WriteLockError:
            raise _GiveUp("lock_timeout", "writers kept SQLite's write lock; the freeze could not be written") from None

    def _undo(self) -> None:
        """Roll SQLite back (the route row with it), lift the freeze, put the mirror back. A thaw that
        cannot get the lock is left out: the freeze lapses by itself a moment later."""
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self.conn.execute(f"PRAGMA busy_timeout = {int(self.options.lock_timeout_s * 1000)}")
        with contextlib.suppress(WriteLockError):
            thaw(self.conn, note="cutover undone", pg=self.pg)


def cutover(
    path: str | Path,
    dsn: str,
    schema: str | None = None,
    options: CutoverOptions | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> CutoverReport:
    """Switch the migration's route to postgres as the module docstring says; a CutoverFailed when
    every attempt was undone. Run again after success, it says the route is postgres already."""
    options = options or CutoverOptions()
    path = check_sqlite_file(path)
    schema = install_schema(path, schema)
    _check_ready(path, dsn, schema)
    job = _Cutover(path, dsn, schema, options)
    try:
        tables = len(changelog.read_registry(job.conn))
        route = read_route(job.conn).route.value
        steps = plan_steps(options, job.catchup.kind, tables)
        report = CutoverReport(
            str(path), redact(dsn), schema, route, False, options.dry_run, job.catchup.kind, steps, [], 0
        )
        if report.cut_over:
            report.already = True
            return report
        if options.dry_run:
            return report
        _postponed(options.postpone_file, on_wait)
        backoff = options.backoff_s
        for number in range(1, options.attempts + 1):
            attempt = job.attempt(number)
            report.attempts.append(attempt)
            cutover_log.record(job.pg, schema, attempt)
            if on_attempt is not None:
                on_attempt(attempt)
            if attempt.outcome == "cut_over":
                report.route, report.sequences = Route.POSTGRES.value, job.sequences
                return report
            if attempt.outcome in FINAL or number == options.attempts:
                break
            time.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_CAP_S)
            _postponed(options.postpone_file, on_wait)
    finally:
        job.close()
    last = report.attempts[-1]
    raise CutoverFailed(
        f"cutover undone after {len(report.attempts)} attempt(s), the route is still sqlite: {last.message}"
    )


def _check_ready(path: Path, dsn: str, schema: str) -> None:
    """Refuse, in one line, what `readiness.start_blockers` finds (the dashboard shows the same)."""
    status = read_status(path, dsn, schema)
    found = readiness.start_blockers(status)
    if not found:
        return
    messages = {
        readiness.NO_MIGRATION: f"no migration into schema {schema!r} in {redact(dsn)}; `pgferry migrate start` first",
        readiness.COPY_UNFINISHED: (
            f"the copy into schema {schema!r} has not finished; `pgferry migrate follow` finishes it"
        ),
        readiness.FAILED: f"the applier stopped on an error: {status.last_error}; fix it and `migrate follow` first",
        readiness.WIDENED_KEYS: (
            f"schema {schema!r}: the copy widened the partitioned tables' keys with the partition column "
            "(--partition-widen-keys): PostgreSQL then enforces them only together with that column, so writes "
            "there could make rows SQLite's own keys refuse, and a rollback could not carry them back; a cutover "
            "is refused. Copy without --partition-widen-keys (partition only tables whose keys hold the column) "
            "to cut over"
        ),
        readiness.CONSTRAINTS_PENDING: (
            f"schema {schema!r}: the UNIQUE indexes and foreign keys the copy held back are not built yet; "
            "`pgferry migrate follow --until-caught-up` builds them once it has caught up"
        ),
    }
    raise UsageError(messages[found[0]])


def _postponed(flag: Path | None, on_wait: Callable[[str], None] | None) -> None:
    """Wait while the postpone file exists (checked every second)."""
    told = False
    while flag is not None and flag.exists():
        if on_wait is not None and not told:
            on_wait(f"postponed while {flag} exists: remove it to cut over")
            told = True
        time.sleep(1.0)
