"""The legacy schema as data: tables, columns, the users column families, and row counts per scale.

Declared the way the legacy application declared it: VARCHAR(n), BOOLEAN and DATETIME (stored as
0/1 and ISO-8601 text), INTEGER PRIMARY KEY with AUTOINCREMENT on some tables (so sqlite_sequence
exists), foreign keys written as REFERENCES but never enforced. DDL is produced from this data with
every identifier quoted, so the generators, the indexes and `describe` all read one source.
"""

from __future__ import annotations

from dataclasses import dataclass

from pgferry.sqltext import quote_ident as q

MAX_SCALE = 100.0


@dataclass(frozen=True)
class Column:
    """A column: name, declaration (type and constraints) and the table its id references, if any."""

    name: str
    decl: str
    references: str | None = None


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ("id",)
    constraints: tuple[str, ...] = ()  # table-level constraints, already quoted

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def create_sql(self) -> str:
        parts = []
        for col in self.columns:
            ref = f" REFERENCES {q(col.references)}({q('id')})" if col.references else ""
            parts.append(f"    {q(col.name)} {col.decl}{ref}")
        parts.extend(f"    {c}" for c in self.constraints)
        return f"CREATE TABLE {q(self.name)} (\n" + ",\n".join(parts) + "\n)"

    def insert_sql(self) -> str:
        names = ", ".join(q(c) for c in self.column_names)
        marks = ", ".join("?" for _ in self.columns)
        return f"INSERT INTO {q(self.name)} ({names}) VALUES ({marks})"


