"""The indexes the legacy application created, as data: legitimate ones, ~150 redundant ones, and
the plan's "Day 1-2" indexes that it never created.

Redundant indexes come in five categories (what a doctor must recognise from the schema alone):

- exact_duplicate: the same key columns as another index, under another name;
- prefix_covered: a strict leading prefix of another index's key (same collation and order);
- duplicates_primary_key: exactly the primary key's columns (SQLite already indexes them);
- duplicates_unique: exactly the columns of a UNIQUE constraint (already backed by an autoindex);
- low_selectivity: one column holding a 0/1 flag or a status with a handful of values.

Each table's plan is written compactly (`_plan`) and expanded to flat `IndexDef` rows. Big tables
get few indexes (each build scans the whole table) and small tables many. Base indexes are never a
prefix of each other, never lead with a flag, and never lead with the columns the plan's missing
indexes need, so every planted index falls into exactly one category and the base ones into none.
"""

from __future__ import annotations

from dataclasses import dataclass

from forum.seed.schema import TABLE_BY_NAME
from pgferry.sqltext import quote_ident as q

CATEGORIES = (
    "exact_duplicate",
    "prefix_covered",
    "duplicates_primary_key",
    "duplicates_unique",
    "low_selectivity",
)


@dataclass(frozen=True)
class IndexDef:
    """One CREATE INDEX. `category` is None for a legitimate index; `of_what` names what makes it redundant.

    A column entry may carry a collation ("username COLLATE NOCASE"): the first word is the column.
    """

    name: str
    table: str
    columns: tuple[str, ...]
    category: str | None = None
    of_what: str | None = None

    def create_sql(self) -> str:
        keys = []
        for entry in self.columns:
            column, _, rest = entry.partition(" ")
            keys.append(q(column) + (f" {rest}" if rest else ""))
        return f"CREATE INDEX {q(self.name)} ON {q(self.table)} ({', '.join(keys)})"


@dataclass(frozen=True)
class Base:
    """A legitimate composite index, with how many exact copies and leading prefixes to plant beside it."""

    columns: tuple[str, ...]
    dups: int = 0
    prefixes: int = 0


def _name(table: str, columns: tuple[str, ...]) -> str:
    """idx_<table>_<columns>, with the collation of a key when it has one (idx_users_username_nocase)."""
    words = [w.lower() for c in columns for w in c.split() if w.upper() != "COLLATE"]
    return f"idx_{table}_" + "_".join(words)


def _cardinality(table: str, column: str) -> str:
    declared = next(c.decl for c in TABLE_BY_NAME[table].columns if c.name == column)
    return f"{column} is a 0/1 flag" if declared.startswith("BOOLEAN") else f"{column} has a handful of values"


def _plan(
    table: str,
    *,
    pk: tuple[str, ...] = ("id",),  # () plants no duplicate of the primary key
    unique: tuple[str, ...] = (),
    flags: tuple[str, ...] = (),
    bases: tuple[Base, ...] = (),
    pk_prefixes: int = 0,
) -> list[IndexDef]:
    pk_text = f"PRIMARY KEY ({', '.join(pk)})"
    out = [IndexDef(_name(table, pk), table, pk, "duplicates_primary_key", pk_text)] if pk else []
    out += [IndexDef(_name(table, (c,)), table, (c,), "duplicates_unique", f"UNIQUE ({c})") for c in unique]
    out += [IndexDef(_name(table, pk[:n]), table, pk[:n], "prefix_covered", pk_text) for n in range(1, pk_prefixes + 1)]
    for base in bases:
        name = _name(table, base.columns)
        out.append(IndexDef(name, table, base.columns))
        out += [
            IndexDef(f"{name}_dup{k}", table, base.columns, "exact_duplicate", name) for k in range(2, base.dups + 2)
        ]
        for n in range(len(base.columns) - 1, len(base.columns) - 1 - base.prefixes, -1):
            out.append(IndexDef(_name(table, base.columns[:n]), table, base.columns[:n], "prefix_covered", name))
    out += [IndexDef(_name(table, (f,)), table, (f,), "low_selectivity", _cardinality(table, f)) for f in flags]
    return out


