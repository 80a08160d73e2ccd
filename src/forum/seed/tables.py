"""Row generators for every table but users: one function per table, one batch per call.

Each function gets the batch's row range and draws from that batch's own generator, so batches are
independent (any order, any thread) and the output depends only on (seed, scale). Rows that point at
other rows pick popular ones that already exist at their time and are dated after them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from forum.seed import distributions as dist
from forum.seed.tally import Tally
from forum.seed.world import Batch, World

CATEGORIES = (
    "Announcements", "General", "Help", "Databases", "SQLite", "PostgreSQL", "Performance", "Migrations",
    "Show and Tell", "Jobs", "Off Topic", "Feedback", "Plugins", "Themes", "Security", "Deployment",
    "Mobile", "Events", "Tutorials", "Archive",
)  # fmt: skip
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
    "forum-mobile/2.3.1 (Android)",
)
_NOTIFICATION_TYPES = ("reply", "mention", "like", "follow", "system")
_ACTIONS = ("login", "logout", "view_topic", "create_topic", "create_reply", "edit_wiki", "update_profile", "search")
_ENTITY_OF_ACTION = ("user", "user", "topic", "topic", "reply", "wiki_page", "user", None)
_ENTITY_TABLE = {"user": "users", "topic": "forum_topics", "reply": "forum_replies", "wiki_page": "wiki_pages"}
MONTH = 30 * 86400


def _flags(rng: np.random.Generator, n: int, p: float) -> list[int]:
    return (rng.random(n) < p).astype(np.int64).tolist()


def _after(at: np.ndarray, *parents: np.ndarray) -> np.ndarray:
    """`at`, moved to at least one second after each parent's time (rarely needed: parents exist at `at`)."""
    for parent in parents:
        at = np.maximum(at, parent + 1)
    return at


def _ips(rng: np.random.Generator, n: int) -> list[str]:
    octets = rng.integers(1, 255, (n, 4)).tolist()
    return [f"{a}.{b}.{c}.{d}" for a, b, c, d in octets]


def forum_categories_batch(world: World, batch: int, start: int, stop: int) -> Batch:
    rng = world.rng("forum_categories", batch)
    index = np.arange(start, stop)
    n = stop - start
    created = world.seconds("forum_categories", index) // 50  # set up in the first weeks
    names = [CATEGORIES[i % len(CATEGORIES)] + ("" if i < len(CATEGORIES) else f" {i}") for i in index.tolist()]
    return Batch.of("forum_categories", {
        "id": (index + 1).tolist(),
        "parent_id": [None if i < 6 else 1 + i % 6 for i in index.tolist()],
        "name": names,
        "slug": [s.lower().replace(" ", "-") for s in names],
        "description": dist.texts(rng, dist.skewed_lengths(rng, n, 40, 200)),
        "position": (index % 6).tolist(),
        "is_active": _flags(rng, n, 0.9),
        "is_private": _flags(rng, n, 0.1),
        "is_archived": _flags(rng, n, 0.05),
        "is_readonly": _flags(rng, n, 0.05),
        "allow_polls": _flags(rng, n, 0.8),
        "requires_approval": _flags(rng, n, 0.1),
        "topic_count": [0] * n,
        "created_at": dist.timestamps(created),
        "updated_at": dist.timestamps(dist.between(rng, created, power=4.0)),
    })  # fmt: skip


def tags_batch(world: World, batch: int, start: int, stop: int) -> Batch:
    rng = world.rng("tags", batch)
    index = np.arange(start, stop)
    n = stop - start
    created = world.seconds("tags", index)
    vocab = len(dist.VOCAB)
    names = [str(dist.VOCAB[i % vocab]) + ("" if i < vocab else f"-{i // vocab}") for i in index.tolist()]
    return Batch.of("tags", {
        "id": (index + 1).tolist(),
        "name": names,
        "slug": names,
        "description": dist.masked(dist.texts(rng, dist.skewed_lengths(rng, n, 30, 150)), rng.random(n) < 0.3),
        "usage_count": [0] * n,
        "is_featured": _flags(rng, n, 0.05),
        "is_official": _flags(rng, n, 0.1),
        "is_deprecated": _flags(rng, n, 0.03),
        "is_nsfw": _flags(rng, n, 0.01),
        "created_at": dist.timestamps(created),
        "updated_at": dist.timestamps(dist.between(rng, created, power=2.0)),
    })  # fmt: skip


