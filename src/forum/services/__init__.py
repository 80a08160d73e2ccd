"""The forum's services: what the HTTP API calls. They hold the rules (who may do what, what a write
consists of) and the mode-specific hot paths; the repository holds the SQL.

    forum = Forum.open("forum.db", "optimized")
    forum.topics.view(1, limit=50, cursor=None)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from forum.services.auth import AuthPolicy, AuthService, SessionGrant
from forum.services.people import PeopleService
from forum.services.topics import TopicService
from forum.services.units import Units
from forum.services.wiki import WikiService
from forum.store import Mode, Store, open_store
from pgferry.workload.capture import Sink


@dataclass
class Forum:
    store: Store
    auth: AuthService
    topics: TopicService
    wiki: WikiService
    people: PeopleService

    @property
    def mode(self) -> Mode:
        return self.store.mode

    @classmethod
    def from_store(cls, store: Store, policy: AuthPolicy | None = None) -> Forum:
        units = Units(store)
        return cls(store, AuthService(units, policy), TopicService(units), WikiService(units), PeopleService(units))

    @classmethod
    def open(
        cls,
        path: str | Path,
        mode: Mode | str,
        *,
        capture: Sink | None = None,
        policy: AuthPolicy | None = None,
        **store_settings: object,
    ) -> Forum:
        """`store_settings` override the mode's connection settings (see forum.store.sqlite.settings)."""
        return cls.from_store(open_store(path, mode, capture, **store_settings), policy)

    def close(self) -> None:
        self.store.close()


__all__ = ["AuthPolicy", "Forum", "SessionGrant"]
