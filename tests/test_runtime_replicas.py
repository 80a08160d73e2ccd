"""pgferry.runtime's replica reads on a real primary and streaming replica: read-your-writes with replay
paused, lag from the heartbeat (an idle primary is not lag, a cut link is), a replica that goes away and
comes back, and the pure parts (WAL positions, statement classes, health decisions) as properties."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from docs_examples import run_example
from pgferry.pg.cluster import throwaway_replica
from pgferry.runtime.postgres import PostgresDatabase, PostgresPolicy
from pgferry.runtime.postgres.replicas import (
    ReplicaDatabase,
    ReplicaPolicy,
    format_lsn,
    on_primary,
    parse_lsn,
    session,
)
from pgferry.runtime.postgres.replicas.classify import reads_only
from pgferry.runtime.postgres.replicas.health import Reading, ReplicaHealth
from pgferry.runtime.postgres.replicas.session import decode
from proxy import Proxy
from replica_fixtures import PairDsns, ReplicaPair, settle, usable

ROOT = Path(__file__).resolve().parent.parent
POOL = PostgresPolicy(pool_min=1, pool_max=2, pool_wait_s=1.0)
FAST = {"heartbeat_s": 0.1, "check_s": 0.1, "retry_max_s": 0.4}


def sql(dsn: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def notes(pair_dsns: PairDsns) -> PairDsns:
    sql(pair_dsns.primary, "CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
    sql(pair_dsns.primary, "INSERT INTO note VALUES (1, 'old')")
    pair_dsns.pair.caught_up()
    return pair_dsns


@pytest.fixture
def router(notes: PairDsns) -> Iterator[Callable[..., ReplicaDatabase]]:
    """make(replica_dsn=None, **policy): a ReplicaDatabase on the pair, usable (heartbeat replayed), closed after."""
    made: list[ReplicaDatabase] = []

    def make(replica_dsn: str | None = None, **policy: float) -> ReplicaDatabase:
        db = ReplicaDatabase(
            PostgresDatabase(notes.primary, POOL),
            [PostgresDatabase(replica_dsn or notes.replica, POOL)],
            ReplicaPolicy(**{"max_lag_s": 60.0, **FAST, **policy}),
        )
        made.append(db)
        settle(db, usable, "the replica within the bound")
        return db

    yield make
    for db in made:
        db.close()


BODY = "SELECT body FROM note WHERE id = 1"


def reads(db: ReplicaDatabase) -> dict[str, int]:
    counts: dict[str, int] = db.replica_stats()["reads"]
    return counts


# --- the pair itself ---------------------------------------------------------------------------------


def test_the_replica_streams_through_its_link_and_is_a_hot_standby(notes: PairDsns) -> None:
    pair = notes.pair
    assert sql(notes.replica, "SELECT pg_is_in_recovery(), body FROM note") == [(True, "old")]
    assert sql(pair.primary.dsn(), "SELECT application_name, state FROM pg_stat_replication") == [
        ("replica", "streaming")
    ]
    (link,) = sql(pair.replica.dsn(), "SELECT sender_port FROM pg_stat_wal_receiver")[0]
    assert link == pair.link.port  # WAL arrives through the proxy a test can cut
    assert (pair.replica.datadir / "standby.signal").exists()  # pg_basebackup -R
    if os.geteuid() == 0:
        assert sql(pair.replica.dsn(), "SELECT current_setting('data_directory')")
        assert pair.replica.datadir.stat().st_uid != 0  # run as the unprivileged user, like the primary
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        sql(notes.replica, "INSERT INTO note VALUES (2, 'x')")


def test_a_throwaway_replica_is_stopped_and_removed_after_an_error(replica_pair: ReplicaPair) -> None:
    with pytest.raises(RuntimeError), throwaway_replica(replica_pair.primary, name="doomed") as replica:
        directory = replica.directory
        assert sql(replica.dsn(), "SELECT pg_is_in_recovery()") == [(True,)]
        raise RuntimeError("boom")
    assert not directory.exists()
    names = sql(replica_pair.primary.dsn(), "SELECT application_name FROM pg_stat_replication")
    assert ("doomed",) not in names


# --- read-your-writes --------------------------------------------------------------------------------


def paused(pair: ReplicaPair) -> None:
    sql(pair.replica.dsn(), "SELECT pg_wal_replay_pause()")
    for _ in range(200):
        if sql(pair.replica.dsn(), "SELECT pg_get_wal_replay_pause_state()") == [("paused",)]:
            return
        time.sleep(0.02)
    raise AssertionError("replay did not pause")


def test_read_your_writes_with_replay_paused(router: Callable[..., ReplicaDatabase], notes: PairDsns) -> None:
    db = router()
    paused(notes.pair)
    try:
        with db.session() as writer:
            assert db.run("UPDATE note SET body = 'new' WHERE id = 1") == 1
            token = db.position()
        assert token is not None and token == writer.token() and re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", token)
        with db.session(token):  # the writer's next request: the replica has not replayed it, so the primary
            assert db.one(BODY) == {"body": "new"}
        with db.session():  # someone who did not write: the replica's older state, within the bound
            assert db.one(BODY) == {"body": "old"}
        stats = db.replica_stats()
        assert stats["reads"] == {"primary": 1, "replica-1": 1}
        assert stats["primary_because"] == {"behind_session": 1}
        assert db.check_replicas()["replicas"][0]["replay_paused"] is True
    finally:
        sql(notes.pair.replica.dsn(), "SELECT pg_wal_replay_resume()")
    settle(db, lambda s: parse_lsn(s["replicas"][0]["replay_lsn"]) >= parse_lsn(token), "replay past the write")
    with db.session(token):
        assert db.one(BODY) == {"body": "new"}
    assert reads(db) == {"primary": 1, "replica-1": 2}  # back on the replica


def test_writes_transactions_and_reads_after_a_write_go_to_the_primary(
    router: Callable[..., ReplicaDatabase], notes: PairDsns
) -> None:
    db = router()
    paused(notes.pair)  # a replica read would show 'old': every 'new' below came from the primary
    try:
        with db.session(), db.hold():
            assert db.one(BODY) == {"body": "old"}  # the unit reads the replica until it writes
            db.run("UPDATE note SET body = 'new' WHERE id = 1")
            assert db.one(BODY) == {"body": "new"}
            assert db.one("INSERT INTO note VALUES (2, 'two') RETURNING id") == {"id": 2}
        with db.session():
            with on_primary():
                assert db.one(BODY) == {"body": "new"}
            assert db.one(BODY) == {"body": "old"}
            with db.transaction():  # a write transaction, by the protocol's word: it moves the position
                assert db.one(BODY) == {"body": "new"}
            assert db.one(BODY) == {"body": "new"}
        stats = db.replica_stats()
        assert stats["primary_because"] == {"after_write": 1, "pinned": 1, "transaction": 1, "behind_session": 1}
        assert stats["reads"] == {"primary": 4, "replica-1": 2} and stats["writes"] == 2
    finally:
        sql(notes.pair.replica.dsn(), "SELECT pg_wal_replay_resume()")


def test_a_select_that_writes_is_sent_to_the_primary_once_the_replica_refuses_it(
    router: Callable[..., ReplicaDatabase], notes: PairDsns
) -> None:
    sql(notes.primary, "CREATE FUNCTION bump() RETURNS text LANGUAGE sql AS $$ UPDATE note SET body = body || '+'"
        " WHERE id = 1 RETURNING body $$")  # fmt: skip
    notes.pair.caught_up()
    db = router()
    with db.session():
        assert db.one("SELECT bump() AS body") == {"body": "old+"}  # refused read-only on the replica, then here
        assert db.one("SELECT bump() AS body") == {"body": "old++"}  # remembered: straight to the primary
    assert db.replica_stats()["writes"] == 2 and reads(db) == {}


def test_outside_a_session_a_process_reads_its_own_writes(
    router: Callable[..., ReplicaDatabase], notes: PairDsns
) -> None:
    db = router()
    paused(notes.pair)
    try:
        db.run("UPDATE note SET body = 'mine' WHERE id = 1")
        assert db.one(BODY) == {"body": "mine"} and db.position() is not None
        with db.session():
            assert db.one(BODY) == {"body": "old"}
    finally:
        sql(notes.pair.replica.dsn(), "SELECT pg_wal_replay_resume()")


# --- lag from the heartbeat ----------------------------------------------------------------------------


def test_an_idle_primary_does_not_make_the_replica_look_behind(router: Callable[..., ReplicaDatabase]) -> None:
    db = router(max_lag_s=2.0)
    lags = []
    for _ in range(12):  # 3 s without a single application write: longer than the bound
        time.sleep(0.25)
        lags.append(db.replica_stats()["replicas"][0]["lag_s"])
    assert all(lag is not None and lag < 2.0 for lag in lags), lags
    with db.session():
        assert db.one(BODY) == {"body": "old"}
    assert reads(db) == {"replica-1": 1}
    assert db.replica_stats()["heartbeat"]["beats"] >= 5


def test_a_cut_replication_link_shows_as_growing_lag_and_sends_reads_to_the_primary(
    router: Callable[..., ReplicaDatabase], notes: PairDsns
) -> None:
    db = router(max_lag_s=1.0)
    link = notes.pair.link
    link.cut()
    try:
        stats = settle(db, lambda s: (s["replicas"][0]["lag_s"] or 0) > 1.0, "lag past the bound")
        replica = stats["replicas"][0]
        # the trap: everything received is replayed (to within a WAL page), so comparing those says "no lag"
        assert replica["up"] and 0 <= parse_lsn(replica["receive_lsn"]) - parse_lsn(replica["replay_lsn"]) < 8192
        assert replica["lag_bytes"] > 0  # the primary kept writing heartbeats it never got
        with db.session():
            assert db.one(BODY) == {"body": "old"}
        assert db.replica_stats()["primary_because"] == {"lagging": 1}
    finally:
        link.restore()
    settle(db, usable, "lag back under the bound")
    with db.session():
        db.one(BODY)
    assert reads(db) == {"primary": 1, "replica-1": 1}


# --- a replica that goes away --------------------------------------------------------------------------


def test_a_replica_that_goes_away_sends_its_reads_to_the_primary_and_is_used_again_on_return(
    router: Callable[..., ReplicaDatabase], replica_proxy: Proxy, notes: PairDsns
) -> None:
    db = router(replica_dsn=replica_proxy.dsn(notes.replica))
    with db.session():
        assert db.one(BODY) == {"body": "old"}
    replica_proxy.cut()
    with db.session():
        assert [db.one(BODY)["body"] for _ in range(20)] == ["old"] * 20  # no error reached the caller
    stats = db.replica_stats()
    assert stats["reads"] == {"replica-1": 1, "primary": 20}
    # the replica's dead connections were tried at most once each; after that no read went near it
    assert sum(stats["fallbacks"].values()) <= POOL.pool_max
    assert sum(stats["fallbacks"].values()) + stats["primary_because"].get("down", 0) == 20
    settle(db, lambda s: not s["replicas"][0]["up"], "the replica marked down")
    replica_proxy.restore()
    stats = settle(db, usable, "the replica back")
    fallbacks = sum(stats["fallbacks"].values())
    with db.session():
        assert [db.one(BODY)["body"] for _ in range(3)] == ["old"] * 3
    stats = db.replica_stats()
    assert stats["reads"]["replica-1"] == 4 and sum(stats["fallbacks"].values()) == fallbacks


def test_settings_report_the_policy_the_heartbeat_and_each_replica(router: Callable[..., ReplicaDatabase]) -> None:
    db = router(max_lag_s=7.0)
    settings = db.settings()
    assert settings["backend"] == "postgresql" and settings["replicas"]["max_lag_s"] == 7.0
    (replica,) = settings["replicas"]["replicas"]
    assert replica["name"] == "replica-1" and replica["up"] and replica["pool"]["pool_max"] == POOL.pool_max
    assert settings["replicas"]["heartbeat"]["error"] is None
    assert sql(db.primary.dsn, 'SELECT key FROM "pgferry"."heartbeat"') == [("pgferry-runtime",)]


def test_a_replica_dsn_that_names_a_primary_never_serves_reads(notes: PairDsns) -> None:
    db = ReplicaDatabase(
        PostgresDatabase(notes.primary, POOL), [PostgresDatabase(notes.primary, POOL)], ReplicaPolicy(**FAST)
    )
    try:
        (replica,) = db.check_replicas()["replicas"]
        assert not replica["up"] and "not in recovery" in replica["error"]
        assert db.one(BODY) == {"body": "old"} and reads(db) == {"primary": 1}
    finally:
        db.close()


def test_the_docs_example_runs(notes: PairDsns, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIMARY_DSN", notes.primary)
    monkeypatch.setenv("REPLICA_DSN", notes.replica)
    run_example("runtime.md", "## Replicas")


# --- the pure parts ---------------------------------------------------------------------------------------

LSNS = st.integers(min_value=0, max_value=(1 << 64) - 1)


@given(LSNS)
def test_a_position_reads_back_from_its_text(position: int) -> None:
    text = format_lsn(position)
    assert parse_lsn(text) == position and parse_lsn(text.lower()) == position and decode(text) == position


@given(LSNS, LSNS)
def test_positions_compare_as_numbers_not_as_text(a: int, b: int) -> None:
    assert (parse_lsn(format_lsn(a)) < parse_lsn(format_lsn(b))) == (a < b)


def test_positions_parse_as_postgresql_prints_them() -> None:
    assert parse_lsn("16/B374D848") == 0x16_B374D848 and format_lsn(0x16_B374D848) == "16/B374D848"
    assert parse_lsn("9/0") < parse_lsn("10/0")  # "9/0" > "10/0" as text
    for bad in ("", "16", "16/", "/1", "g/1", "1/2/3", "123456789/0", " 1/2", "1/2 ", "1/-2"):
        with pytest.raises(ValueError):
            parse_lsn(bad)
        assert decode(bad or None) is None or bad.strip() != bad  # a client's garbage names no position
    with pytest.raises(ValueError):
        format_lsn(-1)


def test_a_session_position_only_moves_forward() -> None:
    with session("0/10") as current:
        current.advance(0x5)
        assert current.token() == "0/10"
        current.advance(0x1_00000000)
        assert current.token() == "1/0"
    with session("not a position") as current:
        assert current.position is None and current.token() is None


@pytest.mark.parametrize(
    ("statement", "replica"),
    [
        ("SELECT id FROM users WHERE id = $1", True),
        ("  (SELECT 1) UNION (SELECT 2)", True),
        ("WITH t AS (SELECT 1) SELECT * FROM t", True),
        ("-- a comment\nSELECT 'UPDATE me' AS text", True),
        ("SELECT $$DELETE$$ AS text", True),
        ("VALUES (1)", True),
        ("SHOW statement_timeout", True),
        ("INSERT INTO t VALUES (1) RETURNING id", False),
        ("WITH d AS (DELETE FROM t RETURNING id) SELECT * FROM d", False),
        ("SELECT * FROM t FOR UPDATE", False),
        ("SELECT * FROM t FOR NO KEY UPDATE", False),
        ("SELECT * FROM t FOR SHARE", False),
        ("SELECT nextval('s')", False),
        ("SELECT pg_advisory_xact_lock(1)", False),
        ("SELECT * INTO copy FROM t", False),
        ("UPDATE t SET x = 1", False),
        ("BEGIN", False),
    ],
)
def test_only_plain_reads_may_go_to_a_replica(statement: str, replica: bool) -> None:
    assert reads_only(statement) is replica


def test_health_refuses_a_down_lagging_or_behind_replica_and_backs_off() -> None:
    policy = ReplicaPolicy(max_lag_s=5.0, heartbeat_s=0.5, check_s=0.5, retry_max_s=4.0)
    health = ReplicaHealth("r", policy)
    assert health.refuses(0.0, None) == "down"  # never read yet
    health.observed(Reading(lag_s=None, replay_lsn=100, receive_lsn=100, paused=False), 10.0)
    assert health.refuses(10.0, None) == "lag_unknown"
    health.observed(Reading(lag_s=1.0, replay_lsn=100, receive_lsn=100, paused=False), 10.0)
    assert health.refuses(10.0, None) is None and health.refuses(10.0, 100) is None
    assert health.refuses(10.0, 101) == "behind_session"
    assert health.refuses(14.5, None) == "lagging"  # 1 s at the reading, 4.5 s old now: a link may have broken
    health.observed(Reading(lag_s=-0.2, replay_lsn=100, receive_lsn=100, paused=False), 20.0)
    assert health.lag_s(20.0) == 0.0  # clock skew does not make lag negative
    delays = []
    for _ in range(6):
        health.failed("refused", 30.0)
        delays.append(health.state.next_check - 30.0)
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0] and health.refuses(30.0, None) == "down"


def test_a_policy_whose_bound_the_heartbeat_cannot_meet_is_refused() -> None:
    with pytest.raises(ValueError, match="must exceed heartbeat_s"):
        ReplicaPolicy(max_lag_s=1.0, heartbeat_s=0.5, check_s=0.5)
    with pytest.raises(ValueError):
        ReplicaPolicy(check_s=0)
