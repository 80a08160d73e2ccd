"""The dual route on real SQLite and PostgreSQL (pgferry.runtime.routed + dual): SQLite's answer is
what the caller gets; PostgreSQL's writes mirror SQLite's transactions, its reads are compared, and
its mismatches, exceptions and timeouts are recorded, never raised; the breaker opens and closes."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import psycopg
import pytest

from docs_examples import run_example
from dual_app import HOME, ROW, make_router, make_sides, route_to
from pgferry.runtime import DialectError, querystats
from pgferry.runtime.dual import DiscrepancyLog, DualPolicy, Experiment
from pgferry.runtime.route import set_route
from threads import held_elsewhere


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sides(tmp_path: Path, pg_dsn: str) -> tuple[Path, str]:
    path = tmp_path / "app.db"
    make_sides(path, pg_dsn)
    route_to(path, "dual")
    return path, pg_dsn


def pg(dsn: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


def lite(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def fail_inserts_on_postgres(dsn: str) -> None:
    pg(dsn, "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$")
    pg(dsn, "CREATE TRIGGER refuse BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION refuse()")


def test_writes_mirror_the_control_transaction_and_compare_returning(sides: tuple[Path, str]) -> None:
    path, dsn = sides
    router = make_router(path, dsn)
    sql = HOME.sql
    try:
        with querystats.counting() as stats, router.transaction():
            new = router.one(sql.ITEM_ADD, ROW)["id"]
            assert router.run(sql.ITEM_RENAME, ("renamed", new)) == 1
        # the caller's count is SQLite's (BEGIN, route, 2 statements, COMMIT); PostgreSQL's is apart
        assert stats.queries == 5 and stats.shadow_queries == 4
        with pytest.raises(RuntimeError), router.transaction():  # the control rolls back: so does the candidate
            router.one(sql.ITEM_ADD, ("gone", 1.0, False, None, None))
            raise RuntimeError("the application changed its mind")
        after = router.one(sql.ITEM_ADD, ("next", 1.0, False, None, None))[
            "id"
        ]  # outside a transaction: one of its own
        assert after == new + 1  # PostgreSQL's identity was put back: its RETURNING id is SQLite's again
        assert [e.to_json() for e in router.discrepancies.recent()] == []
        assert pg(dsn, "SELECT id, name FROM items WHERE id >= %s ORDER BY id", (new,)) == [
            (new, "renamed"),
            (after, "next"),
        ]
        assert lite(path, f"SELECT id, name FROM items WHERE id >= {new} ORDER BY id") == [
            (new, "renamed"),
            (after, "next"),
        ]
    finally:
        router.close()


def test_shadow_read_mismatch_is_recorded_with_key_and_fields_and_never_seen(sides: tuple[Path, str]) -> None:
    path, dsn = sides
    log_file = path.parent / "discrepancies.jsonl"
    seen: list[str] = []
    router = make_router(
        path,
        dsn,
        experiment=Experiment(DualPolicy(), DiscrepancyLog(path=log_file, on_record=lambda d: seen.append(d.kind))),
    )
    try:
        pg(dsn, "UPDATE items SET name = 'drifted', active = false WHERE id = 2")
        rows = router.all(HOME.sql.ITEMS)
        assert [(r["id"], r["name"]) for r in rows] == [(1, "widget1"), (2, "widget2"), (3, "widget3")]
        row = router.one(HOME.sql.ITEM_GET, (2,))
        assert row["name"] == "widget2" and row["active"] == 1  # SQLite's row, as SQLite gives it
        first, second = router.discrepancies.recent()
        assert (first.kind, first.statement, [(r.key, r.kind, r.fields) for r in first.rows]) == (
            "mismatch",
            "ITEMS",
            [(2, "differs", {"name": ("widget2", "drifted")})],
        )
        assert second.statement == "ITEM_GET" and second.params == (2,)
        assert second.rows[0].fields == {
            "name": ("widget2", "drifted"),
            "active": (1, False),
        }  # price, dates, JSON agree
        lines = [json.loads(line) for line in log_file.read_text().splitlines()]
        assert [x["statement"] for x in lines] == ["ITEMS", "ITEM_GET"] and seen == ["mismatch", "mismatch"]
        assert lines[1]["rows"][0] == {
            "key": 2,
            "kind": "differs",
            "fields": {"name": ["widget2", "drifted"], "active": [1, False]},
        }
        assert "postgresql://" not in log_file.read_text() and dsn not in log_file.read_text()
    finally:
        router.close()


def test_candidate_exception_is_recorded_once_and_the_rest_of_its_transaction_skipped(sides: tuple[Path, str]) -> None:
    path, dsn = sides
    router = make_router(path, dsn)
    fail_inserts_on_postgres(dsn)
    try:
        with router.transaction():
            new = router.one(HOME.sql.ITEM_ADD, ROW)["id"]
            router.run(HOME.sql.ITEM_RENAME, ("renamed", 1))
            router.all(HOME.sql.ITEMS)
        assert new == 4 and lite(path, "SELECT name FROM items WHERE id = 1") == [("renamed",)]
        (entry,) = router.discrepancies.recent()
        assert entry.kind == "error" and entry.statement == "ITEM_ADD" and "refused" in (entry.detail or "")
        assert entry.in_transaction
        assert pg(dsn, "SELECT count(*), min(name) FROM items") == [(3, "widget1")]  # nothing of it on PostgreSQL
        stats = router.settings()["dual"]
        assert stats["errors"] == 1 and stats["skipped"] == 2  # the rename and the read after it
    finally:
        router.close()


def test_candidate_timeout_on_a_row_lock_is_recorded_and_the_caller_goes_on(sides: tuple[Path, str]) -> None:
    path, dsn = sides
    router = make_router(path, dsn, policy=DualPolicy(budget_ms=200))

    @__import__("contextlib").contextmanager
    def row_locked():  # type: ignore[no-untyped-def]
        with psycopg.connect(dsn) as other:
            other.execute("SELECT * FROM items WHERE id = 1 FOR UPDATE")
            yield

    try:
        with held_elsewhere(row_locked):
            assert router.run(HOME.sql.ITEM_RENAME, ("renamed", 1)) == 1
        (entry,) = router.discrepancies.recent()
        assert entry.kind == "timeout" and entry.statement == "ITEM_RENAME" and "cancel" in (entry.detail or "")
        assert lite(path, "SELECT name FROM items WHERE id = 1") == [("renamed",)]
        assert pg(dsn, "SELECT name FROM items WHERE id = 1") == [("widget1",)]
    finally:
        router.close()


def test_breaker_opens_after_consecutive_failures_and_a_half_open_trial_closes_it(sides: tuple[Path, str]) -> None:
    path, dsn = sides
    clock = Clock()
    experiment = Experiment(DualPolicy(failures=2, cooldown_s=30), DiscrepancyLog(), clock=clock)
    router = make_router(path, dsn, experiment=experiment)
    fail_inserts_on_postgres(dsn)
    add = HOME.sql.ITEM_ADD
    try:
        router.one(add, ROW)
        assert experiment.breaker.state == "closed"
        router.one(add, ROW)
        assert experiment.breaker.state == "open" and len(router.discrepancies.recent()) == 2
        router.one(add, ROW)  # open: the candidate is not asked at all
        router.all(HOME.sql.ITEMS)
        assert len(router.discrepancies.recent()) == 2 and experiment.breaker.describe()["skipped"] == 2
        clock.now += 31  # cool-down over: one trial, which fails, opens it again
        router.one(add, ROW)
        assert experiment.breaker.state == "open" and experiment.breaker.opened == 2
        pg(dsn, "DROP TRIGGER refuse ON items")
        pg(dsn, "SELECT setval(pg_get_serial_sequence('items', 'id'), 7)")  # what the cutover's reset does
        clock.now += 31
        assert router.one(add, ("back", 1.0, True, None, None))["id"] == 8  # the trial succeeds: closed
        assert experiment.breaker.state == "closed"
        assert pg(dsn, "SELECT name FROM items WHERE id = 8") == [("back",)]
        assert len(router.discrepancies.recent()) == 3
        assert router.settings()["dual"]["breaker"]["state"] == "closed"
    finally:
        router.close()


def test_unsampled_reads_are_not_shadowed_and_unknown_statements_are_refused(sides: tuple[Path, str]) -> None:
    path, dsn = sides
    router = make_router(path, dsn, policy=DualPolicy(sample=0.0))
    try:
        pg(dsn, "UPDATE items SET name = 'drifted'")
        assert router.one(HOME.sql.ITEM_COUNT)["n"] == 3
        assert router.discrepancies.recent() == [] and router.settings()["dual"]["shadow_reads"] == 0
        with pytest.raises(DialectError, match=r"not a statement of the 'sqlite' dialect of ItemSql.*SELECT 42"):
            router.one("SELECT 42")
    finally:
        router.close()


def test_concurrent_dual_writers_keep_both_sides_equal(sides: tuple[Path, str]) -> None:
    path, dsn = sides
    router = make_router(path, dsn)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                with router.transaction():
                    new = router.one(HOME.sql.ITEM_ADD, (f"w{n}-{i}", 1.0, True, None, None))["id"]
                    router.run(HOME.sql.ITEM_RENAME, (f"w{n}-{i}!", new))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == [] and router.discrepancies.recent() == []
        both = "SELECT id, name FROM items ORDER BY id"
        assert pg(dsn, both) == lite(path, both) and len(lite(path, both)) == 63
    finally:
        router.close()


def test_the_docs_example_runs_on_the_dual_route(
    tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/runtime.md's router example, in a directory holding its shop.db, on the dual route: SQLite
    answers, PostgreSQL took the same write, and the discrepancy log it names stays empty."""
    monkeypatch.chdir(tmp_path)
    conn = sqlite3.connect("shop.db", isolation_level=None)
    conn.execute("CREATE TABLE items (sku text PRIMARY KEY, left_in_stock int NOT NULL)")
    conn.execute("INSERT INTO items VALUES ('sku-1', 10)")
    set_route(conn, "dual")
    conn.close()
    pg(pg_dsn, "CREATE TABLE items (sku text PRIMARY KEY, left_in_stock int NOT NULL)")
    pg(pg_dsn, "INSERT INTO items VALUES ('sku-1', 10)")
    run_example("runtime.md", "## The route and dual writes", {"postgresql://shop@127.0.0.1/shop": pg_dsn})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "{'sku': 'sku-1', 'left_in_stock': 7}" and printed[1].startswith("dual {")
    assert pg(pg_dsn, "SELECT left_in_stock FROM items") == [(7,)]  # the candidate ran the same write
    assert (tmp_path / "discrepancies.jsonl").read_text() == ""