def forum_topics_batch(world: World, batch: int, start: int, stop: int) -> Batch:
    rng = world.rng("forum_topics", batch)
    index = np.arange(start, stop)
    n = stop - start
    created = world.seconds("forum_topics", index)
    user, _ = world.pick("users", rng, created)
    category = world.popularity("forum_categories").indexes(rng, n) + 1
    updated = np.where(rng.random(n) < 0.7, created, dist.between(rng, created, power=4.0))
    return Batch.of(
        "forum_topics",
        {
            "id": (index + 1).tolist(),
            "category_id": category.tolist(),
            "user_id": (user + 1).tolist(),
            "title": dist.words(rng, n, 6),
            "content": dist.text_refs(rng, dist.skewed_lengths(rng, n, 200, 2000, 3.0)),
            "status": dist.choice(rng, ("open", "closed", "archived"), (80, 15, 5), n),
            "is_pinned": _flags(rng, n, 0.02),
            "is_locked": _flags(rng, n, 0.03),
            "view_count": rng.lognormal(4.0, 1.3, n).astype(np.int64).tolist(),
            "reply_count": [0] * n,
            "created_at": dist.timestamps(created),
            "updated_at": dist.timestamps(updated),
            "last_reply_at": [None] * n,
        },
        Tally.of("forum_categories", category, count="topic_count"),
        Tally.of("user_stats", user + 1, count="topic_count", latest="last_active_at", seconds=created),
    )


# Tags per topic: 0 to 4, about 1.85 on average.
TAGS_PER_TOPIC = (0.15, 0.25, 0.30, 0.20, 0.10)


def topic_tags_batch(world: World, batch: int, start: int, stop: int) -> Batch:
    """Tags of topics start..stop: consecutive tag ids from a popular one, so pairs are distinct."""
    rng = world.rng("topic_tags", batch)
    topics = np.arange(start, stop)
    n_tags = world.rows["tags"]
    k = np.searchsorted(np.cumsum(TAGS_PER_TOPIC), rng.random(len(topics)) * sum(TAGS_PER_TOPIC), side="right")
    k = np.minimum(k, min(n_tags, len(TAGS_PER_TOPIC) - 1))
    topic = np.repeat(topics, k)
    first = np.repeat(world.popularity("tags").indexes(rng, len(topics)), k)
    offset = np.arange(len(topic)) - np.repeat(np.cumsum(k) - k, k)
    tag = (first + offset) % n_tags + 1
    created = world.seconds("forum_topics", topic)
    return Batch.of(
        "topic_tags",
        {"topic_id": (topic + 1).tolist(), "tag_id": tag.tolist(), "created_at": dist.timestamps(created)},
        Tally.of("tags", tag, count="usage_count"),
    )


def forum_replies_batch(world: World, batch: int, start: int, stop: int) -> Batch:
    rng = world.rng("forum_replies", batch)
    index = np.arange(start, stop)
    n = stop - start
    at = world.seconds("forum_replies", index)
    topic, topic_at = world.pick("forum_topics", rng, at)
    user, user_at = world.pick("users", rng, at)
    created = _after(at, topic_at, user_at)
    ts = dist.timestamps(created)
    updated = list(ts)
    edited = np.flatnonzero(rng.random(n) < 0.1)  # one reply in ten was edited later
    for i, text in zip(edited.tolist(), dist.timestamps(dist.between(rng, created[edited], 6.0)), strict=True):
        updated[i] = text
    return Batch.of(
        "forum_replies",
        {
            "id": (index + 1).tolist(),
            "topic_id": (topic + 1).tolist(),
            "user_id": (user + 1).tolist(),
            "content": dist.text_refs(rng, dist.skewed_lengths(rng, n, 200, 2000, 3.0)),
            "is_deleted": _flags(rng, n, 0.03),
            "created_at": ts,
            "updated_at": updated,
        },
        Tally.of("forum_topics", topic + 1, count="reply_count", latest="last_reply_at", seconds=created),
        Tally.of("user_stats", user + 1, count="reply_count", latest="last_active_at", seconds=created),
    )


