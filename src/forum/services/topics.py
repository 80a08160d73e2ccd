"""Categories, topics, replies and tags, with the two modes' hot paths side by side.

The topic view is the plan's N+1 in legacy mode (the topic, a page of replies, then each reply's
author by id: R+2 statements for R replies) and one statement in optimized mode. Lists page by
OFFSET (legacy) or keyset (optimized) behind the same opaque cursor. Multi-step writes go through
`Units.write()`, a transaction in optimized mode only.
"""

from __future__ import annotations

from collections.abc import Callable

from forum.services import cachetags
from forum.services.caching import Render, Rendered
from forum.services.stats import StatsView
from forum.services.units import Units, now_text
from forum.store import cursors
from forum.store.errors import Conflict, Forbidden, NotFound
from forum.store.records import (
    Category,
    CategoryStatsList,
    Reply,
    SessionInfo,
    Tag,
    Topic,
    TopicPage,
    TopicSummary,
    TopicView,
    UserBrief,
)
from forum.store.repository import Owner


def check_owner(actor: SessionInfo, owner_id: int, what: str) -> None:
    """Only the author, or an admin, changes a piece of content."""
    if actor.user_id != owner_id and not actor.is_admin:
        raise Forbidden(f"only the author of this {what} or an admin can change it")


class TopicService:
    def __init__(self, units: Units, stats_view: StatsView | None = None) -> None:
        self.units = units
        self.repo = units.repo
        self.stats_view = stats_view

    # --- reads ---------------------------------------------------------------------------------------

    def categories(self) -> list[Category]:
        return self.units.cache.read("categories", [cachetags.CATEGORIES], self._categories)

    def _categories(self) -> list[Category]:
        with self.units.read():
            return self.repo.categories()

    def category_stats(self) -> CategoryStatsList:
        """Live, or from the forum_stats view (L3) when the stats are given one."""
        if self.stats_view is not None:
            return self.units.cache.read("category_stats", [cachetags.CATEGORY_STATS], self.stats_view.read)
        return self.units.cache.read("category_stats", [cachetags.CATEGORY_STATS], self._live_stats)

    def refresh_stats(self, actor: SessionInfo) -> bool:
        """Refresh the forum_stats view now (admins only); False when there is none or another process was at it."""
        if not actor.is_admin:
            raise Forbidden("only an admin can refresh the category stats")
        return self.stats_view.refresh() if self.stats_view is not None else False

    def _live_stats(self) -> CategoryStatsList:
        with self.units.read():
            return CategoryStatsList(self.repo.category_stats(), "live", None)

    def popular_tags(self, limit: int) -> list[Tag]:
        with self.units.read():
            return self.repo.popular_tags(limit)

    def topics_of_tag(self, tag: str, limit: int) -> list[TopicSummary]:
        with self.units.read():
            return self.repo.topics_of_tag(tag, limit)

    def list_topics(self, category_id: int, status: str, limit: int, cursor: str | None) -> TopicPage:
        return self.units.cache.read(*self._list_entry(category_id, status, limit, cursor))

    def list_topics_json(
        self, category_id: int, status: str, limit: int, cursor: str | None, render: Render[TopicPage]
    ) -> Rendered:
        return self.units.cache.read_json(*self._list_entry(category_id, status, limit, cursor), render)

    def _list_entry(
        self, category_id: int, status: str, limit: int, cursor: str | None
    ) -> tuple[str, list[str], Callable[[], TopicPage]]:
        return (
            f"topics:{category_id}:{status}:{limit}:{cursor}",
            [cachetags.category(category_id)],
            lambda: self._list_topics(category_id, status, limit, cursor),
        )

    def _list_topics(self, category_id: int, status: str, limit: int, cursor: str | None) -> TopicPage:
        with self.units.read():
            if not self.repo.category_exists(category_id):
                raise NotFound(f"no category {category_id}")
            if self.units.optimized:
                topics = self.repo.topics_keyset(category_id, status, limit, cursors.keyset_of(cursor))
                last = topics[-1] if topics else None
                nxt = cursors.next_keyset(last.updated_at, last.id, limit, len(topics)) if last else None
            else:
                offset = cursors.offset_of(cursor)
                topics = self.repo.topics_offset(category_id, status, limit, offset)
                nxt = cursors.next_offset(offset, limit, len(topics))
        return TopicPage(topics, nxt)

    def view(self, topic_id: int, limit: int, cursor: str | None) -> TopicView:
        return self.units.cache.read(*self._view_entry(topic_id, limit, cursor))

    def view_json(self, topic_id: int, limit: int, cursor: str | None, render: Render[TopicView]) -> Rendered:
        return self.units.cache.read_json(*self._view_entry(topic_id, limit, cursor), render)

    def _view_entry(
        self, topic_id: int, limit: int, cursor: str | None
    ) -> tuple[str, list[str], Callable[[], TopicView]]:
        return (
            f"topic:{topic_id}:{limit}:{cursor}",
            [cachetags.topic(topic_id)],
            lambda: self._view(topic_id, limit, cursor),
        )

    def _view(self, topic_id: int, limit: int, cursor: str | None) -> TopicView:
        with self.units.read():
            if self.units.optimized:
                found = self.repo.topic_view(topic_id, limit, cursors.keyset_of(cursor))
                if found is None:
                    raise NotFound(f"no topic {topic_id}")
                topic, replies = found
                last = replies[-1] if replies else None
                nxt = cursors.next_keyset(last.created_at, last.id, limit, len(replies)) if last else None
                return TopicView(topic, replies, nxt)
            return self._view_n_plus_one(topic_id, limit, cursor)

    def _view_n_plus_one(self, topic_id: int, limit: int, cursor: str | None) -> TopicView:
        """The legacy getTopicWithReplies: topic, replies, then one query per reply for its author."""
        topic = self.repo.topic(topic_id)
        if topic is None:
            raise NotFound(f"no topic {topic_id}")
        offset = cursors.offset_of(cursor)
        replies: list[Reply] = []
        for reply, author_id in self.repo.replies_offset(topic_id, limit, offset):
            reply.author = self.repo.user_brief(author_id) or UserBrief(author_id, None)
            replies.append(reply)
        return TopicView(topic, replies, cursors.next_offset(offset, limit, len(replies)))

    def reply(self, reply_id: int) -> Reply:
        with self.units.read():
            found = self.repo.reply(reply_id)
        if found is None:
            raise NotFound(f"no reply {reply_id}")
        return found

    # --- writes --------------------------------------------------------------------------------------

    def create_topic(
        self, actor: SessionInfo, category_id: int, title: str, content: str, tags: list[str], ip: str | None
    ) -> Topic:
        """Topic, tags (created as needed), tag links, category and user counters, activity: all or nothing."""
        now = now_text()
        with self.units.write() as changed:
            if not self.repo.category_exists(category_id):
                raise NotFound(f"no category {category_id}")
            topic_id = self.repo.insert_topic(category_id, actor.user_id, title, content, now)
            changed.update(
                {
                    cachetags.topic(topic_id),
                    cachetags.category(category_id),
                    cachetags.CATEGORIES,
                    cachetags.CATEGORY_STATS,
                    cachetags.stats(actor.user_id),
                }
            )
            for name in tags:
                self.repo.link_tag(topic_id, self.repo.upsert_tag(name, now), now)
            self.repo.bump_category(category_id, 1, now)
            self.repo.bump_stats(actor.user_id, "topics", now)
            self.repo.log_activity(actor.user_id, "create_topic", ("topic", topic_id), ip, None, now)
            topic = self.repo.topic(topic_id)
        assert topic is not None
        return topic

    def _owned_topic(self, actor: SessionInfo, topic_id: int) -> Owner:
        owner = self.repo.topic_owner(topic_id)
        if owner is None:
            raise NotFound(f"no topic {topic_id}")
        check_owner(actor, owner.user_id, "topic")
        return owner

    def edit_topic(self, actor: SessionInfo, topic_id: int, title: str | None, content: str | None) -> Topic:
        now = now_text()
        with self.units.write() as changed:
            owner = self._owned_topic(actor, topic_id)
            changed.update({cachetags.topic(topic_id), cachetags.category(owner.parent_id)})
            current = self.repo.topic(topic_id)
            assert current is not None
            self.repo.update_topic(topic_id, title or current.title, content or current.content, now)
            topic = self.repo.topic(topic_id)
        assert topic is not None
        return topic

    def delete_topic(self, actor: SessionInfo, topic_id: int, ip: str | None) -> None:
        """Tag counts, tag links, replies, the topic, the category count, activity."""
        now = now_text()
        with self.units.write() as changed:
            owner = self._owned_topic(actor, topic_id)
            changed.update(
                {
                    cachetags.topic(topic_id),
                    cachetags.category(owner.parent_id),
                    cachetags.CATEGORIES,
                    cachetags.CATEGORY_STATS,
                }
            )
            self.repo.untag_topic(topic_id)
            self.repo.delete_replies_of(topic_id)
            self.repo.delete_topic(topic_id)
            if owner.parent_id is not None:
                self.repo.bump_category(owner.parent_id, -1, now)
            self.repo.log_activity(actor.user_id, "delete_topic", ("topic", topic_id), ip, None, now)

    def create_reply(self, actor: SessionInfo, topic_id: int, content: str, ip: str | None) -> Reply:
        """The reply, the topic's counters, a notification to the topic's author, user stats, activity."""
        now = now_text()
        with self.units.write() as changed:
            topic = self.repo.topic_owner(topic_id)
            if topic is None:
                raise NotFound(f"no topic {topic_id}")
            changed.update(
                {
                    cachetags.topic(topic_id),
                    cachetags.category(topic.parent_id),
                    cachetags.CATEGORY_STATS,
                    cachetags.stats(actor.user_id),
                }
            )
            if topic.locked or topic.status != "open":
                raise Conflict(f"topic {topic_id} is {'locked' if topic.locked else topic.status}: no new replies")
            reply_id = self.repo.insert_reply(topic_id, actor.user_id, content, now)
            self.repo.topic_replied(topic_id, now)
            if topic.user_id != actor.user_id:
                payload = {
                    "topic_id": topic_id,
                    "reply_id": reply_id,
                    "actor_id": actor.user_id,
                    "excerpt": content[:80],
                }
                self.repo.notify(topic.user_id, "reply", payload, now)
                changed.add(cachetags.notifications(topic.user_id))
            self.repo.bump_stats(actor.user_id, "replies", now)
            self.repo.log_activity(actor.user_id, "create_reply", ("reply", reply_id), ip, None, now)
            reply = self.repo.reply(reply_id)
        assert reply is not None
        return reply

    def _owned_reply(self, actor: SessionInfo, reply_id: int) -> Owner:
        owner = self.repo.reply_owner(reply_id)
        if owner is None:
            raise NotFound(f"no reply {reply_id}")
        check_owner(actor, owner.user_id, "reply")
        return owner

    def edit_reply(self, actor: SessionInfo, reply_id: int, content: str) -> Reply:
        now = now_text()
        with self.units.write() as changed:
            owner = self._owned_reply(actor, reply_id)
            changed.add(cachetags.topic(owner.parent_id))
            self.repo.update_reply(reply_id, content, now)
            reply = self.repo.reply(reply_id)
        assert reply is not None
        return reply

    def delete_reply(self, actor: SessionInfo, reply_id: int) -> None:
        now = now_text()
        with self.units.write() as changed:
            owner = self._owned_reply(actor, reply_id)
            self.repo.soft_delete_reply(reply_id, now)
            if owner.parent_id is not None:
                self.repo.topic_reply_removed(owner.parent_id)
                changed.update({cachetags.topic(owner.parent_id), cachetags.CATEGORY_STATS})
                topic = self.repo.topic_owner(owner.parent_id) if self.units.cache.on else None
                if topic is not None:  # its list shows the reply count
                    changed.add(cachetags.category(topic.parent_id))
