"""Every SQL statement the forum runs on SQLite, in one place: the forum's `sqlite` dialect.

The names are the forum's statement set (`forum.store.statements.ForumSql`); the PostgreSQL dialect
(`forum.store.postgres.queries`) is a module with the same names, and loading a dialect refuses one
that lacks any of them. Transactions are not here: the backend starts them
(`BEGIN IMMEDIATE` on SQLite, through pgferry.runtime). Statements are plain text with `?`
placeholders: every value is a parameter, every identifier is written quoted where it could collide
with a keyword. Column lists are spelled out so a wider legacy table (the 42-column users table)
costs nothing. Names starting with `_` are fragments, not statements.

The queries keep the legacy application's shapes on purpose (a topic list filtered by category and
status ordered by updated_at, sessions looked up by token and expiry, notifications by user, unread
first): they are the workload pgferry's doctor reads, and the indexes the plan's "Day 1-2" asks for
are the ones these shapes need.
"""

from __future__ import annotations

# --- the schema ----------------------------------------------------------------------------------

TABLES = "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"

# --- users and sessions --------------------------------------------------------------------------

_USER = "id, username, display_name, avatar_url, bio, location, role, status, created_at"
USER_GET = f"SELECT {_USER} FROM users WHERE id = ?"
USER_BRIEF = "SELECT id, username, display_name, avatar_url FROM users WHERE id = ?"
USER_CREDENTIALS = "SELECT id, password_hash, status FROM users WHERE username = ? COLLATE NOCASE ORDER BY id LIMIT 1"
USER_NAME_OR_EMAIL_TAKEN = (
    "SELECT 1 AS taken FROM users WHERE username = ?1 COLLATE NOCASE OR email = ?2 COLLATE NOCASE LIMIT 1"
)
USER_INSERT = (
    "INSERT INTO users (username, email, password_hash, display_name, role, status, email_verified,"
    " created_at, updated_at, login_count) VALUES (?, ?, ?, ?, 'user', 'active', 0, ?, ?, 0) RETURNING id"
)
# users is a view after `pgferry split`: RETURNING cannot see the new id, so it is looked up
USER_ID_BY_NAME = "SELECT id FROM users WHERE username = ?"
USER_LOGGED_IN = "UPDATE users SET last_login = ?, login_count = login_count + 1 WHERE id = ?"
USER_PASSWORD_REHASH = "UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?"
USER_SET_ROLE = "UPDATE users SET role = ?, updated_at = ? WHERE id = ?"

SESSION_INSERT = (
    "INSERT INTO user_sessions (session_token, user_id, ip_address, user_agent, created_at, expires_at,"
    " is_active) VALUES (?, ?, ?, ?, ?, ?, 1)"
)
SESSION_LOOKUP = (
    "SELECT s.id, s.user_id, s.expires_at, u.username, u.role FROM user_sessions s"
    " JOIN users u ON u.id = s.user_id"
    " WHERE s.session_token = ? AND s.expires_at > ? AND s.is_active = 1 AND u.status = 'active'"
)
SESSION_END = "UPDATE user_sessions SET is_active = 0 WHERE id = ?"

# --- per-user stats and the activity log ---------------------------------------------------------

STATS_INSERT = (
    "INSERT INTO user_stats (user_id, topic_count, reply_count, wiki_edit_count, reputation, is_trusted,"
    " last_active_at, updated_at) VALUES (?, 0, 0, 0, 0, 0, ?, ?)"
)


def _stats_bump(column: str) -> str:
    return (
        "INSERT INTO user_stats (user_id, topic_count, reply_count, wiki_edit_count, reputation, is_trusted,"
        f" last_active_at, updated_at, {column}) VALUES (?1, 0, 0, 0, 0, 0, ?2, ?2, 1)"
        f" ON CONFLICT (user_id) DO UPDATE SET {column} = {column} + 1, last_active_at = ?2, updated_at = ?2"
    )


