"""Change capture's state in PostgreSQL's control schema (`pgferry.capture_state`, one row per
target schema): the phase, the copy's options, the watermark, and the applier's position.

The position is saved in the transaction that applies its batch (`save_position` inside the
caller's transaction), so after a kill -9 the row names exactly the last entry whose rows are in
PostgreSQL: resuming neither applies a batch twice nor skips one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from pgferry.migrate.control import CONTROL_SCHEMA, ensure_control_schema, has_control_table

TABLE = sql.Identifier(CONTROL_SCHEMA, "capture_state")
PHASES = ("installing", "copying", "following", "stopped", "failed")


@dataclass(frozen=True)
class CaptureState:
    target_schema: str
    source: str
    phase: str
    options: dict[str, Any]
    start_seq: int | None  # the copy's watermark: entries above it are not in the copied rows
    applied_seq: int | None  # the last entry applied (None: not following yet)
    applied_changes: int
    batches: int
    rate: float | None  # changes applied per second, over the last seconds
    behind_since: float | None  # epoch s: every unapplied entry was written after this instant
    last_lag_s: float | None  # the last batch's lag at commit (an upper bound)
    mode: str | None  # "replica" (session_replication_role) or "ordered"
    last_error: str | None
    updated_at: float  # epoch s of the applier's last write (its heartbeat while it follows)
    constraints: str | None = None  # "pending": held back by the chunked copy until caught up; "built"


def ensure(pg: psycopg.Connection) -> None:
    ensure_control_schema(pg)
    pg.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (target_schema text PRIMARY KEY, source text NOT NULL,"
            " phase text NOT NULL, options jsonb NOT NULL DEFAULT '{{}}', start_seq bigint, applied_seq bigint,"
            " applied_changes bigint NOT NULL DEFAULT 0, batches bigint NOT NULL DEFAULT 0,"
            " rate double precision, behind_since double precision, last_lag_s double precision, mode text,"
            " last_error text, updated_at timestamptz NOT NULL DEFAULT now(), constraints text)"
        ).format(TABLE)
    )


def exists(pg: psycopg.Connection) -> bool:
    return has_control_table(pg, "capture_state")


COLUMNS = (
    "target_schema, source, phase, options, start_seq, applied_seq, applied_changes, batches, rate,"
    " behind_since, last_lag_s, mode, last_error, extract(epoch FROM updated_at), constraints"
)


def read(pg: psycopg.Connection, schema: str) -> CaptureState | None:
    if not exists(pg):
        return None
    query = sql.SQL("SELECT " + COLUMNS + " FROM {} WHERE target_schema = %s").format(TABLE)
    row = pg.execute(query, [schema]).fetchone()
    if row is None:
        return None
    values = list(row)
    values[-2] = float(values[-2])
    return CaptureState(*values)


def begin(pg: psycopg.Connection, schema: str, source: str, options: dict[str, Any]) -> None:
    ensure(pg)
    pg.execute(
        sql.SQL("INSERT INTO {} (target_schema, source, phase, options) VALUES (%s, %s, 'installing', %s)").format(
            TABLE
        ),
        [schema, source, json.dumps(options)],
    )


def set_phase(pg: psycopg.Connection, schema: str, phase: str, error: str | None = None) -> None:
    if phase not in PHASES:
        raise ValueError(phase)
    if not exists(pg):  # aborted meanwhile: nothing to record
        return
    pg.execute(
        sql.SQL("UPDATE {} SET phase = %s, last_error = %s, updated_at = now() WHERE target_schema = %s").format(TABLE),
        [phase, error, schema],
    )


def note_watermark(pg: psycopg.Connection, schema: str, seq: int, at: float) -> None:
    """Keep the lowest watermark: a resumed copy's snapshot is later, but the parts copied before the
    kill came from the first one, so catch-up must start from the first one's. Entries above it were
    written after `at` (epoch s, when the snapshot was read): the lag's first bound."""
    pg.execute(
        sql.SQL(
            "UPDATE {} SET start_seq = least(coalesce(start_seq, %s), %s),"
            " behind_since = least(coalesce(behind_since, %s), %s) WHERE target_schema = %s"
        ).format(TABLE),
        [seq, seq, at, at, schema],
    )


def hold_back_constraints(pg: psycopg.Connection, schema: str) -> None:
    """The chunked copy left UNIQUE indexes and foreign keys for catch-up (pgferry.migrate.chunked)."""
    pg.execute(sql.SQL("UPDATE {} SET constraints = 'pending' WHERE target_schema = %s").format(TABLE), [schema])


def constraints_built(pg: psycopg.Connection, schema: str) -> None:
    pg.execute(sql.SQL("UPDATE {} SET constraints = 'built' WHERE target_schema = %s").format(TABLE), [schema])


