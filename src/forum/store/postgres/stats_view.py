"""L3 on PostgreSQL: the forum_stats materialized view (topics, unique posters, last activity per
category), the forum's own schema step: made on the database `pgferry copy` made, when the forum
starts with its caches on, never by pgferry's copy.

Its definition is the live CATEGORY_STATS statement without its ORDER BY, so the view and the SQLite
forum's live answer are one computation.
"""

from __future__ import annotations

from forum.store.postgres import queries
from pgferry.pg.matview import MaterializedView

FORUM_STATS = MaterializedView(
    "forum_stats", queries.CATEGORY_STATS.removesuffix(" ORDER BY c.id"), unique=("category_id",)
)
READ = "SELECT category_id, topics, unique_posters, last_activity_at FROM forum_stats ORDER BY category_id"
