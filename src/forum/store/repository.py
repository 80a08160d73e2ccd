"""The forum's one repository API: every read and write the services make, one statement per method.

Backend-agnostic: it runs the `ForumSql` statements of a pgferry.runtime `Backend` (a database and
its dialect: SQLite or PostgreSQL) and turns rows into records, reading columns by name (sqlite3.Row
and psycopg's dict rows both have them) and passing booleans as bools. Multi-step writes
are composed by the services, which decide whether they run in a transaction (optimized) or
statement by statement (legacy): that decision is the point of the two modes, so it is not buried here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from forum.store.records import (
    Activity,
    Category,
    CategoryStats,
    Credentials,
    Notification,
    Reply,
    RevisionSummary,
    SearchHit,
    SessionInfo,
    Tag,
    Topic,
    TopicSummary,
    User,
    UserBrief,
    UserStats,
    WikiPage,
    WikiRevision,
    WikiSummary,
)
from forum.store.statements import ForumSql
from pgferry.runtime import Backend, Database


@dataclass(frozen=True)
class Owner:
    """Who owns a row and the state that decides whether it may change."""

    user_id: int
    parent_id: int | None = None  # a reply's topic, a topic's category
    locked: bool = False
    status: str | None = None


def _text(value: Any) -> Any:
    """Timestamps as text whatever the backend returns (SQLite: text; PostgreSQL: datetime).

    Fractions of a second are kept when there are any: a keyset cursor made from the text must
    compare equal to the stored value, or a page would repeat or skip rows."""
    if value is None or isinstance(value, str):
        return value
    isoformat = getattr(value, "isoformat", None)
    return isoformat(sep=" ") if isoformat else str(value)


def _json_or_text(value: Any) -> Any:
    """A JSON object as a dict, anything else as text: SQLite gives the stored text, PostgreSQL's jsonb
    a parsed value (a list or a scalar there goes back to JSON text, as SQLite would show it)."""
    if value is None or isinstance(value, dict):
        return value
    if not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, dict) else value


def contains_pattern(text: str) -> str:
    """A LIKE pattern matching titles that hold `text`: its %, _ and backslash escaped (backslash is
    the escape character in both dialects), so they match themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _hit(row: Any) -> SearchHit:
    return SearchHit(row["kind"], row["id"], row["title"], row["slug"], _text(row["updated_at"]))


def _brief(row: Any, id_key: str = "user_id") -> UserBrief:
    return UserBrief(row[id_key], row["username"], row["display_name"], row["avatar_url"])


def _summary(row: Any) -> TopicSummary:
    return TopicSummary(
        id=row["id"],
        category_id=row["category_id"],
        title=row["title"],
        status=row["status"],
        is_locked=bool(row["is_locked"]),
        author=_brief(row),
        reply_count=row["reply_count"],
        view_count=row["view_count"],
        created_at=_text(row["created_at"]),
        updated_at=_text(row["updated_at"]),
        last_reply_at=_text(row["last_reply_at"]),
    )


def category_stats(row: Any) -> CategoryStats:
    """A row of CATEGORY_STATS, or of the forum_stats view (the same columns)."""
    return CategoryStats(
        row["category_id"], int(row["topics"]), int(row["unique_posters"]), _text(row["last_activity_at"])
    )


def _topic(row: Any) -> Topic:
    tags = row["tags"]
    names = json.loads(tags) if isinstance(tags, str) else list(tags or [])
    return Topic(
        id=row["id"],
        category_id=row["category_id"],
        title=row["title"],
        content=row["content"],
        status=row["status"],
        is_locked=bool(row["is_locked"]),
        author=_brief(row),
        tags=sorted(n for n in names if n is not None),
        reply_count=row["reply_count"],
        view_count=row["view_count"],
        created_at=_text(row["created_at"]),
        updated_at=_text(row["updated_at"]),
        last_reply_at=_text(row["last_reply_at"]),
    )


def _reply(row: Any, topic_id: int | None = None, author: UserBrief | None = None) -> Reply:
    return Reply(
        id=row["id"],
        topic_id=topic_id if topic_id is not None else row["topic_id"],
        content=row["content"],
        author=author if author is not None else _brief(row),
        created_at=_text(row["created_at"]),
        updated_at=_text(row["updated_at"]),
    )