def start_following(pg: psycopg.Connection, schema: str, mode: str) -> None:
    """Phase `following`, from the watermark when nothing was applied yet."""
    pg.execute(
        sql.SQL(
            "UPDATE {} SET phase = 'following', last_error = NULL, mode = %s,"
            " applied_seq = coalesce(applied_seq, start_seq, 0), updated_at = now() WHERE target_schema = %s"
        ).format(TABLE),
        [mode, schema],
    )


def save_position(
    pg: psycopg.Connection,
    schema: str,
    applied_seq: int,
    changes: int,
    rate: float | None,
    behind_since: float,
    lag_s: float | None,
) -> None:
    """Inside the batch's transaction: the position moves only with the rows."""
    pg.execute(
        sql.SQL(
            "UPDATE {} SET applied_seq = %s, applied_changes = applied_changes + %s, batches = batches + 1,"
            " rate = %s, behind_since = %s, last_lag_s = coalesce(%s, last_lag_s), updated_at = now()"
            " WHERE target_schema = %s"
        ).format(TABLE),
        [applied_seq, changes, rate, behind_since, lag_s, schema],
    )


def heartbeat(pg: psycopg.Connection, schema: str, behind_since: float, rate: float | None) -> None:
    """While caught up: nothing is behind since `behind_since`, and the applier is alive."""
    pg.execute(
        sql.SQL("UPDATE {} SET behind_since = %s, rate = %s, updated_at = now() WHERE target_schema = %s").format(
            TABLE
        ),
        [behind_since, rate, schema],
    )


def remove(pg: psycopg.Connection, schema: str) -> bool:
    """Delete the capture state, the copy's checkpoints and stored plan, the cutover's log and the
    verify state (pgferry.capture.verifystate) for `schema`, in one transaction (the caller's); the
    capture state's table goes when no other schema uses it. True if a capture state was there."""
    found = False
    if exists(pg):
        found = pg.execute(sql.SQL("DELETE FROM {} WHERE target_schema = %s").format(TABLE), [schema]).rowcount > 0
    for name in ("copy_progress", "copy_state", "cutover_log", "verify_batches", "verify_failures", "verify_state"):
        if pg.execute("SELECT to_regclass(%s)", [f"{CONTROL_SCHEMA}.{name}"]).fetchone() != (None,):
            pg.execute(
                sql.SQL("DELETE FROM {} WHERE target_schema = %s").format(sql.Identifier(CONTROL_SCHEMA, name)),
                [schema],
            )
    if exists(pg) and pg.execute(sql.SQL("SELECT count(*) FROM {}").format(TABLE)).fetchone() == (0,):
        pg.execute(sql.SQL("DROP TABLE {}").format(TABLE))
    return found


def touch(pg: psycopg.Connection, schema: str) -> None:
    """The reverse applier is alive (it keeps no position here: its entries are deleted as applied)."""
    pg.execute(sql.SQL("UPDATE {} SET updated_at = now() WHERE target_schema = %s").format(TABLE), [schema])


def jump_position(pg: psycopg.Connection, schema: str, seq: int, at: float) -> None:
    """At a rollback's flip: every forward entry up to `seq` is SQLite holding PostgreSQL's rows, so
    the forward applier starts after it, with nothing behind since `at`."""
    pg.execute(
        sql.SQL(
            "UPDATE {} SET applied_seq = greatest(coalesce(applied_seq, 0), %s), behind_since = %s,"
            " updated_at = now() WHERE target_schema = %s"
        ).format(TABLE),
        [seq, at, schema],
    )


def applier_lock_key(schema: str) -> int:
    """The session advisory lock an applier of `schema`'s migration holds: one 64-bit key from the
    schema's name (stable across processes and versions: a hash of its UTF-8 bytes)."""
    digest = hashlib.blake2b(f"pgferry.capture:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def applier_pid(pg: psycopg.Connection, key: int) -> int | None:
    """The backend pid holding `key` (pg_locks splits a bigint key into classid, objid), if any."""
    row = pg.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
        " AND classid::bigint = (%s >> 32) & 4294967295 AND objid::bigint = %s & 4294967295",
        [key, key],
    ).fetchone()
    return None if row is None else int(row[0])


def release_and_close(pg: psycopg.Connection) -> None:
    """Let the session's advisory locks go, then close. A closed connection's backend releases them
    only as it exits, a moment later: the next applier (a follow switching direction at a cutover or a
    rollback) would find the migration's lock still held."""
    with contextlib.suppress(psycopg.Error):
        if not pg.closed:
            pg.execute("SELECT pg_advisory_unlock_all()")
    with contextlib.suppress(psycopg.Error):
        pg.close()
