"""End to end, for real: `forum serve` under uvicorn on a free loopback port, `forum traffic` against it.

Both are started as the user would start them (subprocesses of the installed commands), in both
modes, with --capture on; the server is stopped with SIGINT and must close its log cleanly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from psycopg.conninfo import conninfo_to_dict

from forum.web.process import running_server
from forum_fixtures import MODES
from pgferry.migrate.run import copy_database

BIN = Path(sys.executable).parent


@pytest.fixture(params=MODES)
def server(request: pytest.FixtureRequest, db_copy: Path, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    capture = tmp_path / "workload.jsonl"
    with running_server(db_copy, request.param, capture=capture) as srv:
        yield srv.url, request.param, capture
    assert srv.process.returncode == 0, srv.log()
    assert "Traceback" not in srv.log() and "stopped" in srv.log()


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
