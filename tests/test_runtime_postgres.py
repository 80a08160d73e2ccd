"""pgferry.runtime's PostgreSQL backend on a real server: bounded waits, transactions, the PgBouncer
mode's refusals, errors that become Unavailable, and the forum's dialect compiled on a copied forum."""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from pathlib import Path

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from psycopg.conninfo import make_conninfo

from docs_examples import run_example
from forum.store import dialects
from forum.store.statements import ForumSql
from pgferry.errors import TargetError
from pgferry.migrate.run import copy_database
from pgferry.runtime import Backend, Unavailable, querystats
from pgferry.runtime.pool_metrics import DatabaseCollector
from pgferry.runtime.postgres import PostgresDatabase, PostgresPolicy, SessionStateError
from proxy import Proxy
from threads import held_elsewhere


@pytest.fixture
def db(pg_dsn: str):  # type: ignore[no-untyped-def]
    database = PostgresDatabase(pg_dsn, PostgresPolicy(pool_min=1, pool_max=2, pool_wait_s=0.3))
    database.run("CREATE TABLE acct (id bigint PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))")
    database.run("INSERT INTO acct VALUES (1, 100), (2, 0)")
    yield database
    database.close()


def served_again(db: PostgresDatabase, within_s: float = 20) -> None:
    """Wait (bounded) until `db` answers again after an outage: its pool reconnects in the background."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            assert db.one("SELECT 2 AS x") == {"x": 2}
            return
        except Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_dollar_placeholders_may_repeat_and_rows_are_dicts(db: PostgresDatabase) -> None:
    assert db.one("SELECT $1::int + $1::int AS twice, $2::text AS name", (21, "x")) == {"twice": 42, "name": "x"}
    assert db.all("SELECT id FROM acct ORDER BY id") == [{"id": 1}, {"id": 2}]
    assert db.run("UPDATE acct SET balance = balance + $1", (1,)) == 2
    assert Backend(db, dialects.load("postgresql")).sql.TOPIC_GET.endswith("WHERE t.id = $1")


def test_transaction_commits_together_or_not_at_all_and_counts_begin_and_commit(db: PostgresDatabase) -> None:
    with querystats.counting() as stats, db.transaction():
        db.run("UPDATE acct SET balance = balance - 10 WHERE id = 1")
        db.run("UPDATE acct SET balance = balance + 10 WHERE id = 2")
    assert stats.queries == 4  # BEGIN, two statements, COMMIT
    with pytest.raises(psycopg.errors.CheckViolation), db.transaction():
        db.run("UPDATE acct SET balance = balance + 1000 WHERE id = 2")
        db.run("UPDATE acct SET balance = balance - 1000 WHERE id = 1")  # below zero: refused
    with db.transaction():  # a nested block is a savepoint: its failure leaves the outer work standing
        db.run("UPDATE acct SET balance = 50 WHERE id = 2")
        with pytest.raises(RuntimeError), db.transaction():
            db.run("UPDATE acct SET balance = 0 WHERE id = 1")
            raise RuntimeError("inner")
    assert db.all("SELECT id, balance FROM acct ORDER BY id") == [{"id": 1, "balance": 90}, {"id": 2, "balance": 50}]


def test_pool_exhaustion_is_a_bounded_wait_then_unavailable(db: PostgresDatabase) -> None:
    both = threading.Barrier(3)

    def hold_one() -> None:
        with db.hold():
            db.one("SELECT 1 AS x")
            both.wait(5)
            both.wait(5)

    holders = [threading.Thread(target=hold_one) for _ in range(2)]
    for t in holders:
        t.start()
    both.wait(5)  # both connections are out
    t0 = time.monotonic()
    try:
        with querystats.counting() as stats, pytest.raises(Unavailable) as refused:
            db.one("SELECT 1 AS x")
    finally:
        both.wait(5)
        for t in holders:
            t.join()
    waited = time.monotonic() - t0
    assert refused.value.kind == "pool_timeout" and 0.25 <= waited < 1.5
    assert "no PostgreSQL connection free within 0.3 s (2 open or opening of 2" in str(refused.value)
    assert stats.busy == 1 and stats.wait_ms >= 250
    assert db.pool_stats()["requests_errors"] >= 1  # psycopg_pool's own count of the timeout
    assert db.one("SELECT 1 AS x") == {"x": 1}  # and the pool serves again once they are back


def test_statement_timeout_is_a_deadline(pg_dsn: str) -> None:
    db = PostgresDatabase(pg_dsn, PostgresPolicy(pool_min=0, pool_max=1, statement_timeout_ms=200))
    try:
        assert db.settings()["statement_timeout"] == "200ms"
        t0 = time.monotonic()
        with pytest.raises(Unavailable) as refused:
            db.one("SELECT pg_sleep(5)")
        assert refused.value.kind == "statement_timeout" and time.monotonic() - t0 < 2
        assert db.one("SELECT 1 AS x") == {"x": 1}
    finally:
        db.close()


def test_the_dsns_own_options_are_kept_beside_the_statement_timeout(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("CREATE SCHEMA app")
        pg.execute("CREATE TABLE app.thing (id int)")
    dsn = make_conninfo(pg_dsn, options="-c search_path=app")
    db = PostgresDatabase(dsn, PostgresPolicy(pool_min=0, pool_max=1, statement_timeout_ms=1500))
    try:
        assert db.one("SELECT count(*) AS n FROM thing") == {"n": 0}  # the DSN's search_path
        assert db.settings()["statement_timeout"] == "1500ms"
    finally:
        db.close()


def test_connections_probe_a_silent_server_with_tcp_keepalives(pg_dsn: str) -> None:
    """A statement whose answer never comes over a dead network: nothing unacknowledged is in flight,
    so tcp_user_timeout alone would wait for the kernel's keepalive default (two hours) or forever."""
    policy = PostgresPolicy(keepalive_idle_s=7)
    with psycopg.connect(pg_dsn, **policy.connect_kwargs(pg_dsn)) as conn:
        sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        try:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == policy.tcp_user_timeout_ms
        finally:
            sock.close()
    with pytest.raises(ValueError, match="keepalive_idle_s"):
        PostgresPolicy(keepalive_idle_s=0)


