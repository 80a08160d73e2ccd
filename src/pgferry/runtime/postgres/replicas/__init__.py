"""Reads on streaming replicas within a lag bound, with read-your-writes: `ReplicaDatabase`.

    primary = PostgresDatabase("postgresql://app@primary/app")
    db = ReplicaDatabase(primary, [PostgresDatabase("postgresql://app@replica/app")], ReplicaPolicy(max_lag_s=5))
    with db.session(request.cookies.get("db_position")):
        ...                                  # reads on a replica that has replayed this session's writes
        response.set_cookie("db_position", db.position())

Layout: `database` (where each statement goes), `session` (the position that travels with a user's
session; on_primary()), `classify` (which statements a replica may answer), `heartbeat` (the row lag
is measured with), `monitor` (the heartbeat and probe threads), `health` (one replica's state and
whether it may serve), `policy`, `stats`, `lsn` (WAL positions as numbers). See docs/runtime.md.
"""

from __future__ import annotations

from pgferry.runtime.postgres.replicas.database import ReplicaDatabase
from pgferry.runtime.postgres.replicas.lsn import format_lsn, parse_lsn
from pgferry.runtime.postgres.replicas.policy import ReplicaPolicy
from pgferry.runtime.postgres.replicas.session import Session, current, on_primary, session

__all__ = ["ReplicaDatabase", "ReplicaPolicy", "Session", "current", "format_lsn", "on_primary", "parse_lsn", "session"]
