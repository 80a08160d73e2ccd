"""The forum with its caches on (PostgreSQL, Redis): cached reads run no statement, the forum's writes
invalidate what they change, category stats come from the forum_stats view with its age, and two
`forum serve` workers sharing Redis never serve a reader what a returned write replaced, Redis killed
and restarted in between included."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest

from forum.web.process import running_server
from forum_fixtures import Api, queries_of
from pgferry.migrate.run import copy_database
from pgferry.runtime.cache.server import throwaway_redis

CACHED = pytest.mark.parametrize("api", ["cached"], indirect=True)
OPEN_TOPIC = "SELECT id FROM forum_topics WHERE status = 'open' AND is_locked = FALSE ORDER BY id LIMIT 1"


@CACHED
def test_cached_reads_run_no_statement_and_writes_invalidate_them(api: Api) -> None:
    c, me = api.client, api.register()
    ((topic,),) = api.sql(OPEN_TOPIC)
    first = c.get(f"/topics/{topic}", params={"limit": 200})
    again = c.get(f"/topics/{topic}", params={"limit": 200})
    assert again.json() == first.json() and queries_of(again) == 0
    assert c.post(f"/topics/{topic}/replies", json={"content": "fresh"}, headers=me).status_code == 201
    after = c.get(f"/topics/{topic}", params={"limit": 200}).json()
    assert len(after["replies"]) == len(first.json()["replies"]) + 1

    listed = c.get("/categories/1/topics").json()
    counts = {r["id"]: r["topic_count"] for r in c.get("/categories").json()}
    assert queries_of(c.get("/categories")) == 0
    made = c.post("/topics", json={"category_id": 1, "title": "new one", "content": "x", "tags": []}, headers=me)
    assert made.status_code == 201
    assert {r["id"]: r["topic_count"] for r in c.get("/categories").json()}[1] == counts[1] + 1
    assert c.get("/categories/1/topics").json()["topics"][0]["id"] == made.json()["id"] != listed["topics"][0]["id"]

    page = c.post("/wiki", json={"slug": "cached-page", "title": "t", "content": "one"}, headers=me).json()
    assert c.get("/wiki/cached-page").json()["content"] == "one"
    assert queries_of(c.get("/wiki/cached-page")) == 0
    assert c.put("/wiki/cached-page", json={"content": "two"}, headers=me).status_code == 200
    assert c.get("/wiki/cached-page").json()["content"] == "two" and page["slug"] == "cached-page"

    levels = c.get("/healthz").json()["cache"]["levels"]
    assert levels["l1"]["hits"] >= 3 and levels["l2"]["invalidations"] > 0


@CACHED
def test_a_known_public_read_is_answered_before_routing_and_never_after_a_write_replaced_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, me = api.client, api.register()
    ((topic,),) = api.sql(OPEN_TOPIC)
    first = c.get(f"/topics/{topic}", params={"limit": 20})
    rendering = api.forum.topics.view_json
    calls: list[int] = []

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return rendering(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(api.forum.topics, "view_json", counted)
    again = c.get(f"/topics/{topic}", params={"limit": 20})
    assert again.content == first.content and calls == []  # the route did not run: L1 answered
    assert queries_of(again) == 0 and again.headers["content-type"] == "application/json"
    assert c.get(f"/topics/{topic}", params={"limit": 21}).status_code == 200 and calls == [1]  # another target
    assert c.post(f"/topics/{topic}/replies", json={"content": "after"}, headers=me).status_code == 201
    after = c.get(f"/topics/{topic}", params={"limit": 20})
    assert calls == [1, 1]  # the write's invalidation made L1 miss: through the route again
    assert after.json()["topic"]["reply_count"] == first.json()["topic"]["reply_count"] + 1
    assert c.get(f"/topics/{topic}", params={"limit": 0}).status_code == 422  # validation is still the route's


@CACHED
def test_per_user_reads_are_cached_and_every_write_that_changes_them_invalidates_them(api: Api) -> None:
    c, author, replier = api.client, api.register("author1"), api.register("replier1")
    topic = c.post("/topics", json={"category_id": 1, "title": "mine", "content": "x", "tags": []}, headers=author)
    topic_id, replier_id = topic.json()["id"], c.get("/me", headers=replier).json()["id"]

    before = c.get("/notifications", headers=author).json()
    again = c.get("/notifications", headers=author)
    assert again.json() == before and queries_of(again) == 1  # the session's lookup only
    assert c.get("/notifications", headers=replier).json()["unread"] == 0  # per user: not the author's
    assert c.post(f"/topics/{topic_id}/replies", json={"content": "hi"}, headers=replier).status_code == 201
    assert c.get("/notifications", headers=author).json()["unread"] == before["unread"] + 1
    assert c.post("/notifications/read-all", headers=author).status_code == 200
    assert c.get("/notifications", headers=author).json()["unread"] == 0

    stats = c.get(f"/users/{replier_id}/stats").json()
    assert queries_of(c.get(f"/users/{replier_id}/stats")) == 0
    assert c.post(f"/topics/{topic_id}/replies", json={"content": "again"}, headers=replier).status_code == 201
    assert c.get(f"/users/{replier_id}/stats").json()["reply_count"] == stats["reply_count"] + 1
    assert (
        c.post("/wiki", json={"slug": "per-user", "title": "t", "content": "one"}, headers=replier).status_code == 201
    )
    assert c.get(f"/users/{replier_id}/stats").json()["wiki_edit_count"] == stats["wiki_edit_count"] + 1

    history = c.get("/wiki/per-user/revisions").json()
    assert queries_of(c.get("/wiki/per-user/revisions")) == 0
    assert c.put("/wiki/per-user", json={"content": "two", "comment": "second"}, headers=author).status_code == 200
    assert [r["comment"] for r in c.get("/wiki/per-user/revisions").json()] == ["second"] + [
        r["comment"] for r in history
    ]


@CACHED
def test_category_stats_come_from_the_view_and_a_refresh_updates_them(api: Api) -> None:
    c, me = api.client, api.register("admin1")
    live = {r.category_id: r.to_dict() for r in api.forum.store.repo.category_stats()}
    stats = c.get("/categories/stats").json()
    assert stats["source"] == "view" and stats["age_s"] is not None
    assert {r["category_id"]: r for r in stats["stats"]} == live  # the view is the live computation
    assert (
        c.post("/topics", json={"category_id": 1, "title": "t", "content": "x", "tags": []}, headers=me).status_code
        == 201
    )
    unchanged = {r["category_id"]: r["topics"] for r in c.get("/categories/stats").json()["stats"]}
    assert unchanged[1] == live[1]["topics"]  # as of the last refresh: that is L3's contract
    assert c.post("/categories/stats/refresh", headers=me).status_code == 403
    api.sql("UPDATE users SET role = 'admin' WHERE username = 'admin1'")
    refreshed = c.post("/categories/stats/refresh", headers=me).json()
    assert {r["category_id"]: r["topics"] for r in refreshed["stats"]}[1] == live[1]["topics"] + 1
    assert c.get("/healthz").json()["cache"]["levels"]["l3"]["recomputes"] >= 1


def test_two_workers_on_one_redis_never_serve_what_a_returned_write_replaced(db_copy: Path, pg_dsn: str) -> None:
    copy_database(db_copy, pg_dsn)
    with psycopg.connect(pg_dsn) as conn:
        (topic,) = conn.execute(OPEN_TOPIC).fetchone()
    with throwaway_redis() as redis_server:
        args = ("--pool-size", "4", "--redis", redis_server.url)
        with running_server(pg_dsn, "optimized", extra_args=args, workers=2) as srv:
            token = httpx.post(
                f"{srv.url}/auth/register",
                json={"username": "writer", "email": "w@example.org", "password": "correct horse"},
                timeout=30,
            ).json()["token"]
            me = {"Authorization": f"Bearer {token}"}
            pids: set[int] = set()

            def rounds(n: int, label: str) -> None:
                for i in range(n):
                    content = f"{label} {i}"
                    r = httpx.post(
                        f"{srv.url}/topics/{topic}/replies", json={"content": content}, headers=me, timeout=30
                    )
                    assert r.status_code == 201, r.text
                    for _ in range(6):  # fresh connections: either worker answers
                        view = httpx.get(f"{srv.url}/topics/{topic}", params={"limit": 200}, timeout=30)
                        assert view.status_code == 200, view.text
                        assert content in [x["content"] for x in view.json()["replies"]]
                    pids.add(int(httpx.get(f"{srv.url}/healthz", timeout=30).json()["pid"]))

            rounds(8, "before")
            redis_server.kill()
            rounds(4, "redis down")
            redis_server.start()
            rounds(8, "redis back")
        assert "Traceback" not in srv.log()
    assert len(pids) == 2
