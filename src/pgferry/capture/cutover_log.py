"""Every cutover attempt (`Attempt`), kept in PostgreSQL's control schema (`pgferry.cutover_log`): its outcome, the
time each phase took and the pause writers saw, for `migrate status` and the metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pgferry.migrate.control import CONTROL_SCHEMA, ensure_control_schema


@dataclass
class Attempt:
    number: int
    # "cut_over", "lag", "install_timeout", "lock_timeout", "drain_timeout", "verify_failed", "flip_timeout",
    # "hook_failed"
    outcome: str
    phases: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    pause_s: float | None = None  # freeze announced -> route committed or thawed: the most any writer waited
    frozen_at: float | None = None  # epoch s the freeze was announced (writers that began then waited)
    drained: int = 0  # changelog entries applied under the lock
    verified: int = 0  # keys compared under the lock
    message: str | None = None


NAME = "cutover_log"
TABLE = sql.Identifier(CONTROL_SCHEMA, NAME)


def record(pg: psycopg.Connection, schema: str, attempt: Attempt) -> None:
    """Append one attempt (autocommit `pg`, or the caller's transaction)."""
    ensure_control_schema(pg)
    pg.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, target_schema text NOT NULL,"
            " attempt int NOT NULL, at timestamptz NOT NULL DEFAULT now(), outcome text NOT NULL,"
            " phases jsonb NOT NULL, pause_s double precision, drained bigint NOT NULL, message text)"
        ).format(TABLE)
    )
    pg.execute(
        sql.SQL(
            "INSERT INTO {} (target_schema, attempt, outcome, phases, pause_s, drained, message)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)"
        ).format(TABLE),
        [
            schema,
            attempt.number,
            attempt.outcome,
            json.dumps(attempt.phases),
            attempt.pause_s,
            attempt.drained,
            attempt.message,
        ],
    )


def read(pg: psycopg.Connection, schema: str) -> list[dict[str, Any]]:
    """The attempts into `schema`, oldest first (none when no cutover was tried)."""
    present = pg.execute("SELECT to_regclass(%s)", [f"{CONTROL_SCHEMA}.{NAME}"]).fetchone()
    if present is None or present[0] is None:
        return []
    cur = pg.execute(
        sql.SQL(
            "SELECT attempt, extract(epoch FROM at) AS at, outcome, phases, pause_s, drained, message FROM {}"
            " WHERE target_schema = %s ORDER BY id"
        ).format(TABLE),
        [schema],
    )
    names = [d.name for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