def _cols(*specs: tuple[str, str] | tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


PK_AUTO = "INTEGER PRIMARY KEY AUTOINCREMENT"
PK = "INTEGER PRIMARY KEY"
TS = "DATETIME NOT NULL"
FLAG_OFF = "BOOLEAN NOT NULL DEFAULT 0"
COUNT = "INTEGER NOT NULL DEFAULT 0"

# The 10 columns every user row fills; the other 32 are optional and mostly NULL.
USERS_CORE = (
    "id", "username", "email", "password_hash", "role", "status",
    "email_verified", "created_at", "updated_at", "login_count",
)  # fmt: skip
# Optional columns filled together: a split of the god table would give each family its own table.
USERS_FAMILIES: dict[str, tuple[str, ...]] = {
    "profile": ("display_name", "bio", "avatar_url", "location", "website_url"),
    "social": (
        "github_url", "mastodon_url", "discord_username", "steam_url", "xbox_gamertag", "psn_id",
        "bluesky_url", "twitter_handle", "linkedin_url", "youtube_url", "twitch_username",
    ),
    "avatar": (
        "avatar_position_x", "avatar_position_y", "avatar_scale",
        "avatar_rotation", "avatar_border_color", "avatar_background",
    ),
    "details": (
        "pronouns", "birth_date", "timezone", "locale", "company",
        "job_title", "signature", "phone_number", "theme_preference",
    ),
}  # fmt: skip
# The plan names these 26; the other 16 are the "plus 16 more columns" it does not list.
PLAN_USERS_COLUMNS = (
    "id", "username", "email", "password_hash", "display_name", "bio", "avatar_url", "role", "status",
    "email_verified", "created_at", "updated_at", "last_login", "login_count", "location", "website_url",
    "github_url", "mastodon_url", "discord_username", "steam_url", "xbox_gamertag", "psn_id", "bluesky_url",
    "avatar_position_x", "avatar_position_y", "avatar_scale",
)  # fmt: skip

_USER_DECLS = {
    "id": PK_AUTO,
    "username": "VARCHAR(50) NOT NULL UNIQUE",
    "email": "VARCHAR(255) NOT NULL UNIQUE",
    "password_hash": "VARCHAR(255) NOT NULL",
    "display_name": "VARCHAR(100)",
    "bio": "TEXT",
    "avatar_url": "VARCHAR(500)",
    "role": "VARCHAR(20) NOT NULL DEFAULT 'user'",
    "status": "VARCHAR(20) NOT NULL DEFAULT 'active'",
    "email_verified": FLAG_OFF,
    "created_at": "DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP",
    "updated_at": "DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP",
    "last_login": "DATETIME",
    "login_count": COUNT,
    "location": "VARCHAR(100)",
    "website_url": "VARCHAR(500)",
    "avatar_position_x": "INTEGER",
    "avatar_position_y": "INTEGER",
    "avatar_scale": "INTEGER",
    "avatar_rotation": "INTEGER",
    "avatar_border_color": "VARCHAR(7)",
    "avatar_background": "VARCHAR(50)",
    "discord_username": "VARCHAR(50)",
    "xbox_gamertag": "VARCHAR(50)",
    "psn_id": "VARCHAR(50)",
    "twitter_handle": "VARCHAR(50)",
    "twitch_username": "VARCHAR(50)",
    "pronouns": "VARCHAR(30)",
    "timezone": "VARCHAR(50)",
    "birth_date": "DATE",
    "signature": "TEXT",
    "locale": "VARCHAR(10)",
    "phone_number": "VARCHAR(30)",
    "theme_preference": "VARCHAR(20)",
}
_USERS_ORDER = (
    *PLAN_USERS_COLUMNS,
    *USERS_FAMILIES["social"][7:],
    *USERS_FAMILIES["avatar"][3:],
    *USERS_FAMILIES["details"],
)

USERS = Table("users", tuple(Column(name, _USER_DECLS.get(name, "VARCHAR(255)")) for name in _USERS_ORDER))

TABLES: tuple[Table, ...] = (
    USERS,
    Table("forum_categories", _cols(
        ("id", PK),
        ("parent_id", "INTEGER", "forum_categories"),
        ("name", "VARCHAR(100) NOT NULL"),
        ("slug", "VARCHAR(100) NOT NULL UNIQUE"),
        ("description", "TEXT"),
        ("position", COUNT),
        ("is_active", "BOOLEAN NOT NULL DEFAULT 1"),
        ("is_private", FLAG_OFF),
        ("is_archived", FLAG_OFF),
        ("is_readonly", FLAG_OFF),
        ("allow_polls", "BOOLEAN NOT NULL DEFAULT 1"),
        ("requires_approval", FLAG_OFF),
        ("topic_count", COUNT),
        ("created_at", TS),
        ("updated_at", TS),
    )),
    Table("tags", _cols(
        ("id", PK),
        ("name", "VARCHAR(50) NOT NULL UNIQUE"),
        ("slug", "VARCHAR(50) NOT NULL"),
        ("description", "TEXT"),
        ("usage_count", COUNT),
        ("is_featured", FLAG_OFF),
        ("is_official", FLAG_OFF),
        ("is_deprecated", FLAG_OFF),
        ("is_nsfw", FLAG_OFF),
        ("created_at", TS),
        ("updated_at", TS),
    )),
    Table("forum_topics", _cols(
        ("id", PK_AUTO),
        ("category_id", "INTEGER NOT NULL", "forum_categories"),
        ("user_id", "INTEGER NOT NULL", "users"),
        ("title", "VARCHAR(255) NOT NULL"),
        ("content", "TEXT NOT NULL"),
        ("status", "VARCHAR(20) NOT NULL DEFAULT 'open'"),
        ("is_pinned", FLAG_OFF),
        ("is_locked", FLAG_OFF),
        ("view_count", COUNT),
        ("reply_count", COUNT),
        ("created_at", TS),
        ("updated_at", TS),
        ("last_reply_at", "DATETIME"),
    )),
    Table("topic_tags", _cols(
        ("topic_id", "INTEGER NOT NULL", "forum_topics"),
        ("tag_id", "INTEGER NOT NULL", "tags"),
        ("created_at", TS),
    ), primary_key=("topic_id", "tag_id"), constraints=(f"PRIMARY KEY ({q('topic_id')}, {q('tag_id')})",)),
    Table("forum_replies", _cols(
        ("id", PK),
        ("topic_id", "INTEGER NOT NULL", "forum_topics"),
        ("user_id", "INTEGER NOT NULL", "users"),
        ("content", "TEXT NOT NULL"),
        ("is_deleted", FLAG_OFF),
        ("created_at", TS),
        ("updated_at", TS),
    )),
    Table("wiki_pages", _cols(
        ("id", PK),
        ("slug", "VARCHAR(255) NOT NULL"),  # not UNIQUE: the legacy bug that lets duplicate slugs in
        ("title", "VARCHAR(255) NOT NULL"),
        ("content", "TEXT NOT NULL"),
        ("status", "VARCHAR(20) NOT NULL DEFAULT 'published'"),
        ("author_id", "INTEGER NOT NULL", "users"),
        ("view_count", COUNT),
        ("is_locked", FLAG_OFF),
        ("is_featured", FLAG_OFF),
        ("is_protected", FLAG_OFF),
        ("created_at", TS),
        ("updated_at", TS),
    )),
    Table("wiki_revisions", _cols(
        ("id", PK_AUTO),
        ("page_id", "INTEGER NOT NULL", "wiki_pages"),
        ("user_id", "INTEGER NOT NULL", "users"),
        ("content", "TEXT NOT NULL"),
        ("comment", "VARCHAR(255)"),
        ("is_minor", FLAG_OFF),
        ("created_at", TS),
    )),
    Table("user_sessions", _cols(
        ("id", PK),
        ("session_token", "VARCHAR(64) NOT NULL"),
        ("user_id", "INTEGER NOT NULL", "users"),
        ("ip_address", "VARCHAR(45)"),
        ("user_agent", "VARCHAR(255)"),
        ("created_at", TS),
        ("expires_at", TS),
        ("is_active", "BOOLEAN NOT NULL DEFAULT 1"),
    )),
    Table("notifications", _cols(
        ("id", PK_AUTO),
        ("user_id", "INTEGER NOT NULL", "users"),
        ("type", "VARCHAR(50) NOT NULL"),
        ("payload", "TEXT NOT NULL"),  # JSON as text
        ("is_read", FLAG_OFF),
        ("created_at", TS),
    )),
    Table("activity_log", _cols(
        ("id", PK_AUTO),
        ("user_id", "INTEGER", "users"),
        ("action", "VARCHAR(50) NOT NULL"),
        ("entity_type", "VARCHAR(50)"),
        ("entity_id", "INTEGER"),
        ("ip_address", "VARCHAR(45)"),
        ("metadata", "TEXT"),  # JSON as text
        ("created_at", TS),
    )),
    Table("user_stats", _cols(
        ("user_id", PK, "users"),
        ("topic_count", COUNT),
        ("reply_count", COUNT),
        ("wiki_edit_count", COUNT),
        ("reputation", COUNT),
        ("is_trusted", FLAG_OFF),
        ("last_active_at", "DATETIME"),
        ("updated_at", TS),
    ), primary_key=("user_id",)),
)  # fmt: skip

TABLE_BY_NAME = {t.name: t for t in TABLES}

# Rows at scale 1 (about 1,000,000 in all); every table scales linearly, categories stay fixed.
ROWS_AT_SCALE_1 = {
    "users": 20_000,
    "forum_categories": 20,
    "tags": 500,
    "forum_topics": 30_000,
    "topic_tags": 56_000,  # about 1.85 tags per topic: an estimate, the real count is drawn
    "forum_replies": 600_000,
    "wiki_pages": 5_000,
    "wiki_revisions": 25_000,
    "user_sessions": 60_000,
    "notifications": 100_000,
    "activity_log": 80_000,
    "user_stats": 20_000,
}
FIXED_ROWS = {"forum_categories": 20}


def planned_rows(scale: float) -> dict[str, int]:
    """Rows per table at `scale` (at least 1 each); topic_tags is an estimate."""
    return {t: FIXED_ROWS.get(t) or max(1, round(n * scale)) for t, n in ROWS_AT_SCALE_1.items()}
