"""A Redis for the session (pgferry's throwaway redis-server on loopback), for the cache tests and the
forum API suite's `cached` case: each user of it takes its own namespace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pgferry.runtime.cache.server import LocalRedis, throwaway_redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedis]:
    with throwaway_redis() as server:
        yield server
