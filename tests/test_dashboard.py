"""The migration dashboard (`pgferry migrate status --serve`) in headless Chromium (Debian's package): a
screenshot is taken, the charts have data, the page updates without a reload, and it says whether a
cutover may start now and why not."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx

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
    assert 'id="route">sqlite<' in dom and "not now" in dom
