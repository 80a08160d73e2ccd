"""`pgferry migrate start / follow / abort`: capture, copy with a watermark, follow; each step
recorded in the databases, so any command killed at any point is taken up by `follow`.

The phases, in PostgreSQL's `pgferry.capture_state` (pgferry.capture.pgstate):

    installing   the row is written first; then capture is installed in SQLite (one transaction)
    copying      the copy runs (pgferry.migrate.run); its watermark, the changelog's newest seq read in
                 the copy's own snapshot, is saved from inside that snapshot, the lowest one kept;
                 each chunk is then read in a read transaction of its own, and UNIQUE indexes and
                 foreign keys are held back (pgferry.migrate.chunked)
    following    the applier (pgferry.capture.applier) from the watermark on; once it has caught
                 up, it builds what the copy held back
    stopped      follow ended on request; `follow` goes on
    failed       the applier stopped on an error (last_error); `follow` tries again

`follow` takes whichever phase it finds: it installs when the install did not happen, resumes the
copy (--resume, with the options `start` stored) when it did not finish, then follows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from pgferry.capture import changelog, pgstate, reverse
from pgferry.capture.applier import BATCH_ENTRIES, Applier, ApplierBusy, Batch, Rebuilt
from pgferry.capture.current import ApplyError
from pgferry.capture.install import Removed, install, uninstall
from pgferry.capture.journal import JournalSwitch, switch_to_wal
from pgferry.capture.keys import CaptureKey, capture_keys
from pgferry.capture.liveverify import LiveVerifier, PassReport
from pgferry.capture.reverse import ReverseApplier, ReverseBatch
from pgferry.capture.strays import Stray
from pgferry.dsn import redact
from pgferry.errors import PgferryError, TargetError, UsageError
from pgferry.events import Listener, no_events
from pgferry.migrate import control
from pgferry.migrate.chunked import HeldBack
from pgferry.migrate.ddl import schema_has_tables
from pgferry.migrate.errors import user_errors
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.partition import partition_keys
from pgferry.migrate.report import CopyReport
from pgferry.migrate.run import copy_database
from pgferry.pg.connect import connect
from pgferry.runtime.route import Route, read_route
from pgferry.sqlite.connect import check_sqlite_file, open_readonly
from pgferry.sqlite.control import without_control
from pgferry.sqlite.schema import read_schema


@dataclass
class FollowReport:
    """What a `start` or `follow` did."""

    source: str
    target: str
    schema: str
    keys: list[CaptureKey]  # each captured table's key (a fresh install only)
    copy: CopyReport | None  # the copy, when this run made or finished it
    applied: int  # changelog entries applied by this run
    phase: str
    journal: JournalSwitch | None = None  # what `start` did to the journal mode
    constraints: HeldBack | None = None  # the UNIQUE indexes and foreign keys the copy held back, built by this run

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "schema": self.schema,
            "captured": [dataclasses.asdict(k) for k in self.keys],
            "copy": None if self.copy is None else self.copy.as_dict(),
            "applied": self.applied,
            "phase": self.phase,
            "journal": None if self.journal is None else self.journal.as_dict(),
            "constraints": None if self.constraints is None else self.constraints.as_dict(),
        }


@dataclass(frozen=True)
class Follow:
    """How long to follow (until `stop` is set, or once caught up), the batch size, and what to call
    after each batch (with None when there was nothing to apply). With `verify_every` N, a verify pass
    over the changed keys (pgferry.capture.liveverify) runs after every N batches and once caught up,
    its report handed to `on_verify`."""

    stop: threading.Event | None = None
    until_caught_up: bool = False
    on_batch: Callable[[Batch | ReverseBatch | None], None] | None = None
    batch_entries: int = BATCH_ENTRIES
    verify_every: int = 0
    grace: float = 5.0
    on_verify: Callable[[PassReport], None] | None = None
    on_rebuild: Callable[[Rebuilt, PassReport], None] | None = None  # a table rebuilt, copied again, verified
    on_constraints: Callable[[HeldBack], None] | None = None  # the chunked copy's held-back constraints built
    on_stray: Callable[[Stray], None] | None = None  # route postgres: a write committed to SQLite, first seen


CAUGHT_UP = Follow(until_caught_up=True)


def install_schema(path: str | Path, schema: str | None) -> str:
    """The target schema: as given, else as capture's install recorded it, else public."""
    if schema is not None:
        return schema
    found = _installed(path)
    return "public" if found is None else found.target_schema


