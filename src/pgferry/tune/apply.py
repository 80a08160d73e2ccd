"""Apply a tuning plan in short steps, after writing the script that undoes it.

The rollback script is written (and flushed) before the first change, with every statement
idempotent (IF EXISTS / IF NOT EXISTS), so it can be run after a complete apply, a partial one, or a
crash in the middle. It recreates dropped indexes from their original CREATE text, drops created
ones, puts back the journal mode, and restores sqlite_stat1 as it was (or removes it if there was
none): the index set and the planner's statistics come back exactly.

Each step runs in its own `atomic()` transaction (BEGIN IMMEDIATE ... COMMIT), retried while busy up
to a deadline, then pauses, so writers of a live application get the lock between steps. The time
each step held the lock is reported; an index build on a big table holds it for the whole build
(SQLite cannot build an index in pieces), which is why builds are one per transaction and listed
with their times.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgferry.errors import SourceError, UsageError
from pgferry.events import Phases
from pgferry.sqlite.atomic import atomic
from pgferry.sqlite.busy import retry
from pgferry.sqlite.connect import check_sqlite_file, open_readonly, open_writable
from pgferry.sqltext import sql_literal
from pgferry.steps import script
from pgferry.tune.plan import Step, TunePlan

PAUSE_S = 0.05
STEP_LOCK_WAIT_S = 30.0  # per step, on top of busy_timeout's own wait inside each try


@dataclass
class StepResult:
    kind: str
    description: str
    lock_ms: float
    ok: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "description": self.description,
            "lock_ms": round(self.lock_ms, 3),
            "ok": self.ok,
            "error": self.error,
        }


@dataclass
class ApplyResult:
    rollback_script: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rollback_script": self.rollback_script,
            "ok": self.ok,
            "longest_lock_ms": round(max((s.lock_ms for s in self.steps), default=0.0), 3),
            "steps": [s.to_dict() for s in self.steps],
        }


def rollback_script(conn: sqlite3.Connection, plan: TunePlan) -> str:
    """SQL that undoes `plan` on this database, whatever part of it ran."""
    lines = [
        f"-- pgferry tune rollback for {plan.database}",
        f"-- written {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} before the changes were made",
        "-- run with: sqlite3 DB < this-file",
    ]
    # Undo in one transaction; what may not run in one (journal_mode) is undone after it.
    body = [script([s for s in plan.steps if s.transactional], reverse=True).rstrip("\n")]
    after = [script([s for s in plan.steps if not s.transactional], reverse=True).rstrip("\n")]
    if any(step.kind == "analyze" for step in plan.steps):
        has_stat1 = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()
        if has_stat1:
            rows = conn.execute("SELECT tbl, idx, stat FROM sqlite_stat1").fetchall()
            body.append("DELETE FROM sqlite_stat1;")
            body.extend(
                f"INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES ({', '.join(sql_literal(v) for v in row)});"
                for row in rows
            )
        else:
            body.append("DROP TABLE IF EXISTS sqlite_stat1;")
    return "\n".join([*lines, "BEGIN IMMEDIATE;", *body, "COMMIT;", *after, ""])


def default_rollback_path(db: Path) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return db.with_name(f"{db.name}.rollback-{stamp}.sql")


def _run_step(conn: sqlite3.Connection, step: Step) -> float:
    """Run one step, again while another writer holds the lock; returns ms its last try held it."""
    what = f"tune step {step.description!r}"
    return retry(lambda: _run_once(conn, step, what), what=what, deadline_s=STEP_LOCK_WAIT_S)


def _run_once(conn: sqlite3.Connection, step: Step, what: str) -> float:
    started = time.perf_counter()
    if step.transactional:
        with atomic(conn, what=what):
            for statement in step.sql:
                conn.execute(statement)
    else:
        for statement in step.sql:
            _check_pragma(statement, conn.execute(statement).fetchone())
    return (time.perf_counter() - started) * 1000


def _check_pragma(statement: str, row: tuple[Any, ...] | None) -> None:
    """journal_mode is set by asking; the answer is what is in force (WAL can be refused, WAL2 ignored)."""
    text = statement.lower().replace(" ", "")
    if text.startswith("pragmajournal_mode=") and row is not None:
        wanted = text.split("=", 1)[1]
        if str(row[0]).lower() != wanted:
            raise sqlite3.OperationalError(f"journal_mode stayed {row[0]} (asked for {wanted})")


def apply_plan(
    plan: TunePlan, path: str | Path, rollback_path: str | Path | None = None, progress: Phases | None = None
) -> ApplyResult:
    """Write the rollback script, then run the plan's steps; stops at the first step that fails."""
    file = check_sqlite_file(path)
    target = Path(rollback_path) if rollback_path else default_rollback_path(file)
    if target.exists():
        raise UsageError(f"{target}: exists already; choose another --rollback-script (it is never overwritten)")
    conn = open_writable(file)
    try:
        script = rollback_script(conn, plan)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise SourceError(f"{file}: cannot read the database ({exc})") from None
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as exc:
        conn.close()
        raise UsageError(f"{target}: cannot write the rollback script ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(script)
        handle.flush()
        os.fsync(handle.fileno())
    result = ApplyResult(str(target))
    try:
        for step in plan.steps:
            try:
                ms = _run_step(conn, step)
                result.steps.append(StepResult(step.kind, step.description, ms, True))
                if progress is not None:
                    progress.advance(detail=step.description)
            except (sqlite3.Error, SourceError) as exc:
                result.steps.append(StepResult(step.kind, step.description, 0.0, False, str(exc)))
                break
            time.sleep(PAUSE_S)
    finally:
        conn.close()
    return result


def run_script(path: str | Path, script: str) -> None:
    """Run a rollback script (what `sqlite3 DB < script` does), for tests and `tune --rollback`."""
    conn = open_writable(path)
    try:
        conn.executescript(script)
    finally:
        conn.close()


def index_set(path: str | Path) -> list[tuple[str, str, str | None]]:
    """(table, index name, CREATE text) of every index, sorted: what a rollback must restore exactly."""
    conn = open_readonly(path)
    try:
        rows = conn.execute("SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index'").fetchall()
    finally:
        conn.close()
    return sorted(rows)
