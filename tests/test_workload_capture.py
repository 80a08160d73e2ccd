"""The capture wrapper, on real sqlite3 connections."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from pgferry.errors import WorkloadError
from pgferry.workload import (
    CapturingConnection,
    CapturingCursor,
    JsonlSink,
    MemorySink,
    Statement,
    capture,
    current_request,
    read_workload,
    request_scope,
)


def _line() -> int:
    """Line number of the caller's next line."""
    return sys._getframe(1).f_lineno + 1


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def conn(sink: MemorySink) -> CapturingConnection:
    wrapped = capture(sqlite3.connect(":memory:"), sink)
    wrapped.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, data BLOB)")
    sink.clear()
    return wrapped


def test_execute_is_recorded_with_sql_params_time_and_utc_start(conn: CapturingConnection, sink: MemorySink) -> None:
    before = dt.datetime.now(dt.UTC)
    conn.execute("INSERT INTO t (name) VALUES (?)", ("alice",))
    conn.execute("SELECT name FROM t WHERE name = :n", {"n": "alice"})
    conn.execute("SELECT count(*) FROM t")
    assert [s.sql for s in sink.statements] == [
        "INSERT INTO t (name) VALUES (?)",
        "SELECT name FROM t WHERE name = :n",
        "SELECT count(*) FROM t",
    ]
    assert [s.params for s in sink.statements] == [["alice"], {"n": "alice"}, None]
    for stmt in sink.statements:
        assert stmt.ms is not None and stmt.ms > 0
        assert stmt.at is not None and stmt.at.utcoffset() == dt.timedelta(0)
        assert before <= stmt.at <= dt.datetime.now(dt.UTC)
        assert stmt.error is None and stmt.many is None


def test_site_is_the_callers_module_function_and_line(conn: CapturingConnection, sink: MemorySink) -> None:
    line = _line()
    conn.execute("SELECT 1")
    cur = conn.cursor()
    cur_line = _line()
    cur.execute("SELECT 2")
    assert sink.statements[0].site == f"{__name__}:test_site_is_the_callers_module_function_and_line:{line}"
    assert sink.statements[1].site == (f"{__name__}:test_site_is_the_callers_module_function_and_line:{cur_line}")


def _helper_in_app_db_layer(conn: CapturingConnection) -> None:
    conn.execute("SELECT 3")


def test_skip_modules_passes_over_an_application_db_helper(sink: MemorySink) -> None:
    wrapped = capture(sqlite3.connect(":memory:"), sink, skip_modules=[__name__])
    wrapped.execute("SELECT 1")
    # every frame of this module is skipped: the site is pytest's caller, not this file
    assert not sink.statements[0].site.startswith(f"{__name__}:")
    plain = capture(sqlite3.connect(":memory:"), sink)
    line = _helper_in_app_db_layer.__code__.co_firstlineno + 1
    _helper_in_app_db_layer(plain)
    assert sink.statements[1].site == f"{__name__}:_helper_in_app_db_layer:{line}"


def test_request_scope_tags_statements_inside_and_not_outside(conn: CapturingConnection, sink: MemorySink) -> None:
    conn.execute("SELECT 'before'")
    with request_scope() as rid:
        assert current_request() == rid
        conn.execute("SELECT 'inside'")
        with request_scope("inner-42"):
            conn.execute("SELECT 'nested'")
        conn.execute("SELECT 'inside again'")
    conn.execute("SELECT 'after'")
    assert current_request() is None
    assert len(rid) == 16 and int(rid, 16) >= 0
    assert [s.request for s in sink.statements] == [None, rid, "inner-42", rid, None]


def test_generated_request_ids_differ() -> None:
    ids = set()
    for _ in range(100):
        with request_scope() as rid:
            ids.add(rid)
    assert len(ids) == 100


def test_executemany_is_one_record_with_every_parameter_set(conn: CapturingConnection, sink: MemorySink) -> None:
    rows = ((f"user{i}",) for i in range(5))  # a generator: must still reach sqlite3 intact
    conn.executemany("INSERT INTO t (name) VALUES (?)", rows)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (5,)
    stmt = sink.statements[0]
    assert stmt.sql == "INSERT INTO t (name) VALUES (?)"
    assert stmt.many == 5
    assert stmt.params == [[f"user{i}"] for i in range(5)]
    assert stmt.ms is not None and stmt.ms > 0


def test_executescript_is_recorded_as_one_statement(conn: CapturingConnection, sink: MemorySink) -> None:
    script = "INSERT INTO t (name) VALUES ('a'); INSERT INTO t (name) VALUES ('b');"
    conn.executescript(script)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
    assert sink.statements[0].sql == script
    assert sink.statements[0].params is None


