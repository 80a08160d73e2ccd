"""pgferry.pg.matview on the session's PostgreSQL: made where missing (twice is once), refreshed
CONCURRENTLY while readers read it, one refresher at a time, its age, the scheduled refresher."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from pgferry.pg.matview import MaterializedView, Refresher, age_s, ensure, refresh
from pgferry.runtime.postgres import PostgresDatabase

VIEW = MaterializedView(
    "order_stats", "SELECT sku, count(*) AS orders, sum(qty) AS qty FROM orders GROUP BY sku", unique=("sku",)
)
SKUS = 20


@pytest.fixture
def db(pg_dsn: str) -> Iterator[PostgresDatabase]:
    database = PostgresDatabase(pg_dsn)
    database.run("CREATE TABLE orders (id serial PRIMARY KEY, sku text NOT NULL, qty int NOT NULL)")
    database.run("INSERT INTO orders (sku, qty) SELECT 'sku-' || (i % $1), 1 FROM generate_series(1, 2000) i", (SKUS,))
    try:
        yield database
    finally:
        database.close()


def test_made_once_with_its_unique_index_and_age(db: PostgresDatabase) -> None:
    ensure(db, VIEW)
    ensure(db, VIEW)  # a second process starting: nothing changes
    assert len(db.all('SELECT * FROM "order_stats"')) == SKUS
    index = db.one("SELECT indexdef FROM pg_indexes WHERE indexname = 'order_stats_unique'")
    assert "UNIQUE" in index["indexdef"]
    age = age_s(db, VIEW)
    assert age is not None and age >= 0


def test_refreshed_concurrently_while_readers_read(db: PostgresDatabase) -> None:
    ensure(db, VIEW)
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: list[tuple[int, int]] = []

    def read() -> None:
        while not stop.is_set():
            try:
                row = db.one('SELECT count(*) AS skus, sum(orders)::int AS orders FROM "order_stats"')
                seen.append((row["skus"], row["orders"]))
            except BaseException as exc:
                errors.append(exc)
                return

    readers = [threading.Thread(target=read) for _ in range(4)]
    for r in readers:
        r.start()
    try:
        for i in range(15):
            db.run("INSERT INTO orders (sku, qty) VALUES ($1, 1)", (f"sku-{i % SKUS}",))
            assert refresh(db, VIEW)
    finally:
        stop.set()
        for r in readers:
            r.join()
    assert errors == []
    assert seen and all(skus == SKUS for skus, _ in seen)  # never an empty or half-built view
    assert all(2000 <= orders <= 2015 for _, orders in seen)
    assert db.one('SELECT sum(orders)::int AS n FROM "order_stats"')["n"] == 2015


def test_a_refresh_in_another_process_means_this_one_skips(db: PostgresDatabase, pg_dsn: str) -> None:
    ensure(db, VIEW)
    with psycopg.connect(pg_dsn) as other:  # holds the view's refresh (a transaction open)
        other.execute("SELECT pg_advisory_xact_lock(hashtext('pgferry.matview:order_stats'))")
        assert refresh(db, VIEW) is False
    assert refresh(db, VIEW) is True


def test_an_on_demand_refresh_waits_for_the_one_in_flight_then_refreshes(db: PostgresDatabase, pg_dsn: str) -> None:
    ensure(db, VIEW)
    db.run("INSERT INTO orders (sku, qty) VALUES ('sku-late', 1)")
    refresher = Refresher(db, VIEW, every_s=3600)  # not started: on demand only
    result: list[bool] = []
    with psycopg.connect(pg_dsn) as other:  # another process's refresh, in flight
        other.execute("SELECT pg_advisory_xact_lock(hashtext('pgferry.matview:order_stats'))")
        asker = threading.Thread(target=lambda: result.append(refresher.now()))
        asker.start()
        asker.join(0.3)
        other.rollback()
    asker.join(30)
    assert result == [True] and refresher.skipped == 0
    assert db.one("""SELECT orders FROM "order_stats" WHERE sku = 'sku-late'""")["orders"] == 1


def test_the_refresher_refreshes_on_its_schedule_and_on_demand(db: PostgresDatabase) -> None:
    ensure(db, VIEW)
    db.run("INSERT INTO orders (sku, qty) VALUES ('sku-new', 1)")
    with Refresher(db, VIEW, every_s=0.05) as refresher:
        stopped = threading.Event()
        for _ in range(400):  # bounded: the thread's first rounds
            if refresher.refreshes >= 2:
                break
            stopped.wait(0.05)
        assert refresher.now() is True
    assert refresher.refreshes >= 3 and refresher.failures == 0
    assert db.one("""SELECT orders FROM "order_stats" WHERE sku = 'sku-new'""")["orders"] == 1