def start(
    path: str | Path,
    dsn: str,
    options: CopyOptions | None = None,
    events: Listener = no_events,
    how: Follow | None = None,
    wal: bool = True,
) -> FollowReport:
    """Install capture, copy with its watermark, then follow as `how` says (default: until caught up).
    A file in rollback-journal mode is switched to WAL first unless `wal` is False (capture.journal)."""
    options = options or CopyOptions()
    if options.resume:
        raise UsageError("migrate start makes a new copy; `pgferry migrate follow` resumes an interrupted one")
    path = check_sqlite_file(path)
    found = _installed(path)
    with connect(dsn) as pg:
        state = pgstate.read(pg, options.schema)
        if state is not None:  # named by the file it was started with (maybe not this one)
            raise UsageError(
                f"a migration of {state.source} into schema {options.schema!r} was started already (phase "
                f"{state.phase}); `pgferry migrate follow` goes on, `pgferry migrate abort` removes it (or choose "
                "another --schema)"
            )
        if found is not None:
            raise UsageError(
                f"{path} has change capture installed already, for schema {found.target_schema!r}; "
                "`pgferry migrate follow` goes on, `pgferry migrate abort` removes it"
            )
        if not options.into_existing and schema_has_tables(pg, options.schema):
            raise TargetError(
                f"schema {options.schema!r} in the target is not empty; drop it, choose another with --schema, "
                "or fill an application's tables with --into-existing"
            )
        _check_keys(path, options)
        journal = switch_to_wal(path, wal)
        with pg.transaction():
            pgstate.begin(pg, options.schema, str(path), dataclasses.asdict(options))
    return dataclasses.replace(_advance(path, dsn, options.schema, events, how or CAUGHT_UP), journal=journal)


def follow(
    path: str | Path, dsn: str, schema: str | None = None, events: Listener = no_events, how: Follow | None = None
) -> FollowReport:
    """Take the migration up where it is (install, copy, follow) and follow as `how` says."""
    path = check_sqlite_file(path)
    return _advance(path, dsn, install_schema(path, schema), events, how or CAUGHT_UP)


def _advance(path: Path, dsn: str, schema: str, events: Listener, how: Follow) -> FollowReport:
    with connect(dsn) as pg:
        state = pgstate.read(pg, schema)
    if state is None:
        raise UsageError(
            f"no migration into schema {schema!r} is recorded in {redact(dsn)}; start one with `pgferry migrate start`"
        )
    keys: list[CaptureKey] = []
    report = None
    if state.phase == "installing":
        keys = _install(path, dsn, schema)
    if state.phase in ("installing", "copying"):
        options = CopyOptions(**{**state.options, "resume": state.phase == "copying"})
        report = _copy(path, dsn, options, events)
    built: list[HeldBack] = []
    told = how.on_constraints

    def on_constraints(held: HeldBack) -> None:
        built.append(held)
        if told is not None:
            told(held)

    applied = _follow(path, dsn, schema, dataclasses.replace(how, on_constraints=on_constraints))
    constraints = built[-1] if built else None
    return FollowReport(str(path), redact(dsn), schema, keys, report, applied, "stopped", constraints=constraints)


def _install(path: Path, dsn: str, schema: str) -> list[CaptureKey]:
    """Install capture (unless a run killed after installing did), then phase `copying`."""
    keys = [] if _installed(path) is not None else install(path, schema).keys
    with connect(dsn) as pg, pg.transaction():
        pgstate.set_phase(pg, schema, "copying")
    return keys


def _installed(path: str | Path) -> changelog.Install | None:
    conn = open_readonly(path)
    try:
        return changelog.read_install(conn)
    finally:
        conn.close()


def _check_keys(path: Path, options: CopyOptions) -> None:
    """Refuse keyless tables, and --partition specs the copy would refuse, before anything is written
    (install checks the keys again, in its transaction)."""
    conn = open_readonly(path)
    try:
        schema = without_control(read_schema(conn))
        capture_keys(conn, schema)
        partition_keys(schema, options.partition_specs, options.partition_widen_keys)
    finally:
        conn.close()


def _copy(path: Path, dsn: str, options: CopyOptions, events: Listener) -> CopyReport | None:
    """The copy, or what is left of it; its watermark saved from inside its snapshot."""
    with connect(dsn) as pg:
        if options.resume and control.read_phase(pg, options.schema) == "done":
            return None  # killed after the copy, before following

    chunked = not options.into_existing  # an application's tables have their constraints already

    def watermark(conn: sqlite3.Connection) -> int:
        seq = changelog.head(conn)
        with connect(dsn) as pg, pg.transaction():
            pgstate.note_watermark(pg, options.schema, seq, time.time())
            if chunked:
                pgstate.hold_back_constraints(pg, options.schema)
        return seq

    return copy_database(path, dsn, options, events, watermark=watermark, chunked=chunked)


def _follow(path: Path, dsn: str, schema: str, how: Follow) -> int:
    """Run the applier the route calls for (forward on sqlite and dual, reverse on postgres), and
    the other one when a cutover or a rollback flips it meanwhile; a stop is recorded as
    `stopped`, an error as `failed` with the message."""
    applied = 0
    try:
        with user_errors(dsn):  # a server gone, a file gone: one line, recorded
            while True:
                done, flipped = _run_applier(path, dsn, schema, how)
                applied += done
                if not flipped:
                    break
    except ApplierBusy:
        raise  # the applier that holds the lock is fine: nothing to record about it
    except PgferryError as exc:
        _record(dsn, schema, "failed", str(exc))
        raise
    _record(dsn, schema, "stopped")
    return applied


