"""PgBouncer 1.18 for the tests: one per session in front of the session's PostgreSQL, in transaction
pooling with two server connections per database and user, so that clients share them for real.

Imported by conftest.py. Each test's database (`pg_dsn`) is reached through it by its own name
(PgBouncer's `*` fallback), so its pool, and its server connections, are the test's own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg.conninfo import conninfo_to_dict

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
    return pgbouncer.dsn(str(conninfo_to_dict(pg_dsn)["dbname"]))
