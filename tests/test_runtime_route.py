"""The route (pgferry.runtime.route) and the router following it on real SQLite and PostgreSQL: the
control row and its writer side, a flip under the write lock or after a freeze with writers running
(none lost, none on both sides), a freeze that lapses or outlasts a writer, and a rollback from
`postgres` noticed through the mirrored row."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dual_app import HOME, make_router, make_sides, route_to
from pgferry.errors import UsageError
from pgferry.runtime import Unavailable
from pgferry.runtime.route import Route, RouteState, freeze, mirror, read_route, set_route, thaw
from pgferry.runtime.routed import Router, RouterPolicy, pause_histogram, pause_summary
from pgferry.sqlite.atomic import atomic


@pytest.fixture
def sides(tmp_path: Path, pg_dsn: str) -> tuple[Path, str]:
    path = tmp_path / "app.db"
    make_sides(path, pg_dsn, rows=0)
    return path, pg_dsn


@contextmanager
def control(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def names(path: Path, dsn: str) -> tuple[set[str], set[str]]:
    with control(path) as conn:
        lite = {n for (n,) in conn.execute("SELECT name FROM items")}
    with psycopg.connect(dsn) as pg:
        return lite, {n for (n,) in pg.execute("SELECT name FROM items")}


class Writers:
    """`n` threads, each writing `first` rows, then waiting for `go`, then `then` more; every value
    acknowledged (its transaction returned) is kept."""

    def __init__(self, router: Router[Any], n: int = 4, first: int = 5, then: int = 10) -> None:
        self.router, self.first, self.then = router, first, then
        self.acked: list[str] = []
        self.errors: list[BaseException] = []
        self.ready = threading.Barrier(n + 1)
        self.go = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,)) for i in range(n)]
        self._lock = threading.Lock()

    def _write(self, value: str) -> None:
        with self.router.transaction():
            self.router.one(HOME.sql.ITEM_ADD, (value, 1.0, True, None, None))
        with self._lock:
            self.acked.append(value)

    def _run(self, i: int) -> None:
        try:
            for k in range(self.first):
                self._write(f"a{i}-{k}")
            self.ready.wait(10)
            self.go.wait(10)
            for k in range(self.then):
                self._write(f"b{i}-{k}")
        except BaseException as exc:
            self.errors.append(exc)
            self.ready.abort()

    def start(self) -> None:
        for t in self.threads:
            t.start()
        self.ready.wait(10)  # every writer has written its first rows

    def finish(self) -> tuple[set[str], set[str]]:
        self.go.set()
        for t in self.threads:
            t.join(30)
        assert self.errors == []
        return {v for v in self.acked if v.startswith("a")}, {v for v in self.acked if v.startswith("b")}


def wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, "not reached within 10 s"
        time.sleep(0.005)


def test_the_route_row_and_its_writer_side(sides: tuple[Path, str]) -> None:
    path, dsn = sides
    with control(path) as conn, psycopg.connect(dsn, autocommit=True) as pg:
        assert read_route(conn).route is Route.SQLITE and read_route(conn).version == 0  # never set
        assert set_route(conn, "dual", pg=pg).version == 1
        frozen = freeze(conn, 5, note="cutover", pg=pg)
        assert frozen.route is Route.DUAL and frozen.frozen() and read_route(conn) == frozen
        assert mirror.read(pg) == frozen
        assert not thaw(conn).frozen() and read_route(conn).route is Route.DUAL
        with pytest.raises(RuntimeError), atomic(conn):  # in the caller's transaction: undone with it
            set_route(conn, "postgres")
            raise RuntimeError("the drain failed")
        assert read_route(conn).route is Route.DUAL
        with pytest.raises(UsageError, match="route must be one of sqlite, dual, postgres"):
            set_route(conn, "mysql")
        with pytest.raises(ValueError, match="a freeze lasts"):
            freeze(conn, 0)


def test_writers_blocked_on_the_lock_during_the_flip_land_on_postgres_and_none_is_lost(sides: tuple[Path, str]) -> None:
    path, dsn = sides
    route_to(path, "sqlite", dsn)
    router = make_router(path, dsn)
    writers = Writers(router)
    try:
        writers.start()
        with control(path) as conn, psycopg.connect(dsn, autocommit=True) as pg:
            conn.execute("BEGIN IMMEDIATE")  # the cutover's lock: every writer from here on waits for it
            writers.go.set()
            time.sleep(0.2)  # let them queue behind it (nothing below depends on how many did)
            set_route(conn, Route.POSTGRES, pg=pg)
            conn.execute("COMMIT")
            before, after = writers.finish()
        on_sqlite, on_postgres = names(path, dsn)
        assert on_sqlite == before and on_postgres == after  # none lost, none on both sides
        assert len(before) == 20 and len(after) == 40
    finally:
        router.close()


@contextmanager
def writers_held_by_a_freeze(
    path: Path, dsn: str, route: str
) -> Iterator[tuple[Router[Any], Writers, sqlite3.Connection, psycopg.Connection[Any]]]:
    """Writers on `route` past their first rows, then a freeze announced: every writer waits."""
    route_to(path, route, dsn)
    router = make_router(path, dsn)
    writers = Writers(router)
    try:
        writers.start()
        with control(path) as conn, psycopg.connect(dsn, autocommit=True) as pg:
            freeze(conn, 10, pg=pg)  # announce first...
            writers.go.set()
            wait_until(lambda: router.stats()["freeze_waits"] >= 4)  # ...every writer waits, none holds the lock
            yield router, writers, conn, pg
    finally:
        router.close()


def test_a_freeze_holds_writers_off_the_lock_and_they_follow_the_flip(sides: tuple[Path, str]) -> None:
    path, dsn = sides
    with writers_held_by_a_freeze(path, dsn, "dual") as (router, writers, conn, pg):
        with atomic(conn):  # ...then lock (at once: no writer queues for it), drain, flip
            set_route(conn, Route.POSTGRES, pg=pg)
        before, after = writers.finish()
        on_sqlite, on_postgres = names(path, dsn)
        assert on_sqlite == before and on_postgres == before | after  # dual before the flip, PostgreSQL after
        assert router.discrepancies.recent() == [] and router.stats()["freeze_timeouts"] == 0
        pauses = router.stats()["pauses"]
        assert pauses["count"] >= 4  # each waiting writer's pause, as it saw it
        assert sum(pauses["histogram_ms"].values()) == pauses["count"]  # and in the histogram's buckets


def test_a_freeze_lapses_by_itself_and_one_that_outlasts_a_writer_is_unavailable(sides: tuple[Path, str]) -> None:
    path, dsn = sides
    router = make_router(path, dsn, router_policy=RouterPolicy(freeze_wait_s=0.3))
    try:
        with control(path) as conn:
            freeze(conn, 30)
            with pytest.raises(Unavailable, match="route stayed frozen") as refused:
                router.one(HOME.sql.ITEM_ADD, ("frozen out", 1.0, True, None, None))
            assert refused.value.kind == "route_frozen"
            assert router.one(HOME.sql.ITEM_COUNT)["n"] == 0  # reads go on during a freeze
            freeze(conn, 0.1)  # a cutover killed after announcing: its freeze ends without it
            router.one(HOME.sql.ITEM_ADD, ("after the lapse", 1.0, True, None, None))
        assert names(path, dsn) == ({"after the lapse"}, set())
        assert router.stats()["freeze_timeouts"] == 1
    finally:
        router.close()


def test_on_postgres_a_rollback_is_noticed_through_the_mirrored_row(sides: tuple[Path, str]) -> None:
    path, dsn = sides
    with writers_held_by_a_freeze(path, dsn, "postgres") as (_router, writers, conn, _pg):
        with psycopg.connect(dsn) as rollback:  # waits for PostgreSQL writers in flight (their FOR SHARE)
            rollback.execute(f"SELECT 1 FROM {mirror.TABLE.as_string()} WHERE id = 1 FOR UPDATE")
            set_route(conn, Route.SQLITE, pg=rollback)  # SQLite's row first, then the mirror, committed here
        before, after = writers.finish()
        on_sqlite, on_postgres = names(path, dsn)
        assert on_postgres == before and on_sqlite == after


def test_reads_follow_the_route(sides: tuple[Path, str]) -> None:
    path, dsn = sides
    router = make_router(path, dsn)
    try:
        router.one(HOME.sql.ITEM_ADD, ("sqlite's", 1.0, True, None, None))
        with psycopg.connect(dsn, autocommit=True) as pg:
            pg.execute("INSERT INTO items (name, active) VALUES ('postgres''s', true)")
        assert router.one(HOME.sql.ITEM_GET, (1,))["name"] == "sqlite's"
        route_to(path, "postgres")
        assert router.one(HOME.sql.ITEM_GET, (1,))["name"] == "postgres's"
        assert router.settings()["route"] == "postgres"
    finally:
        router.close()


def test_on_postgres_a_transaction_holds_off_the_rollback_and_a_flipped_mirror_holds_off_writers(
    sides: tuple[Path, str],
) -> None:
    path, dsn = sides
    route_to(path, "postgres", dsn)
    router = make_router(path, dsn)
    inside, release = threading.Event(), threading.Event()

    def in_flight() -> None:
        with router.transaction():
            router.one(HOME.sql.ITEM_ADD, ("in flight", 1.0, True, None, None))
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=in_flight)
    writers = Writers(router)
    try:
        worker.start()
        assert inside.wait(10)
        with psycopg.connect(dsn) as rollback:  # the rollback's FOR UPDATE waits for that transaction
            rollback.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                rollback.execute(f"SELECT 1 FROM {mirror.TABLE.as_string()} WHERE id = 1 FOR UPDATE")
        release.set()
        worker.join(10)
        writers.start()
        with control(path) as conn, psycopg.connect(dsn, autocommit=True) as pg:
            # half-way through a rollback: the mirror says sqlite, SQLite's row still postgres
            mirror.write(pg, RouteState(Route.SQLITE, version=read_route(conn).version + 1))
            writers.go.set()
            wait_until(lambda: router.stats()["freeze_waits"] >= 4)  # none writes to PostgreSQL meanwhile
            set_route(conn, Route.SQLITE)
            before, after = writers.finish()
        on_sqlite, on_postgres = names(path, dsn)
        assert on_postgres == before | {"in flight"} and on_sqlite == after
    finally:
        release.set()
        router.close()


def test_the_pause_histogram_puts_each_pause_in_its_bucket() -> None:
    ordered = sorted([0.001, 0.010, 0.0101, 0.099, 0.1, 0.5, 0.501, 2.0])
    assert pause_histogram(ordered) == {"<=10": 2, "<=50": 1, "<=100": 2, "<=500": 1, ">500": 2}
    assert pause_summary([])["count"] == 0 and pause_summary(ordered)["histogram_ms"] == pause_histogram(ordered)