def test_cursor_path_is_recorded_and_passes_fetch_and_iteration_through(
    conn: CapturingConnection, sink: MemorySink
) -> None:
    cur = conn.cursor()
    assert isinstance(cur, CapturingCursor)
    assert cur.execute("INSERT INTO t (name) VALUES (?)", ("x",)) is cur
    cur.executemany("INSERT INTO t (name) VALUES (?)", [("y",), ("z",)])
    assert cur.rowcount == 2
    cur.execute("SELECT name FROM t ORDER BY id")
    assert cur.description[0][0] == "name"
    assert cur.fetchone() == ("x",)
    assert cur.fetchmany(1) == [("y",)]
    assert cur.fetchall() == [("z",)]
    assert [row[0] for row in cur.execute("SELECT name FROM t ORDER BY id")] == ["x", "y", "z"]
    cur.execute("SELECT name FROM t ORDER BY id")
    assert next(cur) == ("x",)
    cur.arraysize = 7  # attribute writes reach the real cursor
    assert cur.wrapped.arraysize == 7
    assert cur.connection is conn
    cur.close()
    assert [s.sql for s in sink.statements] == [
        "INSERT INTO t (name) VALUES (?)",
        "INSERT INTO t (name) VALUES (?)",
        "SELECT name FROM t ORDER BY id",
        "SELECT name FROM t ORDER BY id",
        "SELECT name FROM t ORDER BY id",
    ]


def test_connection_execute_returns_a_recording_cursor(conn: CapturingConnection, sink: MemorySink) -> None:
    cur = conn.execute("SELECT 1")
    assert isinstance(cur, CapturingCursor)
    cur.execute("SELECT 2")
    assert [s.sql for s in sink.statements] == ["SELECT 1", "SELECT 2"]


def test_passthrough_lastrowid_rowcount_row_factory_commit_rollback(tmp_path: Path, sink: MemorySink) -> None:
    db = tmp_path / "app.db"
    wrapped = capture(sqlite3.connect(db), sink)
    wrapped.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    cur = wrapped.execute("INSERT INTO t (name) VALUES ('a')")
    assert cur.lastrowid == 1
    cur = wrapped.execute("INSERT INTO t (name) VALUES ('b')")
    assert cur.lastrowid == 2
    assert wrapped.in_transaction
    wrapped.commit()
    assert not wrapped.in_transaction
    wrapped.execute("DELETE FROM t")
    assert wrapped.execute("DELETE FROM t").rowcount == 0
    wrapped.rollback()

    other = sqlite3.connect(db)  # committed rows are visible to another connection; the delete is not
    assert other.execute("SELECT name FROM t ORDER BY id").fetchall() == [("a",), ("b",)]
    other.close()

    wrapped.row_factory = sqlite3.Row
    assert wrapped.wrapped.row_factory is sqlite3.Row
    row = wrapped.execute("SELECT id, name FROM t WHERE id = ?", (2,)).fetchone()
    assert row["name"] == "b"
    assert wrapped.total_changes >= 2
    wrapped.close()
    with pytest.raises(sqlite3.ProgrammingError):
        wrapped.wrapped.execute("SELECT 1")


def test_context_manager_commits_and_rolls_back_like_sqlite3(tmp_path: Path, sink: MemorySink) -> None:
    db = tmp_path / "app.db"
    wrapped = capture(sqlite3.connect(db), sink)
    wrapped.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    with wrapped as same:
        assert same is wrapped
        same.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), wrapped:
        wrapped.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("boom")
    other = sqlite3.connect(db)
    assert other.execute("SELECT id FROM t").fetchall() == [(1,)]
    other.close()
    wrapped.close()


def test_failed_statement_is_recorded_with_its_error_and_reraised(conn: CapturingConnection, sink: MemorySink) -> None:
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("SELECT * FROM no_such_table")
    assert sink.statements[-1].sql == "SELECT * FROM no_such_table"
    assert sink.statements[-1].error == "OperationalError"


def test_params_false_leaves_values_out(sink: MemorySink) -> None:
    wrapped = capture(sqlite3.connect(":memory:"), sink, params=False)
    wrapped.execute("CREATE TABLE s (v TEXT)")
    sink.clear()
    wrapped.execute("SELECT ?", ("secret",))
    wrapped.executemany("INSERT INTO s VALUES (?)", [("a",), ("b",)])
    assert wrapped.execute("SELECT count(*) FROM s").fetchone() == (2,)
    sink.statements.pop()
    assert [s.params for s in sink.statements] == [None, None]
    assert sink.statements[1].many == 2


def test_params_are_a_snapshot(conn: CapturingConnection, sink: MemorySink) -> None:
    params = ["a"]
    conn.execute("SELECT ?", params)
    params[0] = "changed"
    assert sink.statements[0].params == ["a"]


def test_jsonl_sink_from_path_writes_readable_lines_and_closes_with_connection(tmp_path: Path) -> None:
    log = tmp_path / "capture.jsonl"
    wrapped = capture(sqlite3.connect(":memory:"), log)
    with request_scope("r1"):
        wrapped.execute("SELECT ?, ?", (b"\x00\xff", dt.date(2024, 2, 29)))
    wrapped.close()
    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    raw = json.loads(lines[0])
    assert raw["params"] == [{"$bytes": "AP8="}, {"$date": "2024-02-29"}]
    (stmt,) = read_workload(log)
    assert stmt.params == [b"\x00\xff", dt.date(2024, 2, 29)]
    assert stmt.request == "r1"
    with pytest.raises(WorkloadError, match="closed"):
        wrapped.sink.write(Statement(sql="SELECT 1"))


