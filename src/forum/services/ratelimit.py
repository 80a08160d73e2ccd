"""A sliding-window limit on attempts per key (login by username, login by client address).

Memory is bounded: keys live in a TTL cache of fixed size, so a flood of made-up usernames evicts
old entries instead of growing the process. In-process: behind several server processes each keeps
its own count (a shared Redis limiter is the runtime's job later).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

from cachetools import TTLCache


class SlidingWindow:
    def __init__(self, limit: int, window_s: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: TTLCache[str, deque[float]] = TTLCache(maxsize=max_keys, ttl=window_s)
        self._lock = threading.Lock()

    def hit(self, key: str) -> float:
        """Count one attempt; return 0 when allowed, else the seconds to wait before the next one."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = deque()
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                self._hits[key] = hits
                return max(hits[0] + self.window_s - now, 0.001)
            hits.append(now)
            self._hits[key] = hits
            return 0.0

    @staticmethod
    def retry_after(wait_s: float) -> int:
        return max(1, math.ceil(wait_s))
