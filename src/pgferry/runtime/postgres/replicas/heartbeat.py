"""The heartbeat row in pgferry's control schema: written on the primary, read back on each replica.

`now() - pg_last_xact_replay_timestamp()` grows while the primary is idle (no transaction to replay)
and says nothing of a link that broke; comparing receive and replay positions says 0 when nothing
arrives at all. A row the runtime writes every interval (pt-heartbeat's method) makes lag what it
means: how old the newest primary state a replica shows is. That takes the primary's and the
replicas' clocks to agree (NTP; on one machine they are one clock): a skew adds to or hides lag.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from psycopg import sql

from pgferry.migrate.control import CONTROL_SCHEMA
from pgferry.runtime.postgres.replicas.health import Reading
from pgferry.runtime.postgres.replicas.lsn import lsn_or_none, parse_lsn

TABLE = sql.Identifier(CONTROL_SCHEMA, "heartbeat")
_EXISTS = "SELECT to_regclass(%s) IS NOT NULL"
_CREATE = (
    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(CONTROL_SCHEMA)),
    sql.SQL("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, beat timestamptz NOT NULL)").format(TABLE),
)
# greatest(): processes that share the row never move it back; RETURNING gives the position for lag in bytes
_BEAT = sql.SQL(
    "INSERT INTO {t} (key, beat) VALUES (%s, clock_timestamp())"
    " ON CONFLICT (key) DO UPDATE SET beat = greatest({t}.beat, excluded.beat)"
    " RETURNING pg_current_wal_insert_lsn()::text"
).format(t=TABLE)
_POSITIONS = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, pg_last_wal_receive_lsn()::text,"
    " CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END"
)
_LAG = sql.SQL("SELECT extract(epoch FROM clock_timestamp() - beat)::float8 FROM {} WHERE key = %s").format(TABLE)


class NotAReplica(psycopg.Error):
    """A replica's DSN names a server that is not in recovery (a primary, or a promoted replica)."""


def ensure_table(conn: psycopg.Connection[Any]) -> None:
    """Create the heartbeat table when it is missing (a role that may not create schemas can use one
    its owner made). Concurrent creators are fine: the loser's duplicate error means it exists."""
    row = conn.execute(_EXISTS, [f'"{CONTROL_SCHEMA}"."heartbeat"']).fetchone()
    if row and row[0]:
        return
    for statement in _CREATE:
        with contextlib.suppress(
            psycopg.errors.UniqueViolation,
            psycopg.errors.DuplicateObject,
            psycopg.errors.DuplicateSchema,
            psycopg.errors.DuplicateTable,
        ):
            conn.execute(statement)


def beat(conn: psycopg.Connection[Any], key: str) -> int:
    """Write the heartbeat now; the primary's WAL insert position (for lag in bytes)."""
    try:
        row = conn.execute(_BEAT, [key]).fetchone()
    except psycopg.errors.UndefinedTable:
        ensure_table(conn)
        row = conn.execute(_BEAT, [key]).fetchone()
    return parse_lsn(row[0]) if row else 0


def probe(conn: psycopg.Connection[Any], key: str) -> Reading:
    """A replica's lag (its clock minus the heartbeat it replayed) and positions; NotAReplica for a primary."""
    row = conn.execute(_POSITIONS).fetchone()
    if row is None or not row[0]:
        raise NotAReplica("not a replica: the server is not in recovery (pg_is_in_recovery() is false)")
    lag: float | None = None
    try:
        found = conn.execute(_LAG, [key]).fetchone()
        lag = None if found is None else float(found[0])
    except psycopg.errors.UndefinedTable:  # the table's creation is not replayed here yet
        pass
    return Reading(lag_s=lag, replay_lsn=lsn_or_none(row[1]), receive_lsn=lsn_or_none(row[2]), paused=bool(row[3]))
