"""`pgferry migrate cutover` on real SQLite and PostgreSQL: writers running through the router see a
pause, not an error, and every acknowledged write is on PostgreSQL exactly once; an attempt that
outlives its lock timeout (or a hook that fails) is undone; the postpone file holds it back; a cutover
killed at each of its points is finished by running it again."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from capture_util import assert_same, write
from cutover_app import Writers, bodies, make_migrated, make_router
from pgferry.capture import cutover_log, pgstate
from pgferry.capture.applier import ApplierBusy
from pgferry.capture.cutover import CutoverFailed, CutoverOptions, cutover
from pgferry.capture.liveverify import verify_live
from pgferry.capture.migration import Follow, follow
from pgferry.cli import main
from pgferry.killpoints import ENV
from pgferry.runtime.route import Route, mirror, read_route

QUICK = CutoverOptions(backoff_s=0.05)


def route_of(path: Path) -> tuple[Route, bool]:
    with sqlite3.connect(path) as conn:
        state = read_route(conn)
    return state.route, state.frozen()


def mirrored(dsn: str) -> Route | None:
    with psycopg.connect(dsn) as pg:
        state = mirror.read(pg)
    return None if state is None else state.route


def attempts(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as pg:
        return [a["outcome"] for a in cutover_log.read(pg, "public")]


def a_few_writes(path: Path, dsn: str) -> Writers:
    """Three notes written through a router, on whichever side the route says."""
    router = make_router(path, dsn)
    try:
        with Writers(router, threads=1, per_thread=3) as writers:
            pass
    finally:
        router.close()
    return writers


def test_writers_pause_and_go_on_postgres_with_every_acknowledged_write_there_once(tmp_path: Path, pg_dsn: str) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    router = make_router(path, pg_dsn)
    try:
        with Writers(router) as writers:
            report = cutover(path, pg_dsn, options=QUICK)
        assert writers.errors == []
    finally:
        router.close()
    assert report.cut_over and report.applier == "own" and report.attempts[-1].outcome == "cut_over"
    assert report.sequences == 1 and report.attempts[-1].pause_s is not None
    assert route_of(path) == (Route.POSTGRES, False) and mirrored(pg_dsn) is Route.POSTGRES
    on_sqlite, on_postgres = bodies(path, pg_dsn)
    acked = writers.acked
    assert len(acked) == 4 * 200
    assert {b: i for b, i in on_postgres.items() if b in acked} == acked  # each once, with the id it was given
    after = set(acked) - set(on_sqlite)
    assert after, "some writes went to PostgreSQL after the flip"
    assert min(acked[b] for b in after) > max(on_sqlite.values())  # the sequence went on above SQLite's ids
    assert attempts(pg_dsn) == ["cut_over"]

    again = cutover(path, pg_dsn, options=QUICK)  # run again: nothing to do
    assert again.already and again.cut_over and attempts(pg_dsn) == ["cut_over"]


def test_a_running_follow_drains_for_the_cutover_and_follows_back_after_the_flip(tmp_path: Path, pg_dsn: str) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    stop = threading.Event()
    following = threading.Thread(target=follow, args=(path, pg_dsn), kwargs={"how": Follow(stop)})
    following.start()
    try:
        write(path, [("INSERT INTO note (body, n) VALUES (?, 1)", (f"late{i}",)) for i in range(30)])
        deadline = time.monotonic() + 10
        while pgstate.read(psycopg.connect(pg_dsn, autocommit=True), "public").phase != "following":  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        report = cutover(path, pg_dsn, options=QUICK)
        deadline = time.monotonic() + 10  # the route is postgres: it follows PostgreSQL back into SQLite now
        while pgstate.read(psycopg.connect(pg_dsn, autocommit=True), "public").mode != "reverse":  # type: ignore[union-attr]
            assert time.monotonic() < deadline and following.is_alive()
            time.sleep(0.01)
    finally:
        stop.set()
        following.join(10)
    assert report.applier == "follower" and report.cut_over
    assert_same(path, pg_dsn)


def stuck_follower(dsn: str) -> psycopg.Connection:
    """A session holding the applier's lock that applies nothing (a follower hung on something)."""
    pg = psycopg.connect(dsn, autocommit=True)
    pg.execute("SELECT pg_advisory_lock(%s)", [pgstate.applier_lock_key("public")])
    return pg


