"""summarize(): grouping by fingerprint, totals, percentiles, requests and sites."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pgferry.workload import MemorySink, Statement, capture, read_workload, request_scope, summarize
from pgferry.workload.summary import percentile


def test_groups_by_fingerprint_and_orders_by_total_time() -> None:
    statements = [
        Statement(
            sql=f"SELECT * FROM users WHERE id = {i}",
            ms=float(i),
            request=f"r{i % 3}",
            site="app:view:1" if i % 4 else "app:other:9",
        )
        for i in range(1, 101)
    ]
    statements += [Statement(sql="SELECT * FROM topics WHERE id IN (1, 2, 3)", ms=10_000.0, site="app:t:5")]
    statements += [Statement(sql="SELECT * FROM topics WHERE id IN (4)", ms=1.0, error="OperationalError")]
    statements += [Statement(sql="DELETE FROM sessions")]  # no timing (as from a .sql file)
    topics, users, deletes = summarize(statements)

    assert topics.text == "SELECT * FROM topics WHERE id IN (?)"
    assert (topics.calls, topics.total_ms, topics.errors, topics.requests) == (2, 10_001.0, 1, 0)
    assert topics.example == "SELECT * FROM topics WHERE id IN (1, 2, 3)"
    assert topics.top_sites == [("app:t:5", 1)]

    assert users.text == "SELECT * FROM users WHERE id = ?"
    assert users.calls == users.timed_calls == 100
    assert users.total_ms == pytest.approx(5050.0)
    assert users.mean_ms == pytest.approx(50.5)
    assert users.p50_ms == pytest.approx(50.5)
    assert users.p95_ms == pytest.approx(95.05)
    assert users.max_ms == 100.0
    assert users.requests == 3
    assert users.top_sites == [("app:view:1", 75), ("app:other:9", 25)]

    assert deletes.calls == 1 and deletes.timed_calls == 0
    assert deletes.total_ms == 0 and deletes.mean_ms is None and deletes.p95_ms is None
    assert deletes.to_dict()["p95_ms"] is None


def test_empty_workload() -> None:
    assert summarize([]) == []


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 95) == pytest.approx(3.85)


def test_captured_workload_round_trip_to_summary(tmp_path: Path) -> None:
    log = tmp_path / "app.jsonl"
    conn = capture(sqlite3.connect(":memory:"), log)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(20):
        with request_scope():
            conn.execute("INSERT INTO t (v) VALUES (?)", (f"v{i}",))
            conn.execute(f"SELECT v FROM t WHERE id IN ({', '.join(str(j) for j in range(i + 1))})")
    conn.close()
    stats = {s.text: s for s in summarize(read_workload(log))}
    assert stats["INSERT INTO t (v) VALUES (?)"].calls == 20
    select = stats["SELECT v FROM t WHERE id IN (?)"]
    assert select.calls == 20 and select.requests == 20
    assert select.top_sites[0][0].startswith(f"{__name__}:test_captured_workload_round_trip_to_summary:")


def test_summary_of_memory_sink_matches_summary_of_its_log(tmp_path: Path) -> None:
    sink = MemorySink()
    conn = capture(sqlite3.connect(":memory:"), sink)
    for i in range(5):
        conn.execute("SELECT ?", (i,))
    log = tmp_path / "copy.jsonl"
    log.write_bytes(b"".join(s.to_line() for s in sink.statements))
    assert summarize(sink.statements) == summarize(read_workload(log))
