"""The runtime's PostgreSQL backend: `PostgresDatabase` on a psycopg_pool pool, as a `PostgresPolicy` says.

Layout: `policy` (the knobs: pool, deadlines, PgBouncer mode), `database` (statements, counting,
transactions, pool statistics), `errors` (what becomes `Unavailable`), `sessionstate` (statements
PgBouncer in transaction pooling must not see). See docs/runtime.md.
"""

from __future__ import annotations

from pgferry.runtime.postgres.database import PostgresDatabase
from pgferry.runtime.postgres.errors import SessionStateError
from pgferry.runtime.postgres.policy import PostgresPolicy

__all__ = ["PostgresDatabase", "PostgresPolicy", "SessionStateError"]