def test_an_attempt_that_outlives_the_lock_timeout_is_undone_and_writers_go_on_sqlite(
    tmp_path: Path, pg_dsn: str
) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    write(path, [("INSERT INTO note (body, n) VALUES ('pending', 1)", ())])
    hung = stuck_follower(pg_dsn)
    try:
        with pytest.raises(CutoverFailed, match="after 2 attempt"):
            cutover(path, pg_dsn, options=CutoverOptions(max_lag_s=3600, lock_timeout_s=0.3, attempts=2, backoff_s=0))
        with pytest.raises(CutoverFailed, match="behind"):  # the lag bound refuses before any freeze
            cutover(path, pg_dsn, options=CutoverOptions(max_lag_s=0, attempts=1))
        assert hung.execute("SELECT pg_backend_pid()").fetchone()[0] == pgstate.applier_pid(
            hung, pgstate.applier_lock_key("public")
        )
    finally:
        hung.close()
    assert attempts(pg_dsn) == ["drain_timeout", "drain_timeout", "lag"]
    assert route_of(path) == (Route.SQLITE, False) and mirrored(pg_dsn) is Route.SQLITE  # thawed, both sides
    writers = a_few_writes(path, pg_dsn)
    assert writers.errors == [] and set(writers.acked) <= set(bodies(path, pg_dsn)[0])  # on SQLite


def test_a_failing_hook_undoes_the_cutover_and_a_passing_one_runs_under_the_lock(tmp_path: Path, pg_dsn: str) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    with pytest.raises(CutoverFailed, match="hook exited with 3"):
        cutover(path, pg_dsn, options=CutoverOptions(hook="exit 3", backoff_s=0))
    assert attempts(pg_dsn) == ["hook_failed"]  # not retried: a hook that failed is the operator's to look at
    assert route_of(path) == (Route.SQLITE, False) and mirrored(pg_dsn) is Route.SQLITE

    seen = tmp_path / "hook.json"
    probe = (
        f"{sys.executable} -c \"import json, os, sqlite3; c = sqlite3.connect(os.environ['PGFERRY_SQLITE'], timeout=0);"
        " busy = False\ntry: c.execute('BEGIN IMMEDIATE')\nexcept sqlite3.OperationalError: busy = True\n"
        f"json.dump({{'schema': os.environ['PGFERRY_SCHEMA'], 'locked': busy}}, open('{seen}', 'w'))\""
    )
    report = cutover(path, pg_dsn, options=CutoverOptions(hook=probe))
    assert report.cut_over and "hook" in report.attempts[-1].phases
    assert json.loads(seen.read_text()) == {"schema": "public", "locked": True}


