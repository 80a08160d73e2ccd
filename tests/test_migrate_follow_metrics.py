"""`pgferry migrate follow --metrics-port`: the migration's metrics served by the process that follows,
scraped for real while it follows and gone when it stops."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import httpx
import pytest

from capture_util import changes, follow_serving_metrics, make_source, started, write

DEADLINE_S = 60.0
RATE = "pgferry_migration_apply_rate"


def metric(text: str, name: str) -> float:
    found = maybe(text, name)
    assert found is not None, f"{name} not in the scrape"
    return found


def maybe(text: str, name: str) -> float | None:
    found = re.search(rf"^{name}\{{[^}}]*\}} (\S+)$", text, re.MULTILINE)
    return None if found is None else float(found.group(1))


def test_follow_serves_the_migration_metrics_while_it_follows(tmp_path: Path, pg_dsn: str) -> None:
    path = make_source(tmp_path / "app.db", without_rowid=False)
    started(path, pg_dsn)
    write(path, changes(30))
    follower, url = follow_serving_metrics(path, pg_dsn)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while True:  # until the follower has applied the 30 changes' entries and measured its rate
            text = httpx.get(url, timeout=10).text
            applied = metric(text, "pgferry_migration_applied_changes_total")
            if metric(text, "pgferry_migration_lag_changes") == 0 and applied and maybe(text, RATE):
                break
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
        assert metric(text, "pgferry_migration_applier_running") == 1
        assert metric(text, RATE) > 0  # changes applied per second over its last seconds
        assert metric(text, "pgferry_migration_wal_bytes") >= 0
        assert 'pgferry_migration_route{route="sqlite",schema="public"} 1.0' in text
    finally:
        follower.send_signal(signal.SIGTERM)
        _, err = follower.communicate(timeout=DEADLINE_S)
    assert follower.returncode == 0, err
    with pytest.raises(httpx.TransportError):  # stopped with the follower
        httpx.get(url, timeout=2)
