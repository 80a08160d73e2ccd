"""The forum's statement set: the name of every statement the repository runs, whatever the engine.

Each dialect (`forum.store.dialects`) gives every one of these its text for one engine; loading a
dialect that lacks one fails at start-up naming it, and mypy checks each `sql.NAME` the repository
uses against this list.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgferry.runtime import Statements


@dataclass(frozen=True)
class ForumSql(Statements):
    # the schema
    TABLES: str

    # users and sessions
    USER_GET: str
    USER_BRIEF: str
    USER_CREDENTIALS: str
    USER_NAME_OR_EMAIL_TAKEN: str
    USER_INSERT: str
    USER_ID_BY_NAME: str
    USER_LOGGED_IN: str
    USER_PASSWORD_REHASH: str
    USER_SET_ROLE: str
    SESSION_INSERT: str
    SESSION_LOOKUP: str
    SESSION_END: str

    # per-user stats and the activity log
    STATS_INSERT: str
    STATS_BUMP_TOPICS: str
    STATS_BUMP_REPLIES: str
    STATS_BUMP_WIKI_EDITS: str
    STATS_GET: str
    ACTIVITY_INSERT: str
    ACTIVITY_OF_USER: str

    # categories, topics, tags
    CATEGORIES: str
    CATEGORY_EXISTS: str
    CATEGORY_BUMP: str
    CATEGORY_STATS: str
    TOPIC_LIST_OFFSET: str
    TOPIC_LIST_FIRST: str
    TOPIC_LIST_AFTER: str
    TOPICS_OF_TAG: str
    TOPIC_GET: str
    TOPIC_OWNER: str
    TOPIC_INSERT: str
    TOPIC_UPDATE: str
    TOPIC_REPLIED: str
    TOPIC_REPLY_REMOVED: str
    TOPIC_DELETE: str
    TOPIC_REPLIES_DELETE: str
    TOPIC_TAGS_UNCOUNT: str
    TOPIC_TAGS_DELETE: str
    TAG_UPSERT: str
    TOPIC_TAG_INSERT: str
    TAGS_POPULAR: str

    # replies
    REPLIES_OFFSET: str
    REPLY_OWNER: str
    REPLY_GET: str
    REPLY_INSERT: str
    REPLY_UPDATE: str
    REPLY_SOFT_DELETE: str
    TOPIC_VIEW_FIRST: str
    TOPIC_VIEW_AFTER: str

    # notifications
    NOTIFICATION_INSERT: str
    NOTIFICATIONS_UNREAD_FIRST: str
    NOTIFICATIONS_UNREAD_COUNT: str
    NOTIFICATION_OWNER: str
    NOTIFICATION_READ: str
    NOTIFICATIONS_ALL_READ: str

    # wiki
    WIKI_LIST_OFFSET: str
    WIKI_LIST_FIRST: str
    WIKI_LIST_AFTER: str
    WIKI_BY_SLUG: str
    WIKI_SLUG_TAKEN: str
    WIKI_INSERT: str
    WIKI_UPDATE: str
    WIKI_ARCHIVE: str
    REVISION_INSERT: str
    REVISIONS_OF_PAGE: str
    REVISION_GET: str

    # search: topic and wiki titles holding a text
    SEARCH_OFFSET: str
    SEARCH_FIRST: str
    SEARCH_AFTER: str
