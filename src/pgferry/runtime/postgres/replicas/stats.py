"""What the router did, for settings() and a health check: reads per target, why reads went to the
primary, and reads a replica failed (sent on to the primary instead, unseen by the caller)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class RouteStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reads: Counter[str] = Counter()
        self._primary_because: Counter[str] = Counter()
        self._fallbacks: Counter[str] = Counter()
        self._writes = 0
        self._positions_lost = 0

    def read(self, target: str, because: str | None = None) -> None:
        """One read served by `target` ("primary" or a replica's name); `because`: why the primary."""
        with self._lock:
            self._reads[target] += 1
            if because is not None:
                self._primary_because[because] += 1

    def wrote(self) -> None:
        with self._lock:
            self._writes += 1

    def fell_back(self, kind: str) -> None:
        """A replica failed a read (`kind`: connection_lost, pool_timeout...); the primary served it."""
        with self._lock:
            self._fallbacks[kind] += 1

    def position_lost(self) -> None:
        """A unit of work wrote, but the primary's position could not be read afterwards."""
        with self._lock:
            self._positions_lost += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "reads": dict(self._reads),
                "primary_because": dict(self._primary_because),
                "fallbacks": dict(self._fallbacks),
                "writes": self._writes,
                "positions_lost": self._positions_lost,
            }
