"""How the forum opens PostgreSQL, as a pgferry.runtime policy: the same in both modes.

The modes differ in the forum's code (N+1 or one statement, autocommit or transactions, OFFSET or
keyset), not in how PostgreSQL is reached: a pool of `pool_max` connections that a request waits
`pool_wait_s` for, a statement_timeout, and the PgBouncer mode when one stands in between. With
`replicas`, reads go to those streaming replicas within `max_lag_s` (pgferry's ReplicaDatabase);
their pools wait at most `REPLICA_WAIT_S` for a connection, since the primary is their fallback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from pgferry.runtime import Database
from pgferry.runtime.postgres import PostgresDatabase, PostgresPolicy
from pgferry.runtime.postgres.replicas import ReplicaDatabase, ReplicaPolicy

REPLICA_WAIT_S = 0.5


@dataclass(frozen=True)
class PostgresSettings:
    """What `open_store` accepts as overrides on PostgreSQL."""

    pool_min: int = 2
    pool_max: int = 20  # about the number of server worker threads: more would only queue on the server
    pool_wait_s: float = 5.0
    statement_timeout_ms: int | None = 30_000
    pgbouncer: bool = False
    replicas: Sequence[str] = ()  # DSNs of streaming replicas of the database `open` is given
    max_lag_s: float = 5.0

    def open(self, dsn: str) -> Database:
        """The primary alone, or the primary with its replicas (each closed again if a later one fails)."""
        primary = PostgresDatabase(dsn, self.policy(), name="forum")
        if not self.replicas:
            return primary
        opened: list[PostgresDatabase] = [primary]
        try:
            wait = replace(self.policy(), pool_wait_s=min(self.pool_wait_s, REPLICA_WAIT_S))
            for replica in self.replicas:
                opened.append(PostgresDatabase(replica, wait, name="forum-replica"))
            return ReplicaDatabase(primary, opened[1:], ReplicaPolicy(max_lag_s=self.max_lag_s))
        except BaseException:
            for db in opened:
                db.close()
            raise

    def policy(self) -> PostgresPolicy:
        return PostgresPolicy(
            pool_min=min(self.pool_min, self.pool_max),  # --pool-size 1 is a pool of one, not an error
            pool_max=self.pool_max,
            pool_wait_s=self.pool_wait_s,
            statement_timeout_ms=self.statement_timeout_ms,
            pgbouncer=self.pgbouncer,
            application_name="forum",
        )
