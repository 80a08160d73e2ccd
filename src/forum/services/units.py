"""Units of work: where the two modes differ for writes.

optimized: a write unit is one transaction (BEGIN IMMEDIATE ... COMMIT), so a failure half-way
leaves nothing behind. legacy: the same statements run one by one in autocommit, as the legacy
application ran them, so a failure half-way leaves the first steps written.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from forum.services.caching import ForumCache
from forum.store import Mode, Store
from pgferry.runtime.postgres.replicas import on_primary


def now_text() -> str:
    """UTC now, as the legacy database stores timestamps."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


class Units:
    def __init__(self, store: Store, cache: ForumCache | None = None) -> None:
        self.store = store
        self.cache = cache or ForumCache(None)
        self.repo = store.repo
        self.optimized = store.mode is Mode.OPTIMIZED

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self.store.db.hold():
            yield

    @contextlib.contextmanager
    def write(self) -> Iterator[set[str]]:
        """A write unit reads on the primary (with replicas): its checks must see what it is about to change.
        It yields the set of cache tags the write changes, invalidated after the commit (outside it)."""
        with self.cache.writing() as tags, on_primary():
            if self.optimized:
                with self.store.db.transaction():
                    yield tags
            else:
                with self.store.db.hold():
                    yield tags
