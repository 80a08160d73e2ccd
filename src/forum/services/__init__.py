"""The forum's services: what the HTTP API calls. They hold the rules (who may do what, what a write
consists of) and the mode-specific hot paths; the repository holds the SQL.

    forum = Forum.open("forum.db", "optimized")
    forum.topics.view(1, limit=50, cursor=None)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from forum.services.auth import AuthPolicy, AuthService, SessionGrant
from forum.services.caching import ForumCache
from forum.services.people import PeopleService
from forum.services.search import SearchService
from forum.services.stats import StatsView
from forum.services.topics import TopicService
from forum.services.units import Units
from forum.services.wiki import WikiService
from forum.store import Mode, Store, open_store
from pgferry.runtime.cache import Cache
from pgferry.workload.capture import Sink


@dataclass
class Forum:
    store: Store
    auth: AuthService
    topics: TopicService
    wiki: WikiService
    people: PeopleService
    search: SearchService
    cache: ForumCache = field(default_factory=lambda: ForumCache(None))
    stats_view: StatsView | None = None

    @property
    def mode(self) -> Mode:
        return self.store.mode

    @classmethod
    def from_store(
        cls, store: Store, policy: AuthPolicy | None = None, cache: Cache | None = None, stats_every_s: float = 30.0
    ) -> Forum:
        """With a cache, reads go through it; on PostgreSQL the category stats then come from the
        forum_stats view (L3), made here where missing and refreshed every `stats_every_s` seconds."""
        forum_cache = ForumCache(cache)
        units = Units(store, forum_cache)
        view = None
        if cache is not None and store.db.dialect == "postgresql":
            try:
                view = StatsView(store.db, cache, stats_every_s).start()
            except BaseException:
                forum_cache.close()
                raise
        return cls(
            store,
            AuthService(units, policy),
            TopicService(units, view),
            WikiService(units),
            PeopleService(units),
            SearchService(units),
            forum_cache,
            view,
        )

    @classmethod
    def open(
        cls,
        path: str | Path,
        mode: Mode | str,
        *,
        capture: Sink | None = None,
        policy: AuthPolicy | None = None,
        cache: Cache | None = None,
        stats_every_s: float = 30.0,
        **store_settings: object,
    ) -> Forum:
        """`store_settings` override the mode's connection settings (see forum.store.sqlite.settings)."""
        store = open_store(path, mode, capture, **store_settings)
        try:
            return cls.from_store(store, policy, cache, stats_every_s)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        if self.stats_view is not None:
            self.stats_view.close()
        self.cache.close()
        self.store.close()


__all__ = ["AuthPolicy", "Forum", "SessionGrant"]