def _run_applier(path: Path, dsn: str, schema: str, how: Follow) -> tuple[int, bool]:
    """(entries applied, whether the route flipped under it)."""
    if _route(path) is Route.POSTGRES:
        return _run_reverse(path, dsn, schema, how)
    applier = Applier(
        path,
        dsn,
        schema,
        how.batch_entries,
        on_rebuild=_reverify(path, dsn, schema, how),
        on_constraints=how.on_constraints,
    )
    verifier = LiveVerifier(path, dsn, schema) if how.verify_every else None
    try:
        with connect(dsn) as pg, pg.transaction():
            pgstate.start_following(pg, schema, applier.mode)
        on_batch = how.on_batch if verifier is None else _verifying(verifier, how)
        return applier.run(how.stop, how.until_caught_up, on_batch), applier.cut_over
    finally:
        applier.close()
        if verifier is not None:
            verifier.close()


def _run_reverse(path: Path, dsn: str, schema: str, how: Follow) -> tuple[int, bool]:
    """The reverse applier, while the route is postgres (after a cutover): PostgreSQL into SQLite."""
    applier = ReverseApplier(path, dsn, schema, how.batch_entries, own=True)
    try:
        with connect(dsn) as pg, pg.transaction():
            pgstate.start_following(pg, schema, "reverse")
        return applier.run(how.stop, how.until_caught_up, _watching_strays(applier, how)), applier.routed_away
    finally:
        applier.close()


def _watching_strays(applier: ReverseApplier, how: Follow) -> Callable[[ReverseBatch | None], None] | None:
    """`how.on_batch`, then `how.on_stray` for each stray write not seen before (pgferry.capture.strays)."""
    told, on_stray = how.on_batch, how.on_stray
    if on_stray is None:
        return told

    def on_batch(batch: ReverseBatch | None) -> None:
        if told is not None:
            told(batch)
        for stray in applier.new_strays():
            on_stray(stray)

    return on_batch


def _route(path: Path) -> Route:
    conn = open_readonly(path)
    try:
        return read_route(conn).route
    finally:
        conn.close()


def _reverify(path: Path, dsn: str, schema: str, how: Follow) -> Callable[[Rebuilt], None]:
    """After a table was rebuilt and copied again: a full pass over it, handed to `how.on_rebuild`."""

    def on_rebuild(rebuilt: Rebuilt) -> None:
        verifier = LiveVerifier(path, dsn, schema)
        try:
            report = verifier.verify_table(rebuilt.table, how.grace)
        finally:
            verifier.close()
        if how.on_rebuild is not None:
            how.on_rebuild(rebuilt, report)

    return on_rebuild


def _verifying(verifier: LiveVerifier, how: Follow) -> Callable[[Batch | None], None]:
    """`how.on_batch`, then a keys pass every `how.verify_every` batches and when caught up after any."""
    since = [0]

    def on_batch(batch: Batch | None) -> None:
        if how.on_batch is not None:
            how.on_batch(batch)
        since[0] += batch is not None
        if since[0] >= how.verify_every or (batch is None and since[0]):
            since[0] = 0
            report = verifier.settle(verifier.keys_pass(how.grace), how.grace, 0.0)
            if how.on_verify is not None:
                how.on_verify(report)

    return on_batch


def _record(dsn: str, schema: str, phase: str, error: str | None = None) -> None:
    """Best effort: the error itself is raised to the caller even when PostgreSQL cannot take it."""
    with contextlib.suppress(PgferryError, psycopg.Error), connect(dsn) as pg, pg.transaction():
        pgstate.set_phase(pg, schema, phase, error)


@dataclass
class RemovalReport:
    """What `abort` (before a cutover) or `finish` (after one) removed."""

    source: str
    schema: str
    sqlite: Removed
    postgres_state: bool  # a capture state was there and is gone
    stray_writes_discarded: int = 0  # `finish --discard-stray-writes`: writes left in SQLite only

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "schema": self.schema,
            "triggers_dropped": self.sqlite.triggers,
            "sqlite_tables_dropped": self.sqlite.tables,
            "postgres_state_removed": self.postgres_state,
            "stray_writes_discarded": self.stray_writes_discarded,
        }


def abort(path: str | Path, dsn: str, schema: str | None = None) -> RemovalReport:
    """Remove capture from SQLite and the migration's control state from PostgreSQL; the source's
    tables and rows, and the copied tables, are left as they are. Refused after a cutover (the
    application writes to PostgreSQL: SQLite's rows are behind until a rollback)."""
    path = check_sqlite_file(path)
    if _route(path) is Route.POSTGRES:
        raise UsageError(
            f"{path}: the route is postgres (after a cutover the application writes to PostgreSQL, and SQLite "
            "only follows it); `pgferry migrate rollback` goes back to SQLite first, then abort"
        )
    schema = install_schema(path, schema)
    with connect(dsn) as pg, pg.transaction():  # each half is idempotent: abort again finishes a killed one
        found = pgstate.remove(pg, schema)
        reverse.uninstall(pg, schema)  # a cutover that did not happen leaves it installed, unarmed
    removed = uninstall(path)
    return RemovalReport(str(path), schema, removed, found)


__all__ = ["ApplyError", "Follow", "FollowReport", "abort", "follow", "start"]
