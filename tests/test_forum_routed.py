"""The forum on a live migration's route: `forum serve FILE --postgres DSN` follows the file's route
while it serves (dual, then postgres, then back to sqlite), and a routed file is never served as
plain SQLite by mistake."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import psycopg
import pytest

from forum.services import Forum
from forum.store.errors import StoreError
from forum.web.process import running_server
from pgferry.errors import UsageError
from pgferry.migrate.run import copy_database
from pgferry.runtime.route import set_route


def route(path: Path, value: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        set_route(conn, value)
    finally:
        conn.close()


def count_users(path: Path, dsn: str, name: str) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        lite = conn.execute("SELECT count(*) FROM users WHERE username = ?", (name,)).fetchone()[0]
    finally:
        conn.close()
    with psycopg.connect(dsn) as pg:
        return lite, pg.execute("SELECT count(*) FROM users WHERE username = %s", (name,)).fetchone()[0]


def test_serve_follows_the_files_route_while_it_runs(db_copy: Path, pg_dsn: str, tmp_path: Path) -> None:
    copy_database(db_copy, pg_dsn)
    route(db_copy, "dual")
    log = tmp_path / "dual.jsonl"
    with running_server(db_copy, "optimized", extra_args=("--postgres", pg_dsn, "--discrepancies", str(log))) as srv:

        def register(name: str) -> None:
            body = {"username": name, "email": f"{name}@example.org", "password": "correct horse"}
            assert httpx.post(f"{srv.url}/auth/register", json=body, timeout=10).status_code == 201

        health = httpx.get(f"{srv.url}/healthz", timeout=10).json()["database"]
        assert health["backend"] == "router" and health["route"] == "dual"
        register("on_both")
        route(db_copy, "postgres")  # what a cutover commits
        register("on_postgres")
        route(db_copy, "sqlite")  # and a rollback
        register("on_sqlite")
        assert httpx.get(f"{srv.url}/healthz", timeout=10).json()["database"]["route"] == "sqlite"
    assert srv.process.returncode == 0 and "Traceback" not in srv.log()
    assert count_users(db_copy, pg_dsn, "on_both") == (1, 1)
    assert count_users(db_copy, pg_dsn, "on_postgres") == (0, 1)
    assert count_users(db_copy, pg_dsn, "on_sqlite") == (1, 0)
    assert log.read_text() == ""  # no discrepancy while dual
    assert pg_dsn not in srv.log()


def test_a_routed_file_is_not_served_as_plain_sqlite(db_copy: Path) -> None:
    route(db_copy, "dual")
    with pytest.raises(StoreError, match="routes it to dual: give its PostgreSQL copy with --postgres DSN"):
        Forum.open(db_copy, "optimized")
    with pytest.raises(StoreError, match="routes its writes to dual now; serving SQLite alone would miss them"):
        Forum.open(db_copy, "optimized", backend="sqlite")
    with pytest.raises(StoreError, match="needs --mode optimized"):
        Forum.open(db_copy, "legacy", postgres="postgresql://nobody@127.0.0.1:1/none")
    route(db_copy, "sqlite")
    with pytest.raises(UsageError, match="--postgres follows a migration's route: use it with --backend auto"):
        Forum.open(db_copy, "optimized", backend="sqlite", postgres="postgresql://nobody@127.0.0.1:1/none")