STATS_BUMP_TOPICS = _stats_bump("topic_count")
STATS_BUMP_REPLIES = _stats_bump("reply_count")
STATS_BUMP_WIKI_EDITS = _stats_bump("wiki_edit_count")
STATS_GET = (
    "SELECT user_id, topic_count, reply_count, wiki_edit_count, reputation, last_active_at"
    " FROM user_stats WHERE user_id = ?"
)
ACTIVITY_INSERT = (
    "INSERT INTO activity_log (user_id, action, entity_type, entity_id, ip_address, metadata, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
ACTIVITY_OF_USER = (
    "SELECT id, action, entity_type, entity_id, metadata, created_at FROM activity_log WHERE user_id = ?"
    " ORDER BY created_at DESC, id DESC LIMIT ?"
)

# --- categories, topics, tags --------------------------------------------------------------------

CATEGORIES = (
    "SELECT id, parent_id, name, slug, description, position, topic_count FROM forum_categories"
    " WHERE is_active = 1 ORDER BY position, name, id"
)
CATEGORY_EXISTS = "SELECT 1 AS found FROM forum_categories WHERE id = ? AND is_active = 1"
CATEGORY_BUMP = "UPDATE forum_categories SET topic_count = topic_count + ?, updated_at = ? WHERE id = ?"

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
    " LEFT JOIN per ON per.category_id = c.id WHERE c.is_active = 1 ORDER BY c.id"
)

_TOPIC_ROW = (
    "t.id, t.category_id, t.title, t.status, t.is_locked, t.user_id, u.username, u.display_name, u.avatar_url,"
    " t.reply_count, t.view_count, t.created_at, t.updated_at, t.last_reply_at"
)
_TOPIC_LIST = (
    f"SELECT {_TOPIC_ROW} FROM forum_topics t LEFT JOIN users u ON u.id = t.user_id"
    " WHERE t.category_id = ? AND t.status = ?"
)
# Newest activity first. OFFSET reads and throws away every row before the page (legacy); the keyset
# form starts right after the last row seen, whatever the page number (optimized).
TOPIC_LIST_OFFSET = f"{_TOPIC_LIST} ORDER BY t.updated_at DESC, t.id DESC LIMIT ? OFFSET ?"
TOPIC_LIST_FIRST = f"{_TOPIC_LIST} ORDER BY t.updated_at DESC, t.id DESC LIMIT ?"
TOPIC_LIST_AFTER = f"{_TOPIC_LIST} AND (t.updated_at, t.id) < (?, ?) ORDER BY t.updated_at DESC, t.id DESC LIMIT ?"
TOPICS_OF_TAG = (
    f"SELECT {_TOPIC_ROW} FROM topic_tags tt JOIN tags g ON g.id = tt.tag_id"
    " JOIN forum_topics t ON t.id = tt.topic_id LEFT JOIN users u ON u.id = t.user_id"
    " WHERE g.name = ? ORDER BY t.updated_at DESC, t.id DESC LIMIT ?"
)

_TOPIC_TAGS = (
    "(SELECT json_group_array(g.name) FROM topic_tags tt JOIN tags g ON g.id = tt.tag_id WHERE tt.topic_id = t.id)"
)
_TOPIC_FULL = (
    "t.id, t.category_id, t.title, t.content, t.status, t.is_locked, t.user_id, u.username, u.display_name,"
    f" u.avatar_url, {_TOPIC_TAGS} AS tags, t.reply_count, t.view_count, t.created_at, t.updated_at,"
    " t.last_reply_at"
)
TOPIC_GET = f"SELECT {_TOPIC_FULL} FROM forum_topics t LEFT JOIN users u ON u.id = t.user_id WHERE t.id = ?"
TOPIC_OWNER = "SELECT user_id, is_locked, status, category_id FROM forum_topics WHERE id = ?"
TOPIC_INSERT = (
    "INSERT INTO forum_topics (category_id, user_id, title, content, status, is_pinned, is_locked, view_count,"
    " reply_count, created_at, updated_at, last_reply_at) VALUES (?, ?, ?, ?, 'open', 0, 0, 0, 0, ?, ?, NULL)"
    " RETURNING id"
)
TOPIC_UPDATE = "UPDATE forum_topics SET title = ?, content = ?, updated_at = ? WHERE id = ?"
TOPIC_REPLIED = (
    "UPDATE forum_topics SET reply_count = reply_count + 1, last_reply_at = ?1, updated_at = ?1 WHERE id = ?2"
)
TOPIC_REPLY_REMOVED = "UPDATE forum_topics SET reply_count = max(reply_count - 1, 0) WHERE id = ?"
TOPIC_DELETE = "DELETE FROM forum_topics WHERE id = ?"
TOPIC_REPLIES_DELETE = "DELETE FROM forum_replies WHERE topic_id = ?"
TOPIC_TAGS_UNCOUNT = (
    "UPDATE tags SET usage_count = max(usage_count - 1, 0)"
    " WHERE id IN (SELECT tag_id FROM topic_tags WHERE topic_id = ?)"
)
TOPIC_TAGS_DELETE = "DELETE FROM topic_tags WHERE topic_id = ?"

