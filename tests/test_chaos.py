"""Chaos: writers keep writing through the router while `pgferry migrate` is killed with SIGKILL at
named points of the copy, the applier and the cutover, and resumed each time. Afterwards every
acknowledged write is on PostgreSQL exactly once with the id SQLite gave it, none of the writers saw
an error, both sides were equal (digests) before the cutover, and running each command again
changes nothing."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import psycopg
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
from pgferry.capture import pgstate
from pgferry.runtime.route import Route, read_route

SCENARIOS = {  # phase -> kill point (about ten in all); "follow": a `migrate follow` runs during the cutover
    "a": {"copy": "copy:before_chunk_commit@2", "apply": "apply:before_commit@3", "cutover": "cutover:locked"},
    "b": {"copy": "copy:after_chunk_commit@2", "apply": "apply:after_commit@2", "cutover": "cutover:drained",
          "follow": "yes"},
    "c": {"apply": "apply:after_prune", "cutover": "cutover:before_pg_commit"},
    "d": {"copy": "copy:after_chunk_commit@4", "apply": "apply:before_commit@1", "cutover": "cutover:after_pg_commit",
          "follow": "yes"},
}  # fmt: skip


def following(dsn: str, follower: subprocess.Popen[bytes]) -> None:
    """Wait until the background `follow` holds the applier's lock."""
    deadline = time.monotonic() + 30
    with psycopg.connect(dsn, autocommit=True) as pg:
        while pgstate.applier_pid(pg, pgstate.applier_lock_key("public")) is None:
            assert follower.poll() is None and time.monotonic() < deadline, "the follower did not start"
            time.sleep(0.02)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_writers_lose_nothing_while_every_step_is_killed_and_resumed(tmp_path: Path, pg_dsn: str, name: str) -> None:
    kills = SCENARIOS[name]
    path = make_source(tmp_path / "app.db")
    db = [str(path), pg_dsn]
    router = make_router(path, pg_dsn)
    try:
        with Writers(router, seed=ord(name)) as writers:
            writers.wrote_more(20)
            # the copy, killed in the middle (small chunks: several per table), then resumed by follow
            started = pgferry("migrate", "start", *db, "--until-caught-up", "--chunk-rows", "100", "--jobs", "1",
                              kill_at=kills.get("copy"))  # fmt: skip
            if "copy" in kills:
                killed(started)
                ok(pgferry("migrate", "follow", *db, "--until-caught-up"))
            else:
                ok(started)
            writers.wrote_more(50)
            # the applier, following while they write, killed at a batch's edge
            killed(ended(background("migrate", "follow", *db, "--batch", "20", kill_at=kills["apply"]), 60))
            writers.wrote_more(20)
            writers.stop()  # a pause in the writes: both sides must now be equal
            ok(pgferry("migrate", "follow", *db, "--until-caught-up"))
            assert_same(path, pg_dsn)
            before = digest(pg_dsn)
            ok(pgferry("migrate", "follow", *db, "--until-caught-up"))  # resuming again changes nothing
            assert digest(pg_dsn) == before

        first = set(writers.acked)
        with Writers(router, seed=ord(name) + 1, writer=2) as writers:
            writers.wrote_more(20)
            follower = background("migrate", "follow", *db) if "follow" in kills else None
            if follower is not None:
                following(pg_dsn, follower)
            try:  # without a follower the cutover applies itself; with one, it waits for it to drain
                killed(pgferry("migrate", "cutover", *db, "--json", kill_at=kills["cutover"]))
                writers.wrote_more(20)  # still on SQLite (the freeze lapsed or was never committed)
                report = json.loads(ok(pgferry("migrate", "cutover", *db, "--json")).stdout)
                assert report["cut_over"] is True
                assert report["applier"] == ("follower" if follower else "own")
                if follower is not None:  # the route is postgres: it follows PostgreSQL back into SQLite now
                    follower.send_signal(signal.SIGTERM)
                    ok(ended(follower, 30))
            finally:
                if follower is not None and follower.poll() is None:
                    follower.kill()
            writers.wrote_more(30)  # on PostgreSQL now
            writers.stop()
            assert writers.errors == []
    finally:
        router.close()

    on_sqlite, on_postgres = ledger(path, pg_dsn)
    acked = first | set(writers.acked)
    assert set(on_postgres) == acked  # every acknowledged value, and no other, exactly once (UNIQUE)
    assert set(on_sqlite) <= acked and on_sqlite.items() <= on_postgres.items()  # same ids on both sides
    after = acked - set(on_sqlite)
    assert after and min(on_postgres[v] for v in after) > max(on_sqlite.values())
    assert board_counters_hold(pg_dsn)
    with_route = ok(pgferry("migrate", "cutover", *db, "--json"))
    assert json.loads(with_route.stdout)["already"] is True
    with sqlite3.connect(path) as conn:
        assert read_route(conn).route is Route.POSTGRES
