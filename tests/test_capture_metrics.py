"""The migration's Prometheus metrics, served on loopback and scraped as Prometheus would: what
`migrate status` says (phase, lag, route, verify failures) and the cutover's attempts and phases."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from capture_util import write
from cutover_app import make_migrated
from pgferry.capture.cutover import CutoverOptions, cutover
from pgferry.capture.metrics import serve_metrics


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted({"schema": "public", **labels}.items())))]


def test_the_metrics_follow_the_migration_through_its_cutover(tmp_path: Path, pg_dsn: str) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    write(path, [("INSERT INTO note (body, n) VALUES (?, 1)", (f"late{i}",)) for i in range(7)])
    server = serve_metrics(path, pg_dsn, "public", 0)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        before = scrape(server.url)
        assert value(before, "pgferry_migration_lag_changes") == 7
        assert value(before, "pgferry_migration_changelog_entries") >= 7  # the unapplied ones at least
        assert value(before, "pgferry_migration_lag_seconds") >= 0  # a bound of the oldest one's age
        assert value(before, "pgferry_migration_wal_bytes") == (path.parent / f"{path.name}-wal").stat().st_size
        assert value(before, "pgferry_migration_phase", phase="stopped") == 1
        assert value(before, "pgferry_migration_route", route="sqlite") == 1
        assert value(before, "pgferry_migration_verify_failures") == 0
        cutover(path, pg_dsn, options=CutoverOptions(backoff_s=0))
        after = scrape(server.url)
        assert value(after, "pgferry_migration_route", route="postgres") == 1
        assert value(after, "pgferry_migration_lag_changes") == 0
        assert value(after, "pgferry_cutover_attempts_total", outcome="cut_over") == 1
        assert value(after, "pgferry_cutover_last_pause_seconds") > 0
        assert value(after, "pgferry_cutover_last_phase_seconds", phase="drain") >= 0
        assert value(after, "pgferry_migration_reverse_lag_changes") == 0  # reverse capture installed, nothing yet
    finally:
        server.stop()


def test_status_watch_prints_a_json_object_per_line_until_stopped(tmp_path: Path, pg_dsn: str) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    command = [sys.executable, "-m", "pgferry", "migrate", "status", str(path), pg_dsn, "--watch", "0.2", "--json"]
    watching = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = watching.stdout.readline() if watching.stdout else ""
    second = watching.stdout.readline() if watching.stdout else ""
    watching.send_signal(signal.SIGTERM)
    _out, err = watching.communicate(timeout=30)
    assert watching.returncode == 0, err
    assert json.loads(first)["route"] == "sqlite" and json.loads(second)["phase"] == "stopped"