# Get-or-create in one statement; a concurrent creator of the same tag cannot make it fail.
TAG_UPSERT = (
    "INSERT INTO tags (name, slug, description, usage_count, is_featured, is_official, is_deprecated, is_nsfw,"
    " created_at, updated_at) VALUES (?1, ?1, NULL, 1, 0, 0, 0, 0, ?2, ?2)"
    " ON CONFLICT (name) DO UPDATE SET usage_count = usage_count + 1, updated_at = ?2 RETURNING id"
)
TOPIC_TAG_INSERT = "INSERT OR IGNORE INTO topic_tags (topic_id, tag_id, created_at) VALUES (?, ?, ?)"
TAGS_POPULAR = "SELECT id, name, usage_count FROM tags ORDER BY usage_count DESC, name LIMIT ?"

# --- replies -------------------------------------------------------------------------------------

REPLIES_OFFSET = (
    "SELECT id, topic_id, user_id, content, created_at, updated_at FROM forum_replies"
    " WHERE topic_id = ? AND is_deleted = 0 ORDER BY created_at, id LIMIT ? OFFSET ?"
)
REPLY_OWNER = "SELECT user_id, topic_id FROM forum_replies WHERE id = ? AND is_deleted = 0"
REPLY_GET = (
    "SELECT r.id, r.topic_id, r.user_id, r.content, r.created_at, r.updated_at, u.username, u.display_name,"
    " u.avatar_url FROM forum_replies r LEFT JOIN users u ON u.id = r.user_id WHERE r.id = ? AND r.is_deleted = 0"
)
REPLY_INSERT = (
    "INSERT INTO forum_replies (topic_id, user_id, content, is_deleted, created_at, updated_at)"
    " VALUES (?, ?, ?, 0, ?, ?) RETURNING id"
)
REPLY_UPDATE = "UPDATE forum_replies SET content = ?, updated_at = ? WHERE id = ?"
REPLY_SOFT_DELETE = "UPDATE forum_replies SET is_deleted = 1, updated_at = ? WHERE id = ?"


def _topic_view(after: bool) -> str:
    """The topic, its author and tags, and one page of replies with their authors: one statement.

    The plan's version nests json_group_array over a CTE with ORDER BY, which SQLite does not promise
    to keep (the aggregate's input order is unspecified before 3.44), passes the id twice and returns
    the topic as an array. Here the topic row and the reply rows come back as one UNION ALL, sorted by
    a real ORDER BY, with ?1 used twice: no JSON to build in SQL and parse again in Python.
    """
    keyset = "AND (r.created_at, r.id) > (?2, ?3) " if after else ""
    limit = "?4" if after else "?2"
    return (
        "SELECT 0 AS part, t.id, t.category_id, t.title, t.content, t.status, t.is_locked, t.user_id, u.username,"
        f" u.display_name, u.avatar_url, {_TOPIC_TAGS} AS tags, t.reply_count, t.view_count, t.created_at,"
        " t.updated_at, t.last_reply_at"
        " FROM forum_topics t LEFT JOIN users u ON u.id = t.user_id WHERE t.id = ?1"
        " UNION ALL "
        "SELECT * FROM (SELECT 1 AS part, r.id, r.topic_id, NULL, r.content, NULL, NULL, r.user_id, u.username,"
        " u.display_name, u.avatar_url, NULL, NULL, NULL, r.created_at, r.updated_at, NULL"
        " FROM forum_replies r LEFT JOIN users u ON u.id = r.user_id"
        f" WHERE r.topic_id = ?1 AND r.is_deleted = 0 {keyset}ORDER BY r.created_at, r.id LIMIT {limit})"
        " ORDER BY part, created_at, id"
    )


TOPIC_VIEW_FIRST = _topic_view(after=False)
TOPIC_VIEW_AFTER = _topic_view(after=True)

# --- notifications -------------------------------------------------------------------------------

