"""Prometheus counts of a `Cache`'s events, in a registry of the caller's:

    cache_events_total{level, event}    level: l1, l2, l3; event: hits, misses, stale (served while
                                        another caller recomputes), recomputes, waits, wait_timeouts,
                                        invalidations, errors, bypass (Redis down: loaded directly)

Counted as the events happen (a listener on the cache's counters), not read from `stats()` at a
scrape: plain counters, so in prometheus_client's multiprocess mode the scrape sums every process's.
The hit ratio of a level is (hits + stale) / (hits + stale + misses), as `stats()["hit_rate"]` and the
PgferryCacheHitRateLow alert compute it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from pgferry.runtime.cache.counters import EVENTS
from pgferry.runtime.cache.tiered import Cache


class CacheMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "cache_events",
            "Cache events by level (l1, l2, l3) and kind (hits, misses, stale, recomputes, invalidations, ...).",
            ("level", "event"),
            registry=registry,
        )
        self._children: dict[tuple[str, str], Any] = {}  # labels() takes a lock and builds a key: once each

    def watch(self, cache: Cache) -> Callable[[], None]:
        """Count `cache`'s events from now on (its levels' series start at 0, so a rate has a first
        point); returns the function that stops counting."""
        for level in cache.levels:
            for event in EVENTS:
                self.events.labels(level, event)
        return cache.counters.listen(self.record)

    def record(self, level: str, event: str, n: int) -> None:
        child = self._children.get((level, event))
        if child is None:
            child = self._children.setdefault((level, event), self.events.labels(level, event))
        child.inc(n)