def test_pgbouncer_mode_refuses_session_state_and_turns_off_prepared_statements(pg_dsn: str) -> None:
    db = PostgresDatabase(pg_dsn, PostgresPolicy(pool_min=0, pool_max=1, pgbouncer=True))
    try:
        for statement, why in [
            ("SET work_mem = '64MB'", "SET changes a session setting"),
            ("  reset ALL", "RESET changes a session setting"),
            ("LISTEN jobs", "LISTEN"),
            ("SELECT pg_advisory_lock(42)", "pg_advisory_lock() takes a session advisory lock"),
            ("SELECT pg_try_advisory_lock_shared(1, 2)", "session advisory lock"),
            ("CREATE TEMP TABLE scratch (x int)", "TEMP table"),
            ("SELECT set_config('search_path', 'x', false)", "set_config"),
        ]:
            with pytest.raises(SessionStateError, match=re.escape(why)):
                db.run(statement)
        with db.transaction():  # what a transaction-pooled session may do
            db.run("SET LOCAL work_mem = '64MB'")
            db.one("SELECT pg_advisory_xact_lock(42)")
            db.one("SELECT 'SET x = 1; LISTEN y' AS literal -- SET in a comment")
        settings = db.settings()
        assert settings["pgbouncer"] and settings["prepare_threshold"] is None
        with psycopg.connect(pg_dsn, **PostgresPolicy(pgbouncer=True).connect_kwargs()) as conn:
            assert conn.prepare_threshold is None
    finally:
        db.close()


