"""The traffic's acknowledged writes read back through the API: all of them as written on an honest
server, and a reply changed behind the forum's back, a topic gone and a page overwritten each named."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from forum.traffic import TrafficOptions, run_traffic
from forum.traffic.acks import read_back_sync
from forum.web.process import running_server
from forum_fixtures import db_copy, seeded_db  # noqa: F401  (fixtures)

WRITE_HEAVY = {"reply_create": 5, "topic_create": 3, "wiki_edit": 3, "topic_view": 1}


@pytest.mark.slow
def test_acknowledged_writes_read_back_and_tampering_is_named(db_copy: Path) -> None:  # noqa: F811
    with running_server(db_copy, "optimized") as server:
        opts = TrafficOptions(4, 60, seed=7, max_requests=120, mix=WRITE_HEAVY, acknowledge=True)
        report = run_traffic(server.url, opts)
        acked = report.acknowledged
        assert acked is not None and report.errors == 0
        assert acked.replies and acked.topics and acked.wiki
        assert read_back_sync(server.url, acked) == []
        reply, topic, slug = min(acked.replies), min(acked.topics), min(acked.wiki)  # new topics get no replies
        with sqlite3.connect(db_copy) as conn:
            conn.execute("UPDATE forum_replies SET content = 'changed' WHERE id = ?", (reply,))
            conn.execute("DELETE FROM forum_topics WHERE id = ?", (topic,))
            conn.execute("UPDATE wiki_pages SET content = 'overwritten' WHERE slug = ?", (slug,))
        problems = read_back_sync(server.url, acked)
    assert len(problems) == 3, problems
    assert any(p.startswith(f"reply {reply}: content 'changed'") for p in problems)
    assert any(p.startswith(f"topic {topic}: GET /topics/{topic}") and "404" in p for p in problems)
    assert any(p.startswith(f"wiki {slug}: content is none of") for p in problems)