def wiki_slug(world: World, index: np.ndarray) -> list[str]:
    """Slug of pages `index`: a pure function of the index, so a later page can reuse an earlier one's."""
    text, starts = dist.corpus()
    first = (dist.hash_unit(index, world.key("wiki_pages", 2)) * (len(starts) - 8)).astype(np.int64)
    count = 2 + (dist.hash_unit(index, world.key("wiki_pages", 3)) * 4).astype(np.int64)
    return [
        text[starts[f] : starts[f + c] - 1].replace(".", "").replace(" ", "-")
        for f, c in zip(first.tolist(), count.tolist(), strict=True)
    ]


DUPLICATE_SLUG_ODDS = 0.02


def wiki_pages_batch(world: World, batch: int, start: int, stop: int) -> Batch:
    """Wiki pages; 2% reuse the slug of an earlier page (slug has no UNIQUE constraint)."""
    rng = world.rng("wiki_pages", batch)
    index = np.arange(start, stop)
    n = stop - start
    created = world.seconds("wiki_pages", index)
    author, _ = world.pick("users", rng, created)  # existed at `created`: pages are never re-dated
    # one page in 50 (evenly spread) reuses the slug of a random earlier page
    copy = np.floor((index + 1) * DUPLICATE_SLUG_ODDS) > np.floor(index * DUPLICATE_SLUG_ODDS)
    source = np.where(copy, (dist.hash_unit(index, world.key("wiki_pages", 5)) * index).astype(np.int64), index)
    slugs = wiki_slug(world, source)
    return Batch.of("wiki_pages", {
        "id": (index + 1).tolist(),
        "slug": slugs,
        "title": [s.replace("-", " ").capitalize() for s in slugs],
        "content": dist.text_refs(rng, dist.skewed_lengths(rng, n, 300, 4000, 2.5)),
        "status": dist.choice(rng, ("published", "draft", "archived"), (85, 10, 5), n),
        "author_id": (author + 1).tolist(),
        "view_count": rng.lognormal(5.0, 1.5, n).astype(np.int64).tolist(),
        "is_locked": _flags(rng, n, 0.02),
        "is_featured": _flags(rng, n, 0.03),
        "is_protected": _flags(rng, n, 0.05),
        "created_at": dist.timestamps(created),
        "updated_at": dist.timestamps(dist.between(rng, created, power=2.0)),
    })  # fmt: skip


def wiki_revisions_batch(world: World, batch: int, start: int, stop: int) -> Batch:
    rng = world.rng("wiki_revisions", batch)
    index = np.arange(start, stop)
    n = stop - start
    at = world.seconds("wiki_revisions", index)
    page, page_at = world.pick("wiki_pages", rng, at)
    user, user_at = world.pick("users", rng, at)
    created = _after(at, page_at, user_at)
    return Batch.of(
        "wiki_revisions",
        {
            "id": (index + 1).tolist(),
            "page_id": (page + 1).tolist(),
            "user_id": (user + 1).tolist(),
            "content": dist.text_refs(rng, dist.skewed_lengths(rng, n, 300, 4000, 2.5)),
            "comment": dist.masked(dist.words(rng, n, 3), rng.random(n) < 0.7),
            "is_minor": _flags(rng, n, 0.3),
            "created_at": dist.timestamps(created),
        },
        Tally.of("user_stats", user + 1, count="wiki_edit_count", latest="last_active_at", seconds=created),
    )


SESSION_SECONDS = 30 * 86400