def test_a_hooks_output_goes_to_stderr_and_json_stays_parseable(tmp_path: Path, pg_dsn: str) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    command = [sys.executable, "-m", "pgferry", "migrate", "cutover", str(path), pg_dsn, "--json"]
    done = subprocess.run([*command, "--hook", "echo from the hook"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["cut_over"] and "from the hook" in done.stderr


def test_the_postpone_file_holds_the_cutover_back_until_it_is_removed(tmp_path: Path, pg_dsn: str) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    flag = tmp_path / "postpone"
    flag.touch()
    told: list[str] = []
    done: list[object] = []
    worker = threading.Thread(
        target=lambda: done.append(
            cutover(path, pg_dsn, options=CutoverOptions(postpone_file=flag), on_wait=told.append)
        )
    )
    worker.start()
    deadline = time.monotonic() + 10
    while not told:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert "remove it" in told[0] and route_of(path)[0] is Route.SQLITE and attempts(pg_dsn) == []
    flag.unlink()
    worker.join(20)
    assert done and route_of(path)[0] is Route.POSTGRES


def cutover_process(path: Path, dsn: str, kill_at: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, ENV: kill_at} if kill_at else {k: v for k, v in os.environ.items() if k != ENV}
    command = [sys.executable, "-m", "pgferry", "migrate", "cutover", str(path), dsn, "--json"]
    return subprocess.run(command, env=env, capture_output=True, timeout=120)


@pytest.mark.parametrize(
    "point", ["cutover:locked", "cutover:drained", "cutover:before_pg_commit", "cutover:after_pg_commit"]
)
def test_a_cutover_killed_at_each_point_leaves_sqlite_the_route_and_finishes_when_run_again(
    tmp_path: Path, pg_dsn: str, point: str
) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    write(path, [("INSERT INTO note (body, n) VALUES (?, 2)", (f"k{i}",)) for i in range(40)])
    killed = cutover_process(path, pg_dsn, kill_at=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert route_of(path)[0] is Route.SQLITE  # SQLite's row is the route; a freeze left behind lapses
    write(path, [("INSERT INTO note (body, n) VALUES ('after the kill', 3)", ())], ["busy_timeout = 10000"])
    done = cutover_process(path, pg_dsn)
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["cut_over"] is True
    assert route_of(path) == (Route.POSTGRES, False) and mirrored(pg_dsn) is Route.POSTGRES
    assert_same(path, pg_dsn)


def test_the_command_line_dry_run_changes_nothing_and_the_report_names_each_attempt(
    tmp_path: Path, pg_dsn: str
) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    runner = CliRunner()
    dry = runner.invoke(main, ["migrate", "cutover", str(path), pg_dsn, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.output and "BEGIN IMMEDIATE" in dry.output and route_of(path)[0] is Route.SQLITE
    assert "compare the drained keys" in dry.output and "postpone" not in dry.output
    flag = tmp_path / "postpone"
    flag.touch()  # a dry run does not wait for it, it says it would
    held = runner.invoke(main, ["migrate", "cutover", str(path), pg_dsn, "--dry-run", "--postpone-file", str(flag)])
    assert held.exit_code == 0 and f"1. wait while {flag} exists" in held.output.replace("\n", " ")
    flag.unlink()
    done = runner.invoke(main, ["migrate", "cutover", str(path), pg_dsn])
    assert done.exit_code == 0, done.output
    assert "attempt 1: cut_over, writers paused" in done.output and "the route is postgres" in done.output
    again = runner.invoke(main, ["migrate", "cutover", str(path), pg_dsn, "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["already"] is True
    missing = runner.invoke(main, ["migrate", "cutover", str(tmp_path / "none.db"), pg_dsn])
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_a_second_applier_is_refused_without_marking_the_migration_failed(tmp_path: Path, pg_dsn: str) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    hung = stuck_follower(pg_dsn)
    try:
        with pytest.raises(ApplierBusy, match=f"backend pid {hung.info.backend_pid}"):
            follow(path, pg_dsn)
        with psycopg.connect(pg_dsn) as pg:
            state = pgstate.read(pg, "public")
        assert state is not None and state.phase == "stopped" and state.last_error is None
    finally:
        hung.close()
    follow(path, pg_dsn)  # the lock is free again


def test_finish_after_the_cutover_removes_capture_and_state_and_keeps_the_route(tmp_path: Path, pg_dsn: str) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    runner = CliRunner()
    early = runner.invoke(main, ["migrate", "finish", str(path), pg_dsn])
    assert early.exit_code == 2 and "migrate abort" in early.output  # not cut over: abort is the way out
    cutover(path, pg_dsn, options=QUICK)
    done = runner.invoke(main, ["migrate", "finish", str(path), pg_dsn, "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert report["triggers_dropped"] == 4 and report["postgres_state_removed"] is True
    with sqlite3.connect(path) as conn:
        left = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '\\_pgferry%' ESCAPE '\\'")}
    assert left == {"_pgferry_route"} and route_of(path)[0] is Route.POSTGRES and mirrored(pg_dsn) is Route.POSTGRES
    with psycopg.connect(pg_dsn) as pg:
        assert pgstate.read(pg, "public") is None
    writers = a_few_writes(path, pg_dsn)
    assert writers.errors == [] and set(writers.acked) <= set(bodies(path, pg_dsn)[1]) - set(bodies(path, pg_dsn)[0])
    again = runner.invoke(main, ["migrate", "finish", str(path), pg_dsn, "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["triggers_dropped"] == 0


def test_a_difference_under_the_lock_undoes_the_cutover_and_is_not_retried(tmp_path: Path, pg_dsn: str) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:  # a rogue write to the copy, found by a full pass
        pg.execute("UPDATE note SET n = 99 WHERE body = 'seed3'")
    assert verify_live(path, pg_dsn, "public", full=True, grace=0).failures
    with pytest.raises(CutoverFailed, match="differ on PostgreSQL"):
        cutover(path, pg_dsn, options=CutoverOptions(backoff_s=0))
    assert attempts(pg_dsn) == ["verify_failed"] and route_of(path) == (Route.SQLITE, False)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:  # put right, the next cutover goes through
        pg.execute("UPDATE note SET n = 0 WHERE body = 'seed3'")
    report = cutover(path, pg_dsn, options=QUICK)
    assert report.cut_over and report.attempts[-1].verified >= 1


def test_a_writer_holding_sqlite_s_lock_past_the_lock_timeout_undoes_each_attempt_and_loses_nothing(
    tmp_path: Path, pg_dsn: str
) -> None:
    """An application that does not use the runtime holds a write transaction open (a batch job): every
    attempt gives up at the lock timeout, writers are back on SQLite, its write commits and is carried
    by the next cutover."""
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    job = sqlite3.connect(path, isolation_level=None)
    try:
        job.execute("BEGIN IMMEDIATE")
        job.execute("INSERT INTO note (body, n) VALUES ('held across the attempts', 7)")
        with pytest.raises(CutoverFailed, match=r"after 3 attempt.*write lock"):
            cutover(path, pg_dsn, options=CutoverOptions(lock_timeout_s=0.2, attempts=3, backoff_s=0.01))
        job.execute("COMMIT")  # its transaction was never broken into
    finally:
        job.close()
    assert attempts(pg_dsn) == ["lock_timeout"] * 3
    assert route_of(path) == (Route.SQLITE, False) and mirrored(pg_dsn) is not Route.POSTGRES  # no freeze written
    writers = a_few_writes(path, pg_dsn)
    assert writers.errors == [] and set(writers.acked) <= set(bodies(path, pg_dsn)[0])  # on SQLite
    report = cutover(path, pg_dsn, options=QUICK)
    assert report.cut_over and attempts(pg_dsn)[-1] == "cut_over"
    on_postgres = bodies(path, pg_dsn)[1]
    assert "held across the attempts" in on_postgres and set(writers.acked) <= set(on_postgres)
