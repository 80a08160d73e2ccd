"""Every SQL statement the forum runs on PostgreSQL: the forum's `postgresql` dialect of `ForumSql`.

Written for the database a default `pgferry copy` makes of a forum file: INTEGER columns are
bigint, BOOLEAN columns boolean, DATETIME columns timestamp, JSON text jsonb, constraint names kept
(so `ON CONFLICT (name)` finds tags_name_key), identities restarted above the copied ids.
Placeholders are PostgreSQL's own `$1, $2` (the runtime's RawCursor), so a value used twice is
passed once, as SQLite's `?1` is. Booleans are booleans (`NOT is_read`, `true`): the repository
passes Python bools. Case-insensitive name lookups use lower(), which the copy's
`idx_users_username_nocase` index (lower(username)) serves; lower() folds all of Unicode, where
SQLite's NOCASE folds ASCII only. Names starting with `_` are fragments, not statements.
"""

from __future__ import annotations

# --- the schema ----------------------------------------------------------------------------------

TABLES = (
    "SELECT c.relname AS name FROM pg_catalog.pg_class c"
    " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')"
)

# --- users and sessions --------------------------------------------------------------------------

_USER = "id, username, display_name, avatar_url, bio, location, role, status, created_at"
USER_GET = f"SELECT {_USER} FROM users WHERE id = $1"
USER_BRIEF = "SELECT id, username, display_name, avatar_url FROM users WHERE id = $1"
USER_CREDENTIALS = "SELECT id, password_hash, status FROM users WHERE lower(username) = lower($1) ORDER BY id LIMIT 1"
USER_NAME_OR_EMAIL_TAKEN = (
    "SELECT 1 AS taken FROM users WHERE lower(username) = lower($1) OR lower(email) = lower($2) LIMIT 1"
)
USER_INSERT = (
    "INSERT INTO users (username, email, password_hash, display_name, role, status, email_verified,"
    " created_at, updated_at, login_count) VALUES ($1, $2, $3, $4, 'user', 'active', false, $5, $6, 0) RETURNING id"
)
USER_ID_BY_NAME = "SELECT id FROM users WHERE username = $1"
USER_LOGGED_IN = "UPDATE users SET last_login = $1, login_count = login_count + 1 WHERE id = $2"
USER_PASSWORD_REHASH = "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3"
USER_SET_ROLE = "UPDATE users SET role = $1, updated_at = $2 WHERE id = $3"

SESSION_INSERT = (
    "INSERT INTO user_sessions (session_token, user_id, ip_address, user_agent, created_at, expires_at,"
    " is_active) VALUES ($1, $2, $3, $4, $5, $6, true)"
)
SESSION_LOOKUP = (
    "SELECT s.id, s.user_id, s.expires_at, u.username, u.role FROM user_sessions s"
    " JOIN users u ON u.id = s.user_id"
    " WHERE s.session_token = $1 AND s.expires_at > $2 AND s.is_active AND u.status = 'active'"
)
SESSION_END = "UPDATE user_sessions SET is_active = false WHERE id = $1"

# --- per-user stats and the activity log ---------------------------------------------------------

STATS_INSERT = (
    "INSERT INTO user_stats (user_id, topic_count, reply_count, wiki_edit_count, reputation, is_trusted,"
    " last_active_at, updated_at) VALUES ($1, 0, 0, 0, 0, false, $2, $3)"
)


def _stats_bump(column: str) -> str:
    """Count one more for a user, making their row on the first (PostgreSQL names each column once)."""
    counts = ", ".join("1" if c == column else "0" for c in _COUNTERS)
    return (
        f"INSERT INTO user_stats (user_id, {', '.join(_COUNTERS)}, reputation, is_trusted, last_active_at, updated_at)"
        f" VALUES ($1, {counts}, 0, false, $2, $2)"
        f" ON CONFLICT (user_id) DO UPDATE SET {column} = user_stats.{column} + 1, last_active_at = $2,"
        " updated_at = $2"
    )


_COUNTERS = ("topic_count", "reply_count", "wiki_edit_count")


