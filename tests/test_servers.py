"""The test servers are real, loopback-only, unprivileged, isolated per test and cleaned up."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from pgferry.dsn import redact, with_database
from pgferry.errors import ServerError
from pgferry.pg.cluster import LocalCluster, throwaway_cluster


def test_postgres_is_15_on_loopback(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        assert conn.info.server_version // 10000 == 15
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
        assert conn.execute(
            "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
        ).fetchone() == (0,)


def test_server_does_not_run_as_root(pg_cluster: LocalCluster) -> None:
    pid = int((pg_cluster.datadir / "postmaster.pid").read_text().splitlines()[0])
    assert os.stat(f"/proc/{pid}").st_uid != 0


def test_each_test_gets_its_own_database(pg_dsn: str, pg_cluster: LocalCluster) -> None:
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE marker (id int)")
        conn.commit()
        name = conn.info.dbname
    assert name != "postgres"
    with psycopg.connect(pg_cluster.dsn()) as admin:
        assert admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() == (1,)


def test_wrong_password_is_refused(pg_cluster: LocalCluster) -> None:
    bad = LocalCluster(directory=pg_cluster.directory, port=pg_cluster.port, password="wrong", bindir=pg_cluster.bindir)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad.dsn(), connect_timeout=5)


def test_throwaway_cluster_is_stopped_and_removed_after_an_error() -> None:
    seen: dict[str, Path] = {}
    with pytest.raises(RuntimeError), throwaway_cluster() as cluster:
        seen["dir"] = cluster.directory
        with psycopg.connect(cluster.dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        raise RuntimeError("test failure inside the block")
    assert not seen["dir"].exists()


def test_start_failure_is_a_server_error(tmp_path: Path, pg_cluster: LocalCluster) -> None:
    taken = LocalCluster(directory=tmp_path / "pg", port=pg_cluster.port)
    with pytest.raises(ServerError, match="pg_ctl failed"):
        taken.start()


def test_redis_is_real_and_flushed(redisdb, redis_proc) -> None:  # type: ignore[no-untyped-def]
    assert redis_proc.host == "127.0.0.1"
    assert int(redisdb.info("server")["process_id"]) > 0
    assert redisdb.dbsize() == 0
    redisdb.set("pgferry:key", "value")
    assert redisdb.get("pgferry:key") == b"value"


def test_redis_starts_empty_again(redisdb) -> None:  # type: ignore[no-untyped-def]
    assert redisdb.get("pgferry:key") is None


@pytest.mark.parametrize(
    ("dsn", "leak"),
    [
        ("postgresql://alice:s3cr%20t@127.0.0.1:5432/db", "s3cr%20t"),
        ("host=127.0.0.1 password=hunter2 dbname=x", "hunter2"),
        ("host=127.0.0.1 password='a b\\'c' dbname=x", "a b"),
        ("postgresql://127.0.0.1/db?password=topsecret&sslmode=disable", "topsecret"),
    ],
)
def test_redact_hides_passwords(dsn: str, leak: str) -> None:
    shown = redact(dsn)
    assert leak not in shown
    assert "***" in shown


def test_with_database_keeps_the_rest() -> None:
    dsn = with_database("host=127.0.0.1 port=5 user=u password=p dbname=a", "b")
    assert "dbname=b" in dsn and "port=5" in dsn and "password=p" in dsn