NOTIFICATION_INSERT = "INSERT INTO notifications (user_id, type, payload, is_read, created_at) VALUES (?, ?, ?, 0, ?)"
NOTIFICATIONS_UNREAD_FIRST = (
    "SELECT id, type, payload, is_read, created_at FROM notifications WHERE user_id = ?"
    " ORDER BY is_read, created_at DESC, id DESC LIMIT ?"
)
NOTIFICATIONS_UNREAD_COUNT = "SELECT count(*) AS n FROM notifications WHERE user_id = ? AND is_read = 0"
NOTIFICATION_OWNER = "SELECT user_id FROM notifications WHERE id = ?"
NOTIFICATION_READ = "UPDATE notifications SET is_read = 1 WHERE id = ? AND user_id = ?"
NOTIFICATIONS_ALL_READ = "UPDATE notifications SET is_read = 1 WHERE user_id = ? AND is_read = 0"

# --- wiki ----------------------------------------------------------------------------------------

_WIKI_LIST = "SELECT id, slug, title, updated_at FROM wiki_pages WHERE status = 'published'"
WIKI_LIST_OFFSET = f"{_WIKI_LIST} ORDER BY slug, id LIMIT ? OFFSET ?"
WIKI_LIST_FIRST = f"{_WIKI_LIST} ORDER BY slug, id LIMIT ?"
WIKI_LIST_AFTER = f"{_WIKI_LIST} AND (slug, id) > (?, ?) ORDER BY slug, id LIMIT ?"
# slug is not UNIQUE in the legacy schema and duplicates exist: the newest published page wins.
WIKI_BY_SLUG = (
    "SELECT p.id, p.slug, p.title, p.content, p.status, p.is_locked, p.is_protected, p.author_id, u.username,"
    " u.display_name, u.avatar_url, p.view_count, p.created_at, p.updated_at"
    " FROM wiki_pages p LEFT JOIN users u ON u.id = p.author_id"
    " WHERE p.slug = ? AND p.status = 'published' ORDER BY p.id DESC LIMIT 1"
)
WIKI_SLUG_TAKEN = "SELECT 1 AS taken FROM wiki_pages WHERE slug = ? AND status != 'archived' LIMIT 1"
WIKI_INSERT = (
    "INSERT INTO wiki_pages (slug, title, content, status, author_id, view_count, is_locked, is_featured,"
    " is_protected, created_at, updated_at) VALUES (?, ?, ?, 'published', ?, 0, 0, 0, 0, ?, ?) RETURNING id"
)
WIKI_UPDATE = "UPDATE wiki_pages SET title = ?, content = ?, updated_at = ? WHERE id = ?"
WIKI_ARCHIVE = "UPDATE wiki_pages SET status = 'archived', updated_at = ? WHERE id = ?"
REVISION_INSERT = (
    "INSERT INTO wiki_revisions (page_id, user_id, content, comment, is_minor, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?) RETURNING id"
)
REVISIONS_OF_PAGE = (
    "SELECT w.id, w.comment, w.is_minor, w.user_id, u.username, u.display_name, u.avatar_url, w.created_at"
    " FROM wiki_revisions w LEFT JOIN users u ON u.id = w.user_id WHERE w.page_id = ?"
    " ORDER BY w.created_at DESC, w.id DESC LIMIT ?"
)
REVISION_GET = (
    "SELECT w.id, w.page_id, w.content, w.comment, w.is_minor, w.user_id, u.username, u.display_name,"
    " u.avatar_url, w.created_at FROM wiki_revisions w LEFT JOIN users u ON u.id = w.user_id"
    " WHERE w.id = ? AND w.page_id = ?"
)

# --- search --------------------------------------------------------------------------------------

# Topics (any status) and published wiki pages whose title holds ?1, a LIKE pattern the repository
# escapes (a % or _ in the text is literal; backslash escapes). SQLite's LIKE ignores case (ASCII only).
# Ordered by kind, then id: the keyset is (kind, id).
_SEARCH = (
    "SELECT kind, id, title, slug, updated_at FROM ("
    "SELECT 'topic' AS kind, id, title, NULL AS slug, updated_at FROM forum_topics WHERE title LIKE ?1 ESCAPE '\\'"
    " UNION ALL SELECT 'wiki' AS kind, id, title, slug, updated_at FROM wiki_pages"
    " WHERE status = 'published' AND title LIKE ?1 ESCAPE '\\') AS found"
)
SEARCH_OFFSET = f"{_SEARCH} ORDER BY kind, id LIMIT ?2 OFFSET ?3"
SEARCH_FIRST = f"{_SEARCH} ORDER BY kind, id LIMIT ?2"
SEARCH_AFTER = f"{_SEARCH} WHERE (kind, id) > (?2, ?3) ORDER BY kind, id LIMIT ?4"
