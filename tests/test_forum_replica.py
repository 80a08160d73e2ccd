"""The forum with reads on a streaming replica: a client reads its own writes through the db_position
cookie, in whichever process serves its next request, while a client without it reads the replica's
older state; /healthz shows where reads went; --replica needs PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from forum.cli import main
from forum.services import Forum
from forum.web.app import create_app
from forum.web.middleware import POSITION_COOKIE
from forum.web.serve import opener_for
from forum_fixtures import FAST_AUTH, Api
from pgferry.pg.cluster import free_port
from pgferry.runtime.postgres.replicas import ReplicaDatabase, parse_lsn
from replica_fixtures import PairDsns, ReplicaPair, settle, usable


@pytest.fixture
def paused_replay(api: Api) -> Iterator[ReplicaPair]:
    assert api.pair is not None
    api.pair.caught_up()  # the heartbeat table the forum made at start-up included
    replica = api.pair.replica.dsn()
    with psycopg.connect(replica, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
        for _ in range(200):
            if conn.execute("SELECT pg_get_wal_replay_pause_state()").fetchone() == ("paused",):
                break
    try:
        yield api.pair
    finally:
        with psycopg.connect(replica, autocommit=True) as conn:
            conn.execute("SELECT pg_wal_replay_resume()")


@pytest.mark.parametrize("api", ["replica"], indirect=True)
def test_a_client_reads_its_own_writes_in_another_process_through_the_cookie(
    api: Api, paused_replay: ReplicaPair
) -> None:
    r = api.client.post(
        "/auth/register", json={"username": "erin", "email": "erin@example.org", "password": "correct horse"}
    )
    assert r.status_code == 201
    token = r.cookies[POSITION_COOKIE]
    assert parse_lsn(token) > 0 and "HttpOnly" in r.headers["set-cookie"]
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    assert api.client.get("/me", headers=auth).json()["username"] == "erin"  # the cookie jar sent it back

    # a second worker process: its own router, no memory of the first one's writes
    assert api.dsn is not None
    other = Forum.open(
        api.dsn, "optimized", policy=FAST_AUTH, backend="postgres", pool_max=2, replicas=[replica_dsn(api)],
        max_lag_s=60.0,  # replay stays paused for the test: well within this bound
    )  # fmt: skip
    try:
        settle(router(other), usable, "the replica read")
        with TestClient(create_app(other)) as elsewhere:
            elsewhere.cookies.set(POSITION_COOKIE, token)
            assert elsewhere.get("/me", headers=auth).json()["username"] == "erin"  # the primary: replica behind
            elsewhere.cookies.clear()
            assert elsewhere.get("/me", headers=auth).status_code == 401  # no cookie: the replica, paused before
            reads = elsewhere.get("/healthz").json()["database"]["replicas"]
    finally:
        other.close()
    assert reads["reads"]["replica-1"] >= 1 and reads["primary_because"]["behind_session"] >= 1


@pytest.mark.parametrize("api", ["replica"], indirect=True)
def test_reads_without_writes_go_to_the_replica_and_healthz_says_so(api: Api) -> None:
    for _ in range(3):
        assert api.client.get("/categories").status_code == 200
    health = api.client.get("/healthz").json()["database"]
    assert POSITION_COOKIE not in api.client.cookies  # nothing written, no position
    stats = health["replicas"]
    assert stats["reads"].get("replica-1", 0) >= 3 and stats["replicas"][0]["up"]
    assert health["backend"] == "postgresql"


def router(forum: Forum) -> ReplicaDatabase:
    db = forum.store.db
    assert isinstance(db, ReplicaDatabase)
    return db


def replica_dsn(api: Api) -> str:
    assert api.pair is not None and api.dsn is not None
    dbname = psycopg.conninfo.conninfo_to_dict(api.dsn)["dbname"]
    return psycopg.conninfo.make_conninfo(api.pair.replica.dsn(), dbname=str(dbname))


def test_replica_needs_postgresql(tmp_path: Path) -> None:
    db = tmp_path / "forum.db"
    db.write_bytes(b"")
    result = CliRunner().invoke(main, ["serve", str(db), "--replica", "postgresql://x@127.0.0.1/forum"])
    assert result.exit_code == 2 and "--replica needs PostgreSQL" in result.output


def test_a_replica_unreachable_at_start_is_one_error_line_without_its_password(pair_dsns: PairDsns) -> None:
    unreachable = psycopg.conninfo.make_conninfo(pair_dsns.replica, port=str(free_port()), password="hunter22")
    result = CliRunner().invoke(main, ["serve", pair_dsns.primary, "--replica", unreachable])
    assert result.exit_code == 2 and "cannot connect" in result.output
    assert "hunter22" not in result.output and "Traceback" not in result.output


def test_max_lag_needs_a_replica_and_a_bound_above_the_heartbeat() -> None:
    dsn = "postgresql://x@127.0.0.1/forum"
    alone = CliRunner().invoke(main, ["serve", dsn, "--max-lag", "10"])
    assert alone.exit_code == 2 and "give --replica too" in alone.output
    tight = CliRunner().invoke(main, ["serve", dsn, "--replica", dsn, "--max-lag", "0.5"])
    assert (
        tight.exit_code == 2 and "must exceed heartbeat_s + check_s" in tight.output and "Traceback" not in tight.output
    )
    opener = opener_for(dsn, "optimized", replicas=(dsn,), max_lag_s=12)
    assert opener.overrides["max_lag_s"] == 12
