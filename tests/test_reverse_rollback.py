"""`pgferry migrate rollback` on real SQLite and PostgreSQL: writers running on PostgreSQL through the
router keep every acknowledged write and go on on SQLite without an error; a rollback whose lock
times out changes nothing; afterwards forward following carries SQLite's new writes, and not the
reverse applier's own."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from capture_util import assert_same, caught_up, started, write
from cutover_app import HOME, make_router
from pgferry.capture.current import ApplyError
from pgferry.capture.migration import Follow, follow
from pgferry.capture.reverse import log
from pgferry.capture.rollback import RollbackTimeout, rollback
from pgferry.capture.status import read_status
from pgferry.errors import UsageError
from pgferry.runtime.route import Route, read_route
from pgferry.runtime.routed import Router
from reverse_fixtures import cut_over_now, pg_write, reverse_entries, route_of


def make_app(path: Path, dsn: str) -> Path:
    """cutover_app's note table (and a child) copied, followed and cut over."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE, n INTEGER)")
        conn.execute("CREATE TABLE mark (note_id INTEGER PRIMARY KEY REFERENCES note (id), tag TEXT)")
        conn.executemany("INSERT INTO note (body) VALUES (?)", [(f"seed {i}",) for i in range(10)])
    started(path, dsn)
    cut_over_now(path, dsn)
    return path


@pytest.fixture
def router(tmp_path: Path, pg_dsn: str) -> Iterator[tuple[Path, str, Router[Any]]]:
    path = make_app(tmp_path / "app.db", pg_dsn)
    routed = make_router(path, pg_dsn)
    try:
        yield path, pg_dsn, routed
    finally:
        routed.close()


class Writers:
    """Threads adding notes until `stop`; each body acknowledged (its transaction returned) is kept."""

    def __init__(self, router: Router[Any], n: int = 4) -> None:
        self.router = router
        self.acked: list[str] = []
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.written = threading.Semaphore(0)
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(n)]

    def _run(self, i: int) -> None:
        k = 0
        try:
            while not self.stop.is_set():
                body = f"w{i}-{k}"
                with self.router.transaction():
                    self.router.one(HOME.sql.NOTE_ADD, (body, k))
                with self._lock:
                    self.acked.append(body)
                self.written.release()
                k += 1
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> Writers:
        for t in self.threads:
            t.start()
        return self

    def wait_for(self, n: int) -> None:
        """Until `n` more writes are acknowledged."""
        for _ in range(n):
            assert self.written.acquire(timeout=20), self.errors

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20
    while not check():
        assert time.monotonic() < deadline, "not reached within 20 s"
        time.sleep(0.02)


