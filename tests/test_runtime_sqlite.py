"""pgferry.runtime's SQLite backend on real files: journal mode read back, connection sharing,
transactions, busy databases as Unavailable, statement counts and capture."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgferry.runtime import Unavailable, querystats
from pgferry.runtime.sqlite import SqliteDatabase, SqlitePolicy
from pgferry.workload.capture import MemorySink
from threads import held_elsewhere, locked_by_another


@pytest.fixture
def path(tmp_path: Path) -> Path:
    file = tmp_path / "app.db"
    conn = sqlite3.connect(file)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
    conn.execute("INSERT INTO t (v) VALUES (1)")
    conn.commit()
    conn.close()
    return file


@pytest.fixture
def opened(path: Path) -> Iterator[list[SqliteDatabase]]:
    """Databases the test opens, closed after it whatever happened."""
    dbs: list[SqliteDatabase] = []
    yield dbs
    for db in dbs:
        db.close()


def open_db(dbs: list[SqliteDatabase], path: Path, **policy: object) -> SqliteDatabase:
    db = SqliteDatabase(path, SqlitePolicy(**policy))  # type: ignore[arg-type]
    dbs.append(db)
    return db


def test_journal_modes_are_tried_in_order_and_the_one_in_force_is_read_back(
    path: Path, opened: list[SqliteDatabase], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="pgferry.runtime"):
        db = open_db(opened, path, journal_modes=("wal2", "wal"), pragmas={"synchronous": "NORMAL"})
    assert db.journal_mode == "wal" and "journal_mode=WAL2 is not supported" in caplog.text
    settings = db.settings()
    assert settings["journal_mode"] == "wal" and settings["synchronous"] == 1 and settings["busy_timeout"] == 10_000
    assert settings["connections"] == "per_thread" and settings["writer_queue"] is True
    db.close()
    pooled = open_db(opened, path, journal_modes=("delete",), pool_size=2, busy_timeout_ms=0)
    assert pooled.settings() | {"journal_mode": "delete", "busy_timeout": 0, "pool_size": 2} == pooled.settings()


@pytest.mark.parametrize("pragmas", [{"synchronous": "OFF; DROP TABLE t"}, {"cache size": 1}])
def test_pragmas_are_names_and_words_only(pragmas: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="only a name and a number or word"):
        SqlitePolicy(pragmas=pragmas)  # type: ignore[arg-type]


def test_a_pool_lends_its_connections_and_says_when_none_is_free(path: Path, opened: list[SqliteDatabase]) -> None:
    db = open_db(opened, path, pool_size=1, pool_wait_s=0.05)
    with pytest.raises(RuntimeError, match="outside hold"):
        db.one("SELECT 1")
    with held_elsewhere(db.hold):  # the only connection
        with querystats.counting() as stats, pytest.raises(Unavailable) as refused, db.hold():
            pass
        assert refused.value.kind == "pool_timeout" and "all 1 database connections are busy" in str(refused.value)
        assert stats.busy == 1 and stats.wait_ms >= 40
    with db.hold():
        assert db.one("SELECT v FROM t")[0] == 1


def test_a_transaction_commits_or_rolls_back_and_counts_begin_and_commit(
    path: Path, opened: list[SqliteDatabase]
) -> None:
    db = open_db(opened, path)
    with querystats.counting() as stats, db.transaction():
        db.run("UPDATE t SET v = 2")
    assert stats.queries == 3  # BEGIN IMMEDIATE, UPDATE, COMMIT
    with pytest.raises(ZeroDivisionError), db.transaction():
        db.run("UPDATE t SET v = 3")
        _ = 1 / 0
    assert db.one("SELECT v FROM t")[0] == 2


def test_a_nested_transaction_is_a_savepoint(path: Path, opened: list[SqliteDatabase]) -> None:
    db = open_db(opened, path)
    with db.transaction():
        db.run("UPDATE t SET v = 10")
        with pytest.raises(KeyError), db.transaction():
            db.run("UPDATE t SET v = 20")
            raise KeyError("inner")
        assert db.one("SELECT v FROM t")[0] == 10
    assert db.one("SELECT v FROM t")[0] == 10


def test_a_locked_database_is_unavailable_not_an_error(path: Path, opened: list[SqliteDatabase]) -> None:
    db = open_db(opened, path, journal_modes=("delete",), busy_timeout_ms=0, pool_size=1)
    with locked_by_another(path):
        with querystats.counting() as stats, db.hold():
            with pytest.raises(Unavailable) as read:
                db.one("SELECT v FROM t")
            with pytest.raises(Unavailable) as write, db.transaction():
                pass
        assert read.value.kind == write.value.kind == "locked" and stats.busy == 2
    with db.hold(), db.transaction():
        assert db.run("UPDATE t SET v = 5") == 1


def test_a_thread_whose_connection_opens_under_a_lock_gets_unavailable(
    path: Path, opened: list[SqliteDatabase]
) -> None:
    db = open_db(opened, path, journal_modes=("delete",), busy_timeout_ms=0)  # one connection per thread
    kinds: list[str] = []

    def first_statement() -> None:  # this thread has no connection yet: it is opened now, under the lock
        try:
            db.one("SELECT v FROM t")
        except Unavailable as exc:
            kinds.append(exc.kind)

    with locked_by_another(path):
        thread = threading.Thread(target=first_statement)
        thread.start()
        thread.join()
    assert kinds == ["locked"]


def test_writers_queue_in_process_and_give_up_after_the_busy_timeout(path: Path, opened: list[SqliteDatabase]) -> None:
    db = open_db(opened, path, busy_timeout_ms=50)
    with held_elsewhere(db.transaction):  # a long writer
        with pytest.raises(Unavailable) as refused, db.transaction():
            pass
        assert refused.value.kind == "write_lock_timeout"
    unqueued = open_db(opened, path, busy_timeout_ms=50, writer_queue=False)
    with unqueued.transaction():  # the queue is per database object: nothing waits here
        unqueued.run("UPDATE t SET v = 7")


def test_captured_statements_name_the_application_code_that_ran_them(path: Path, opened: list[SqliteDatabase]) -> None:
    sink = MemorySink()
    db = SqliteDatabase(path, SqlitePolicy(), capture_sink=sink)
    opened.append(db)
    with db.transaction():
        db.run("UPDATE t SET v = 8")
    sql = [s.sql for s in sink.statements]
    assert sql == ["BEGIN IMMEDIATE", "UPDATE t SET v = 8", "COMMIT"]
    here = f"{__name__}:test_captured_statements_name_the_application_code_that_ran_them"
    assert all(s.site is not None and s.site.startswith(here) for s in sink.statements)
