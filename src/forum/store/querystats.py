"""How many statements a request ran and how long they took: what the Server-Timing header reports.

A contextvar holds one mutable `QueryStats` per request. The web layer sets it before the handler
runs; the handler's worker thread gets a copy of the context that points at the same object, so the
counts made there are visible when the response goes out. Outside a request nothing is counted.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class QueryStats:
    queries: int = 0
    ms: float = 0.0
    busy: int = 0  # statements refused with "database is locked"
    wait_ms: float = 0.0  # waiting for a connection (legacy pool) or the writer queue (optimized)

    def add(self, ms: float) -> None:
        self.queries += 1
        self.ms += ms

    def server_timing(self) -> str:
        """The header value: `db;desc="queries=N";dur=MS`."""
        return f'db;desc="queries={self.queries}";dur={self.ms:.3f}'


_CURRENT: contextvars.ContextVar[QueryStats | None] = contextvars.ContextVar("forum_query_stats", default=None)


def current() -> QueryStats | None:
    return _CURRENT.get()


@contextlib.contextmanager
def counting() -> Iterator[QueryStats]:
    """Count the statements run in this block (and in threads started from it with its context)."""
    stats = QueryStats()
    token = _CURRENT.set(stats)
    try:
        yield stats
    finally:
        _CURRENT.reset(token)
