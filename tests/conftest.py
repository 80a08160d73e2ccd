"""Real servers for the tests: one PostgreSQL 15 cluster and one Redis per session, on 127.0.0.1.

PostgreSQL comes from pgferry's own LocalCluster (pytest-postgresql cannot switch to an
unprivileged user when the tests run as root); Redis comes from pytest-redis (`redis_proc`, and
`redisdb` for a flushed client per test). Each test that needs PostgreSQL gets a fresh database,
dropped afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import HealthCheck, settings

from bouncer_fixtures import bouncer_dsn, pgbouncer  # noqa: F401  (PgBouncer in front of the cluster)
from cache_fixtures import redis_server  # noqa: F401  (a Redis for the session)
from forum_fixtures import api, db_copy, forum_partitioned_template, forum_template, seeded_db  # noqa: F401  (the forum API's fixtures)
from pgdatabases import fresh_database
from pgferry.pg.cluster import LocalCluster, throwaway_cluster
from proxy import Proxy
from replica_fixtures import pair_dsns, replica_pair, replica_proxy  # noqa: F401  (a primary and its replica)

# Properties draw the same examples on every run (`make test` is green or red, never by chance); a
# failure prints the blob that reproduces it. `make test-long` draws new, and more, examples each time.
settings.register_profile(
    "ci", derandomize=True, database=None, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("long", max_examples=1000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[LocalCluster]:
    """A PostgreSQL cluster for the whole session, stopped and removed at the end, pass or fail."""
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_dsn(pg_cluster: LocalCluster) -> Iterator[str]:
    """DSN of a fresh, empty database on the session cluster; dropped after the test."""
    with fresh_database(pg_cluster.dsn()) as dsn:
        yield dsn


@pytest.fixture
def proxy(pg_cluster: LocalCluster) -> Iterator[Proxy]:
    """A TCP proxy in front of the session's PostgreSQL: `proxy.dsn(dsn)` goes through it, `cut()` and
    `restore()` drop and bring back the connection. Stopped after the test."""
    params = psycopg.conninfo.conninfo_to_dict(pg_cluster.dsn())
    with Proxy(str(params["host"]), int(params["port"])) as running:
        yield running
