"""cache_events_total{level, event}: every event of a Cache counted as it happens, equal to its
stats(); on the forum's /metrics only when caching is on."""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from forum.services import Forum
from forum.web.app import create_app
from pgferry.runtime.cache import Cache, CachePolicy
from pgferry.runtime.cache.counters import EVENTS
from pgferry.runtime.cache.metrics import CacheMetrics
from pgferry.runtime.cache.server import LocalRedis


def exported(registry: CollectorRegistry, level: str, event: str) -> float | None:
    return registry.get_sample_value("cache_events_total", {"level": level, "event": event})


def test_the_counters_equal_the_caches_stats_at_every_level(redis_server: LocalRedis) -> None:
    registry = CollectorRegistry()
    cache = Cache(redis_server.url, CachePolicy(namespace=f"m{secrets.token_hex(4)}"))
    try:
        stop = CacheMetrics(registry).watch(cache)
        assert exported(registry, "l2", "bypass") == 0  # the levels' series exist before any event
        assert exported(registry, "l3", "hits") is None  # a level this cache does not have
        for _ in range(3):
            assert cache.get("k", lambda: 1, tags=["t"]) == 1
        cache.invalidate(["t"])
        assert cache.get("k", lambda: 2, tags=["t"]) == 2
        levels = cache.stats()["levels"]
        assert levels["l1"]["hits"] == 2 and levels["l1"]["misses"] == 2 and levels["l2"]["invalidations"] == 1
        for level in cache.levels:
            for event in EVENTS:
                assert exported(registry, level, event) == levels[level][event], (level, event)
        stop()
        cache.get("k", lambda: 3, tags=["t"])
        assert exported(registry, "l1", "hits") == levels["l1"]["hits"]  # no longer counted
    finally:
        cache.close()


def test_the_forums_metrics_show_the_cache_only_when_caching_is_on(db_copy: Path) -> None:
    cached = Forum.open(db_copy, "optimized", cache=Cache(None))
    plain = Forum.open(db_copy, "optimized")
    try:
        with TestClient(create_app(cached)) as client:
            for _ in range(3):
                assert client.get("/categories").status_code == 200
            text = client.get("/metrics").text
            assert 'cache_events_total{event="hits",level="l1"} 2.0' in text
            assert 'cache_events_total{event="misses",level="l1"} 1.0' in text
        with TestClient(create_app(plain)) as client:
            assert client.get("/categories").status_code == 200
            assert "cache_events_total" not in client.get("/metrics").text
    finally:
        cached.close()
        plain.close()