def bodies_in_sqlite(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {b for (b,) in conn.execute("SELECT body FROM note")}


def test_a_rollback_under_writers_keeps_every_acknowledged_write_and_they_go_on_on_sqlite(
    router: tuple[Path, str, Router[Any]],
) -> None:
    path, dsn, routed = router
    stop = threading.Event()
    following = threading.Thread(target=follow, args=(path, dsn), kwargs={"how": Follow(stop=stop)})
    following.start()  # `migrate follow`: the reverse applier now, the forward one after the rollback
    try:
        with Writers(routed) as writers:
            writers.wait_for(40)  # on PostgreSQL
            report = rollback(path, dsn)
            writers.wait_for(40)  # on SQLite
        wait_until(lambda: read_status(path, dsn, "public").lag_changes == 0)
    finally:
        stop.set()
        following.join(30)
    assert writers.errors == []
    assert report.reverse_removed and report.late_entries == 0 and not report.resumed
    assert route_of(path) is Route.SQLITE
    acked = set(writers.acked)
    assert acked <= bodies_in_sqlite(path)  # every acknowledged write, wherever it was made
    with psycopg.connect(dsn) as pg:
        on_postgres = {b for (b,) in pg.execute("SELECT body FROM note")}
        assert log.installed_tables(pg, "public") == [] and not log.exists(pg)  # reverse capture removed
    assert acked <= on_postgres  # those made on SQLite after the flip were carried forward by follow
    assert_same(path, dsn)


def test_after_a_rollback_forward_following_carries_new_writes_not_the_reverse_applier_s_own(
    tmp_path: Path, pg_dsn: str
) -> None:
    path = make_app(tmp_path / "app.db", pg_dsn)
    pg_write(
        pg_dsn,
        [
            ("INSERT INTO note (id, body) VALUES (100, 'on postgres')", ()),
            ("INSERT INTO mark VALUES (100, 'x')", ()),
            ("UPDATE note SET body = 'edited' WHERE id = 1", ()),
            ("DELETE FROM note WHERE id = 2", ()),
        ],
    )
    report = rollback(path, pg_dsn)
    assert report.applied_before + report.drained == 4
    assert_same(path, pg_dsn)
    with psycopg.connect(pg_dsn) as pg:
        position = pg.execute("SELECT applied_seq FROM pgferry.capture_state").fetchone()
    with sqlite3.connect(path) as conn:
        assert position == conn.execute("SELECT coalesce(max(seq), 0) FROM _pgferry_changelog").fetchone()
    assert caught_up(path, pg_dsn) == 0  # the reverse applier's writes are not carried forward again
    write(path, [("INSERT INTO note (body) VALUES ('back on sqlite')", ()), ("DELETE FROM mark", ())])
    assert caught_up(path, pg_dsn) == 2
    assert_same(path, pg_dsn)
    with pytest.raises(UsageError, match="nothing to roll back"):
        rollback(path, pg_dsn)


def in_flight(routed: Router[Any], body: str) -> tuple[threading.Thread, threading.Event]:
    """A routed writer that added `body` on PostgreSQL and holds its transaction open until the event
    returned is set (join the thread after)."""
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with routed.transaction():
            routed.one(HOME.sql.NOTE_ADD, (body, 0))
            inside.set()
            release.wait(20)

    worker = threading.Thread(target=hold)
    worker.start()
    assert inside.wait(10)
    return worker, release


def test_a_rollback_whose_lock_times_out_changes_nothing(router: tuple[Path, str, Router[Any]]) -> None:
    path, dsn, routed = router
    worker, release = in_flight(routed, "in flight")
    try:
        pg_write(dsn, [("INSERT INTO note (body) VALUES ('committed on postgres')", ())])
        with pytest.raises(RollbackTimeout, match="nothing changed"):
            rollback(path, dsn, lock_timeout_s=0.3)
        with sqlite3.connect(path) as conn:
            state = read_route(conn)
        assert state.route is Route.POSTGRES and not state.frozen()  # writers go on on PostgreSQL
        with psycopg.connect(dsn) as pg:
            assert log.installed_tables(pg, "public") == ["mark", "note"]
    finally:
        release.set()
        worker.join(10)
    routed.one(HOME.sql.NOTE_ADD, ("after the timeout", 0))  # on PostgreSQL, no error
    assert reverse_entries(dsn) >= 2
    rollback(path, dsn)
    assert {"in flight", "committed on postgres", "after the timeout"} <= bodies_in_sqlite(path)
    assert_same(path, dsn)


def test_an_entry_committed_out_of_order_across_the_rollback_is_drained_under_its_lock(
    router: tuple[Path, str, Router[Any]],
) -> None:
    """A routed writer takes the lower reverse seq and commits after a later transaction, while the
    rollback runs: the catch-up before the freeze applies the later one only, and the drain under the
    lock (which waited for the writer in flight) applies the earlier one; nothing is left behind."""
    path, dsn, routed = router
    worker, release = in_flight(routed, "lower seq, committed last")
    reports: list[Any] = []
    rolling = threading.Thread(target=lambda: reports.append(rollback(path, dsn, lock_timeout_s=20)))
    try:
        pg_write(dsn, [("INSERT INTO note (body) VALUES ('higher seq, committed first')", ())])
        with psycopg.connect(dsn) as pg:
            seqs = [s for (s,) in pg.execute("SELECT seq FROM pgferry.reverse_changelog ORDER BY seq")]
        assert len(seqs) == 1  # the later transaction's entry only: the writer's is in flight
        rolling.start()

        def frozen() -> bool:
            with sqlite3.connect(path) as conn:
                return read_route(conn).frozen()

        wait_until(frozen)  # caught up (without the entry in flight), frozen, now waiting for the writer
    finally:
        release.set()
        worker.join(10)
        rolling.join(30)
    (report,) = reports
    assert report.applied_before == 1 and report.drained == 1 and report.late_entries == 0
    assert {"lower seq, committed last", "higher seq, committed first"} <= bodies_in_sqlite(path)
    assert route_of(path) is Route.SQLITE
    assert_same(path, dsn)


def test_a_row_sqlite_refuses_stops_the_reverse_applier_and_the_rollback_with_a_message(
    tmp_path: Path, pg_dsn: str
) -> None:
    path = make_app(tmp_path / "app.db", pg_dsn)
    pg_write(
        pg_dsn, [("ALTER TABLE note ALTER COLUMN body DROP NOT NULL", ()), ("INSERT INTO note (id) VALUES (500)", ())]
    )
    with pytest.raises(ApplyError, match=r"SQLite refused a row PostgreSQL holds .*NOT NULL"):
        follow(path, pg_dsn)
    assert read_status(path, pg_dsn, "public").phase == "failed"
    with pytest.raises(ApplyError, match="SQLite refused a row PostgreSQL holds"):
        rollback(path, pg_dsn)
    with sqlite3.connect(path) as conn:
        state = read_route(conn)
    assert state.route is Route.POSTGRES and not state.frozen()  # nothing changed
    pg_write(pg_dsn, [("UPDATE note SET body = 'fixed' WHERE id = 500", ())])
    rollback(path, pg_dsn)
    assert "fixed" in bodies_in_sqlite(path)


def test_a_second_cutover_and_rollback_after_the_first(tmp_path: Path, pg_dsn: str) -> None:
    path = make_app(tmp_path / "app.db", pg_dsn)
    pg_write(pg_dsn, [("INSERT INTO note (id, body) VALUES (100, 'first time on postgres')", ())])
    rollback(path, pg_dsn)
    write(path, [("INSERT INTO note (id, body) VALUES (101, 'back on sqlite')", ())])
    cut_over_now(path, pg_dsn)  # forward caught up (101 reaches PostgreSQL), reverse capture again
    pg_write(
        pg_dsn,
        [
            ("INSERT INTO note (id, body) VALUES (102, 'second time on postgres')", ()),
            ("DELETE FROM note WHERE id = 100", ()),
        ],
    )
    report = rollback(path, pg_dsn)
    assert report.applied_before + report.drained == 2 and report.reverse_removed
    assert {"back on sqlite", "second time on postgres"} <= bodies_in_sqlite(path)
    assert "first time on postgres" not in bodies_in_sqlite(path)
    assert_same(path, pg_dsn)


def test_an_id_postgres_gave_and_deleted_is_given_again_on_neither_side(tmp_path: Path, pg_dsn: str) -> None:
    """AUTOINCREMENT's promise across switches: PostgreSQL hands out ids and deletes the rows (so
    they never reach SQLite); after the rollback SQLite goes on above them, and after a second
    cutover PostgreSQL goes on above everything either side gave."""
    path = tmp_path / "ids.db"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE item (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL)")
        conn.execute("CREATE TABLE plain (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        for table in ("item", "plain"):
            conn.executemany(f"INSERT INTO {table} (body) VALUES (?)", [(f"seed {i}",) for i in range(5)])
    started(path, pg_dsn)
    cut_over_now(path, pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        given = [
            pg.execute("INSERT INTO item (body) VALUES ('on postgres') RETURNING id").fetchone()[0] for _ in range(3)
        ]
        pg.execute("DELETE FROM item WHERE id = ANY(%s)", [given[1:]])
        plain = pg.execute("INSERT INTO plain (body) VALUES ('on postgres') RETURNING id").fetchone()[0]
        pg.execute("DELETE FROM plain WHERE id = %s", [plain])
    assert given == [6, 7, 8]
    assert rollback(path, pg_dsn).marks_raised == {"item": 8}  # `plain` is no AUTOINCREMENT table
    with sqlite3.connect(path) as conn:
        back_on_sqlite = conn.execute("INSERT INTO item (body) VALUES ('back') RETURNING id").fetchone()[0]
    assert back_on_sqlite == 9  # above 8, which PostgreSQL gave and deleted
    cut_over_now(path, pg_dsn)
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        again = pg.execute("INSERT INTO item (body) VALUES ('postgres again') RETURNING id").fetchone()[0]
        plain_again = pg.execute("INSERT INTO plain (body) VALUES ('postgres again') RETURNING id").fetchone()[0]
    assert again == 10
    assert plain_again > plain  # an identity never goes back below what it gave, AUTOINCREMENT or not
