"""The native-schema proposals on the forum (scale 0.1) copied with `pgferry copy`, after the forum's
own search ran on PostgreSQL: partitions for its append-only, time-ordered tables, none for users
(its unique username and email say why), and trigram indexes for the search's title predicates."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from forum.seed import generate
from forum.services import Forum
from pgdatabases import fresh_database
from pgferry.advise.advisor import advise
from pgferry.advise.native import NativeOptions
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database
from pgferry.pg.cluster import LocalCluster

SEARCHES = ("sqlite", "lock", "wal", "index", "100%", "how_to")
OPTIONS = NativeOptions(min_rows=1_000)  # scale 0.1: user_sessions has 6,000 rows, users 2,000


@pytest.fixture(scope="module")
def forum_copy(pg_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("native") / "forum.db"
    generate(path, scale=0.1, seed=42)
    with fresh_database(pg_cluster.dsn()) as dsn:
        copy_database(path, dsn, CopyOptions(jobs=2))  # the default copy a user makes
        with psycopg.connect(dsn, autocommit=True) as pg:
            pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            pg.execute("ANALYZE")
            pg.execute("SELECT pg_stat_statements_reset()")
        forum = Forum.open(dsn, "optimized")
        try:
            for q in SEARCHES:  # the forum's search, on its PostgreSQL backend
                first = forum.search.titles(q, 5, None)
                if first.next_cursor:
                    forum.search.titles(q, 5, first.next_cursor)
        finally:
            forum.close()
        yield dsn


def test_the_forums_append_only_tables_get_partitions_and_users_says_why_not(forum_copy: str) -> None:
    with psycopg.connect(forum_copy, autocommit=True) as pg:
        report = advise(pg, native=OPTIONS).native
    partitioned = {p.table: p for p in report.proposals if p.kind == "partition"}
    assert {"notifications", "user_sessions", "activity_log"} <= set(partitioned)
    assert partitioned["notifications"].sql == [
        "pgferry copy SQLITE_FILE DSN --partition notifications=created_at:month --partition-widen-keys"
    ]
    assert not {"users", "forum_topics", "topic_tags"} & set(partitioned)
    users = next(r for r in report.refused if (r.kind, r.table) == ("partition", "users"))
    assert any(r.startswith("unique key (username) does not include created_at") for r in users.reasons)
    assert any("PostgreSQL requires the partition key in every unique constraint" in r for r in users.reasons)
    topics = next(r for r in report.refused if (r.kind, r.table) == ("partition", "forum_topics"))
    assert any("forum_replies (topic_id)" in r for r in topics.reasons)  # the replies point at topics
    trigrams = {(p.table, p.column): p for p in report.proposals if p.kind == "trigram"}
    assert {("forum_topics", "title"), ("wiki_pages", "title")} <= set(trigrams)
    topic_title = trigrams["forum_topics", "title"]
    assert topic_title.sql == [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        'CREATE INDEX CONCURRENTLY ON "public"."forum_topics" USING gin ("title" gin_trgm_ops)',
    ]
    assert any("title ILIKE $1" in s["query"] for s in topic_title.evidence["statements"])


def test_the_rules_read_the_data_not_the_names(forum_copy: str) -> None:
    """The same table under another name gets the same proposal."""
    with psycopg.connect(forum_copy, autocommit=True) as pg:
        pg.execute("ALTER TABLE notifications RENAME TO inbox")
        try:
            report = advise(pg, native=OPTIONS).native
        finally:
            pg.execute("ALTER TABLE inbox RENAME TO notifications")
    assert "inbox" in {p.table for p in report.proposals if p.kind == "partition"}
