"""The cache tags the forum's reads carry and its writes name (pgferry.runtime.cache), one function or
constant per kind: a read and the writes that change it cannot spell a tag two ways, and a typo is a
NameError instead of a value that is never invalidated."""

from __future__ import annotations

CATEGORIES = "categories"  # the category list and its counts
CATEGORY_STATS = "category_stats"  # topics, posters and last activity per category
WIKI = "wiki"  # the wiki's page list


def topic(topic_id: int) -> str:
    """A topic's view (its replies' pages)."""
    return f"topic:{topic_id}"


def category(category_id: int) -> str:
    """A category's topic lists (every status and page)."""
    return f"category:{category_id}"


def wiki_page(slug: str) -> str:
    """A wiki page and its history."""
    return f"wiki:{slug}"


def stats(user_id: int) -> str:
    """A user's counters."""
    return f"stats:{user_id}"


def notifications(user_id: int) -> str:
    """A user's notifications: per user, so only that user's requests read them."""
    return f"notifications:{user_id}"
