"""End to end, for real: `forum serve` under uvicorn on a free loopback port, `forum traffic` against it.

Both are started as the user would start them (subprocesses of the installed commands), in both
modes, with --capture on; the server is stopped with SIGINT and must close its log cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from forum.web.process import answering_pids, running_server
from forum_fixtures import MODES
from pgferry.migrate.run import copy_database

BIN = Path(sys.executable).parent


@pytest.fixture(params=MODES)
def server(request: pytest.FixtureRequest, db_copy: Path, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    capture = tmp_path / "workload.jsonl"
    with running_server(db_copy, request.param, capture=capture) as srv:
        yield srv.url, request.param, capture
    assert srv.process.returncode == 0, srv.log()
    log = srv.log()
    assert "Traceback" not in log and "stopped" in log, log[max(0, log.find("Traceback") - 1500) :][:4000]


@pytest.mark.slow
def test_traffic_against_a_real_server(server: tuple[str, str, Path]) -> None:
    url, mode, capture = server
    done = subprocess.run(
        [BIN / "forum", "traffic", "--url", url, "--users", "4", "--duration", "2", "--seed", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert list(report) == [
        "users", "duration_s", "requests", "errors", "errors_by_status", "throughput_rps", "latency_ms",
        "queries_per_request", "by_endpoint",
    ]  # fmt: skip
    assert report["users"] == 4 and report["duration_s"] == 2 and report["requests"] > 20
    assert set(report["latency_ms"]) == {"p50", "p95", "p99"}
    view = report["by_endpoint"]["topic_view"]
    assert view["requests"] > 0
    if mode == "optimized":
        assert view["queries_per_request"] == 1.0 and report["errors"] == 0
    else:
        # R+2 per view; and with no busy timeout some statements meet a lock and fail at once (503)
        assert view["queries_per_request"] > 2.0
        assert set(report["errors_by_status"]) <= {"503"}

    # Server-Timing on a raw request, and the metrics the run left behind
    r = httpx.get(f"{url}/topics/1")
    assert r.headers["server-timing"].startswith('db;desc="queries=')
    metrics = httpx.get(f"{url}/metrics").text
    assert 'forum_http_requests_total{method="GET",route="/topics/{topic_id}",status="200"}' in metrics

    # the workload log: every statement with its request id and the repository method that ran it
    lines = [json.loads(line) for line in capture.read_text().splitlines()]
    by_request = [s for s in lines if s.get("request")]
    assert len(by_request) > report["requests"]
    assert {s["site"].split(":")[0] for s in by_request} >= {"forum.store.repository"}
    assert any(s["sql"].startswith("INSERT INTO forum_replies") for s in by_request)
    rid = r.headers["x-request-id"]
    assert [s["site"].split(":")[1] for s in by_request if s["request"] == rid][:2] in (
        ["Repository.topic_view"],
        ["Repository.topic", "Repository.replies_offset"],
    )
    text = capture.read_text()
    assert "$argon2" not in text  # password hashes never reach the log
    if mode == "optimized":
        assert any(s["sql"] == "BEGIN IMMEDIATE" for s in by_request)


def test_serve_on_the_postgres_copy_with_auto_backend(db_copy: Path, pg_dsn: str) -> None:
    """`forum serve DSN`: auto picks PostgreSQL from the DSN; the copy a default `pgferry copy` made serves."""
    copy_database(db_copy, pg_dsn)
    with running_server(pg_dsn, "optimized", extra_args=("--pool-size", "4")) as srv:
        health = httpx.get(f"{srv.url}/healthz", timeout=10).json()["database"]
        assert health["backend"] == "postgresql" and health["pool_max"] == 4
        r = httpx.get(f"{srv.url}/topics/1", params={"limit": 3}, timeout=10)
        assert r.status_code == 200 and r.headers["server-timing"].startswith('db;desc="queries=1"')
    assert srv.process.returncode == 0 and "Traceback" not in srv.log()
    password = str(conninfo_to_dict(pg_dsn).get("password") or "")
    assert not password or password not in srv.log()


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_answer_and_sigterm_stops_them(db_copy: Path, tmp_path: Path, workers: int) -> None:
    """--workers N: N processes answer on one port, all append to the one capture file, and SIGTERM to
    `forum serve` closes each one's database and capture file and ends every process (exit 0)."""
    capture = tmp_path / "workload.jsonl"
    with running_server(db_copy, "optimized", capture=capture, workers=workers) as srv:
        answered = answering_pids(srv.url, workers)
        assert len(answered) == workers, answered
        assert (srv.process.pid in answered) == (workers == 1)
        r = httpx.get(f"{srv.url}/topics/1", params={"limit": 3}, timeout=10)
        assert r.status_code == 200 and r.headers["server-timing"].startswith('db;desc="queries=1"')
        srv.process.send_signal(signal.SIGTERM)
        assert srv.process.wait(timeout=60) == 0
    log = srv.log()
    assert "Traceback" not in log and log.rstrip().endswith("forum.web: stopped"), log[-2000:]
    for pid in answered:
        if workers > 1:
            assert f"worker {pid} stopped" in log  # its lifespan closed its store and its capture sink
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    lines = [json.loads(line) for line in capture.read_text().splitlines()]  # whole lines: none interleaved
    rids = {r.headers["x-request-id"] for r in answered.values()}
    assert rids <= {s.get("request") for s in lines}  # every worker wrote to the file


def test_workers_refuse_a_bad_database_once(tmp_path: Path) -> None:
    """The options are checked in the parent before any worker starts: one Error line, exit 2."""
    missing = tmp_path / "nope.db"
    done = subprocess.run(
        [BIN / "forum", "serve", str(missing), "--workers", "2", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("Error:") == 1 and "Traceback" not in done.stderr


def test_each_worker_has_its_own_postgres_pool(db_copy: Path, pg_dsn: str) -> None:
    """--workers 2 --pool-size 1 on PostgreSQL: each process opens its own pool (the size is per worker),
    so the server sees two connections where one pool may hold one; all closed when serve stops."""
    copy_database(db_copy, pg_dsn)
    name = conninfo_to_dict(pg_dsn)["dbname"]
    count = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = 'forum'"
    with running_server(pg_dsn, "optimized", extra_args=("--pool-size", "1"), workers=2) as srv:
        answered = answering_pids(srv.url, 2)
        assert len(answered) == 2
        for health in (r.json()["database"] for r in answered.values()):
            assert health["pool_max"] == 1 and health["pool_min"] == 1
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            opened = 0
            for _ in range(100):  # the pools open their connection in the background
                opened = conn.execute(count, (name,)).fetchone()[0]
                if opened >= 2:
                    break
                time.sleep(0.1)
            assert opened == 2
    assert srv.process.returncode == 0 and "Traceback" not in srv.log()
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert conn.execute(count, (name,)).fetchone() == (0,)
