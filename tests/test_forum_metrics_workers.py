"""`forum serve --workers 2`, for real: /metrics in whichever worker answers shows the sum of both
workers' requests, statements and cache events (prometheus_client's multiprocess mode); a worker that
dies keeps its counts but its live gauges stop counting; the pool gauges add up over the workers and a
replica is down once one worker cannot reach it; the metrics directory is gone when serve stops."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from forum.web.process import RunningServer, answering_pids, running_server
from forum_fixtures import queries_of
from pgferry.migrate.run import copy_database
from pgferry.runtime.cache.server import throwaway_redis
from proxy import Proxy
from replica_fixtures import PairDsns

ROUNDS = 200  # bounds every loop below


def total(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def grown(before: str, after: str, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def metrics_path(server: RunningServer) -> Path:
    found = re.search(r"the workers' metrics are summed from (\S+)", server.log())
    assert found, server.log()[-2000:]
    return Path(found.group(1))


def lookups(text: str, level: str) -> float:
    return sum(total(text, "cache_events_total", level=level, event=e) for e in ("hits", "misses", "stale"))


def test_metrics_are_summed_over_the_workers_and_a_dead_workers_counts_stay(db_copy: Path) -> None:
    with (
        throwaway_redis() as redis,
        running_server(db_copy, "optimized", workers=2, extra_args=("--redis", redis.url)) as srv,
    ):
        path = metrics_path(srv)
        assert path.is_dir()
        before = srv.metrics()
        requests, queries = 0, 0
        scraped_by: Counter[int] = Counter()
        for _ in range(ROUNDS):
            with httpx.Client(base_url=srv.url, timeout=10) as client:  # one connection: one worker answers all
                health, topics = client.get("/healthz"), client.get("/categories")
                assert topics.status_code == 200
                requests += 1
                queries += queries_of(health) + queries_of(topics)
                scrape = client.get("/metrics")
            pid = health.json()["pid"]
            scraped_by[pid] += 1
            text = scrape.text
            assert grown(before, text, "forum_http_requests_total", route="/categories") == requests, pid
            assert grown(before, text, "db_query_duration_seconds_count") == queries
            assert lookups(text, "l1") - lookups(before, "l1") == requests  # one cached read per request
            l1_misses = grown(before, text, "cache_events_total", level="l1", event="misses")
            assert lookups(text, "l2") - lookups(before, "l2") == l1_misses  # each L1 miss asks Redis once
            assert total(text, "forum_http_requests_in_flight") == 1  # the scrape itself: summed, no pid label
            if len(scraped_by) == 2 and min(scraped_by.values()) >= 3:
                break
        assert len(scraped_by) == 2, scraped_by  # both workers answered requests and scrapes
        assert total(text, "cache_events_total", level="l1", event="hits") > 0  # the same reads came again

        victim = min(scraped_by)
        os.kill(victim, signal.SIGKILL)
        replaced = answering_pids(srv.url, 2)  # the victim cannot answer: two pids means its replacement is up
        assert victim not in replaced and len(replaced) == 2
        for _ in range(ROUNDS):  # the supervisor marks the victim dead when it replaces it
            if not list(path.glob(f"gauge_live*_{victim}.db")):
                break
            time.sleep(0.05)
        assert not list(path.glob(f"gauge_live*_{victim}.db"))  # its requests in flight no longer count
        assert (path / f"counter_{victim}.db").exists()
        after = srv.metrics()
        assert grown(before, after, "forum_http_requests_total", route="/categories") == requests  # kept
        assert total(after, "forum_http_requests_in_flight") == 1
    assert srv.process.returncode == 0 and "Traceback" not in srv.log()
    assert not path.exists()  # the throwaway directory went with the server


def settled(server: RunningServer, holds: Callable[[str], bool]) -> str:
    """/metrics once `holds` (bounded): each worker samples its pools and replicas every second."""
    text = server.metrics()
    for _ in range(ROUNDS):
        if holds(text):
            break
        time.sleep(0.1)
        text = server.metrics()
    return text


def lags(text: str) -> list[float]:
    return [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "pgferry_replica_lag_seconds"
    ]


def test_pool_and_replica_gauges_combine_over_the_workers(
    db_copy: Path, pair_dsns: PairDsns, replica_proxy: Proxy
) -> None:
    """Each worker samples its own pools and replica into the shared files: two pools of 3 are a
    ceiling of 6; the replica is up while both reach it, down once one cannot, and its lag is absent
    (not the last reading) once neither can; no series has a pid."""
    copy_database(db_copy, pair_dsns.primary)
    pair_dsns.pair.caught_up()
    args = ("--pool-size", "3", "--replica", replica_proxy.dsn(pair_dsns.replica))
    with running_server(pair_dsns.primary, "optimized", extra_args=args, workers=2) as srv:
        assert len(answering_pids(srv.url, 2)) == 2
        text = settled(srv, lambda t: total(t, "db_pool_max_connections", database="primary") == 6)
        assert total(text, "db_pool_max_connections", database="primary") == 6
        families = {f.name: f for f in text_string_to_metric_families(text)}
        connections = families["db_pool_connections"].samples
        assert {(s.labels["database"], s.labels["state"]) for s in connections} >= {("primary", "in_use")}
        assert 2 <= total(text, "db_pool_connections", database="primary") <= 6  # a minimum of 1 open each
        (usage,) = [  # the most used worker's pool: not a sum
            s for s in families["db_pool_usage_ratio"].samples if s.labels["database"] == "primary"
        ]
        in_use = total(text, "db_pool_connections", database="primary", state="in_use")
        assert in_use / 6 <= usage.value <= 1  # at least the mean of the two pools' usage, at most one pool's
        (up,) = families["pgferry_replica_up"].samples
        assert up.value == 1
        (lag,) = families["pgferry_replica_lag_seconds"].samples  # the larger of the two workers' readings
        assert lag.value >= 0
        samples = [s for name in ("db_pool_connections", "pgferry_replica_up") for s in families[name].samples]
        assert all("pid" not in s.labels for s in samples)
        replica_proxy.cut()
        try:
            text = settled(srv, lambda t: total(t, "pgferry_replica_up") == 0 and not lags(t))
            assert total(text, "pgferry_replica_up") == 0  # the minimum: one worker seeing it gone is enough
            assert lags(text) == []  # unknown while unreachable: no stale last reading from either worker
        finally:
            replica_proxy.restore()
    assert srv.process.returncode == 0 and "Traceback" not in srv.log()