def _wiki(row: Any) -> WikiPage:
    return WikiPage(
        id=row["id"],
        slug=row["slug"],
        title=row["title"],
        content=row["content"],
        status=row["status"],
        is_locked=bool(row["is_locked"]),
        is_protected=bool(row["is_protected"]),
        author=_brief(row, "author_id"),
        view_count=row["view_count"],
        created_at=_text(row["created_at"]),
        updated_at=_text(row["updated_at"]),
    )


class Repository:
    """Reads and single-statement writes, as records, on one backend.

    `db` and `sql` are read from `backend`, so replacing the backend (between units of work) swaps
    the database and its dialect together.
    """

    def __init__(self, backend: Backend[ForumSql]) -> None:
        self.backend = backend

    @property
    def db(self) -> Database:
        return self.backend.db

    @property
    def sql(self) -> ForumSql:
        return self.backend.sql

    # --- the schema ------------------------------------------------------------------------------------

    def table_names(self) -> set[str]:
        """Tables and views, to tell a forum database from another file at start-up."""
        return {r["name"] for r in self.db.all(self.sql.TABLES)}

    # --- users and sessions --------------------------------------------------------------------------

    def user(self, user_id: int) -> User | None:
        row = self.db.one(self.sql.USER_GET, (user_id,))
        if row is None:
            return None
        return User(**{k: _text(row[k]) if k == "created_at" else row[k] for k in row.keys()})  # noqa: SIM118

    def user_brief(self, user_id: int) -> UserBrief | None:
        row = self.db.one(self.sql.USER_BRIEF, (user_id,))
        return None if row is None else _brief(row, "id")

    def credentials(self, username: str) -> Credentials | None:
        row = self.db.one(self.sql.USER_CREDENTIALS, (username,))
        return None if row is None else Credentials(row["id"], row["password_hash"], row["status"])

    def name_or_email_taken(self, username: str, email: str) -> bool:
        return self.db.one(self.sql.USER_NAME_OR_EMAIL_TAKEN, (username, email)) is not None

    def insert_user(self, username: str, email: str, password_hash: str, display_name: str | None, now: str) -> int:
        new_id = self.db.one(self.sql.USER_INSERT, (username, email, password_hash, display_name, now, now))["id"]
        if new_id is None:  # users is a view (pgferry split): RETURNING cannot see the id
            new_id = self.db.one(self.sql.USER_ID_BY_NAME, (username,))["id"]
        return new_id

    def logged_in(self, user_id: int, now: str) -> None:
        self.db.run(self.sql.USER_LOGGED_IN, (now, user_id))

    def set_password_hash(self, user_id: int, password_hash: str, now: str) -> None:
        self.db.run(self.sql.USER_PASSWORD_REHASH, (password_hash, now, user_id))

    def set_role(self, user_id: int, role: str, now: str) -> bool:
        return self.db.run(self.sql.USER_SET_ROLE, (role, now, user_id)) == 1

    def insert_session(
        self, token_hash: str, user_id: int, ip: str | None, agent: str | None, now: str, expires: str
    ) -> None:
        self.db.run(self.sql.SESSION_INSERT, (token_hash, user_id, ip, agent, now, expires))

    def session(self, token_hash: str, now: str) -> SessionInfo | None:
        row = self.db.one(self.sql.SESSION_LOOKUP, (token_hash, now))
        if row is None:
            return None
        return SessionInfo(row["id"], row["user_id"], row["username"], row["role"], _text(row["expires_at"]))

    def end_session(self, session_id: int) -> None:
        self.db.run(self.sql.SESSION_END, (session_id,))

    # --- stats and activity ----------------------------------------------------------------------------

    def insert_stats(self, user_id: int, now: str) -> None:
        self.db.run(self.sql.STATS_INSERT, (user_id, now, now))

    def bump_stats(self, user_id: int, counter: str, now: str) -> None:
        statement = {
            "topics": self.sql.STATS_BUMP_TOPICS,
            "replies": self.sql.STATS_BUMP_REPLIES,
            "wiki_edits": self.sql.STATS_BUMP_WIKI_EDITS,
        }[counter]
        self.db.run(statement, (user_id, now))

    def stats(self, user_id: int) -> UserStats | None:
        row = self.db.one(self.sql.STATS_GET, (user_id,))
        if row is None:
            return None
        return UserStats(
            row["user_id"],
            row["topic_count"],
            row["reply_count"],
            row["wiki_edit_count"],
            row["reputation"],
            _text(row["last_active_at"]),
        )

    def log_activity(
        self,
        user_id: int,
        action: str,
        entity: tuple[str, int] | None,
        ip: str | None,
        metadata: dict[str, Any] | None,
        now: str,
    ) -> None:
        kind, entity_id = entity if entity else (None, None)
        meta = json.dumps(metadata, separators=(", ", ": ")) if metadata is not None else None
        self.db.run(self.sql.ACTIVITY_INSERT, (user_id, action, kind, entity_id, ip, meta, now))

    def activity(self, user_id: int, limit: int) -> list[Activity]:
        return [
            Activity(
                r["id"],
                r["action"],
                r["entity_type"],
                r["entity_id"],
                _text(r["created_at"]),
                _json_or_text(r["metadata"]),
            )
            for r in self.db.all(self.sql.ACTIVITY_OF_USER, (user_id, limit))
        ]

    # --- categories, topics, tags ------------------------------------------------------------------------

    def categories(self) -> list[Category]:
        return [
            Category(r["id"], r["parent_id"], r["name"], r["slug"], r["description"], r["position"], r["topic_count"])
            for r in self.db.all(self.sql.CATEGORIES)
        ]

    def category_stats(self) -> list[CategoryStats]:
        return [category_stats(r) for r in self.db.all(self.sql.CATEGORY_STATS)]

    def category_exists(self, category_id: int) -> bool:
        return self.db.one(self.sql.CATEGORY_EXISTS, (category_id,)) is not None

    def bump_category(self, category_id: int, delta: int, now: str) -> None:
        self.db.run(self.sql.CATEGORY_BUMP, (delta, now, category_id))

    def topics_offset(self, category_id: int, status: str, limit: int, offset: int) -> list[TopicSummary]:
        rows = self.db.all(self.sql.TOPIC_LIST_OFFSET, (category_id, status, limit, offset))
        return [_summary(r) for r in rows]

    def topics_keyset(
        self, category_id: int, status: str, limit: int, after: tuple[str, int] | None
    ) -> list[TopicSummary]:
        if after is None:
            rows = self.db.all(self.sql.TOPIC_LIST_FIRST, (category_id, status, limit))
        else:
            rows = self.db.all(self.sql.TOPIC_LIST_AFTER, (category_id, status, after[0], after[1], limit))
        return [_summary(r) for r in rows]

    def topics_of_tag(self, tag: str, limit: int) -> list[TopicSummary]:
        return [_summary(r) for r in self.db.all(self.sql.TOPICS_OF_TAG, (tag, limit))]

    def topic(self, topic_id: int) -> Topic | None:
        row = self.db.one(self.sql.TOPIC_GET, (topic_id,))
        return None if row is None else _topic(row)

    def topic_owner(self, topic_id: int) -> Owner | None:
        row = self.db.one(self.sql.TOPIC_OWNER, (topic_id,))
        if row is None:
            return None
        return Owner(row["user_id"], row["category_id"], bool(row["is_locked"]), row["status"])

    def insert_topic(self, category_id: int, user_id: int, title: str, content: str, now: str) -> int:
        return self.db.one(self.sql.TOPIC_INSERT, (category_id, user_id, title, content, now, now))["id"]

    def update_topic(self, topic_id: int, title: str, content: str, now: str) -> None:
        self.db.run(self.sql.TOPIC_UPDATE, (title, content, now, topic_id))

    def topic_replied(self, topic_id: int, now: str) -> None:
        self.db.run(self.sql.TOPIC_REPLIED, (now, topic_id))

    def topic_reply_removed(self, topic_id: int) -> None:
        self.db.run(self.sql.TOPIC_REPLY_REMOVED, (topic_id,))

    def untag_topic(self, topic_id: int) -> None:
        """Lower the tags' usage counts, then drop the topic's tag links (two statements)."""
        self.db.run(self.sql.TOPIC_TAGS_UNCOUNT, (topic_id,))
        self.db.run(self.sql.TOPIC_TAGS_DELETE, (topic_id,))

    def delete_replies_of(self, topic_id: int) -> None:
        self.db.run(self.sql.TOPIC_REPLIES_DELETE, (topic_id,))

    def delete_topic(self, topic_id: int) -> None:
        self.db.run(self.sql.TOPIC_DELETE, (topic_id,))

    def upsert_tag(self, name: str, now: str) -> int:
        return self.db.one(self.sql.TAG_UPSERT, (name, now))["id"]

    def link_tag(self, topic_id: int, tag_id: int, now: str) -> None:
        self.db.run(self.sql.TOPIC_TAG_INSERT, (topic_id, tag_id, now))

    def popular_tags(self, limit: int) -> list[Tag]:
        return [Tag(r["id"], r["name"], r["usage_count"]) for r in self.db.all(self.sql.TAGS_POPULAR, (limit,))]

    # --- replies ----------------------------------------------------------------------------------------

    def replies_offset(self, topic_id: int, limit: int, offset: int) -> list[tuple[Reply, int]]:
        """A page of replies WITHOUT their authors: (reply, author id) pairs; the caller loads authors."""
        rows = self.db.all(self.sql.REPLIES_OFFSET, (topic_id, limit, offset))
        return [(_reply(r, author=UserBrief(r["user_id"], None)), r["user_id"]) for r in rows]

    def topic_view(self, topic_id: int, limit: int, after: tuple[str, int] | None) -> tuple[Topic, list[Reply]] | None:
        """The topic and a page of its replies, authors included, in one statement.

        The topic row comes first (part 0); the replies are either the rows after it (SQLite's UNION
        ALL) or a JSON array in its `replies` column (PostgreSQL's json_agg)."""
        if after is None:
            rows = self.db.all(self.sql.TOPIC_VIEW_FIRST, (topic_id, limit))
        else:
            rows = self.db.all(self.sql.TOPIC_VIEW_AFTER, (topic_id, after[0], after[1], limit))
        if not rows or rows[0]["part"] != 0:
            return None
        head = rows[0]
        embedded = head["replies"] if "replies" in head.keys() else None  # noqa: SIM118 (sqlite3.Row)
        if isinstance(embedded, str):
            embedded = json.loads(embedded)
        replies = embedded if embedded is not None else rows[1:]
        return _topic(head), [_reply(r, topic_id=topic_id) for r in replies]

    def reply(self, reply_id: int) -> Reply | None:
        row = self.db.one(self.sql.REPLY_GET, (reply_id,))
        return None if row is None else _reply(row)

    def reply_owner(self, reply_id: int) -> Owner | None:
        row = self.db.one(self.sql.REPLY_OWNER, (reply_id,))
        return None if row is None else Owner(row["user_id"], row["topic_id"])

    def insert_reply(self, topic_id: int, user_id: int, content: str, now: str) -> int:
        return self.db.one(self.sql.REPLY_INSERT, (topic_id, user_id, content, now, now))["id"]

    def update_reply(self, reply_id: int, content: str, now: str) -> None:
        self.db.run(self.sql.REPLY_UPDATE, (content, now, reply_id))

    def soft_delete_reply(self, reply_id: int, now: str) -> None:
        self.db.run(self.sql.REPLY_SOFT_DELETE, (now, reply_id))

    # --- notifications ------------------------------------------------------------------------------------

    def notify(self, user_id: int, kind: str, payload: dict[str, Any], now: str) -> None:
        self.db.run(self.sql.NOTIFICATION_INSERT, (user_id, kind, json.dumps(payload, ensure_ascii=False), now))

    def notifications(self, user_id: int, limit: int) -> list[Notification]:
        return [
            Notification(r["id"], r["type"], _json_or_text(r["payload"]), bool(r["is_read"]), _text(r["created_at"]))
            for r in self.db.all(self.sql.NOTIFICATIONS_UNREAD_FIRST, (user_id, limit))
        ]

    def unread_count(self, user_id: int) -> int:
        return self.db.one(self.sql.NOTIFICATIONS_UNREAD_COUNT, (user_id,))["n"]

    def notification_owner(self, notification_id: int) -> int | None:
        row = self.db.one(self.sql.NOTIFICATION_OWNER, (notification_id,))
        return None if row is None else row["user_id"]

    def mark_read(self, notification_id: int, user_id: int) -> int:
        return self.db.run(self.sql.NOTIFICATION_READ, (notification_id, user_id))

    def mark_all_read(self, user_id: int) -> int:
        return self.db.run(self.sql.NOTIFICATIONS_ALL_READ, (user_id,))

    # --- wiki ---------------------------------------------------------------------------------------------

    def wiki_offset(self, limit: int, offset: int) -> list[WikiSummary]:
        rows = self.db.all(self.sql.WIKI_LIST_OFFSET, (limit, offset))
        return [WikiSummary(r["id"], r["slug"], r["title"], _text(r["updated_at"])) for r in rows]

    def wiki_keyset(self, limit: int, after: tuple[str, int] | None) -> list[WikiSummary]:
        if after is None:
            rows = self.db.all(self.sql.WIKI_LIST_FIRST, (limit,))
        else:
            rows = self.db.all(self.sql.WIKI_LIST_AFTER, (after[0], after[1], limit))
        return [WikiSummary(r["id"], r["slug"], r["title"], _text(r["updated_at"])) for r in rows]

    def wiki_page(self, slug: str) -> WikiPage | None:
        row = self.db.one(self.sql.WIKI_BY_SLUG, (slug,))
        return None if row is None else _wiki(row)

    def wiki_slug_taken(self, slug: str) -> bool:
        return self.db.one(self.sql.WIKI_SLUG_TAKEN, (slug,)) is not None

    def insert_wiki(self, slug: str, title: str, content: str, author_id: int, now: str) -> int:
        return self.db.one(self.sql.WIKI_INSERT, (slug, title, content, author_id, now, now))["id"]

    def update_wiki(self, page_id: int, title: str, content: str, now: str) -> None:
        self.db.run(self.sql.WIKI_UPDATE, (title, content, now, page_id))

    def archive_wiki(self, page_id: int, now: str) -> None:
        self.db.run(self.sql.WIKI_ARCHIVE, (now, page_id))

    def insert_revision(
        self, page_id: int, user_id: int, content: str, comment: str | None, minor: bool, now: str
    ) -> int:
        return self.db.one(self.sql.REVISION_INSERT, (page_id, user_id, content, comment, minor, now))["id"]

    def revisions(self, page_id: int, limit: int) -> list[RevisionSummary]:
        return [
            RevisionSummary(r["id"], r["comment"], bool(r["is_minor"]), _brief(r), _text(r["created_at"]))
            for r in self.db.all(self.sql.REVISIONS_OF_PAGE, (page_id, limit))
        ]

    def revision(self, page_id: int, revision_id: int) -> WikiRevision | None:
        r = self.db.one(self.sql.REVISION_GET, (revision_id, page_id))
        if r is None:
            return None
        return WikiRevision(
            r["id"], r["page_id"], r["content"], r["comment"], bool(r["is_minor"]), _brief(r), _text(r["created_at"])
        )

    # --- search -------------------------------------------------------------------------------------------

    def search_offset(self, text: str, limit: int, offset: int) -> list[SearchHit]:
        return [_hit(r) for r in self.db.all(self.sql.SEARCH_OFFSET, (contains_pattern(text), limit, offset))]

    def search_keyset(self, text: str, limit: int, after: tuple[str, int] | None) -> list[SearchHit]:
        pattern = contains_pattern(text)
        if after is None:
            rows = self.db.all(self.sql.SEARCH_FIRST, (pattern, limit))
        else:
            rows = self.db.all(self.sql.SEARCH_AFTER, (pattern, after[0], after[1], limit))
        return [_hit(r) for r in rows]
