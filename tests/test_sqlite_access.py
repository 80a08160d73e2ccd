"""pgferry.sqlite's access layer on real SQLite files: opens, atomic(), busy test, retry, control tables."""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgferry.errors import SourceError
from pgferry.sqlite.atomic import WriteLockError, atomic, write_lock
from pgferry.sqlite.busy import Attempt, Backoff, is_busy, retry
from pgferry.sqlite.connect import check_sqlite_file, open_readonly, open_writable, text_as
from pgferry.sqlite.control import ControlTable

pytestmark = pytest.mark.timeout(60)

FAST = Backoff(initial_s=0.01, factor=2.0, max_s=0.05, jitter=0.1)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.commit()
    conn.close()
    return path


def rows(path: Path) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return sorted(r[0] for r in conn.execute("SELECT x FROM t"))
    finally:
        conn.close()


@pytest.fixture
def holder(db: Path) -> Iterator[sqlite3.Connection]:
    """Another connection of the same file, holding the write lock until a test lets it go."""
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES (-1)")
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


def release_after(conn: sqlite3.Connection, seconds: float) -> threading.Thread:
    def release() -> None:
        time.sleep(seconds)
        conn.execute("COMMIT")

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def busy_error(db: Path) -> sqlite3.OperationalError:
    """A real SQLITE_BUSY, raised by SQLite itself."""
    a = sqlite3.connect(db, isolation_level=None)
    b = sqlite3.connect(db, isolation_level=None, timeout=0)
    try:
        a.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as info:
            b.execute("BEGIN IMMEDIATE")
        return info.value
    finally:
        a.execute("ROLLBACK")
        a.close()
        b.close()


# --- opens -------------------------------------------------------------------------------------


def test_readonly_cannot_write_and_writable_can(db: Path) -> None:
    ro = open_readonly(db)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        ro.execute("INSERT INTO t VALUES (1)")
    ro.close()
    rw = open_writable(db)
    assert rw.isolation_level is None
    assert rw.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    rw.execute("INSERT INTO t VALUES (1)")  # autocommit: visible to others at once
    rw.close()
    assert rows(db) == [1]


@pytest.mark.parametrize("opener", [open_readonly, open_writable])
def test_bad_files_are_source_errors_naming_the_path(tmp_path: Path, opener: Any) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(SourceError, match=f"{missing}: no such file"):
        opener(missing)
    assert not missing.exists()  # a writable open never creates the file
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all")
    with pytest.raises(SourceError, match=f"{junk}: not a SQLite database"):
        opener(junk)
    with pytest.raises(SourceError, match="is a directory"):
        opener(tmp_path)
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(SourceError, match=f"{damaged}: cannot"):
        opener(damaged)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes any file")
def test_unreadable_and_unwritable_files(db: Path) -> None:
    db.chmod(0o444)
    with pytest.raises(SourceError, match="no write permission"):
        open_writable(db)
    open_readonly(db).close()
    db.chmod(0o000)
    try:
        with pytest.raises(SourceError, match=f"{db}: cannot read"):
            open_readonly(db)
    finally:
        db.chmod(0o644)


def test_text_as_restores_the_previous_factory(db: Path) -> None:
    conn = open_writable(db)
    conn.execute("CREATE TABLE s (v TEXT)")
    conn.execute("INSERT INTO s VALUES (CAST(x'ff41' AS TEXT))")  # not UTF-8
    with pytest.raises(sqlite3.OperationalError, match="decode"):
        conn.execute("SELECT v FROM s").fetchone()
    with text_as(conn, bytes):
        assert conn.execute("SELECT v FROM s").fetchone()[0] == b"\xffA"
    assert conn.text_factory is str
    with pytest.raises(ZeroDivisionError), text_as(conn, lambda b: b.decode("utf-8", "replace")):
        assert conn.execute("SELECT v FROM s").fetchone()[0] == "\ufffdA"
        raise ZeroDivisionError
    assert conn.text_factory is str
    conn.close()


# --- atomic ------------------------------------------------------------------------------------


class Boom(Exception):
    pass


Block = tuple[list[Any], bool]  # (items, raises); an item is "insert" (one row) or a nested Block

blocks: st.SearchStrategy[Block] = st.recursive(
    st.tuples(st.lists(st.just("insert"), max_size=3), st.booleans()),
    lambda inner: st.tuples(st.lists(st.one_of(st.just("insert"), inner), max_size=4), st.booleans()),
    max_leaves=25,
)


