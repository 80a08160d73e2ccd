"""`pgferry migrate status`: where a migration stands, read from both databases (nothing in memory).

Lag in changes is counted in the changelog (entries after the applied position). Lag in seconds is
the age of the oldest unapplied entry, bounded from above: entries carry no time (a capture time per
entry cost more than the whole key-only capture, bench/capture_overhead.py), so the applier records
`behind_since`, the last instant it saw nothing unapplied beyond its position; every unapplied entry
was written after it. While the applier keeps up that instant is at most one batch old.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pgferry.capture import changelog, pgstate, rebuild, verifystate
from pgferry.capture.reverse import log as reverse_log
from pgferry.capture.rollback import read_flip
from pgferry.capture.strays import Strays, strays_above
from pgferry.dsn import redact
from pgferry.migrate import control
from pgferry.pg.connect import connect
from pgferry.runtime.route import Route, read_route
from pgferry.sqlite.connect import check_sqlite_file, open_readonly

ALIVE_S = 5.0  # an applier writes at least every second (heartbeat); silent longer: not running


@dataclass(frozen=True)
class MigrationStatus:
    source: str
    target: str
    schema: str
    phase: str  # pgstate.PHASES, or "not started"
    applier_running: bool
    captured_tables: int
    journal_mode: str
    watermark: int | None
    applied_seq: int | None
    newest_seq: int
    lag_changes: int
    lag_seconds: float | None
    applied_per_s: float | None
    applied_changes: int
    changelog_entries: int
    wal_bytes: int
    mode: str | None
    last_error: str | None
    last_update_s_ago: float | None
    route: str = "sqlite"  # where the application writes (pgferry.runtime.route)
    direction: str = "forward"  # forward: SQLite -> PostgreSQL; reverse (route postgres): PostgreSQL -> SQLite
    reverse_lag_changes: int | None = None  # reverse changelog entries not yet in SQLite (None: no reverse capture)
    reverse_lag_seconds: float | None = None  # at most this old, the oldest of them
    reverse_changelog_bytes: int | None = None
    rollback_unfinished: bool = False  # a rollback was killed after its flip: run it again
    verify: verifystate.VerifyState | None = None  # the last `migrate verify` pass and open failures
    rebuilt: dict[str, dict[str, Any]] | None = None  # tables rebuilt under capture and taken up (rebuild.notes)
    constraints: str | None = None  # "pending": UNIQUE indexes and foreign keys the copy held back; "built"
    copied: bool = False  # the copy has finished (its own control row says done)
    widened_keys: bool = False  # the copy widened partitioned tables' keys (--partition-widen-keys)
    strays: Strays | None = None  # route postgres: writes committed to SQLite since the cutover (capture.strays)

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "verify": None if self.verify is None else self.verify.as_dict(),
            "strays": None if self.strays is None else self.strays.as_dict(),
        }


def read_status(path: str | Path, dsn: str, schema: str) -> MigrationStatus:
    path = check_sqlite_file(path)
    with connect(dsn) as pg:
        state = pgstate.read(pg, schema)
        backlog = reverse_log.backlog(pg, schema)
        verify = verifystate.read_state(pg, schema)
        copied = control.read_phase(pg, schema) == "done"
    conn = open_readonly(path)
    try:
        route = read_route(conn).route
        unfinished = read_flip(conn) is not None
        journal = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
        conn.execute("BEGIN")  # one snapshot for the counts
        installed = changelog.read_install(conn) is not None and changelog.has_changelog(conn)
        tables = len(changelog.read_registry(conn)) if installed else 0
        position = None if state is None else (state.applied_seq if state.applied_seq is not None else state.start_seq)
        newest = changelog.head(conn) if installed else 0
        lag = changelog.pending(conn, position or 0) if installed else 0
        entries = changelog.size(conn) if installed else 0
        rebuilt = rebuild.notes(conn) if installed else {}
        after_cutover = installed and route is Route.POSTGRES and position is not None
        strays = strays_above(conn, position or 0) if after_cutover else None
        conn.execute("COMMIT")
    finally:
        conn.close()
    wal = Path(f"{path}-wal")
    now = time.time()
    since = None if state is None else state.behind_since
    reverse = route is Route.POSTGRES
    if reverse:  # entries above the position are stray writes, reported as such: nothing to carry now
        lag = 0
    lag_s = 0.0 if lag == 0 else (None if since is None else max(0.0, now - since))
    age = None if state is None else max(0.0, now - state.updated_at)
    phase = state.phase if state is not None else ("installed" if installed else "not started")
    return MigrationStatus(
        source=str(path),
        target=redact(dsn),
        schema=schema,
        phase=phase,
        applier_running=state is not None and state.phase == "following" and age is not None and age < ALIVE_S,
        captured_tables=tables,
        journal_mode=journal,
        watermark=None if state is None else state.start_seq,
        applied_seq=None if state is None else state.applied_seq,
        newest_seq=newest,
        lag_changes=lag,
        lag_seconds=lag_s,
        applied_per_s=None if state is None else state.rate,
        applied_changes=0 if state is None else state.applied_changes,
        changelog_entries=entries,
        wal_bytes=os.path.getsize(wal) if wal.exists() else 0,
        mode=None if state is None else state.mode,
        last_error=None if state is None else state.last_error,
        last_update_s_ago=age,
        route=route.value,
        direction="reverse" if reverse else "forward",
        reverse_lag_changes=None if backlog is None else backlog.entries,
        reverse_lag_seconds=None if backlog is None else (backlog.oldest_s or 0.0),
        reverse_changelog_bytes=None if backlog is None else backlog.bytes,
        rollback_unfinished=unfinished,
        verify=verify,
        rebuilt=rebuilt,
        constraints=None if state is None else state.constraints,
        copied=copied,
        widened_keys=state is not None and bool(state.options.get("partition_widen_keys")),
        strays=strays,
    )