def test_jsonl_sink_appends_to_an_existing_log(tmp_path: Path) -> None:
    log = tmp_path / "capture.jsonl"
    for _ in range(2):
        with JsonlSink(log) as sink:
            sink.write(Statement(sql="SELECT 1", ms=0.5))
    assert len(list(read_workload(log))) == 2


def test_jsonl_sink_unwritable_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkloadError, match="cannot open workload log"):
        JsonlSink(tmp_path / "missing-dir" / "x.jsonl")


def test_threads_writing_one_log_file_give_whole_lines(tmp_path: Path) -> None:
    log = tmp_path / "threads.jsonl"
    sink = JsonlSink(log)
    threads, per_thread = 8, 250
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            wrapped = capture(sqlite3.connect(":memory:"), sink)
            payload = "x" * (500 + n * 300)  # lines of different lengths, some over 2 KiB
            for i in range(per_thread):
                with request_scope(f"t{n}-{i}"):
                    wrapped.execute("SELECT ?, ?", (n, payload))
            wrapped.wrapped.close()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    sink.close()
    assert not errors
    lines = log.read_bytes().split(b"\n")
    assert lines[-1] == b""
    records = [json.loads(line) for line in lines[:-1]]  # every line is valid JSON
    assert len(records) == threads * per_thread
    for rec in records:
        n = rec["params"][0]
        assert rec["request"].startswith(f"t{n}-")
        assert len(rec["params"][1]) == 500 + n * 300


def test_concurrent_request_scopes_in_threads_are_isolated(sink: MemorySink) -> None:
    barrier = threading.Barrier(4)

    def work(n: int) -> None:
        wrapped = capture(sqlite3.connect(":memory:"), sink)
        with request_scope(f"req-{n}"):
            barrier.wait()  # all four scopes are open at once
            for _ in range(50):
                wrapped.execute("SELECT ?", (n,))
            barrier.wait()
        wrapped.execute("SELECT ?", (n,))  # outside the scope again
        wrapped.wrapped.close()

    workers = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(sink.statements) == 4 * 51
    inside = [s for s in sink.statements if s.request is not None]
    assert len(inside) == 200
    assert all(s.request == f"req-{s.params[0]}" for s in inside)
    assert sum(1 for s in sink.statements if s.request is None) == 4


def test_capture_rejects_a_sink_without_write() -> None:
    with pytest.raises(TypeError, match="write"):
        capture(sqlite3.connect(":memory:"), object())  # type: ignore[arg-type]


def test_tx_is_the_drivers_implicit_transaction(sink: MemorySink, tmp_path: Path) -> None:
    """Python's sqlite3 opens a transaction before a write without a statement: the log still says which
    writes shared one, which ran in autocommit, and where one ended."""
    wrapped = capture(sqlite3.connect(tmp_path / "t.db"), sink)  # the default (legacy) isolation mode
    wrapped.execute("CREATE TABLE t (a)")
    wrapped.execute("INSERT INTO t VALUES (1)")
    wrapped.execute("UPDATE t SET a = 2")
    wrapped.commit()
    wrapped.execute("SELECT a FROM t").fetchall()
    wrapped.execute("DELETE FROM t")
    wrapped.rollback()
    wrapped.isolation_level = None  # autocommit: each write commits on its own
    wrapped.execute("INSERT INTO t VALUES (3)")
    wrapped.execute("BEGIN")
    wrapped.execute("INSERT INTO t VALUES (4)")
    wrapped.execute("COMMIT")
    tx = [s.tx for s in sink.statements]
    assert tx[0] == "" and tx[3] == "" and tx[5] == ""  # CREATE (autocommits in 3.11), SELECT, autocommit INSERT
    assert tx[1] == tx[2] and tx[1]  # the INSERT and UPDATE: one implicit transaction
    assert tx[4] and tx[4] != tx[1]  # the DELETE: a new one after commit()
    assert tx[6] == tx[7] == tx[8] and tx[6] not in (tx[1], tx[4])  # BEGIN ... COMMIT
    assert json.loads(sink.statements[1].to_json())["tx"] == tx[1]
    assert Statement.from_dict(json.loads(sink.statements[1].to_json())).tx == tx[1]


def test_site_skips_the_standard_library_and_frameworks(sink: MemorySink) -> None:
    import contextlib

    wrapped = capture(sqlite3.connect(":memory:"), sink)
    with contextlib.ExitStack() as stack:
        stack.callback(wrapped.execute, "SELECT 1")  # runs from contextlib's __exit__
    site = sink.statements[0].site
    assert site is not None and site.startswith(f"{__name__}:test_site_skips_the_standard_library_and_frameworks:")
    assert sink.statements[0].internal is None
