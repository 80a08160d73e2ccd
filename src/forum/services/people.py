"""Users' public profiles, their stats and activity log, and their notifications (unread first)."""

from __future__ import annotations

from collections.abc import Callable

from forum.services import cachetags
from forum.services.caching import Render, Rendered
from forum.services.units import Units
from forum.store.errors import Forbidden, NotFound
from forum.store.records import ActivityList, NotificationList, SessionInfo, User, UserStats


class PeopleService:
    def __init__(self, units: Units) -> None:
        self.units = units
        self.repo = units.repo

    def profile(self, user_id: int) -> User:
        with self.units.read():
            user = self.repo.user(user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        return user

    def stats(self, user_id: int) -> UserStats:
        return self.units.cache.read(*self._stats_entry(user_id))

    def stats_json(self, user_id: int, render: Render[UserStats]) -> Rendered:
        return self.units.cache.read_json(*self._stats_entry(user_id), render)

    def _stats_entry(self, user_id: int) -> tuple[str, list[str], Callable[[], UserStats]]:
        return f"stats:{user_id}", [cachetags.stats(user_id)], lambda: self._stats(user_id)

    def _stats(self, user_id: int) -> UserStats:
        with self.units.read():
            stats = self.repo.stats(user_id)
        if stats is None:
            raise NotFound(f"no stats for user {user_id}")
        return stats

    def activity(self, actor: SessionInfo, user_id: int, limit: int) -> ActivityList:
        if actor.user_id != user_id and not actor.is_admin:
            raise Forbidden("a user's activity log is for that user and admins only")
        with self.units.read():
            return ActivityList(self.repo.activity(user_id, limit))

    def notifications(self, actor: SessionInfo, limit: int) -> NotificationList:
        user_id = actor.user_id
        return self.units.cache.read(
            f"notifications:{user_id}:{limit}",
            [cachetags.notifications(user_id)],
            lambda: self._notifications(user_id, limit),
        )

    def _notifications(self, user_id: int, limit: int) -> NotificationList:
        with self.units.read():
            return NotificationList(self.repo.unread_count(user_id), self.repo.notifications(user_id, limit))

    def mark_read(self, actor: SessionInfo, notification_id: int) -> None:
        with self.units.write() as changed:
            changed.add(cachetags.notifications(actor.user_id))
            if self.repo.mark_read(notification_id, actor.user_id):
                return
            owner = self.repo.notification_owner(notification_id)
        if owner is None:
            raise NotFound(f"no notification {notification_id}")
        raise Forbidden("that notification belongs to another user")

    def mark_all_read(self, actor: SessionInfo) -> int:
        with self.units.write() as changed:
            changed.add(cachetags.notifications(actor.user_id))
            return self.repo.mark_all_read(actor.user_id)
