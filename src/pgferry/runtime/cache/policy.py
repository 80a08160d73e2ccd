"""How a cache behaves: sizes, freshness, the stampede lock, and how long Redis may take."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CachePolicy:
    namespace: str = "pgferry"  # prefix of every Redis key: applications sharing one Redis stay apart
    l1_size: int = 10_000  # entries per process (LRU beyond)
    l1_ttl_s: float = 30.0
    fresh_s: float = 60.0  # an L2 value older than this is recomputed by one caller; others get it meanwhile
    keep_s: float = 600.0  # how long Redis keeps a value at all (its TTL): stale ones can be served until then
    lock_s: float = 5.0  # the stampede lock's deadline: a loader that dies holds it no longer
    wait_s: float = 2.0  # a caller with no value to serve waits this long for the loader, then loads itself
    poll_s: float = 0.005  # how often a waiting caller looks again
    redis_timeout_s: float = 0.25  # per Redis command: past it Redis counts as down
    retry_min_s: float = 0.25  # down: the first retry after this, doubling up to retry_max_s
    retry_max_s: float = 4.0
    invalidate_s: float = 5.0  # how long a write's invalidation keeps trying Redis before it gives up on it
    follow_s: float = 0.005  # the invalidation stream is read this often (pgferry.runtime.cache.follower)
    confirm_s: float = 0.05  # L1 serves while the stream was read to its end this recently; a write waits at most this

    def __post_init__(self) -> None:
        if self.l1_size < 1:
            raise ValueError("l1_size must be at least 1")
        if min(self.l1_ttl_s, self.fresh_s, self.lock_s, self.wait_s, self.poll_s, self.redis_timeout_s) <= 0:
            raise ValueError("cache durations must be above 0")
        if not 0 < self.follow_s < self.confirm_s:
            raise ValueError("follow_s must be above 0 and below confirm_s (a read of the stream must confirm in time)")
        if self.keep_s < self.fresh_s:
            raise ValueError("keep_s must be at least fresh_s")
        if not 0 < self.retry_min_s <= self.retry_max_s:
            raise ValueError("retry_min_s must be above 0 and at most retry_max_s")
        if not self.namespace or any(c in self.namespace for c in " :\n"):
            raise ValueError(f"namespace must be a non-empty word without spaces or colons, not {self.namespace!r}")
