"""Reverse capture is installed before the cutover's freeze and armed by its flip: its triggers log a
PostgreSQL write only while the mirrored route says postgres. So the forward applier's upserts (before
the cutover, and the drain inside it) are never logged as PostgreSQL's own changes, a cutover that was
undone leaves them installed but silent, `abort` removes them, and a table that lost its trigger
between the install and the flip (a rebuild re-creates the table) gets it in the flip."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest

from capture_util import caught_up, changes, make_source, started, write
from pgferry.capture import reverse
from pgferry.capture.copied import CopiedTable
from pgferry.capture.cutover import CutoverFailed, CutoverOptions, cutover
from pgferry.capture.migration import abort
from pgferry.capture.reverse import log
from reverse_fixtures import pg_write, reverse_caught_up, reverse_entries

TABLES = ["blobkey", "item", "pair", "tag"]


def test_an_undone_cutover_leaves_reverse_capture_silent_and_abort_removes_it(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    with pytest.raises(CutoverFailed, match="hook exited with 3"):
        cutover(path, pg_dsn, options=CutoverOptions(hook="exit 3", backoff_s=0))
    with psycopg.connect(pg_dsn) as pg:
        assert log.installed_tables(pg, "public") == TABLES  # installed before the freeze, kept
    write(path, changes(12))
    assert caught_up(path, pg_dsn) > 0  # the applier's upserts and deletes fire the triggers...
    pg_write(pg_dsn, [("UPDATE pair SET v = 'candidate' WHERE a = 'a2'", ())])  # ...and so does a dual write
    assert reverse_entries(pg_dsn) == 0  # ...which log nothing: the route is sqlite

    abort(path, pg_dsn)
    with psycopg.connect(pg_dsn) as pg:
        assert log.installed_tables(pg, "public") == []


def test_the_flip_arms_it_and_only_writes_after_it_are_logged(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    write(path, changes(6))  # applied by the cutover's own catch-up
    report = cutover(path, pg_dsn, options=CutoverOptions(backoff_s=0.05))
    assert report.cut_over
    assert "install" in report.attempts[-1].phases and "install" not in plan_flip(report.steps)
    assert reverse_entries(pg_dsn) == 0
    pg_write(pg_dsn, [("UPDATE item SET n = n + 1 WHERE id <= 3", ()), ("DELETE FROM pair WHERE a = 'a3'", ())])
    assert reverse_entries(pg_dsn) == 3 + 5
    assert reverse_caught_up(path, pg_dsn) == 8


def plan_flip(steps: list[str]) -> str:
    """The plan's step that commits in PostgreSQL (the flip)."""
    return next(s for s in steps if "route mirror to postgres" in s)


def test_a_table_that_lost_its_trigger_before_the_freeze_gets_it_in_the_flip(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=True)
    started(path, pg_dsn)
    installing = reverse.install
    calls: list[list[str]] = []

    def then_rebuilt(pg: psycopg.Connection, schema: str, tables: Sequence[CopiedTable]) -> int:
        calls.append([t.identity.target for t in tables])
        done = installing(pg, schema, tables)
        if len(calls) == 1:  # the install before the freeze, then `tag` re-created as a rebuild does it
            pg.execute(f'DROP TRIGGER "{log.TRIGGER}" ON public.tag')
        return done

    monkeypatch.setattr(reverse, "install", then_rebuilt)
    assert cutover(path, pg_dsn, options=CutoverOptions(backoff_s=0.05)).cut_over
    assert calls == [TABLES, ["tag"]]  # the flip gave `tag` its trigger, and only `tag`
    with psycopg.connect(pg_dsn) as pg:
        assert log.installed_tables(pg, "public") == TABLES
    pg_write(pg_dsn, [("DELETE FROM tag WHERE name = 'u' AND item_id <= 4", ())])
    assert reverse_entries(pg_dsn) == 4


def test_the_install_gives_way_to_a_writer_that_holds_one_table_and_wants_another(tmp_path: Path, pg_dsn: str) -> None:
    """A transaction (the forward applier, a dual write) holds the last table the install wants and then
    asks for the first, which the install took: a lock cycle. The install waits briefly, starts again,
    and the writer goes on without PostgreSQL's deadlock error; the cutover then succeeds."""
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    first, last = TABLES[0], TABLES[-1]
    result: list[object] = []
    with psycopg.connect(pg_dsn) as writer:
        writer.execute(f"LOCK TABLE {last} IN ROW EXCLUSIVE MODE")
        job = threading.Thread(
            target=lambda: result.append(cutover(path, pg_dsn, options=CutoverOptions(lock_timeout_s=10, backoff_s=0)))
        )
        job.start()
        try:
            with psycopg.connect(pg_dsn, autocommit=True) as watcher:
                deadline = time.monotonic() + 10
                while not watcher.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass", [last]
                ).fetchone()[0]:  # type: ignore[index]
                    assert time.monotonic() < deadline, "the install never waited for the held table"
                    time.sleep(0.001)
            writer.execute(f"LOCK TABLE {first} IN ROW EXCLUSIVE MODE")  # a deadlock here without the retry
            writer.commit()
        finally:
            job.join(30)
    assert len(result) == 1 and result[0].cut_over  # type: ignore[attr-defined]
