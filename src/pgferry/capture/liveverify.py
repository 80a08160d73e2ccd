"""`pgferry migrate verify`: compare SQLite and PostgreSQL while the application writes and the applier follows.

A difference seen while writes run may only be lag, so it is a suspect first (pgferry.capture.verifystate):

- it is *in flight* when its key has a changelog entry after the applier's position (read in the same
  SQLite snapshot as the row) or was applied after that position (recorded by the applier, read after
  PostgreSQL's row): such a key is re-armed, never reported;
- otherwise it is due once the applier's position has passed the changelog head seen with it and
  `grace` seconds have gone by (AWS DMS waits max(delay, CDC lag)); compared again then and still
  different, it is confirmed. A failure that compares equal is cleared.

Passes: `keys_pass` compares the keys the applier changed since the last pass, the failures already
known and the suspects that are due; `full_pass` walks every table in chunks (each SQLite chunk its
own short read transaction: a long snapshot would hold back WAL checkpoints, and in rollback-journal
mode every writer), checks a chunk's line digests first where the types allow, and hands the keys of a
chunk that differs to the same comparison. `verify_now` compares keys at once, without grace, for a
caller that holds SQLite's write lock (the cutover).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from pgferry.capture import changelog, pgstate
from pgferry.capture import verifystate as vs
from pgferry.capture.current import ApplyError, Key
from pgferry.capture.keycheck import KeyCheck, key_check, loose, pending_keys
from pgferry.dsn import redact
from pgferry.migrate import control
from pgferry.migrate.checksum import has_lines
from pgferry.migrate.identity import row_identity
from pgferry.migrate.plan import MigrationPlan
from pgferry.migrate.verify import RowDifference, canonical_sides, comparing_session, row_differences
from pgferry.migrate.verify_chunks import canonical_items, pg_chunk, pg_digest, sqlite_chunk, sqlite_lines
from pgferry.pg.connect import connect
from pgferry.sqlite.connect import open_readonly
from pgferry.sqlite.schema import read_schema

CHUNK_ROWS = 5_000  # a chunk's SQLite read transaction lasts milliseconds
GRACE_S = 5.0
SETTLE_POLL_S = 0.2


@dataclass(frozen=True)
class Difference:
    """A row that differs now (verify_now): table, SQLite key, kind (differs/missing/extra), columns."""

    table: str
    key: Key
    kind: str
    columns: tuple[str, ...]


@dataclass
class PassReport:
    """What one verify run did and where it left the failures."""

    source: str
    target: str
    schema: str
    mode: str  # keys or full
    upto: int = 0  # every change up to this changelog entry was compared
    keys_checked: int = 0
    chunks: int = 0
    seen: int = 0  # differences met (suspects included)
    cleared: int = 0  # failures found equal again
    failures: list[vs.Failure] = field(default_factory=list)  # confirmed: they outlived the lag
    unsettled: list[vs.Failure] = field(default_factory=list)  # suspects still waiting for the applier

    @property
    def identical(self) -> bool:
        return not self.failures and not self.unsettled

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "schema": self.schema,
            "mode": self.mode,
            "identical": self.identical,
            "verified_upto": self.upto,
            "keys_checked": self.keys_checked,
            "chunks": self.chunks,
            "differences_seen": self.seen,
            "cleared": self.cleared,
            "failures": [f.as_dict() for f in self.failures],
            "unsettled": [f.as_dict() for f in self.unsettled],
        }


class LiveVerifier:
    """Compares the captured tables of `path` with their copy in `dsn` (schema `schema`)."""

    def __init__(self, path: str | Path, dsn: str, schema: str) -> None:
        self.path, self.dsn, self.schema = Path(path), dsn, schema
        self.conn = open_readonly(path)
        self.pg = connect(dsn)
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    def _load(self) -> None:
        comparing_session(self.pg)
        stored = control.read_plan(self.pg, self.schema)
        if stored is None or pgstate.read(self.pg, self.schema) is None:
            raise ApplyError(f"schema {self.schema!r}: no migration to verify (no stored plan or capture state)")
        with self.pg.transaction():
            vs.ensure(self.pg)
        plan = MigrationPlan.from_dict(stored)
        sqlite_schema = read_schema(self.conn)
        self.checks: dict[str, KeyCheck] = {}
        for captured in changelog.read_registry(self.conn):
            table_plan = plan.table(captured.table)
            identity = row_identity(sqlite_schema.table(captured.table), table_plan)
            self.checks[captured.table] = key_check(self.pg, self.schema, captured, table_plan, identity)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()
        with contextlib.suppress(psycopg.Error):
            self.pg.close()

    def position(self) -> int:
        state = pgstate.read(self.pg, self.schema)
        if state is None:
            raise ApplyError(f"schema {self.schema!r}: the migration's state is gone (aborted?)")
        return state.applied_seq if state.applied_seq is not None else (state.start_seq or 0)

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One short SQLite read transaction."""
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            self.conn.execute("COMMIT")

    # --- comparing keys and judging what differs -----------------------------------------------------

    def _judge(self, check: KeyCheck, keys: Sequence[Key], grace: float, report: PassReport) -> None:
        """Compare `keys` now and record the verdict of each (see the module docstring)."""
        if not keys:
            return
        position = self.position()  # read before both sides: PostgreSQL's rows are at least this new
        with self._snapshot():
            head = changelog.head(self.conn)
            differences, equal = check.compare(self.conn, self.pg, keys)
            pending = pending_keys(self.conn, check.captured, position) if differences else set()
        applied: set[tuple[Any, ...]] = set()
        if differences:  # read after PostgreSQL's rows: anything applied since is listed
            recorded = vs.recorded(self.pg, self.schema, check.captured.id, check.types, after=position)
            applied = {loose(check.source_key(k)) for k in recorded}
        known = {vs.encode_key(f.key): f for f in vs.failures(self.pg, self.schema, check.table)}
        now = time.time()
        stamp = datetime.fromtimestamp(now, UTC)
        report.keys_checked += len(keys)
        report.seen += len(differences)
        with self.pg.transaction():
            report.cleared += vs.clear_failures(self.pg, self.schema, check.table, equal)
            for difference in differences:
                before = known.get(vs.encode_key(difference.key))
                in_flight = loose(difference.key) in pending or loose(difference.key) in applied
                due = before is not None and position >= before.due_seq and now >= before.due_at
                if in_flight or before is None:
                    due_seq, due_at, confirmed = head, now + grace, False
                else:
                    due_seq, due_at, confirmed = before.due_seq, before.due_at, before.confirmed or due
                failure = vs.Failure(
                    check.table, difference.key, difference.kind, difference.columns, stamp, stamp,
                    due_seq, due_at, confirmed,
                )  # fmt: skip
                vs.save_failure(self.pg, self.schema, failure)

    def keys_pass(self, grace: float, report: PassReport | None = None) -> PassReport:
        """Compare the keys the applier changed since the last pass, every confirmed failure and
        every suspect that is due."""
        report = report or self._report("keys")
        upto = report.upto = self.position()
        now = time.time()
        for check in self.checks.values():
            keys: dict[str, Key] = {}
            for typed in vs.recorded(self.pg, self.schema, check.captured.id, check.types):
                key = check.source_key(typed)
                keys[vs.encode_key(key)] = key
            for failure in vs.failures(self.pg, self.schema, check.table):
                if failure.confirmed or (upto >= failure.due_seq and now >= failure.due_at):
                    keys[vs.encode_key(failure.key)] = failure.key
            self._judge(check, list(keys.values()), grace, report)
        with self.pg.transaction():
            vs.forget_recorded(self.pg, self.schema, upto)
        return report

    def full_pass(self, grace: float, chunk_rows: int = CHUNK_ROWS) -> PassReport:
        """Every row of every captured table, chunk by chunk; then a keys pass."""
        report = self._report("full")
        for check in self.checks.values():
            self._walk(check, grace, chunk_rows, report)
        return self.keys_pass(grace, report)

    def verify_table(self, table: str, grace: float) -> PassReport:
        """A full pass over one table (just copied again), settled without waiting: differences still
        in flight stay suspects for the next pass."""
        report = self._report("table")
        report.upto = self.position()
        self._walk(self.checks[table], grace, CHUNK_ROWS, report)
        return self.settle(report, grace, 0.0)

    def _walk(self, check: KeyCheck, grace: float, chunk_rows: int, report: PassReport) -> None:
        plan, identity = check.plan, check.identity
        key = identity.key
        n = len(key)
        exprs, _in_sqlite = canonical_items(plan)
        lines = has_lines(plan)
        low: tuple[Any, ...] | None = None
        while True:
            with self._snapshot():
                if lines:  # fast path: equal digests, equal rows (pgferry.migrate.checksum)
                    count, high, digest, whole = sqlite_lines(self.conn, identity, plan, low, chunk_rows)
                    rows = None
                else:
                    rows = sqlite_chunk(self.conn, identity, exprs, low, chunk_rows)
                    count, high = len(rows), (tuple(rows[-1][:n]) if rows else None)
            if not count or high is None:
                break
            report.chunks += 1
            if lines:
                theirs, theirs_count = pg_digest(self.pg, plan, self.schema, key, low, high, whole)
                if digest is None or digest != theirs or theirs_count != count:
                    with self._snapshot():
                        rows = sqlite_chunk(self.conn, identity, exprs, low, chunk_rows)
            if rows is not None:
                target = pg_chunk(self.pg, plan, self.schema, key, low, high)
                mine, other = canonical_sides(self.pg, plan, rows, target, n)
                self._judge(check, self._keys_of(check, row_differences(mine, other, check.columns)), grace, report)
            low = high
            if count < chunk_rows:
                break
        while True:  # rows of the target after SQLite's last key
            extra = pg_chunk(self.pg, plan, self.schema, key, low, None, limit=chunk_rows)
            if not extra:
                break
            self._judge(check, [check.source_key(r[:n]) for r in extra], grace, report)
            low = tuple(extra[-1][:n])

    def _keys_of(self, check: KeyCheck, differences: list[RowDifference]) -> list[Key]:
        return [check.source_key(d.key) if d.kind == "extra" else d.key for d in differences]

    def _report(self, mode: str) -> PassReport:
        return PassReport(str(self.path), redact(self.dsn), self.schema, mode)

    # --- settling, and the cutover's check ------------------------------------------------------------

    def settle(self, report: PassReport, grace: float, wait_s: float) -> PassReport:
        """Re-check suspects as they come due, until none is left or `wait_s` is over; then fill the
        report's failures (confirmed) and unsettled (suspects left) and note the pass."""
        deadline = time.monotonic() + wait_s
        while True:
            found = vs.failures(self.pg, self.schema)
            suspects = [f for f in found if not f.confirmed and f.table in self.checks]
            if not suspects or time.monotonic() >= deadline:
                break
            time.sleep(SETTLE_POLL_S)
            self.keys_pass(grace, report)
        report.failures = [f for f in found if f.confirmed]
        report.unsettled = suspects
        with self.pg.transaction():
            vs.note_pass(self.pg, self.schema, report.mode, report.keys_checked, report.upto)
        return report

    def verify_now(self, conn: sqlite3.Connection, keys: Mapping[str, Sequence[Key]] | None = None) -> list[Difference]:
        """Compare `keys` ({table: SQLite keys}; None: the keys recorded since the last pass and every
        known failure) now, through `conn`, whose caller holds SQLite's write lock: nothing is in flight,
        so no grace. One query per side and table (for up to 500 keys); nothing is recorded."""
        if keys is None:
            keys = {check.table: self._known(check) for check in self.checks.values()}
        out = []
        for table, wanted in keys.items():
            found = self.checks.get(table)
            if found is None:
                raise ApplyError(f"table {table!r} is not captured")
            unique = list({vs.encode_key(k): k for k in wanted}.values())
            differences, _equal = found.compare(conn, self.pg, unique)
            out += [Difference(table, d.key, d.kind, d.columns) for d in differences]
        return out

    def _known(self, check: KeyCheck) -> list[Key]:
        """The keys recorded since the last pass and those of every known failure."""
        recorded = vs.recorded(self.pg, self.schema, check.captured.id, check.types)
        return [check.source_key(k) for k in recorded] + [f.key for f in vs.failures(self.pg, self.schema, check.table)]


def verify_live(
    path: str | Path,
    dsn: str,
    schema: str,
    full: bool = False,
    grace: float = GRACE_S,
    wait_s: float = 30.0,
    chunk_rows: int = CHUNK_ROWS,
) -> PassReport:
    """One `pgferry migrate verify`: a keys pass (or a full pass), then suspects settled."""
    verifier = LiveVerifier(path, dsn, schema)
    try:
        report = verifier.full_pass(grace, chunk_rows) if full else verifier.keys_pass(grace)
        return verifier.settle(report, grace, max(wait_s, grace + 2 * SETTLE_POLL_S))
    finally:
        verifier.close()


__all__ = ["Difference", "LiveVerifier", "PassReport", "verify_live"]
