"""How the forum opens PostgreSQL, as a pgferry.runtime policy: the same in both modes.

The modes differ in the forum's code (N+1 or one statement, autocommit or transactions, OFFSET or
keyset), not in how PostgreSQL is reached: a pool of `pool_max` connections that a request waits
`pool_wait_s` for, a statement_timeout, and the PgBouncer mode when one stands in between.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgferry.runtime.postgres import PostgresPolicy


@dataclass(frozen=True)
class PostgresSettings:
    """What `open_store` accepts as overrides on PostgreSQL."""

    pool_min: int = 2
    pool_max: int = 20  # about the number of server worker threads: more would only queue on the server
    pool_wait_s: float = 5.0
    statement_timeout_ms: int | None = 30_000
    pgbouncer: bool = False

    def policy(self) -> PostgresPolicy:
        return PostgresPolicy(
            pool_min=self.pool_min,
            pool_max=self.pool_max,
            pool_wait_s=self.pool_wait_s,
            statement_timeout_ms=self.statement_timeout_ms,
            pgbouncer=self.pgbouncer,
            application_name="forum",
        )