# Index builds scan the whole table, so their count per table falls as the table grows: the 20-row
# categories table carries dozens, the 600k-row replies table one.
INDEXES: tuple[IndexDef, ...] = (
    *_plan(
        "forum_categories",
        unique=("slug",),
        flags=("is_active", "is_private", "is_archived", "is_readonly", "allow_polls", "requires_approval"),
        bases=(
            Base(("position", "name"), dups=5, prefixes=1),
            Base(("parent_id", "position", "name"), dups=3, prefixes=2),
            Base(("created_at", "updated_at"), dups=4, prefixes=1),
            Base(("name", "topic_count"), dups=4, prefixes=1),
            Base(("description", "position"), dups=2, prefixes=1),
            Base(("updated_at", "position"), dups=2, prefixes=1),
            Base(("topic_count", "position"), dups=2, prefixes=1),
        ),
    ),
    *_plan(
        "tags",
        unique=("name",),
        flags=("is_featured", "is_official", "is_deprecated", "is_nsfw"),
        bases=(
            Base(("slug", "usage_count"), dups=5, prefixes=1),
            Base(("usage_count", "name"), dups=5, prefixes=1),
            Base(("created_at", "name", "slug"), dups=5, prefixes=2),
            Base(("updated_at", "usage_count"), dups=5, prefixes=1),
            Base(("description", "created_at"), dups=4, prefixes=1),
        ),
    ),
    *_plan(
        "wiki_pages",
        flags=("status", "is_locked", "is_featured", "is_protected"),
        bases=(
            Base(("created_at", "author_id"), dups=5, prefixes=1),
            Base(("author_id", "updated_at", "status"), dups=3, prefixes=2),
            Base(("title", "status"), dups=4, prefixes=1),
            Base(("updated_at", "view_count"), dups=4, prefixes=1),
            Base(("view_count", "title"), dups=3, prefixes=1),
        ),
    ),
    *_plan(
        "users",
        unique=("username", "email"),
        flags=("status", "role", "email_verified", "theme_preference"),
        bases=(
            Base(("username COLLATE NOCASE",)),  # case-insensitive login: NOT a duplicate of UNIQUE(username)
            Base(("created_at", "status", "role"), dups=2, prefixes=2),
            Base(("last_login", "login_count"), dups=1, prefixes=1),
            Base(("display_name", "username"), dups=1, prefixes=1),
            Base(("updated_at", "status"), prefixes=1),
            Base(("location", "created_at"), prefixes=1),
        ),
    ),
    *_plan(
        "user_stats",
        pk=("user_id",),
        flags=("is_trusted",),
        bases=(
            Base(("reputation", "updated_at"), dups=1, prefixes=1),
            Base(("last_active_at", "reply_count"), dups=1, prefixes=1),
            Base(("reply_count", "topic_count"), prefixes=1),
        ),
    ),
    *_plan(
        "wiki_revisions",
        flags=("is_minor",),
        bases=(Base(("user_id", "created_at"), dups=1, prefixes=1),),
    ),
    *_plan(
        "forum_topics",
        flags=("status", "is_pinned", "is_locked"),
        bases=(
            Base(("user_id", "created_at"), dups=1, prefixes=1),
            Base(("created_at", "status"), prefixes=1),
        ),
    ),
    *_plan("user_sessions", flags=("is_active",), bases=(Base(("user_id", "created_at"), prefixes=1),)),
    *_plan("topic_tags", pk=("topic_id", "tag_id"), pk_prefixes=1, bases=(Base(("tag_id", "topic_id")),)),
    *_plan("notifications", flags=("is_read", "type")),
    *_plan("activity_log", flags=("entity_type",), bases=(Base(("user_id", "created_at")),)),
    *_plan("forum_replies", pk=(), flags=("is_deleted",)),  # 600k rows: one cheap build only
)

REDUNDANT = tuple(i for i in INDEXES if i.category)


@dataclass(frozen=True)
class MissingIndex:
    """An index the migration plan's Day 1-2 asks for; the legacy database has none leading like it."""

    name: str
    table: str
    columns: tuple[str, ...]


# From the plan, as written there (DESC included). idx_forum_topics_full leads with the primary key,
# so it is no help and is left out: the five lookups below are what the application really lacks.
PLAN_DAY_1_2 = (
    MissingIndex("idx_forum_replies_topic_user", "forum_replies", ("topic_id", "user_id")),
    MissingIndex(
        "idx_forum_topics_category_status_updated", "forum_topics", ("category_id", "status", "updated_at DESC")
    ),
    MissingIndex("idx_wiki_pages_slug_status", "wiki_pages", ("slug", "status")),
    MissingIndex("idx_user_sessions_token_expires", "user_sessions", ("session_token", "expires_at")),
    MissingIndex("idx_notifications_user_read_created", "notifications", ("user_id", "is_read", "created_at DESC")),
    MissingIndex("idx_wiki_revisions_page_created", "wiki_revisions", ("page_id", "created_at DESC")),
)
