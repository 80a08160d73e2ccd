"""Fixtures for the forum's API tests: a small seeded database, a fresh copy per test, a client per
backend: SQLite in legacy mode, SQLite in optimized mode, and PostgreSQL (optimized), direct and
through PgBouncer, on the database a default `pgferry copy` of the seeded file makes: copied once per
session into a template database, and from it into each test's own database (CREATE DATABASE ...
TEMPLATE: a file copy, about a third of the time the copy takes); and "replica": that copy on a
primary of its own, with the forum's reads on its streaming replica (read-your-writes through the
db_position cookie, which the TestClient keeps like a browser); and the router on the migration route
`dual` over the file and that copy (SQLite answers, PostgreSQL runs every statement in shadow; each
test ends with an empty discrepancy log); and "cached": that copy direct with the caches on (L1, L2 on
the session's Redis in a namespace of the test's own, L3 the forum_stats view).

Imported by the test modules that use them (not a conftest: the forum's fixtures stay beside its tests).
Passwords are hashed with a cheap argon2 cost here; the server default is argon2-cffi's.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from bouncer_fixtures import behind_pgbouncer
from forum.seed import generate
from forum.services import AuthPolicy, Forum
from forum.services.passwords import PasswordPolicy
from forum.web.app import create_app
from pgdatabases import dbname, fresh_database
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database
from pgferry.pg.cluster import LocalCluster
from pgferry.runtime.cache import Cache, CachePolicy
from pgferry.runtime.cache.server import LocalRedis
from pgferry.runtime.route import set_route
from replica_fixtures import PairDsns, ReplicaPair, settle, usable

FAST_AUTH = AuthPolicy(passwords=PasswordPolicy(time_cost=1, memory_cost_kib=1024, parallelism=1))
MODES = ("legacy", "optimized")
# the API suite's cases: SQLite in each mode, then PostgreSQL direct, through PgBouncer (transaction pooling),
# with reads on a streaming replica, and the router on the dual route
# and PostgreSQL with the caches on (L1, L2 on the session's Redis, L3 the forum_stats view), and PostgreSQL
# with the append-only tables partitioned by month (copy --partition, keys widened)
BACKENDS = ("legacy", "optimized", "postgres", "pgbouncer", "replica", "dual", "cached", "partitioned")
PARTITIONED = ("notifications=created_at:month", "user_sessions=created_at:month", "activity_log=created_at:month")
_TIMING = re.compile(r'^db;desc="queries=(\d+)";dur=(\d+(?:\.\d+)?)$')


def queries_of(response: Any) -> int:
    """N from the response's Server-Timing header (asserting its exact shape)."""
    match = _TIMING.match(response.headers["server-timing"])
    assert match, response.headers["server-timing"]
    return int(match.group(1))


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scale-0.01 legacy database (300 topics, 6,000 replies), written once per session."""
    path = tmp_path_factory.mktemp("forum") / "seed.db"
    generate(path, scale=0.01, seed=7)
    return path


@pytest.fixture(scope="session")
def forum_template(pg_cluster: LocalCluster, seeded_db: Path) -> Iterator[str]:
    """The name of a database holding the default `pgferry copy` of `seeded_db`, made once per session."""
    with fresh_database(pg_cluster.dsn()) as dsn:
        copy_database(seeded_db, dsn, CopyOptions(jobs=2))  # the default copy, as a user runs it
        yield dbname(dsn)


@pytest.fixture(scope="session")
def forum_partitioned_template(pg_cluster: LocalCluster, seeded_db: Path) -> Iterator[str]:
    """As forum_template, with notifications, user_sessions and activity_log partitioned by month."""
    with fresh_database(pg_cluster.dsn()) as dsn:
        copy_database(seeded_db, dsn, CopyOptions(jobs=2, partitions=PARTITIONED, partition_widen_keys=True))
        yield dbname(dsn)


@pytest.fixture
def db_copy(seeded_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "forum.db"
    shutil.copy(seeded_db, path)
    return path


@dataclass
class Api:
    """A TestClient on a fresh copy of the seeded database, in one mode, on one backend."""

    client: TestClient
    forum: Forum
    path: Path
    mode: str
    backend: str = "sqlite"  # or "postgres", "dual"
    dsn: str | None = None  # postgres: the copy's database (direct, also when the forum runs through PgBouncer)
    pgbouncer: bool = False
    pair: ReplicaPair | None = None  # replica: the primary and replica the copy is on
    mirror_dsn: str | None = None  # dual: the copy, where `sql` makes every change too
    _n: int = 0

    def register(self, name: str | None = None) -> dict[str, str]:
        """A new user; returns the Authorization header for their session."""
        self._n += 1
        name = name or f"user{self._n}"
        r = self.client.post(
            "/auth/register", json={"username": name, "email": f"{name}@example.org", "password": "correct horse"}
        )
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    def user_id(self, headers: dict[str, str]) -> int:
        return self.client.get("/me", headers=headers).json()["id"]

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read or change the database directly (a second connection, as another process would).

        Written once for both engines: `?` placeholders (made `%s` on PostgreSQL), booleans compared
        with TRUE and FALSE (SQLite's 1 and 0). On the dual route a change is made on both sides, as
        the migration's change capture would carry it."""
        pg_dsn = self.dsn or (None if statement.lstrip().upper().startswith("SELECT") else self.mirror_dsn)
        if pg_dsn is not None:
            with psycopg.connect(pg_dsn, autocommit=True) as pg:
                cur = pg.execute(statement.replace("%", "%%").replace("?", "%s"), params)
                rows = cur.fetchall() if cur.description else []
            if self.pair is not None:  # another process's write, and time for it to reach the replica
                self.pair.caught_up()
            if self.dsn is not None:
                return rows
        return self.sqlite(statement, params)

    def sqlite(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """The SQLite file only."""
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            return conn.execute(statement, params).fetchall()
        finally:
            conn.close()

    def fail_inserts_into(self, table: str) -> None:
        """A trigger that refuses every insert into `table`: a real failure in the middle of a write
        (on the dual route, of the control: SQLite)."""
        if self.dsn is None:
            self.sqlite(
                f'CREATE TRIGGER "fail_{table}" BEFORE INSERT ON "{table}" BEGIN SELECT RAISE(ABORT, \'injected\'); END'
            )
            return
        self.sql(
            "CREATE OR REPLACE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RAISE EXCEPTION 'injected'; END $$"
        )
        self.sql(
            f'CREATE TRIGGER "fail_{table}" BEFORE INSERT ON "{table}" FOR EACH ROW EXECUTE FUNCTION fail_insert()'
        )


@pytest.fixture(params=BACKENDS)
def api(request: pytest.FixtureRequest, db_copy: Path) -> Iterator[Api]:
    with contextlib.ExitStack() as stack:
        dsn: str | None = None  # where the forum's data is on PostgreSQL (None: SQLite is the database)
        mirror: str | None = None  # dual: the PostgreSQL copy the router runs every statement on in shadow
        pair: ReplicaPair | None = None
        if request.param in MODES:
            forum = Forum.open(db_copy, request.param, policy=FAST_AUTH)
        elif request.param == "replica":  # only this case starts the primary and its replica
            dsns: PairDsns = request.getfixturevalue("pair_dsns")
            dsn, pair = dsns.primary, dsns.pair
            copy_database(db_copy, dsn, CopyOptions(jobs=2))  # the default copy, on the pair's own primary
            pair.caught_up()
            forum = Forum.open(
                dsn, "optimized", policy=FAST_AUTH, backend="postgres", pool_max=8, replicas=[dsns.replica]
            )
            settle(forum.store.db, usable, "the replica within the lag bound")
        elif request.param == "dual":
            mirror = _template_copy(request, stack)
            conn = sqlite3.connect(db_copy, isolation_level=None)
            set_route(conn, "dual")
            conn.close()
            # a generous candidate budget: a test must not see a cold pool's first connection as a timeout
            forum = Forum.open(
                db_copy, "optimized", policy=FAST_AUTH, postgres=mirror, pool_max=8, candidate_budget_ms=5000
            )
        else:  # PostgreSQL direct or through the session's PgBouncer, or direct with the caches on
            dsn = _template_copy(request, stack)
            forum = Forum.open(
                _pg_target(request, dsn),
                "optimized",
                policy=FAST_AUTH,
                backend="postgres",
                pool_max=8,
                pgbouncer=request.param == "pgbouncer",
                cache=_cache(request),
            )
        stack.callback(forum.close)
        with TestClient(create_app(forum)) as client:
            backend = "dual" if mirror is not None else "sqlite" if dsn is None else "postgres"
            yield Api(client, forum, db_copy, str(forum.mode), backend, dsn, request.param == "pgbouncer", pair, mirror)
        if mirror is not None:
            found = [e.to_json() for e in forum.store.db.discrepancies.recent()]  # type: ignore[attr-defined]
            assert not found, f"the dialects disagree on the dual route: {found}"


def _cache(request: pytest.FixtureRequest) -> Cache | None:
    """The `cached` case's cache: the session's Redis, a namespace of the test's own."""
    if request.param != "cached":
        return None
    server: LocalRedis = request.getfixturevalue("redis_server")
    return Cache(server.url, CachePolicy(namespace=f"api{secrets.token_hex(4)}"))


def _template_copy(request: pytest.FixtureRequest, stack: contextlib.ExitStack) -> str:
    """A fresh database on the session's cluster, a copy of the forum template (the partitioned one for the
    `partitioned` case); dropped with `stack`."""
    cluster: LocalCluster = request.getfixturevalue("pg_cluster")
    template = "forum_partitioned_template" if request.param == "partitioned" else "forum_template"
    return stack.enter_context(fresh_database(cluster.dsn(), request.getfixturevalue(template)))


def _pg_target(request: pytest.FixtureRequest, dsn: str) -> str:
    """`dsn`, or the same database through the session's PgBouncer."""
    return behind_pgbouncer(request.getfixturevalue("pgbouncer"), dsn) if request.param == "pgbouncer" else dsn
