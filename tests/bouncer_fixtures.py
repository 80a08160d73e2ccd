"""PgBouncer 1.18 for the tests: one per session in front of the session's PostgreSQL, in transaction
pooling with two server connections per database and user, so that clients share them for real.

Imported by conftest.py. Each test's database (`pg_dsn`) is reached through it by its own name
(PgBouncer's `*` fallback), so its pool, and its server connections, are the test's own.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pgdatabases import dbname
from pgferry.pg.cluster import LocalCluster
from pgferry.pg.pgbouncer import LocalPgBouncer, throwaway_pgbouncer

SERVER_POOL = 2  # server connections per (database, user): fewer than any test's clients


@pytest.fixture(scope="session")
def pgbouncer(pg_cluster: LocalCluster) -> Iterator[LocalPgBouncer]:
    """A PgBouncer for the whole session, stopped and removed at the end, pass or fail."""
    with throwaway_pgbouncer(pg_cluster.dsn(), default_pool_size=SERVER_POOL, max_client_conn=500) as bouncer:
        yield bouncer


@pytest.fixture
def bouncer_dsn(pgbouncer: LocalPgBouncer, pg_dsn: str) -> str:
    """The test's fresh database (`pg_dsn`), through the session's PgBouncer."""
    return pgbouncer.dsn(dbname(pg_dsn))


def behind_pgbouncer(bouncer: LocalPgBouncer, dsn: str, statement_timeout: str = "30s") -> str:
    """`dsn`'s database through `bouncer`, with the statement_timeout an application would send as a
    startup option set on the database instead (PgBouncer 1.18 passes no startup options)."""
    name = dbname(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET statement_timeout = {}").format(
                sql.Identifier(name), sql.Literal(statement_timeout)
            )
        )
    return bouncer.dsn(name)
