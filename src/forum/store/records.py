"""What the repository returns: plain dataclasses, the same whatever the backend.

They are also the HTTP API's response models (FastAPI turns dataclasses into JSON Schema), so the
OpenAPI spec and the library cannot drift apart. Timestamps are UTC text, `YYYY-MM-DD HH:MM:SS`, as
the legacy database stores them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class _Dict:
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]


@dataclass
class UserBrief(_Dict):
    """The part of a user shown next to what they wrote."""

    id: int
    username: str | None
    display_name: str | None = None
    avatar_url: str | None = None


@dataclass
class User(_Dict):
    id: int
    username: str
    display_name: str | None
    avatar_url: str | None
    bio: str | None
    location: str | None
    role: str
    status: str
    created_at: str


@dataclass
class Credentials:
    """What login needs; never returned by the API."""

    user_id: int
    password_hash: str
    status: str


@dataclass
class SessionInfo(_Dict):
    """A live session, resolved from a token."""

    session_id: int
    user_id: int
    username: str
    role: str
    expires_at: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


@dataclass
class Category(_Dict):
    id: int
    parent_id: int | None
    name: str
    slug: str
    description: str | None
    position: int
    topic_count: int


@dataclass
class CategoryStats(_Dict):
    category_id: int
    topics: int
    unique_posters: int
    last_activity_at: str | None


@dataclass
class CategoryStatsList(_Dict):
    """Per-category stats; `source` says where they came from: `view` (the forum_stats materialized
    view, `age_s` seconds old) or `live` (computed for this request)."""

    stats: list[CategoryStats]
    source: str
    age_s: float | None


@dataclass
class TopicSummary(_Dict):
    """A topic in a list: no content."""

    id: int
    category_id: int
    title: str
    status: str
    is_locked: bool
    author: UserBrief
    reply_count: int
    view_count: int
    created_at: str
    updated_at: str
    last_reply_at: str | None


@dataclass
class Topic(_Dict):
    id: int
    category_id: int
    title: str
    content: str
    status: str
    is_locked: bool
    author: UserBrief
    tags: list[str]
    reply_count: int
    view_count: int
    created_at: str
    updated_at: str
    last_reply_at: str | None


@dataclass
class Reply(_Dict):
    id: int
    topic_id: int
    content: str
    author: UserBrief
    created_at: str
    updated_at: str


@dataclass
class TopicView(_Dict):
    """A topic with one page of its replies, authors included."""

    topic: Topic
    replies: list[Reply]
    next_cursor: str | None


@dataclass
class TopicPage(_Dict):
    topics: list[TopicSummary]
    next_cursor: str | None


@dataclass
class Tag(_Dict):
    id: int
    name: str
    usage_count: int


@dataclass
class WikiSummary(_Dict):
    id: int
    slug: str
    title: str
    updated_at: str


@dataclass
class WikiPage(_Dict):
    id: int
    slug: str
    title: str
    content: str
    status: str
    is_locked: bool
    is_protected: bool
    author: UserBrief
    view_count: int
    created_at: str
    updated_at: str


@dataclass
class WikiPageList(_Dict):
    pages: list[WikiSummary]
    next_cursor: str | None


@dataclass
class SearchHit(_Dict):
    """A topic or a published wiki page whose title holds the searched text."""

    kind: str  # "topic" or "wiki"
    id: int
    title: str
    slug: str | None  # a wiki page's; None for a topic
    updated_at: str


@dataclass
class SearchResults(_Dict):
    hits: list[SearchHit]
    next_cursor: str | None


@dataclass
class WikiRevision(_Dict):
    id: int
    page_id: int
    content: str
    comment: str | None
    is_minor: bool
    author: UserBrief
    created_at: str


@dataclass
class RevisionSummary(_Dict):
    id: int
    comment: str | None
    is_minor: bool
    author: UserBrief
    created_at: str


@dataclass
class Notification(_Dict):
    id: int
    type: str
    payload: dict[str, Any] | str  # JSON object, or the raw text when the stored text is not JSON
    is_read: bool
    created_at: str


@dataclass
class NotificationList(_Dict):
    unread: int
    notifications: list[Notification]


@dataclass
class UserStats(_Dict):
    user_id: int
    topic_count: int
    reply_count: int
    wiki_edit_count: int
    reputation: int
    last_active_at: str | None


@dataclass
class Activity(_Dict):
    id: int
    action: str
    entity_type: str | None
    entity_id: int | None
    created_at: str
    metadata: dict[str, Any] | str | None = None


@dataclass
class ActivityList(_Dict):
    activity: list[Activity] = field(default_factory=list)
