"""The migration dashboard (`pgferry migrate status --serve`) in headless Chromium (Debian's package): a
screenshot is taken, the charts have data, the page updates without a reload, and it says whether a
cutover may start now and why not."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from capture_util import write
from cutover_app import make_migrated
from pgferry.capture.dashboard import Dashboard

CHROMIUM = shutil.which("chromium-headless-shell") or shutil.which("chromium")


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "chromium-headless-shell comes with Debian's package (scripts/setup.sh installs it)"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=4000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_dashboard_shows_live_charts_and_whether_a_cutover_may_start(tmp_path: Path, pg_dsn: str) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    write(path, [("INSERT INTO note (body, n) VALUES (?, 1)", (f"late{i}",)) for i in range(5)])
    board = Dashboard(path, pg_dsn, "public", max_lag_s=0, sample_s=0.2).start()  # any lag holds it back
    try:
        status = httpx.get(board.url + "status.json", timeout=10).json()
        assert status["route"] == "sqlite" and status["status"]["lag_changes"] == 5
        assert status["cutover"]["ready"] is False and "behind" in status["cutover"]["reasons"][0] and status["history"]
        assert "pgferry_migration_lag_changes" in httpx.get(board.url + "metrics", timeout=10).text
        shot = tmp_path / "dashboard.png"
        taken = chromium(f"--screenshot={shot}", "--window-size=1100,700", board.url)
        assert shot.exists() and shot.stat().st_size > 5_000, taken.stderr[-2000:]
        dom = chromium("--dump-dom", board.url).stdout
    finally:
        board.stop()
    updates = int(re.search(r'data-updates="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    assert updates >= 2  # it fetched the status again without a reload
    points = [int(n) for n in re.findall(r'data-points="(\d+)"', dom)]
    assert len(points) == 2 and min(points) >= 1  # both charts drew the history
    assert 'id="route">sqlite<' in dom and 'id="phase">stopped<' in dom and "not now" in dom
    assert re.search(r'id="lag">5 changes, [\d.]+ s<', dom)
    changelog = re.search(r'id="changelog">(\d+) entries<', dom)
    assert changelog is not None and int(changelog.group(1)) >= 5
    assert re.search(r'id="wal">[\d.]+ MiB<', dom) and 'id="verify">no pass yet<' in dom
    why = re.search(r'<div id="why">([^<]*)</div>', dom)
    assert why is not None and re.fullmatch(r"the applier is [\d.]+ s behind \(--max-lag 0\)", why.group(1)), why


def test_migrate_status_serve_prints_where_the_dashboard_is_and_stops_on_sigterm(tmp_path: Path, pg_dsn: str) -> None:
    path = make_migrated(tmp_path / "app.db", pg_dsn)
    command = [sys.executable, "-m", "pgferry", "migrate", "status", str(path), pg_dsn, "--serve", "0"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    serving = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = serving.stdout.readline() if serving.stdout else ""
        found = re.search(r"dashboard at (http://127\.0\.0\.1:\d+/) \(metrics at (\S+)\)", line)
        assert found is not None, line
        assert "lagchart" in httpx.get(found.group(1), timeout=10).text
        assert httpx.get(found.group(1) + "status.json", timeout=10).json()["route"] == "sqlite"
        assert "pgferry_migration_phase" in httpx.get(found.group(2), timeout=10).text
    finally:
        serving.send_signal(signal.SIGTERM)
        _out, err = serving.communicate(timeout=30)
    assert serving.returncode == 0 and "Traceback" not in err, err
    with pytest.raises(httpx.TransportError):  # stopped with it
        httpx.get(found.group(1), timeout=2)
