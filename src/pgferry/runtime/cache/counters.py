"""Hit, miss, stale-served, recompute, invalidation and error counts per level, for a metrics exporter.

One lock for all counters: an increment is a few hundred nanoseconds, far below a Redis round trip.
Listeners (`listen`) are told of every event as it happens: the Prometheus counters
(pgferry.runtime.cache.metrics) count there, so they also add up across processes in multiprocess mode.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

EVENTS = (
    "hits",
    "misses",
    "stale",
    "recomputes",
    "waits",
    "wait_timeouts",
    "invalidations",
    "errors",
    "bypass",
    "confirm_acks",  # a write's invalidation acknowledged by every follower that may serve (l1)
    "confirm_timeouts",  # one that waited confirm_s out instead (a follower lagging, silent or unheard)
)
LEVELS = ("l1", "l2", "l3")

Listener = Callable[[str, str, int], None]  # (level, event, n)


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._listeners: list[Listener] = []

    def add(self, level: str, event: str, n: int = 1) -> None:
        with self._lock:
            self._counts[(level, event)] += n
        for listener in self._listeners:
            listener(level, event, n)

    def listen(self, listener: Listener) -> Callable[[], None]:
        """Have `listener` told of every event from now on; returns the function that stops it."""
        self._listeners = [*self._listeners, listener]  # a new list: add() iterates without the lock

        def stop() -> None:
            self._listeners = [x for x in self._listeners if x is not listener]

        return stop

    def snapshot(self) -> dict[str, dict[str, int]]:
        """{level: {event: count}}, every event present (0 when it never happened)."""
        with self._lock:
            return {level: {event: self._counts[(level, event)] for event in EVENTS} for level in LEVELS}


def hit_rate(level: dict[str, int]) -> float | None:
    """Hits (stale ones included) over lookups at one level; None before the first lookup."""
    served = level["hits"] + level["stale"]
    total = served + level["misses"]
    return served / total if total else None
