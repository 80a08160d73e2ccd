"""`forum serve --pgbouncer`: the forum as a user runs it behind PgBouncer 1.18 (the API suite itself
runs through PgBouncer too: the "pgbouncer" case of tests/forum_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import httpx
from click.testing import CliRunner
from psycopg.conninfo import conninfo_to_dict

from bouncer_fixtures import SERVER_POOL, behind_pgbouncer
from forum.cli import main
from forum.web.process import running_server
from pgdatabases import dbname, fresh_database
from pgferry.pg.cluster import LocalCluster
from pgferry.pg.pgbouncer import LocalPgBouncer


def test_serve_behind_pgbouncer(pg_cluster: LocalCluster, pgbouncer: LocalPgBouncer, forum_template: str) -> None:
    with fresh_database(pg_cluster.dsn(), forum_template) as dsn:
        target = behind_pgbouncer(pgbouncer, dsn)
        with running_server(target, "optimized", extra_args=("--pgbouncer", "--pool-size", "6")) as srv:
            health = httpx.get(f"{srv.url}/healthz", timeout=10).json()["database"]
            assert health["pgbouncer"] and health["prepare_threshold"] is None and health["pool_max"] == 6
            assert health["statement_timeout"] == "30s"  # set on the database, since no startup option gets through
            r = httpx.post(
                f"{srv.url}/auth/register",
                json={"username": "zed", "email": "zed@example.org", "password": "correct horse"},
                timeout=10,
            )
            assert r.status_code == 201, r.text
            auth = {"Authorization": f"Bearer {r.json()['token']}"}
            for i in range(8):  # the same statements, past psycopg's prepare threshold
                reply = httpx.post(f"{srv.url}/topics/1/replies", json={"content": f"r{i}"}, headers=auth, timeout=10)
                assert reply.status_code == 201, reply.text
                assert httpx.get(f"{srv.url}/topics/1", params={"limit": 3}, timeout=10).status_code == 200
            (pool,) = [p for p in pgbouncer.show("POOLS") if p["database"] == dbname(dsn)]
            assert int(pool["sv_active"]) + int(pool["sv_idle"]) + int(pool["sv_used"]) <= SERVER_POOL
        assert srv.process.returncode == 0 and "Traceback" not in srv.log()
        assert "pgbouncer=True" in srv.log() and str(conninfo_to_dict(target)["password"]) not in srv.log()


def test_pgbouncer_flag_is_refused_on_a_sqlite_file(db_copy: Path) -> None:
    result = CliRunner().invoke(main, ["serve", str(db_copy), "--pgbouncer"])
    assert result.exit_code == 2 and "Error: --pgbouncer is for a PostgreSQL DSN" in result.output
