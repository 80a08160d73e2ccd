"""A real Prometheus (Debian's package) on loopback scrapes a running `forum serve` with pgferry's rules
loaded: the target is up, every rule evaluates without error, and the slow-query rule's expression
(histogram_quantile over db_query_duration_seconds) gives a value for the statements the forum ran; and
`forum serve --workers 2 --redis` (multiprocess metrics), whose cache hit ratio it computes per level."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from forum.web.process import answering_pids, free_port, running_server
from pgferry.runtime.cache.server import LocalRedis

RULES = Path(__file__).resolve().parent.parent / "src" / "pgferry" / "prometheus" / "pgferry.rules.yml"
ALERTS = sum(1 for line in RULES.read_text().splitlines() if "- alert:" in line)
HIT_RATIO = (
    'sum without (event) (rate(cache_events_total{event=~"hits|stale"}[1m]))'
    ' / sum without (event) (rate(cache_events_total{event=~"hits|stale|misses"}[1m]))'
)
SLOW = "histogram_quantile(0.95, sum by (le, operation, table) (rate(db_query_duration_seconds_bucket[1m])))"


def wait_for(check: Any, what: str, timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:g} s"
        time.sleep(0.25)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Prometheus on a throwaway port and directory, scraping what `targets.json` names every second."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus comes with Debian's package (scripts/setup.sh installs it)"
    targets = tmp_path / "targets.json"
    targets.write_text("[]")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{RULES}']\n"
        "scrape_configs:\n"
        "  - job_name: forum\n"
        f"    file_sd_configs: [{{files: ['{targets}'], refresh_interval: 1s}}]\n"
    )
    port = free_port()
    command = [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}"]
    command.append(f"--web.listen-address=127.0.0.1:{port}")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url), "prometheus ready")
        yield url, targets
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def query(url: str, expr: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_prometheus_scrapes_the_forum_and_evaluates_pgferrys_rules(
    prometheus: tuple[str, Path], seeded_db: Path, tmp_path: Path
) -> None:
    url, targets = prometheus
    database = tmp_path / "forum.db"
    shutil.copy(seeded_db, database)
    with running_server(database, "optimized") as server:
        targets.write_text(f'[{{"targets": ["{server.url.removeprefix("http://")}"]}}]')
        wait_for(lambda: query(url, 'up{job="forum"} == 1'), "the forum scraped")
        for _ in range(40):  # statements for the histogram, spread over a few scrapes
            assert httpx.get(f"{server.url}/categories", timeout=10).status_code == 200
            time.sleep(0.05)
        result = wait_for(lambda: query(url, SLOW), "the slow-query expression has a value")
    assert any(r["metric"].get("table") == "forum_categories" for r in result)
    rules = httpx.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    evaluated = [rule for group in rules for rule in group["rules"]]
    assert len(evaluated) == ALERTS and all(rule["health"] == "ok" for rule in evaluated)


def ratio_per_level(url: str) -> list[dict[str, Any]]:
    """The hit ratios, once there is one per level with lookups in its window (0/0 is NaN before)."""
    found = query(url, HIT_RATIO)
    return found if len(found) == 2 and all(0 < float(r["value"][1]) <= 1 for r in found) else []


def test_prometheus_computes_the_cache_hit_ratio_of_two_workers(
    prometheus: tuple[str, Path], seeded_db: Path, tmp_path: Path, redis_server: LocalRedis
) -> None:
    """The ratio PgferryCacheHitRateLow watches, over the summed metrics of both workers of one target."""
    url, targets = prometheus
    database = tmp_path / "forum.db"
    shutil.copy(seeded_db, database)
    args = ("--redis", redis_server.url)
    with running_server(database, "optimized", workers=2, extra_args=args) as server:
        assert len(answering_pids(server.url, 2)) == 2
        targets.write_text(f'[{{"targets": ["{server.url.removeprefix("http://")}"]}}]')
        wait_for(lambda: query(url, 'up{job="forum"} == 1'), "the forum scraped")
        for _ in range(40):  # the same cached reads on new connections: both workers serve them
            assert httpx.get(f"{server.url}/categories", timeout=10).status_code == 200
            time.sleep(0.05)
        ratios = wait_for(lambda: ratio_per_level(url), "a hit ratio per level")
        requests = wait_for(
            lambda: query(url, 'sum(forum_http_requests_total{route="/categories"}) == 40'), "all 40 requests"
        )
    assert {r["metric"]["level"] for r in ratios} == {"l1", "l2"}
    assert requests and all("pid" not in r["metric"] for r in ratios)