def test_pgbouncer_mode_can_warn_instead(pg_dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    db = PostgresDatabase(pg_dsn, PostgresPolicy(pool_min=0, pool_max=1, pgbouncer=True, session_state="warn"))
    try:
        with caplog.at_level(logging.WARNING, logger="pgferry.runtime"):
            db.run("SET application_name = 'x'")
            db.run("SET application_name = 'x'")
        warnings = [r for r in caplog.records if "behind PgBouncer" in r.getMessage()]
        assert len(warnings) == 1 and "SET changes a session setting" in warnings[0].getMessage()
    finally:
        db.close()


def test_a_lost_connection_is_unavailable_and_the_pool_recovers(pg_dsn: str, proxy: Proxy) -> None:
    db = PostgresDatabase(proxy.dsn(pg_dsn), PostgresPolicy(pool_min=1, pool_max=1, pool_wait_s=2))
    try:
        assert db.one("SELECT 1 AS x") == {"x": 1}
        proxy.cut()
        with pytest.raises(Unavailable) as refused:
            db.one("SELECT 1 AS x")
        assert refused.value.kind == "connection_lost"
        proxy.restore()
        served_again(db)  # the broken connection was dropped; the pool opens a new one in the background
    finally:
        db.close()


def test_an_unreachable_server_is_one_line_at_start_up_without_the_password(
    pg_dsn: str, proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    proxy.cut()
    dsn = proxy.dsn(pg_dsn)
    with caplog.at_level(logging.DEBUG), pytest.raises(TargetError, match="cannot connect") as refused:
        PostgresDatabase(dsn, PostgresPolicy(pool_min=4, connect_timeout_s=2))
    password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    assert "\n" not in str(refused.value) and (not password or str(password) not in str(refused.value))
    time.sleep(0.2)  # what a pool opened before the check would log from its threads by now
    assert [r.getMessage() for r in caplog.records if r.name.startswith("psycopg.pool")] == []  # only the one line


def test_a_server_that_never_answers_is_a_deadline_at_start_up_and_in_the_pool(pg_dsn: str, proxy: Proxy) -> None:
    """Its TCP handshake succeeds and no answer follows (a hung server or pooler): the start-up check
    ends at connect_timeout_s, and a pool that cannot open a connection ends its callers' wait at
    pool_wait_s; once it answers again the pool serves."""
    outcome: list[BaseException] = []

    def start() -> None:
        try:
            PostgresDatabase(proxy.dsn(pg_dsn), PostgresPolicy(pool_min=0, connect_timeout_s=1))
        except BaseException as exc:
            outcome.append(exc)

    proxy.stall()
    starting = threading.Thread(target=start, daemon=True)
    starting.start()
    starting.join(30)  # bounded here too: without the deadline this would wait for ever
    assert not starting.is_alive(), "start-up against a server that never answers did not end"
    assert len(outcome) == 1 and isinstance(outcome[0], TargetError), outcome
    assert "cannot connect" in str(outcome[0]) and "timeout expired" in str(outcome[0])
    proxy.restore()
    policy = PostgresPolicy(pool_min=0, pool_max=2, pool_wait_s=0.5, connect_timeout_s=1)
    db = PostgresDatabase(proxy.dsn(pg_dsn), policy)  # the start-up check gets through; the pool opens none
    try:
        proxy.stall()
        with pytest.raises(Unavailable) as refused:
            db.one("SELECT 1 AS x")  # the pool's first connection never gets an answer
        assert refused.value.kind == "pool_timeout" and "connection free within 0.5 s" in str(refused.value)
        proxy.restore()
        served_again(db)  # the pool's own retries reach the server again
    finally:
        db.close()


def test_the_forum_dialect_compiles_on_a_copied_forum(db_copy: Path, pg_dsn: str) -> None:
    """Every statement PREPAREd (parsed, planned, parameter types inferred; nothing run) on the database a
    default `pgferry copy` makes of a seeded forum file."""
    copy_database(db_copy, pg_dsn)
    sql = dialects.load("postgresql").sql
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        for i, name in enumerate(ForumSql.names()):
            try:
                conn.execute(f"PREPARE s{i} AS {getattr(sql, name)}".replace("%", "%%"))
            except psycopg.Error as exc:
                pytest.fail(f"{name}: {exc}")


def test_held_connection_is_shared_by_nested_holds(db: PostgresDatabase) -> None:
    with db.hold():
        pid = db.one("SELECT pg_backend_pid() AS pid")["pid"]
        with db.hold():
            assert db.one("SELECT pg_backend_pid() AS pid")["pid"] == pid
        with held_elsewhere(db.hold):  # the second connection goes to another thread
            assert db.one("SELECT pg_backend_pid() AS pid")["pid"] == pid


def pool_gauges(db: PostgresDatabase) -> dict[tuple[str, str | None], float]:
    """The primary's pool samples of one collection, by (name, state)."""
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(db))
    return {
        (s.name, s.labels.get("state")): s.value
        for family in registry.collect()
        for s in family.samples
        if s.labels.get("database") == "primary"
    }


def test_pool_usage_ratio_is_the_connections_checked_out_over_the_ceiling(db: PostgresDatabase) -> None:
    db.one("SELECT 1 AS x")
    idle = pool_gauges(db)
    assert idle[("db_pool_usage_ratio", None)] == 0 and idle[("db_pool_connections", "in_use")] == 0
    with db.hold():
        db.one("SELECT 1 AS x")
        held = pool_gauges(db)
        assert held[("db_pool_usage_ratio", None)] == 0.5  # the held one of pool_max=2
        assert held[("db_pool_connections", "in_use")] == 1
    assert pool_gauges(db)[("db_pool_usage_ratio", None)] == 0


def test_a_request_waiting_for_a_connection_is_counted_and_so_is_its_wait(pg_dsn: str) -> None:
    """Both connections of a pool of 2 held, a third caller waits: db_pool_waiting says 1 while it
    does, the pool is full (usage 1.0), and the wait it had is in db_pool_wait_seconds_total after."""
    db = PostgresDatabase(pg_dsn, PostgresPolicy(pool_min=2, pool_max=2, pool_wait_s=30))
    got: list[dict[str, object] | None] = []
    try:
        assert pool_gauges(db)[("db_pool_wait_seconds_total", None)] == 0
        with db.hold(), held_elsewhere(db.hold):
            db.one("SELECT 1 AS x")  # this thread's connection, checked out
            waiter = threading.Thread(target=lambda: got.append(db.one("SELECT 2 AS x")))
            waiter.start()
            for _ in range(500):  # bounded: the waiter queues at once
                gauges = pool_gauges(db)
                if gauges[("db_pool_waiting", None)] == 1:
                    break
                time.sleep(0.01)
            assert gauges[("db_pool_waiting", None)] == 1
            assert gauges[("db_pool_usage_ratio", None)] == 1.0 and gauges[("db_pool_connections", "in_use")] == 2
            assert gauges[("db_pool_connections", "idle")] == 0
            time.sleep(0.05)  # a wait of whole milliseconds (psycopg_pool counts it in ms)
        waiter.join(30)
        assert got == [{"x": 2}]  # served once a connection came back
        after = pool_gauges(db)
        assert after[("db_pool_waiting", None)] == 0 and after[("db_pool_wait_seconds_total", None)] > 0
    finally:
        db.close()


def test_a_connection_the_pool_opens_in_the_background_is_not_in_use(pg_dsn: str, proxy: Proxy) -> None:
    """psycopg_pool's pool_size counts a connection it is still opening: a pool reconnecting through
    a cut link counts more connections than it has available, yet no caller holds one."""
    db = PostgresDatabase(proxy.dsn(pg_dsn), PostgresPolicy(pool_min=1, pool_max=2, pool_wait_s=0.3))
    try:
        db.one("SELECT 1 AS x")
        proxy.cut()
        with pytest.raises(Unavailable):
            db.one("SELECT 1 AS x")  # the broken connection goes back; the pool replaces it, failing
        stats = db.pool_stats()
        assert stats["pool_size"] > stats["pool_available"]  # counted, not available: being opened
        gauges = pool_gauges(db)
        assert gauges[("db_pool_connections", "in_use")] == 0 and gauges[("db_pool_usage_ratio", None)] == 0
    finally:
        proxy.restore()
        db.close()


def test_the_docs_example_runs(pg_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (sku text PRIMARY KEY, left_in_stock int NOT NULL)")
        conn.execute("INSERT INTO items VALUES ('sku-1', 10)")
    run_example("runtime.md", "## PostgreSQL: `PostgresDatabase`", {"postgresql://shop@127.0.0.1/shop": pg_dsn})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "{'sku': 'sku-1', 'left_in_stock': 7}"  # as the example's comment says
    assert "'pool_size'" in printed[1] and "'in_use': 0" in printed[1]
