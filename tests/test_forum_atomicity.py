"""A multi-step write that fails half-way: legacy leaves what it wrote so far, optimized leaves nothing.

The failure is real, not mocked: a trigger on the database refuses the last step (the activity log
insert, or the notification), exactly as a constraint, a full disk or a lock would.
"""

from __future__ import annotations

from forum_fixtures import Api


def _counts(api: Api, topic_id: int, author_id: int) -> dict[str, object]:
    return {
        "replies": api.sql("SELECT count(*) FROM forum_replies WHERE topic_id = ?", (topic_id,))[0][0],
        "topic": api.sql("SELECT reply_count, last_reply_at FROM forum_topics WHERE id = ?", (topic_id,))[0],
        "notifications": api.sql("SELECT count(*) FROM notifications WHERE user_id = ?", (author_id,))[0][0],
        "stats": api.sql("SELECT reply_count FROM user_stats WHERE user_id = ?", (author_id,)),
    }


def test_reply_failing_half_way(api: Api) -> None:
    c = api.client
    alice, bob = api.register("alice"), api.register("bob")
    topic = c.post("/topics", json={"category_id": 1, "title": "Q", "content": "?"}, headers=alice).json()
    alice_id = api.user_id(alice)
    before = _counts(api, topic["id"], alice_id)
    api.fail_inserts_into("notifications")  # step 3 of 5: after the reply and the topic's counters

    r = c.post(f"/topics/{topic['id']}/replies", json={"content": "boom"}, headers=bob)
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal"
    assert r.headers["x-request-id"] in r.json()["error"]["message"]

    after = _counts(api, topic["id"], alice_id)
    if api.mode == "legacy":
        assert after["replies"] == 1 and after["topic"][0] == 1  # the reply and the counter stayed...
        assert after["notifications"] == before["notifications"] == 0  # ...the author never heard of it
    else:
        assert after == before  # nothing at all


def test_topic_with_tags_failing_at_the_last_step(api: Api) -> None:
    alice = api.register("alice")
    topics_before = api.sql("SELECT count(*) FROM forum_topics")[0][0]
    api.fail_inserts_into("activity_log")
    r = api.client.post(
        "/topics",
        json={"category_id": 1, "title": "Half", "content": "way", "tags": ["brand-new-tag", "another-new-tag"]},
        headers=alice,
    )
    assert r.status_code == 500
    topics = api.sql("SELECT count(*) FROM forum_topics")[0][0] - topics_before
    tags = api.sql("SELECT count(*) FROM tags WHERE name IN ('brand-new-tag', 'another-new-tag')")[0][0]
    links = api.sql("SELECT count(*) FROM topic_tags tt JOIN tags g ON g.id = tt.tag_id WHERE g.name = 'brand-new-tag'")
    if api.mode == "legacy":
        assert (topics, tags, links[0][0]) == (1, 2, 1)
    else:
        assert (topics, tags, links[0][0]) == (0, 0, 0)


def test_wiki_edit_failing_after_the_page_update(api: Api) -> None:
    alice = api.register("alice")
    ((slug,),) = api.sql(
        "SELECT slug FROM wiki_pages GROUP BY slug HAVING count(*) = 1 AND max(status) = 'published'"
        " AND sum(CASE WHEN is_locked OR is_protected THEN 1 ELSE 0 END) = 0 ORDER BY slug LIMIT 1"
    )
    slug_page = api.client.get(f"/wiki/{slug}").json()
    api.fail_inserts_into("wiki_revisions")
    r = api.client.put(f"/wiki/{slug}", json={"content": "vandalised without history"}, headers=alice)
    assert r.status_code == 500
    now = api.sql("SELECT content FROM wiki_pages WHERE id = ?", (slug_page["id"],))[0][0]
    if api.mode == "legacy":
        assert now == "vandalised without history"  # changed, and no revision says who did it
    else:
        assert now == slug_page["content"]