def user_sessions_batch(world: World, batch: int, start: int, stop: int) -> Batch:
    """Sessions of 30 days; is_active is left at 1 on about 10% of expired ones (never cleaned up)."""
    rng = world.rng("user_sessions", batch)
    index = np.arange(start, stop)
    n = stop - start
    at = world.seconds("user_sessions", index)
    user, user_at = world.pick("users", rng, at)
    created = _after(at, user_at)
    expires = created + SESSION_SECONDS
    active = (expires >= dist.SPAN_SECONDS) | (rng.random(n) < 0.1)
    tokens = rng.bytes(32 * n).hex()
    return Batch.of("user_sessions", {
        "id": (index + 1).tolist(),
        "session_token": [tokens[i * 64 : (i + 1) * 64] for i in range(n)],
        "user_id": (user + 1).tolist(),
        "ip_address": _ips(rng, n),
        "user_agent": dist.choice(rng, _USER_AGENTS, (30, 20, 10, 20, 15, 5), n),
        "created_at": dist.timestamps(created),
        "expires_at": dist.timestamps(expires),
        "is_active": active.astype(np.int64).tolist(),
    })  # fmt: skip


def notifications_batch(world: World, batch: int, start: int, stop: int) -> Batch:
    """Notifications with a JSON payload stored as TEXT, as the legacy app wrote it."""
    rng = world.rng("notifications", batch)
    index = np.arange(start, stop)
    n = stop - start
    at = world.seconds("notifications", index)
    user, user_at = world.pick("users", rng, at)
    actor, _ = world.pick("users", rng, at)
    topic, topic_at = world.pick("forum_topics", rng, at)
    created = _after(at, user_at, topic_at)
    reply = np.maximum(dist.existing(created, world.rows["forum_replies"]), 1)
    kinds = dist.choice(rng, _NOTIFICATION_TYPES, (45, 15, 30, 7, 3), n)
    excerpts = dist.texts(rng, dist.skewed_lengths(rng, n, 20, 80))
    payload = [
        f'{{"topic_id": {t}, "reply_id": {r}, "actor_id": {a}, "excerpt": "{e}"}}'
        if k != "system"
        else f'{{"message": "{e}", "level": "info"}}'
        for k, t, r, a, e in zip(
            kinds, (topic + 1).tolist(), reply.tolist(), (actor + 1).tolist(), excerpts, strict=True
        )
    ]
    old = created < dist.SPAN_SECONDS - MONTH
    read = np.where(old, rng.random(n) < 0.9, rng.random(n) < 0.4)
    return Batch.of("notifications", {
        "id": (index + 1).tolist(),
        "user_id": (user + 1).tolist(),
        "type": kinds,
        "payload": payload,
        "is_read": read.astype(np.int64).tolist(),
        "created_at": dist.timestamps(created),
    })  # fmt: skip


def activity_log_batch(world: World, batch: int, start: int, stop: int) -> Batch:
    rng = world.rng("activity_log", batch)
    index = np.arange(start, stop)
    n = stop - start
    at = world.seconds("activity_log", index)
    user, user_at = world.pick("users", rng, at)
    created = _after(at, user_at)
    action = np.searchsorted(np.cumsum((30, 10, 25, 5, 15, 5, 5, 5)), rng.random(n) * 100, side="right")
    entity_types = [_ENTITY_OF_ACTION[a] for a in action.tolist()]
    # an entity that exists at that time: a uniform id among the rows created so far
    entity = {
        kind: (rng.random(n) * np.maximum(dist.existing(created, world.rows[table]), 1)).astype(np.int64) + 1
        for kind, table in _ENTITY_TABLE.items()
    }
    entity_lists = {kind: ids.tolist() for kind, ids in entity.items()}
    ms = rng.lognormal(3.0, 1.0, n).astype(np.int64).tolist()
    return Batch.of("activity_log", {
        "id": (index + 1).tolist(),
        "user_id": (user + 1).tolist(),
        "action": [_ACTIONS[a] for a in action.tolist()],
        "entity_type": entity_types,
        "entity_id": [entity_lists[k][i] if k else None for i, k in enumerate(entity_types)],
        "ip_address": _ips(rng, n),
        "metadata": [f'{{"ms": {m}, "via": "{"api" if m % 5 == 0 else "web"}"}}' for m in ms],
        "created_at": dist.timestamps(created),
    })  # fmt: skip


BatchMaker = Callable[[World, int, int, int], Batch]
