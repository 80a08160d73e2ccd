"""Chaos the other way: after a cutover, writers keep writing through the router on PostgreSQL while
the reverse applier (`migrate follow`) and the rollback are killed with SIGKILL at named points and
resumed. Afterwards every acknowledged write is in SQLite exactly once with the id PostgreSQL gave it,
none of the writers saw an error, forward following makes both sides equal again, and running each
command again changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capture_util import assert_same, digest
from chaos_app import (
    Writers,
    background,
    board_counters_hold,
    ended,
    killed,
    ledger,
    make_router,
    make_source,
    ok,
    pgferry,
)
from pgferry.runtime.route import Route
from reverse_fixtures import route_of

SCENARIOS = {  # the reverse applier's kill point, and the rollback's (None: it runs to the end)
    "a": ("reverse:before_commit@2", "rollback:after_flip"),
    "b": ("reverse:after_commit@2", None),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_writers_lose_nothing_while_the_way_back_is_killed_and_resumed(tmp_path: Path, pg_dsn: str, name: str) -> None:
    reverse_kill, rollback_kill = SCENARIOS[name]
    path = make_source(tmp_path / "app.db", posts=100)
    db = [str(path), pg_dsn]
    router = make_router(path, pg_dsn)
    try:
        ok(pgferry("migrate", "start", *db, "--until-caught-up", "--jobs", "1"))
        with Writers(router, seed=ord(name)) as writers:
            writers.wrote_more(20)  # on SQLite
            assert json.loads(ok(pgferry("migrate", "cutover", *db, "--json")).stdout)["cut_over"]
            writers.wrote_more(40)  # on PostgreSQL
            killed(ended(background("migrate", "follow", *db, "--batch", "5", kill_at=reverse_kill), 60))
            writers.wrote_more(20)
            if rollback_kill is not None:
                killed(pgferry("migrate", "rollback", *db, "--json", kill_at=rollback_kill))
                assert route_of(path) is Route.SQLITE  # killed after its flip: writers are on SQLite
                writers.wrote_more(20)
            report = json.loads(ok(pgferry("migrate", "rollback", *db, "--json")).stdout)
            assert report["resumed"] is (rollback_kill is not None) and report["reverse_removed"]
            assert report["late_entries"] == 0
            writers.wrote_more(30)  # on SQLite
            writers.stop()
            assert writers.errors == []
    finally:
        router.close()

    ok(pgferry("migrate", "follow", *db, "--until-caught-up"))  # what SQLite took since the flip, forward
    on_sqlite, on_postgres = ledger(path, pg_dsn)
    acked = set(writers.acked)
    assert set(on_sqlite) == acked  # every acknowledged value, and no other, exactly once (UNIQUE)
    assert on_sqlite == on_postgres  # with the same ids on both sides
    assert board_counters_hold(pg_dsn)
    assert_same(path, pg_dsn)
    before = digest(pg_dsn)
    again = pgferry("migrate", "rollback", *db)
    assert again.returncode == 2 and b"nothing to roll back" in again.stderr
    ok(pgferry("migrate", "follow", *db, "--until-caught-up"))
    assert digest(pg_dsn) == before
