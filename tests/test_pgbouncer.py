"""pgferry.runtime behind a real PgBouncer 1.18 in transaction pooling: many clients over two server
connections, what psycopg's prepared statements do there, session state, and PgBouncer's own queue
and deadlines as bounded waits that end in `Unavailable`. Also the pgbouncer.ini pgferry writes."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from pgdatabases import dbname
from pgferry.errors import ServerError
from pgferry.pg.cluster import LocalCluster
from pgferry.pg.pgbouncer import (
    BouncerConfig,
    LocalPgBouncer,
    render_auth_file,
    render_ini,
    throwaway_pgbouncer,
)
from pgferry.runtime import Unavailable
from pgferry.runtime.postgres import PostgresDatabase, PostgresPolicy, SessionStateError
from threads import held_elsewhere

BEHIND = PostgresPolicy(pgbouncer=True, pool_min=0, pool_max=8, pool_wait_s=10)
DIRECT_DEFAULTS = PostgresPolicy(pool_min=0, pool_max=1, statement_timeout_ms=None)  # no startup options for 1.18


ADVISORY_LOCKS = (
    "SELECT count(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
    " WHERE l.locktype = 'advisory' AND l.objid = 7 AND d.datname = current_database()"
)


def _pool(bouncer: LocalPgBouncer, dsn: str) -> dict[str, object]:
    (row,) = [p for p in bouncer.show("POOLS") if p["database"] == dbname(dsn)]
    return row


@pytest.fixture
def behind(bouncer_dsn: str) -> Iterator[PostgresDatabase]:
    db = PostgresDatabase(bouncer_dsn, BEHIND)
    yield db
    db.close()


def test_many_threads_share_two_server_connections_without_a_lost_write(
    behind: PostgresDatabase, pgbouncer: LocalPgBouncer, pg_dsn: str, bouncer_dsn: str
) -> None:
    behind.run("CREATE TABLE hits (id int PRIMARY KEY, n bigint NOT NULL)")
    behind.run("CREATE TABLE log (thread int, i int)")
    behind.run("INSERT INTO hits VALUES (1, 0)")
    threads, rounds = 12, 25

    def work(t: int) -> None:
        for i in range(rounds):
            with behind.transaction():
                behind.run("UPDATE hits SET n = n + 1 WHERE id = $1", (1,))
                behind.run("INSERT INTO log VALUES ($1, $2)", (t, i))
            behind.one("SELECT n FROM hits WHERE id = $1", (1,))  # the same statement, far past prepare_threshold

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))  # re-raises the first error of any thread
    assert behind.one("SELECT n FROM hits") == {"n": threads * rounds}
    assert behind.one("SELECT count(DISTINCT (thread, i)) AS c FROM log") == {"c": threads * rounds}
    pool = _pool(pgbouncer, bouncer_dsn)
    assert 2 < behind.pool_stats()["pool_size"] <= 8  # several client connections...
    assert int(pool["sv_active"]) + int(pool["sv_idle"]) + int(pool["sv_used"]) <= 2  # ...over two server ones
    with psycopg.connect(pg_dsn) as direct:
        row = direct.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [dbname(pg_dsn)]).fetchone()
    assert row is not None and row[0] <= 2 + 1  # PgBouncer's two, and this one


def test_psycopg_default_prepared_statements_break_behind_1_18_and_pgbouncer_mode_does_not(bouncer_dsn: str) -> None:
    # Two clients, one after the other: PgBouncer hands both the same server connection (LIFO).
    statement = "SELECT $1::int AS x"
    first, second = (PostgresDatabase(bouncer_dsn, DIRECT_DEFAULTS) for _ in range(2))
    try:
        for i in range(8):  # psycopg prepares it as _pg3_0 after 5 runs, on the server connection of the moment
            assert first.one(statement, (i,)) == {"x": i}
        with pytest.raises(
            psycopg.errors.DuplicatePreparedStatement, match='prepared statement "_pg3_0" already exists'
        ):
            for i in range(8):  # the second client's _pg3_0 meets the first one's on that server connection
                second.one(statement, (i,))
    finally:
        first.close()
        second.close()
    first, second = (PostgresDatabase(bouncer_dsn, BEHIND) for _ in range(2))
    try:
        for db in (first, second):
            assert [db.one(statement, (i,)) for i in range(8)] == [{"x": i} for i in range(8)]
        assert first.settings()["prepare_threshold"] is None
    finally:
        first.close()
        second.close()


def test_session_state_is_refused_and_what_it_would_leak_is_real(
    behind: PostgresDatabase, bouncer_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    for refused in ("SET work_mem = '77MB'", "LISTEN jobs", "SELECT pg_advisory_lock(7)"):
        with pytest.raises(SessionStateError, match="refused behind PgBouncer"):
            behind.run(refused)
    with behind.transaction():  # what a transaction may do: its state ends with it
        behind.run("SET LOCAL work_mem = '64MB'")
        assert behind.one("SELECT current_setting('work_mem') AS w") == {"w": "64MB"}
        behind.one("SELECT pg_advisory_xact_lock(7)")
        assert behind.one(ADVISORY_LOCKS) == {"n": 1}
    assert behind.one("SELECT current_setting('work_mem') AS w") == {"w": "4MB"}
    assert behind.one(ADVISORY_LOCKS) == {"n": 0}
    # Why refuse: with session_state="warn" the SET goes through, and another client inherits it.
    warn = PostgresDatabase(bouncer_dsn, PostgresPolicy(pgbouncer=True, pool_min=0, pool_max=1, session_state="warn"))
    try:
        with caplog.at_level(logging.WARNING, "pgferry.runtime"):
            warn.run("SET work_mem = '77MB'")
        assert "SET changes a session setting" in caplog.text
        assert behind.one("SELECT current_setting('work_mem') AS w") == {"w": "77MB"}  # not behind's own SET
    finally:
        warn.close()


@pytest.fixture
def strict(pg_cluster: LocalCluster) -> Iterator[LocalPgBouncer]:
    """A PgBouncer of its own: one server connection, one second in its queue, two per statement."""
    with throwaway_pgbouncer(
        pg_cluster.dsn(), default_pool_size=1, query_wait_timeout_s=1, query_timeout_s=2
    ) as bouncer:
        yield bouncer


def test_pool_exhaustion_at_pgbouncer_is_a_bounded_wait_then_unavailable(strict: LocalPgBouncer, pg_dsn: str) -> None:
    db = PostgresDatabase(strict.dsn(dbname(pg_dsn)), PostgresPolicy(pgbouncer=True, pool_min=0, pool_max=2))
    try:
        db.run("CREATE TABLE t (x int)")
        with held_elsewhere(db.transaction):  # the one server connection, in an open transaction
            t0 = time.monotonic()
            with pytest.raises(Unavailable) as refused:
                db.one("SELECT 1 AS x")  # a free client connection, queued in PgBouncer
            waited = time.monotonic() - t0
        assert refused.value.kind == "pool_timeout" and waited >= 1
        assert str(refused.value).startswith("PgBouncer found no server connection free within its query_wait_timeout")
        assert db.one("SELECT 1 AS x") == {"x": 1}  # the broken client connection was dropped; served again
    finally:
        db.close()


def test_pgbouncer_query_timeout_is_unavailable(strict: LocalPgBouncer, pg_dsn: str) -> None:
    db = PostgresDatabase(strict.dsn(dbname(pg_dsn)), PostgresPolicy(pgbouncer=True, pool_min=0, pool_max=1))
    try:
        with pytest.raises(Unavailable) as refused:
            db.one("SELECT pg_sleep(30)")
        assert refused.value.kind == "statement_timeout" and "query_timeout" in str(refused.value)
        assert db.one("SELECT 1 AS x") == {"x": 1}
    finally:
        db.close()


def test_admin_console_and_process(pgbouncer: LocalPgBouncer, bouncer_dsn: str) -> None:
    with psycopg.connect(bouncer_dsn) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (dbname(bouncer_dsn),)
    assert pgbouncer.show("version")[0]["version"].startswith("PgBouncer 1.")
    assert {row["name"] for row in pgbouncer.show("MEM")} >= {"client_cache", "server_cache", "pool_cache"}
    assert any(row["database"] == dbname(bouncer_dsn) for row in pgbouncer.show("STATS"))
    with pytest.raises(ValueError, match="not 'POOLS; SHUTDOWN'"):
        pgbouncer.show("POOLS; SHUTDOWN")
    assert os.stat(f"/proc/{pgbouncer.pid}").st_uid != 0 or os.geteuid() != 0
    assert "password" not in pgbouncer.ini.read_text()


def test_throwaway_pgbouncer_is_stopped_and_removed_after_an_error(pg_cluster: LocalCluster) -> None:
    seen: dict[str, object] = {}
    with pytest.raises(RuntimeError), throwaway_pgbouncer(pg_cluster.dsn()) as bouncer:
        seen.update(pid=bouncer.pid, directory=bouncer.directory)
        raise RuntimeError("test failure inside the block")
    assert not Path(str(seen["directory"])).exists() and not Path(f"/proc/{seen['pid']}").exists()


def test_start_failure_is_a_server_error_with_pgbouncer_s_words(pgbouncer: LocalPgBouncer, tmp_path: Path) -> None:
    taken = LocalPgBouncer(pgbouncer.server_dsn, tmp_path / "b", port=pgbouncer.port)
    with pytest.raises(ServerError, match=r"pgbouncer exited with 1: .*Address already in use"):
        taken.start()
    taken.stop()  # stopped already: a no-op


def test_a_named_database_is_written_as_pgbouncer_reads_it(pg_cluster: LocalCluster) -> None:
    odd = "it's a db"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(odd)))
    try:
        with throwaway_pgbouncer(pg_cluster.dsn(), databases={"odd-key": odd}) as bouncer:
            with psycopg.connect(bouncer.dsn("odd-key")) as conn:
                assert conn.execute("SELECT current_database()").fetchone() == (odd,)
            with pytest.raises(psycopg.OperationalError, match="no such database"):
                psycopg.connect(bouncer.dsn("postgres"), connect_timeout=5)  # only the named ones
    finally:
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(odd)))


# --- the ini, as text ---------------------------------------------------------------------------


def test_render_ini_defaults_to_transaction_pooling_with_a_bounded_queue() -> None:
    text = render_ini(BouncerConfig(server_host="db.internal", admin_users=("ops",)))
    lines = [line for line in text.splitlines() if line and not line.startswith(";")]
    assert lines[:3] == ["[databases]", "* = host=db.internal port=5432", "[pgbouncer]"]
    for expected in (
        "pool_mode = transaction",
        "query_wait_timeout = 10",
        "auth_type = scram-sha-256",
        "admin_users = ops",
        "listen_addr = 127.0.0.1",
        "default_pool_size = 20",
    ):
        assert expected in lines
    assert not any(line.startswith(("pidfile", "logfile")) for line in lines)


def test_render_ini_quotes_names_and_values_and_refuses_what_it_cannot_write() -> None:
    text = render_ini(BouncerConfig(server_host="/var/run/postgresql", databases={"app": "app", "b-2": "it's"}))
    assert "app = host=/var/run/postgresql port=5432 dbname=app\n" in text
    assert "b-2 = host=/var/run/postgresql port=5432 dbname='it''s'\n" in text
    assert "* =" not in text
    assert render_auth_file({"app": 'pa"ss'}) == '"app" "pa""ss"\n'
    with pytest.raises(ValueError, match=r"PgBouncer 1\.18 reads only letters"):
        render_ini(BouncerConfig(server_host="h", databases={"a b": "a b"}))  # a quoted key is a syntax error in 1.18
    with pytest.raises(ValueError, match="admin console"):
        BouncerConfig(server_host="h", databases={"pgbouncer": "x"})
    with pytest.raises(ValueError, match="pool_mode must be one of"):
        BouncerConfig(server_host="h", pool_mode="sessions")
    with pytest.raises(ValueError, match="cannot span lines"):
        render_ini(BouncerConfig(server_host="h", databases={"x": "a\nlisten_addr = *"}))