STATS_BUMP_TOPICS = _stats_bump("topic_count")
STATS_BUMP_REPLIES = _stats_bump("reply_count")
STATS_BUMP_WIKI_EDITS = _stats_bump("wiki_edit_count")
STATS_GET = (
    "SELECT user_id, topic_count, reply_count, wiki_edit_count, reputation, last_active_at"
    " FROM user_stats WHERE user_id = $1"
)
ACTIVITY_INSERT = (
    "INSERT INTO activity_log (user_id, action, entity_type, entity_id, ip_address, metadata, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
ACTIVITY_OF_USER = (
    "SELECT id, action, entity_type, entity_id, metadata, created_at FROM activity_log WHERE user_id = $1"
    " ORDER BY created_at DESC, id DESC LIMIT $2"
)

# --- categories, topics, tags --------------------------------------------------------------------

CATEGORIES = (
    "SELECT id, parent_id, name, slug, description, position, topic_count FROM forum_categories"
    " WHERE is_active ORDER BY position, name, id"
)
CATEGORY_EXISTS = "SELECT 1 AS found FROM forum_categories WHERE id = $1 AND is_active"
CATEGORY_BUMP = "UPDATE forum_categories SET topic_count = topic_count + $1, updated_at = $2 WHERE id = $3"

# topics, unique posters and last activity per active category: computed live here, and on PostgreSQL
# also the forum_stats materialized view's definition (forum.store.postgres.stats_view)
CATEGORY_STATS = (
    "WITH posts AS ("
    " SELECT category_id, user_id, created_at AS at FROM forum_topics"
    " UNION ALL SELECT t.category_id, r.user_id, r.created_at FROM forum_replies r"
    " JOIN forum_topics t ON t.id = r.topic_id WHERE NOT r.is_deleted),"
    " per AS (SELECT category_id, count(DISTINCT user_id) AS unique_posters, max(at) AS last_activity_at"
    " FROM posts GROUP BY category_id),"
    " topics AS (SELECT category_id, count(*) AS topics FROM forum_topics GROUP BY category_id)"
    " SELECT c.id AS category_id, coalesce(tp.topics, 0) AS topics, coalesce(per.unique_posters, 0) AS unique_posters,"
    " per.last_activity_at FROM forum_categories c LEFT JOIN topics tp ON tp.category_id = c.id"
    " LEFT JOIN per ON per.category_id = c.id WHERE c.is_active ORDER BY c.id"
)

_TOPIC_ROW = (
    "t.id, t.category_id, t.title, t.status, t.is_locked, t.user_id, u.username, u.display_name, u.avatar_url,"
    " t.reply_count, t.view_count, t.created_at, t.updated_at, t.last_reply_at"
)
_TOPIC_LIST = (
    f"SELECT {_TOPIC_ROW} FROM forum_topics t LEFT JOIN users u ON u.id = t.user_id"
    " WHERE t.category_id = $1 AND t.status = $2"
)
TOPIC_LIST_OFFSET = f"{_TOPIC_LIST} ORDER BY t.updated_at DESC, t.id DESC LIMIT $3 OFFSET $4"
TOPIC_LIST_FIRST = f"{_TOPIC_LIST} ORDER BY t.updated_at DESC, t.id DESC LIMIT $3"
TOPIC_LIST_AFTER = f"{_TOPIC_LIST} AND (t.updated_at, t.id) < ($3, $4) ORDER BY t.updated_at DESC, t.id DESC LIMIT $5"
TOPICS_OF_TAG = (
    f"SELECT {_TOPIC_ROW} FROM topic_tags tt JOIN tags g ON g.id = tt.tag_id"
    " JOIN forum_topics t ON t.id = tt.topic_id LEFT JOIN users u ON u.id = t.user_id"
    " WHERE g.name = $1 ORDER BY t.updated_at DESC, t.id DESC LIMIT $2"
)

_TOPIC_TAGS = "(SELECT json_agg(g.name) FROM topic_tags tt JOIN tags g ON g.id = tt.tag_id WHERE tt.topic_id = t.id)"
_TOPIC_FULL = (
    "t.id, t.category_id, t.title, t.content, t.status, t.is_locked, t.user_id, u.username, u.display_name,"
    f" u.avatar_url, {_TOPIC_TAGS} AS tags, t.reply_count, t.view_count, t.created_at, t.updated_at,"
    " t.last_reply_at"
)
TOPIC_GET = f"SELECT {_TOPIC_FULL} FROM forum_topics t LEFT JOIN users u ON u.id = t.user_id WHERE t.id = $1"
TOPIC_OWNER = "SELECT user_id, is_locked, status, category_id FROM forum_topics WHERE id = $1"
TOPIC_INSERT = (
    "INSERT INTO forum_topics (category_id, user_id, title, content, status, is_pinned, is_locked, view_count,"
    " reply_count, created_at, updated_at, last_reply_at)"
    " VALUES ($1, $2, $3, $4, 'open', false, false, 0, 0, $5, $6, NULL) RETURNING id"
)
TOPIC_UPDATE = "UPDATE forum_topics SET title = $1, content = $2, updated_at = $3 WHERE id = $4"
TOPIC_REPLIED = (
    "UPDATE forum_topics SET reply_count = reply_count + 1, last_reply_at = $1, updated_at = $1 WHERE id = $2"
)
TOPIC_REPLY_REMOVED = "UPDATE forum_topics SET reply_count = greatest(reply_count - 1, 0) WHERE id = $1"
TOPIC_DELETE = "DELETE FROM forum_topics WHERE id = $1"
TOPIC_REPLIES_DELETE = "DELETE FROM forum_replies WHERE topic_id = $1"
TOPIC_TAGS_UNCOUNT = (
    "UPDATE tags SET usage_count = greatest(usage_count - 1, 0)"
    " WHERE id IN (SELECT tag_id FROM topic_tags WHERE topic_id = $1)"
)
TOPIC_TAGS_DELETE = "DELETE FROM topic_tags WHERE topic_id = $1"

# Get-or-create in one statement; a concurrent creator of the same tag cannot make it fail.
TAG_UPSERT = (
    "INSERT INTO tags (name, slug, description, usage_count, is_featured, is_official, is_deprecated, is_nsfw,"
    " created_at, updated_at) VALUES ($1, $1, NULL, 1, false, false, false, false, $2, $2)"
    " ON CONFLICT (name) DO UPDATE SET usage_count = tags.usage_count + 1, updated_at = $2 RETURNING id"
)
TOPIC_TAG_INSERT = (
    "INSERT INTO topic_tags (topic_id, tag_id, created_at) VALUES ($1, $2, $3)"
    " ON CONFLICT (topic_id, tag_id) DO NOTHING"
)
TAGS_POPULAR = "SELECT id, name, usage_count FROM tags ORDER BY usage_count DESC, name LIMIT $1"

# --- replies -------------------------------------------------------------------------------------

REPLIES_OFFSET = (
    "SELECT id, topic_id, user_id, content, created_at, updated_at FROM forum_replies"
    " WHERE topic_id = $1 AND NOT is_deleted ORDER BY created_at, id LIMIT $2 OFFSET $3"
)
REPLY_OWNER = "SELECT user_id, topic_id FROM forum_replies WHERE id = $1 AND NOT is_deleted"
REPLY_GET = (
    "SELECT r.id, r.topic_id, r.user_id, r.content, r.created_at, r.updated_at, u.username, u.display_name,"
    " u.avatar_url FROM forum_replies r LEFT JOIN users u ON u.id = r.user_id WHERE r.id = $1 AND NOT r.is_deleted"
)
REPLY_INSERT = (
    "INSERT INTO forum_replies (topic_id, user_id, content, is_deleted, created_at, updated_at)"
    " VALUES ($1, $2, $3, false, $4, $5) RETURNING id"
)
REPLY_UPDATE = "UPDATE forum_replies SET content = $1, updated_at = $2 WHERE id = $3"
REPLY_SOFT_DELETE = "UPDATE forum_replies SET is_deleted = true, updated_at = $1 WHERE id = $2"


def _topic_view(after: bool) -> str:
    """The topic, its author and tags, and one page of replies with their authors: one statement, one row.

    The page is a LIMITed subquery in reply order; json_agg(... ORDER BY) keeps that order (PostgreSQL
    promises it for an ordered aggregate), and the timestamps go into the JSON as PostgreSQL's text
    (`2025-06-01 10:00:00`, fractions kept), the same text the other statements' rows become.
    """
    keyset = "AND (r.created_at, r.id) > ($2, $3) " if after else ""
    limit = "$4" if after else "$2"
    page = (
        "SELECT r.id, r.user_id, r.content, r.created_at, r.updated_at, a.username, a.display_name, a.avatar_url"
        " FROM forum_replies r LEFT JOIN users a ON a.id = r.user_id"
        f" WHERE r.topic_id = t.id AND NOT r.is_deleted {keyset}ORDER BY r.created_at, r.id LIMIT {limit}"
    )
    reply = (
        "json_build_object('id', p.id, 'user_id', p.user_id, 'content', p.content, 'created_at', p.created_at::text,"
        " 'updated_at', p.updated_at::text, 'username', p.username, 'display_name', p.display_name,"
        " 'avatar_url', p.avatar_url)"
    )
    return (
        f"SELECT 0 AS part, {_TOPIC_FULL},"
        f" (SELECT coalesce(json_agg({reply} ORDER BY p.created_at, p.id), '[]'::json) FROM ({page}) p) AS replies"
        " FROM forum_topics t LEFT JOIN users u ON u.id = t.user_id WHERE t.id = $1"
    )


TOPIC_VIEW_FIRST = _topic_view(after=False)
TOPIC_VIEW_AFTER = _topic_view(after=True)

# --- notifications -------------------------------------------------------------------------------

NOTIFICATION_INSERT = (
    "INSERT INTO notifications (user_id, type, payload, is_read, created_at) VALUES ($1, $2, $3, false, $4)"
)
NOTIFICATIONS_UNREAD_FIRST = (
    "SELECT id, type, payload, is_read, created_at FROM notifications WHERE user_id = $1"
    " ORDER BY is_read, created_at DESC, id DESC LIMIT $2"
)
NOTIFICATIONS_UNREAD_COUNT = "SELECT count(*) AS n FROM notifications WHERE user_id = $1 AND NOT is_read"
NOTIFICATION_OWNER = "SELECT user_id FROM notifications WHERE id = $1"
NOTIFICATION_READ = "UPDATE notifications SET is_read = true WHERE id = $1 AND user_id = $2"
NOTIFICATIONS_ALL_READ = "UPDATE notifications SET is_read = true WHERE user_id = $1 AND NOT is_read"

# --- wiki ----------------------------------------------------------------------------------------

_WIKI_LIST = "SELECT id, slug, title, updated_at FROM wiki_pages WHERE status = 'published'"
WIKI_LIST_OFFSET = f"{_WIKI_LIST} ORDER BY slug, id LIMIT $1 OFFSET $2"
WIKI_LIST_FIRST = f"{_WIKI_LIST} ORDER BY slug, id LIMIT $1"
WIKI_LIST_AFTER = f"{_WIKI_LIST} AND (slug, id) > ($1, $2) ORDER BY slug, id LIMIT $3"
# slug is not UNIQUE in the legacy schema and duplicates exist: the newest published page wins.
WIKI_BY_SLUG = (
    "SELECT p.id, p.slug, p.title, p.content, p.status, p.is_locked, p.is_protected, p.author_id, u.username,"
    " u.display_name, u.avatar_url, p.view_count, p.created_at, p.updated_at"
    " FROM wiki_pages p LEFT JOIN users u ON u.id = p.author_id"
    " WHERE p.slug = $1 AND p.status = 'published' ORDER BY p.id DESC LIMIT 1"
)
WIKI_SLUG_TAKEN = "SELECT 1 AS taken FROM wiki_pages WHERE slug = $1 AND status != 'archived' LIMIT 1"
WIKI_INSERT = (
    "INSERT INTO wiki_pages (slug, title, content, status, author_id, view_count, is_locked, is_featured,"
    " is_protected, created_at, updated_at)"
    " VALUES ($1, $2, $3, 'published', $4, 0, false, false, false, $5, $6) RETURNING id"
)
WIKI_UPDATE = "UPDATE wiki_pages SET title = $1, content = $2, updated_at = $3 WHERE id = $4"
WIKI_ARCHIVE = "UPDATE wiki_pages SET status = 'archived', updated_at = $1 WHERE id = $2"
REVISION_INSERT = (
    "INSERT INTO wiki_revisions (page_id, user_id, content, comment, is_minor, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
)
REVISIONS_OF_PAGE = (
    "SELECT w.id, w.comment, w.is_minor, w.user_id, u.username, u.display_name, u.avatar_url, w.created_at"
    " FROM wiki_revisions w LEFT JOIN users u ON u.id = w.user_id WHERE w.page_id = $1"
    " ORDER BY w.created_at DESC, w.id DESC LIMIT $2"
)
REVISION_GET = (
    "SELECT w.id, w.page_id, w.content, w.comment, w.is_minor, w.user_id, u.username, u.display_name,"
    " u.avatar_url, w.created_at FROM wiki_revisions w LEFT JOIN users u ON u.id = w.user_id"
    " WHERE w.id = $1 AND w.page_id = $2"
)

# --- search --------------------------------------------------------------------------------------

# Topics (any status) and published wiki pages whose title holds $1, a LIKE pattern the repository
# escapes (backslash, PostgreSQL's default LIKE escape). ILIKE ignores case as SQLite's LIKE does (it
# folds all of Unicode, SQLite ASCII only); a pg_trgm GIN index on title serves it (`pgferry advise`).
_SEARCH = (
    "SELECT kind, id, title, slug, updated_at FROM ("
    "SELECT 'topic' AS kind, id, title, NULL AS slug, updated_at FROM forum_topics WHERE title ILIKE $1"
    " UNION ALL SELECT 'wiki' AS kind, id, title, slug, updated_at FROM wiki_pages"
    " WHERE status = 'published' AND title ILIKE $1) AS found"
)
SEARCH_OFFSET = f"{_SEARCH} ORDER BY kind, id LIMIT $2 OFFSET $3"
SEARCH_FIRST = f"{_SEARCH} ORDER BY kind, id LIMIT $2"
SEARCH_AFTER = f"{_SEARCH} WHERE (kind, id) > ($2, $3) ORDER BY kind, id LIMIT $4"
