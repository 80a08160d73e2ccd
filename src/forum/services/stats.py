"""Category stats from L3, the forum_stats materialized view (PostgreSQL): made at start-up where
missing, refreshed every `every_s` seconds and on demand, read with its age. A refresh invalidates the
cached stats (tag `category_stats`) so L1 and L2 never serve what the view no longer says."""

from __future__ import annotations

import psycopg

from forum.services import cachetags
from forum.store.errors import StoreError
from forum.store.postgres.stats_view import FORUM_STATS, READ
from forum.store.records import CategoryStatsList
from forum.store.repository import category_stats
from pgferry.pg.connect import first_line
from pgferry.pg.matview import Refresher, age_s, ensure
from pgferry.runtime import Database
from pgferry.runtime.cache import Cache


class StatsView:
    def __init__(self, db: Database, cache: Cache | None, every_s: float) -> None:
        try:
            ensure(db, FORUM_STATS)
        except psycopg.Error as exc:  # a role that may not create it: one line at start-up
            raise StoreError(f"the forum_stats view (the caches' L3) could not be made: {first_line(exc)}") from None
        self.db = db
        self.cache = cache
        self.refresher = Refresher(db, FORUM_STATS, every_s, on_refresh=self._refreshed)

    def start(self) -> StatsView:
        self.refresher.start()
        return self

    def _refreshed(self) -> None:
        if self.cache is not None:
            self.cache.counters.add("l3", "recomputes")
            self.cache.invalidate([cachetags.CATEGORY_STATS])

    def read(self) -> CategoryStatsList:
        with self.db.hold():
            rows = self.db.all(READ)
            age = age_s(self.db, FORUM_STATS)
        if self.cache is not None:
            self.cache.counters.add("l3", "hits")
        return CategoryStatsList([category_stats(r) for r in rows], "view", age)

    def refresh(self) -> bool:
        """Refresh now; False when another process was refreshing it."""
        return self.refresher.now()

    def close(self) -> None:
        self.refresher.stop()
