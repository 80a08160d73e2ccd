"""A PostgreSQL primary with a streaming replica for the session, and a fresh database on the pair per test.

The pair is its own primary, not the session's `pg_cluster`: a replica replays every write of its
primary, so on `pg_cluster` it would replay every other test's copies too (CPU the two cores do not
have), and the tests that pause its replay or cut its link would hold back a server the rest of the
suite shares. The replica streams through `link`, a TCP proxy, so a test can cut the replication link
itself (`link.cut()`, then `link.restore()`). Both servers are stopped and removed at the end, pass or fail.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pgferry.dsn import with_database
from pgferry.pg.cluster import LocalCluster, throwaway_cluster, throwaway_replica
from pgferry.runtime.postgres.replicas import ReplicaDatabase
from proxy import LOOPBACK, Proxy


@dataclass(frozen=True)
class ReplicaPair:
    primary: LocalCluster
    replica: LocalCluster
    link: Proxy  # the replica's connection to the primary (WAL streaming)

    def caught_up(self) -> None:
        """Wait (bounded) until the replica has replayed everything written on the primary so far."""
        self.replica.wait_replayed(self.primary)


@dataclass(frozen=True)
class PairDsns:
    """One database on the pair: the primary's DSN and the replica's for the same database."""

    pair: ReplicaPair
    primary: str
    replica: str


@pytest.fixture(scope="session")
def replica_pair() -> Iterator[ReplicaPair]:
    with (
        throwaway_cluster() as primary,
        Proxy(primary.host, primary.port) as link,
        throwaway_replica(primary, upstream=(LOOPBACK, link.port)) as replica,
    ):
        yield ReplicaPair(primary, replica, link)


@pytest.fixture
def pair_dsns(replica_pair: ReplicaPair) -> Iterator[PairDsns]:
    """A fresh database on the primary, already replayed on the replica; dropped after the test."""
    if replica_pair.link.listener is None:  # a test that cut the link failed before restoring it
        replica_pair.link.restore()
    name = f"r_{uuid.uuid4().hex[:12]}"
    admin = replica_pair.primary.dsn()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        replica_pair.caught_up()
        yield PairDsns(replica_pair, with_database(admin, name), with_database(replica_pair.replica.dsn(), name))
    finally:
        with psycopg.connect(replica_pair.replica.dsn(), autocommit=True) as conn:
            if conn.execute("SELECT pg_is_wal_replay_paused()").fetchone() == (True,):
                conn.execute("SELECT pg_wal_replay_resume()")  # a test paused it: the drop must replay
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def replica_proxy(replica_pair: ReplicaPair) -> Iterator[Proxy]:
    """A TCP proxy in front of the replica (the application's side): `cut()` makes the replica go away."""
    with Proxy(replica_pair.replica.host, replica_pair.replica.port) as running:
        yield running


def settle(db: ReplicaDatabase, until: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """Read the replicas now, again and again (bounded), until `until(stats)` holds."""
    stats: dict[str, Any] = {}
    for _ in range(300):
        stats = db.check_replicas()
        if until(stats):
            return stats
        time.sleep(0.05)
    raise AssertionError(f"{what}: never happened ({stats})")


def usable(stats: dict[str, Any]) -> bool:
    replica = stats["replicas"][0]
    return bool(replica["up"]) and replica["lag_s"] is not None and replica["lag_s"] < stats["max_lag_s"]
