"""Caches an application runs with: L1 in each process, L2 in Redis, tag invalidation after commit.

    from pgferry.runtime.cache import Cache, CachePolicy
    cache = Cache("redis://127.0.0.1:6379/0", CachePolicy(namespace="shop"))

Layout: `tiered` (`Cache`: the levels together), `local` (L1: cachetools TTL + LRU, single flight),
`remote` (L2: Redis, its generations, lock and health), `codec` (versioned values), `counters`
(per-level counts for `stats()`), `policy`, `server` (a throwaway redis-server for tests and
benchmarks). L3, a materialized view, is `pgferry.pg.matview`. docs/runtime.md, "Caches".
"""

from __future__ import annotations

from pgferry.runtime.cache.counters import hit_rate
from pgferry.runtime.cache.policy import CachePolicy
from pgferry.runtime.cache.tiered import Cache

__all__ = ["Cache", "CachePolicy", "hit_rate"]