def run_block(conn: sqlite3.Connection, block: Block, numbers: Iterator[int]) -> set[int]:
    """Run `block` in atomic(); returns the rows the model says it leaves (none when it raised)."""
    items, raises = block
    kept: set[int] = set()
    try:
        with atomic(conn):
            for item in items:
                if isinstance(item, str):
                    n = next(numbers)
                    conn.execute("INSERT INTO t VALUES (?)", (n,))
                    kept.add(n)
                else:
                    kept |= run_block(conn, item, numbers)
            if raises:
                raise Boom
    except Boom:
        return set()
    return kept


@settings(max_examples=150, deadline=None)
@given(block=blocks)
def test_random_nestings_end_as_the_model_predicts(block: Block) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (x INTEGER)")
    expected = run_block(conn, block, itertools.count())
    assert not conn.in_transaction
    assert {r[0] for r in conn.execute("SELECT x FROM t")} == expected
    conn.close()


def test_nested_failure_undoes_only_its_own_work(db: Path) -> None:
    conn = open_writable(db)
    with atomic(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(Boom), atomic(conn):
            conn.execute("INSERT INTO t VALUES (2)")
            raise Boom
        with atomic(conn):
            conn.execute("INSERT INTO t VALUES (3)")
        assert rows(db) == []  # nothing is visible to another connection before the outer COMMIT
    assert rows(db) == [1, 3]
    conn.close()


def test_outermost_block_takes_the_write_lock_at_once(db: Path) -> None:
    conn = open_writable(db)
    other = sqlite3.connect(db, isolation_level=None, timeout=0)
    with atomic(conn):  # no write yet, but BEGIN IMMEDIATE already holds the lock
        with pytest.raises(sqlite3.OperationalError) as info:
            other.execute("INSERT INTO t VALUES (9)")
        assert is_busy(info.value)
    other.close()
    conn.close()


def test_atomic_nests_in_a_transaction_the_caller_opened(db: Path) -> None:
    conn = sqlite3.connect(db)  # Python's default isolation level: implicit transactions
    conn.execute("INSERT INTO t VALUES (1)")  # opens a transaction implicitly
    with atomic(conn):
        conn.execute("INSERT INTO t VALUES (2)")
    assert conn.in_transaction  # atomic() did not commit the caller's transaction
    conn.rollback()
    assert rows(db) == []
    with atomic(conn):
        conn.execute("INSERT INTO t VALUES (3)")
    assert rows(db) == [3]
    conn.close()


def test_a_failed_commit_rolls_back_and_raises(db: Path) -> None:
    conn = open_writable(db)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE p (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE c (p_id INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)")
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"), atomic(conn):
        conn.execute("INSERT INTO c VALUES (42)")  # checked only at COMMIT
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM c").fetchone()[0] == 0
    conn.close()


def test_a_trigger_that_ends_the_transaction_keeps_its_error(db: Path) -> None:
    conn = open_writable(db)
    conn.execute("CREATE TRIGGER no_sevens BEFORE INSERT ON t WHEN NEW.x = 7 BEGIN SELECT RAISE(ROLLBACK, 'no 7'); END")
    with pytest.raises(sqlite3.IntegrityError, match="no 7"), atomic(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        with atomic(conn):  # the savepoint is gone with the transaction: no "no such savepoint" error
            conn.execute("INSERT INTO t VALUES (7)")
    assert not conn.in_transaction
    assert rows(db) == []
    conn.close()


def test_write_lock_holds_writers_off_and_writes_nothing(db: Path) -> None:
    conn = open_writable(db)
    other = sqlite3.connect(db, isolation_level=None, timeout=0)
    with write_lock(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("INSERT INTO t VALUES (2)")
    other.execute("INSERT INTO t VALUES (3)")
    assert rows(db) == [3]
    conn.execute("BEGIN")
    with pytest.raises(ValueError, match="outside any transaction"), write_lock(conn):
        pass
    conn.execute("ROLLBACK")
    other.close()
    conn.close()


# --- busy and retry ----------------------------------------------------------------------------


def test_is_busy_on_real_errors(db: Path, tmp_path: Path) -> None:
    busy = busy_error(db)
    assert busy.sqlite_errorcode == sqlite3.SQLITE_BUSY and is_busy(busy)

    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE u (x)")
    conn.executemany("INSERT INTO u VALUES (?)", [(i,) for i in range(10)])
    cursor = conn.execute("SELECT x FROM u")
    cursor.fetchone()
    with pytest.raises(sqlite3.OperationalError) as locked:
        conn.execute("DROP TABLE u")  # a statement still reads it: SQLITE_LOCKED
    assert locked.value.sqlite_errorcode == sqlite3.SQLITE_LOCKED and is_busy(locked.value)
    cursor.close()

    a = sqlite3.connect("file:shared_lock?mode=memory&cache=shared", uri=True, isolation_level=None)
    b = sqlite3.connect("file:shared_lock?mode=memory&cache=shared", uri=True, isolation_level=None)
    a.execute("CREATE TABLE v (x)")
    a.execute("BEGIN")
    a.execute("INSERT INTO v VALUES (1)")
    with pytest.raises(sqlite3.OperationalError) as shared:
        b.execute("SELECT * FROM v").fetchall()  # SQLITE_LOCKED_SHAREDCACHE, an extended code
    assert shared.value.sqlite_errorcode != sqlite3.SQLITE_LOCKED and is_busy(shared.value)
    a.close()
    b.close()

    with pytest.raises(sqlite3.OperationalError) as named:
        conn.execute('SELECT * FROM "database is locked"')  # the words, not the condition
    assert not is_busy(named.value)
    with pytest.raises(sqlite3.IntegrityError) as integrity:
        conn.execute("CREATE TABLE k (x UNIQUE)")
        conn.executemany("INSERT INTO k VALUES (?)", [(1,), (1,)])
    assert not is_busy(integrity.value)
    assert not is_busy(ValueError("database is locked"))
    conn.close()


def test_a_refused_write_lock_is_busy_but_a_retry_that_gave_up_is_not(db: Path, holder: sqlite3.Connection) -> None:
    conn = open_writable(db, busy_timeout_ms=0)
    with (
        pytest.raises(WriteLockError, match="adding: cannot take the write lock") as refused,
        atomic(conn, what="adding"),
    ):
        pass
    assert isinstance(refused.value, SourceError) and is_busy(refused.value)
    with pytest.raises(SourceError) as gave_up:
        retry(lambda: conn.execute("BEGIN IMMEDIATE"), what="x", deadline_s=0.05, backoff=FAST)
    assert not is_busy(gave_up.value)  # an outer retry does not start the wait over
    conn.close()


def test_retry_waits_for_a_writer_that_lets_go_within_the_deadline(db: Path, holder: sqlite3.Connection) -> None:
    conn = open_writable(db, busy_timeout_ms=20)  # short, so the retry loop (not busy_timeout) does the waiting

    def add() -> int:
        with atomic(conn, what="adding a row"):
            return conn.execute("INSERT INTO t VALUES (5)").rowcount

    thread = release_after(holder, 0.3)
    started = time.monotonic()
    try:
        assert retry(add, what="adding a row", deadline_s=5.0, backoff=FAST) == 1
    finally:
        thread.join()
    assert 0.25 < time.monotonic() - started < 4.0
    assert rows(db) == [-1, 5]
    conn.close()


def test_retry_gives_up_at_the_deadline_naming_the_work(db: Path, holder: sqlite3.Connection) -> None:
    conn = open_writable(db, busy_timeout_ms=20)

    def add() -> None:
        with atomic(conn, what="adding a row"):
            conn.execute("INSERT INTO t VALUES (5)")

    started = time.monotonic()
    with pytest.raises(
        SourceError, match=r"adding a row: the database stayed locked by a writer for \d+\.\d s \(\d+ tries\)"
    ):
        retry(add, what="adding a row", deadline_s=0.4, backoff=FAST)
    assert 0.4 <= time.monotonic() - started < 2.0
    holder.execute("ROLLBACK")
    assert rows(db) == []
    conn.close()


def test_open_readonly_waits_out_an_exclusive_writer(db: Path) -> None:
    writer = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN EXCLUSIVE")  # rollback-journal mode: readers are refused too
    with pytest.raises(SourceError, match=f"{db}: the database is locked by a writer"):
        open_readonly(db, busy_timeout_ms=10)
    thread = release_after(writer, 0.3)
    try:
        conn = open_readonly(db, busy_timeout_ms=10, lock_wait_s=5.0)
    finally:
        thread.join()
        writer.close()
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    conn.close()


def test_retry_does_not_retry_other_errors(db: Path) -> None:
    calls: list[int] = []

    def fails() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("no such table: nope")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        retry(fails, what="x", deadline_s=5.0, backoff=FAST)
    assert len(calls) == 1
    busy = busy_error(db)
    outcomes: list[Exception | None] = [busy, busy, None]

    def flaky() -> str:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return "done"

    assert retry(flaky, what="x", deadline_s=5.0, backoff=FAST) == "done"
    assert outcomes == []


def test_backoff_schedule_with_injected_randomness() -> None:
    draws = iter([0.5, 1.0, 0.0, 0.5, 0.5, 0.5])
    backoff = Backoff(initial_s=0.1, factor=2.0, max_s=0.4, jitter=0.5, rand=lambda: next(draws))
    attempt = Attempt(1.0, now=10.0, backoff=backoff)
    assert attempt.next_delay(10.0) == pytest.approx(0.1)  # draw 0.5: no jitter
    assert attempt.next_delay(10.1) == pytest.approx(0.3)  # 0.2, +50%
    assert attempt.next_delay(10.4) == pytest.approx(0.2)  # 0.4, -50%
    assert attempt.next_delay(10.6) == pytest.approx(0.4)  # capped at max_s
    assert attempt.next_delay(10.9) == pytest.approx(0.1)  # cut short at the deadline
    assert attempt.next_delay(11.0) is None
    assert attempt.tries == 6


@given(
    draws=st.lists(st.floats(min_value=0.0, max_value=1.0, exclude_max=True), min_size=1, max_size=30),
    deadline=st.floats(min_value=0.0, max_value=10.0),
    step=st.floats(min_value=0.0, max_value=0.5),
)
def test_backoff_never_waits_past_the_deadline(draws: list[float], deadline: float, step: float) -> None:
    source = itertools.cycle(draws)
    backoff = Backoff(initial_s=0.05, factor=2.0, max_s=2.0, jitter=0.25, rand=lambda: next(source))
    attempt = Attempt(deadline, now=0.0, backoff=backoff)
    now, base = 0.0, 0.05
    for _ in range(60):
        delay = attempt.next_delay(now)
        if delay is None:
            assert now >= deadline
            return
        assert 0.0 <= delay <= deadline - now + 1e-12
        assert delay <= base * 1.25 + 1e-12
        if now + delay < deadline:
            assert delay >= base * 0.75 - 1e-12
        base = min(base * 2.0, 2.0)
        now += delay + step
    pytest.fail("the attempt never gave up")


# --- control tables ----------------------------------------------------------------------------


def test_control_table_round_trip(db: Path) -> None:
    table = ControlTable('_pgferry_odd "name"', (("key", "TEXT PRIMARY KEY"), ('va"lue', "TEXT")), key="key")
    conn = open_writable(db)
    assert table.read(conn) == [] and not table.exists(conn)
    assert table.delete(conn, "a") == 0 and table.drop(conn) is False
    hostile = "'); DROP TABLE t; --"
    table.write(conn, {"key": "b", 'va"lue': hostile})  # creates the table
    table.write(conn, {"key": "a", 'va"lue': None})
    assert table.read(conn) == [{"key": "a", 'va"lue': None}, {"key": "b", 'va"lue': hostile}]
    with pytest.raises(sqlite3.IntegrityError):
        table.write(conn, {"key": "a", 'va"lue': "again"})
    table.write(conn, {"key": "a", 'va"lue': "again"}, replace=True)
    with pytest.raises(ValueError, match="no column"):
        table.write(conn, {"key": "c", "other": 1})
    conn.close()
    conn = open_readonly(db)  # it is in the file, for the next process
    assert table.read(conn) == [{"key": "a", 'va"lue': "again"}, {"key": "b", 'va"lue': hostile}]
    conn.close()
    conn = open_writable(db)
    assert table.delete(conn, "a") == 1
    assert table.drop(conn, only_if_empty=True) is False
    assert table.delete(conn, "b") == 1
    assert table.drop(conn, only_if_empty=True) is True
    assert not table.exists(conn)
    assert rows(db) == []  # the hostile value stayed a value
    conn.close()


def test_control_tables_are_pgferry_names_with_a_real_key() -> None:
    with pytest.raises(ValueError, match="must start with"):
        ControlTable("users", (("id", "INTEGER PRIMARY KEY"),), key="id")
    with pytest.raises(ValueError, match="not one of its columns"):
        ControlTable("_pgferry_x", (("id", "INTEGER PRIMARY KEY"),), key="name")


def test_opening_again_keeps_the_locks_of_connections_already_open(tmp_path: Path) -> None:
    """A new connection (check_sqlite_file, open_readonly) must not open() and close() the file
    itself: that drops the process's POSIX locks, and another process closing its connection then
    takes itself for the last one and deletes the WAL under the open ones (stale reads after)."""
    path = tmp_path / "wal.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode = wal")
    setup.execute("CREATE TABLE t (v)")
    setup.close()
    reader = open_readonly(path)
    assert reader.execute("SELECT count(*) FROM t").fetchone() == (0,)
    check_sqlite_file(path)
    open_readonly(path).close()  # the openings that used to read the header with open()
    for value in (1, 2):  # another process writes and closes, as a cutover or `pgferry migrate` would
        code = (
            f"import sqlite3; c = sqlite3.connect({str(path)!r}); "
            f"c.execute('INSERT INTO t VALUES ({value})'); c.commit(); c.close()"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
        assert (tmp_path / "wal.db-wal").exists()  # not deleted: this process is still connected
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (value,)
    reader.close()
