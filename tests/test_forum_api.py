"""The forum's HTTP API: one suite, run on SQLite in both modes (legacy and optimized), on PostgreSQL
(the database `pgferry copy` makes of the same file), and on the dual route over both (the router:
SQLite answers, PostgreSQL runs every statement and is compared), each on a fresh copy."""

from __future__ import annotations

import json

import pytest

from forum_fixtures import Api, queries_of

# --- accounts and sessions ------------------------------------------------------------------------


def test_register_login_logout(api: Api) -> None:
    c = api.client
    r = c.post("/auth/register", json={"username": "Carol", "email": "carol@example.org", "password": "s3cret-pass"})
    assert r.status_code == 201
    grant = r.json()
    assert grant["user"]["username"] == "Carol" and len(grant["token"]) >= 40
    # only the token's SHA-256 is stored, and the password only as an argon2id hash
    stored = api.sql("SELECT session_token FROM user_sessions WHERE user_id = ?", (grant["user"]["id"],))
    assert stored and grant["token"] not in {s for (s,) in stored} and len(stored[0][0]) == 64
    (hashed,) = api.sql("SELECT password_hash FROM users WHERE id = ?", (grant["user"]["id"],))[0]
    assert hashed.startswith("$argon2id$") and "s3cret" not in hashed
    # duplicate names (any case) and emails are refused
    dup = c.post("/auth/register", json={"username": "carol", "email": "x@example.org", "password": "s3cret-pass"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "conflict"

    bad = c.post("/auth/login", json={"username": "carol", "password": "wrong-pass"})
    assert bad.status_code == 401 and bad.json()["error"]["message"] == "wrong username or password"
    ok = c.post("/auth/login", json={"username": "CAROL", "password": "s3cret-pass"})
    assert ok.status_code == 200
    headers = {"Authorization": f"Bearer {ok.json()['token']}"}
    assert c.get("/me", headers=headers).json()["username"] == "Carol"
    assert c.post("/auth/logout", headers=headers).status_code == 204
    assert c.get("/me", headers=headers).status_code == 401
    assert c.get("/me", headers={"Authorization": f"Bearer {grant['token']}"}).status_code == 200


def test_seeded_users_cannot_log_in_with_their_legacy_hashes(api: Api) -> None:
    (name,) = api.sql("SELECT username FROM users WHERE id = 1")[0]
    r = api.client.post("/auth/login", json={"username": name, "password": "anything-at-all"})
    assert r.status_code == 401


def test_expired_session_is_refused(api: Api) -> None:
    headers = api.register()
    assert api.client.get("/me", headers=headers).status_code == 200
    api.sql("UPDATE user_sessions SET expires_at = '2000-01-01 00:00:00' WHERE user_id = ?", (api.user_id(headers),))
    r = api.client.get("/me", headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_login_attempts_are_rate_limited(api: Api) -> None:
    api.register("dave")
    codes = [
        api.client.post("/auth/login", json={"username": "dave", "password": "nope-nope"}).status_code
        for _ in range(12)
    ]
    assert codes[:10] == [401] * 10
    assert codes[10:] == [429, 429]
    r = api.client.post("/auth/login", json={"username": "dave", "password": "correct horse"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/topics", {"category_id": 1, "title": "t", "content": "c"}),
        ("post", "/topics/1/replies", {"content": "c"}),
        ("patch", "/topics/1", {"title": "x"}),
        ("delete", "/topics/1", None),
        ("put", "/wiki/some-page", {"content": "c"}),
        ("get", "/notifications", None),
    ],
)
def test_writes_without_a_valid_session_get_401(api: Api, method: str, path: str, body: object) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
        kwargs = {"json": body} if body is not None else {}
        r = api.client.request(method.upper(), path, headers=headers, **kwargs)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["error"]["status"] == 401


def test_only_the_author_or_an_admin_edits_and_deletes(api: Api) -> None:
    c = api.client
    alice, bob, admin = api.register("alice"), api.register("bob"), api.register("root")
    api.forum.auth.set_role(api.user_id(admin), "admin")
    topic = c.post("/topics", json={"category_id": 1, "title": "Mine", "content": "body"}, headers=alice).json()
    reply = c.post(f"/topics/{topic['id']}/replies", json={"content": "hi"}, headers=alice).json()

    assert c.patch(f"/topics/{topic['id']}", json={"title": "Stolen"}, headers=bob).status_code == 403
    assert c.patch(f"/replies/{reply['id']}", json={"content": "x"}, headers=bob).status_code == 403
    assert c.delete(f"/replies/{reply['id']}", headers=bob).status_code == 403
    assert c.delete(f"/topics/{topic['id']}", headers=bob).status_code == 403
    assert c.get(f"/topics/{topic['id']}").json()["topic"]["title"] == "Mine"

    assert c.patch(f"/topics/{topic['id']}", json={"title": "Edited"}, headers=alice).json()["title"] == "Edited"
    assert c.patch(f"/replies/{reply['id']}", json={"content": "admin was here"}, headers=admin).status_code == 200
    assert c.delete(f"/replies/{reply['id']}", headers=alice).status_code == 204
    assert c.get(f"/replies/{reply['id']}").status_code == 404
    assert c.delete(f"/topics/{topic['id']}", headers=admin).status_code == 204
    assert c.get(f"/topics/{topic['id']}").status_code == 404
    # the activity log is the user's own (or an admin's to read)
    alice_id = api.user_id(alice)
    assert c.get(f"/users/{alice_id}/activity", headers=bob).status_code == 403
    actions = [a["action"] for a in c.get(f"/users/{alice_id}/activity", headers=alice).json()["activity"]]
    assert actions[:3] == ["create_reply", "create_topic", "register"]
    assert c.get(f"/users/{alice_id}/activity", headers=admin).status_code == 200


# --- forum ------------------------------------------------------------------------------------------


def test_create_topic_with_tags_updates_counters(api: Api) -> None:
    c = api.client
    alice = api.register("alice")
    before = {r["id"]: r["topic_count"] for r in c.get("/categories").json()}
    r = c.post(
        "/topics",
        json={"category_id": 3, "title": "WAL or not?", "content": "body", "tags": ["SQLite", "wal", "sqlite"]},
        headers=alice,
    )
    assert r.status_code == 201
    topic = r.json()
    assert topic["title"] == "WAL or not?" and topic["tags"] == ["sqlite", "wal"]
    assert topic["author"]["username"] == "alice"
    after = {r["id"]: r["topic_count"] for r in c.get("/categories").json()}
    assert after[3] == before[3] + 1
    assert c.get(f"/users/{api.user_id(alice)}/stats").json()["topic_count"] == 1
    assert any(t["id"] == topic["id"] for t in c.get("/tags/wal/topics").json())
    listed = c.get("/categories/3/topics", params={"limit": 1}).json()["topics"]
    assert listed[0]["id"] == topic["id"]  # newest activity first
    assert c.post("/topics", json={"category_id": 999, "title": "t", "content": "c"}, headers=alice).status_code == 404


def test_topic_list_pages_cover_every_topic_once(api: Api) -> None:
    ((category,),) = api.sql(
        "SELECT c.id FROM forum_categories c JOIN forum_topics t ON t.category_id = c.id"
        " WHERE c.is_active = TRUE AND t.status = 'open' GROUP BY c.id ORDER BY count(*) DESC LIMIT 1"
    )
    expected = [
        r[0]
        for r in api.sql(
            "SELECT id FROM forum_topics WHERE category_id = ? AND status = 'open' ORDER BY updated_at DESC, id DESC",
            (category,),
        )
    ]
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = api.client.get(f"/categories/{category}/topics", params=params).json()
        seen += [t["id"] for t in page["topics"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and len(expected) > 7


def test_topic_view_is_n_plus_one_in_legacy_and_one_query_optimized(api: Api) -> None:
    rows = api.sql(
        "SELECT topic_id, count(*) FROM forum_replies WHERE is_deleted = FALSE GROUP BY topic_id"
        " HAVING count(*) BETWEEN 3 AND 60 ORDER BY count(*) DESC LIMIT 2"
    )
    assert rows
    for topic_id, replies in rows:
        r = api.client.get(f"/topics/{topic_id}", params={"limit": 200})
        assert r.status_code == 200 and len(r.json()["replies"]) == replies
        assert queries_of(r) == (replies + 2 if api.mode == "legacy" else 1)
        authors = {x["author"]["id"]: x["author"]["username"] for x in r.json()["replies"]}
        names = dict(
            api.sql(f"SELECT id, username FROM users WHERE id IN ({','.join('?' * len(authors))})", tuple(authors))
        )
        assert authors == names


def test_topic_view_pages_replies_in_order(api: Api) -> None:
    ((topic_id, n),) = api.sql(
        "SELECT topic_id, count(*) FROM forum_replies WHERE is_deleted = FALSE GROUP BY topic_id"
        " ORDER BY count(*) DESC LIMIT 1"
    )
    expected = [
        r[0]
        for r in api.sql(
            "SELECT id FROM forum_replies WHERE topic_id = ? AND is_deleted = FALSE ORDER BY created_at, id",
            (topic_id,),
        )
    ]
    seen, cursor = [], None
    while True:
        page = api.client.get(f"/topics/{topic_id}", params={"limit": 5, **({"cursor": cursor} if cursor else {})})
        body = page.json()
        assert body["topic"]["id"] == topic_id
        seen += [r["id"] for r in body["replies"]]
        if (cursor := body["next_cursor"]) is None:
            break
    assert seen == expected and n > 5


def test_reply_notifies_the_topic_author(api: Api) -> None:
    c = api.client
    alice, bob = api.register("alice"), api.register("bob")
    topic = c.post("/topics", json={"category_id": 1, "title": "Q", "content": "?"}, headers=alice).json()
    r = c.post(f"/topics/{topic['id']}/replies", json={"content": "an answer"}, headers=bob)
    assert r.status_code == 201 and r.json()["author"]["username"] == "bob"
    c.post(f"/topics/{topic['id']}/replies", json={"content": "thanks"}, headers=alice)  # no self-notification
    view = c.get(f"/topics/{topic['id']}").json()
    assert view["topic"]["reply_count"] == 2 and [x["content"] for x in view["replies"]] == ["an answer", "thanks"]

    inbox = c.get("/notifications", headers=alice).json()
    assert inbox["unread"] == 1
    note = inbox["notifications"][0]
    assert note["type"] == "reply" and note["payload"]["reply_id"] == r.json()["id"] and not note["is_read"]
    assert c.get("/notifications", headers=bob).json()["unread"] == 0
    assert c.post(f"/notifications/{note['id']}/read", headers=bob).status_code == 403
    assert c.post(f"/notifications/{note['id']}/read", headers=alice).status_code == 204
    assert c.get("/notifications", headers=alice).json()["unread"] == 0
    assert c.post("/notifications/999999/read", headers=alice).status_code == 404
    assert c.get(f"/users/{api.user_id(bob)}/stats").json()["reply_count"] == 1


def test_notifications_unread_first(api: Api) -> None:
    (user_id,) = api.sql(
        "SELECT user_id FROM notifications GROUP BY user_id"
        " HAVING sum(CASE WHEN is_read THEN 1 ELSE 0 END) > 0 AND sum(CASE WHEN is_read THEN 0 ELSE 1 END) > 0 LIMIT 1"
    )[0]
    # take over that seeded user's notifications by pointing them at a new account
    headers = api.register("reader")
    api.sql("UPDATE notifications SET user_id = ? WHERE user_id = ?", (api.user_id(headers), user_id))
    inbox = api.client.get("/notifications", params={"limit": 100}, headers=headers).json()
    flags = [n["is_read"] for n in inbox["notifications"]]
    assert flags == sorted(flags) and inbox["unread"] == flags.count(False) > 0
    r = api.client.post("/notifications/read-all", headers=headers)
    assert r.json()["marked"] == inbox["unread"]


def test_replies_to_a_closed_topic_are_refused(api: Api) -> None:
    (topic_id,) = api.sql("SELECT id FROM forum_topics WHERE status = 'closed' LIMIT 1")[0]
    r = api.client.post(f"/topics/{topic_id}/replies", json={"content": "late"}, headers=api.register())
    assert r.status_code == 409


# --- wiki -------------------------------------------------------------------------------------------


def test_wiki_edit_writes_a_revision(api: Api) -> None:
    c = api.client
    alice, bob = api.register("alice"), api.register("bob")
    r = c.post("/wiki", json={"slug": "sqlite-tuning", "title": "SQLite tuning", "content": "v1"}, headers=alice)
    assert r.status_code == 201
    assert c.post("/wiki", json={"slug": "sqlite-tuning", "title": "T", "content": "x"}, headers=bob).status_code == 409
    edited = c.put("/wiki/sqlite-tuning", json={"content": "v2", "comment": "WAL"}, headers=bob)
    assert edited.status_code == 200 and edited.json()["content"] == "v2"
    history = c.get("/wiki/sqlite-tuning/revisions").json()
    assert [(h["comment"], h["author"]["username"]) for h in history] == [("WAL", "bob"), ("created", "alice")]
    first = c.get(f"/wiki/sqlite-tuning/revisions/{history[1]['id']}").json()
    assert first["content"] == "v1"
    assert c.get("/wiki/sqlite-tuning/revisions/999999").status_code == 404
    assert c.get(f"/users/{api.user_id(bob)}/stats").json()["wiki_edit_count"] == 1
    # locked pages: author or admin only; archiving: author or admin only
    api.sql("UPDATE wiki_pages SET is_locked = TRUE WHERE slug = 'sqlite-tuning'")
    assert c.put("/wiki/sqlite-tuning", json={"content": "v3"}, headers=bob).status_code == 403
    assert c.put("/wiki/sqlite-tuning", json={"content": "v3"}, headers=alice).status_code == 200
    assert c.delete("/wiki/sqlite-tuning", headers=bob).status_code == 403
    assert c.delete("/wiki/sqlite-tuning", headers=alice).status_code == 204
    assert c.get("/wiki/sqlite-tuning").status_code == 404


def test_wiki_list_pages_cover_every_published_page(api: Api) -> None:
    expected = [r[0] for r in api.sql("SELECT id FROM wiki_pages WHERE status = 'published' ORDER BY slug, id")]
    seen, cursor = [], None
    while True:
        page = api.client.get("/wiki", params={"limit": 9, **({"cursor": cursor} if cursor else {})}).json()
        seen += [p["id"] for p in page["pages"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == expected


# --- search -----------------------------------------------------------------------------------------


def _search_all(api: Api, q: str, limit: int) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    cursor = None
    for _ in range(1000):
        page = api.client.get("/search", params={"q": q, "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        seen += [(h["kind"], h["id"]) for h in page.json()["hits"]]
        if (cursor := page.json()["next_cursor"]) is None:
            return seen
    raise AssertionError("search pages never ended")


def test_search_finds_titles_in_any_case_and_wildcards_are_literal(api: Api) -> None:
    c = api.client
    alice = api.register("alice")
    titles = ["Zqx vacuum at 100% CPU", "Zqx vacuum at 1000 CPU", "zqx snake_case names", "ZQX snakeXcase names"]
    topics = [c.post("/topics", json={"category_id": 1, "title": t, "content": "c"}, headers=alice) for t in titles]
    assert all(t.status_code == 201 for t in topics)
    ids = [t.json()["id"] for t in topics]
    page = c.post(
        "/wiki", json={"slug": "zqx-guide", "title": "The ZQX guide to C:\\temp", "content": "v1"}, headers=alice
    )
    assert page.status_code == 201
    wiki_id = page.json()["id"]

    assert _search_all(api, "zqx", 2) == [("topic", i) for i in ids] + [("wiki", wiki_id)]  # any case, paged
    assert _search_all(api, "100%", 10) == [("topic", ids[0])]  # % matches itself only
    assert _search_all(api, "snake_case", 10) == [("topic", ids[2])]  # and _ too
    assert _search_all(api, "C:\\t", 10) == [("wiki", wiki_id)]  # a backslash is a character like any other
    assert _search_all(api, "%", 10) == [("topic", ids[0])]
    hit = c.get("/search", params={"q": "ZQX GUIDE"}).json()["hits"]
    assert hit == [
        {"kind": "wiki", "id": wiki_id, "title": "The ZQX guide to C:\\temp", "slug": "zqx-guide",
         "updated_at": hit[0]["updated_at"]}
    ]  # fmt: skip
    assert c.delete("/wiki/zqx-guide", headers=alice).status_code == 204
    assert _search_all(api, "zqx guide", 10) == []  # an archived page is not found


def test_search_pages_cover_every_match_once(api: Api) -> None:
    topics = api.sql("SELECT id, title FROM forum_topics ORDER BY id")
    pages = api.sql("SELECT id, title FROM wiki_pages WHERE status = 'published' ORDER BY id")
    q = "an"
    expected = [("topic", i) for i, t in topics if q in t.lower()] + [("wiki", i) for i, t in pages if q in t.lower()]
    assert len(expected) > 14 and any(k == "wiki" for k, _ in expected)
    assert _search_all(api, q, 7) == expected


# --- bad input: 4xx with a clear message, never a 500 -------------------------------------------------


@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("post", "/topics", b"{not json", 422),
        ("post", "/topics", b'{"category_id": "one", "title": "t", "content": "c"}', 422),
        ("post", "/topics", b'{"category_id": 1, "title": "", "content": "c"}', 422),
        ("post", "/topics", json.dumps({"category_id": 1, "title": "t" * 256, "content": "c"}).encode(), 422),
        ("post", "/topics", b'{"category_id": 99999999999999999999999, "title": "t", "content": "c"}', 422),
        ("post", "/topics", b'{"category_id": 1, "title": "t", "content": "c", "tags": ["a b"]}', 422),
        ("post", "/topics", b'{"category_id": 1, "title": "t", "content": "c", "extra": 1}', 422),
        ("post", "/topics", b"[]", 422),
        ("post", "/topics/1/replies", b'{"content": "\\ud800"}', 422),
        ("post", "/topics/999999/replies", b'{"content": "hello"}', 404),
        ("get", "/topics/99999999999999999999", None, 422),
        ("get", "/topics/0", None, 422),
        ("get", "/topics/999999", None, 404),
        ("get", "/topics/1?cursor=bm90LWpzb24", None, 400),
        ("get", "/topics/1?cursor=eyJrIjpbIlx1ZDgwMCIsMV19", None, 400),  # {"k":["\ud800",1]}
        ("get", "/categories/1/topics?cursor=eyJvIjotMX0", None, 400),  # {"o":-1}
        ("get", "/categories/1/topics?limit=100000", None, 422),
        ("get", "/users/abc", None, 422),
        ("get", "/wiki/Not A Slug", None, 422),
        ("get", "/search", None, 422),
        ("get", "/search?q=", None, 422),
        ("get", "/search?q=" + "x" * 101, None, 422),
        ("get", "/search?q=a&cursor=bm90LWpzb24", None, 400),
        ("get", "/search?q=a%00b", None, 422),  # PostgreSQL's text cannot hold NUL
        ("post", "/topics", b'{"category_id": 1, "title": "a\\u0000b", "content": "c"}', 422),
        ("get", "/no/such/route", None, 404),
        ("post", "/topics", b"{" + b'"x": "' + b"a" * (2 << 20) + b'"}', 413),
    ],
)
def test_bad_input_gets_a_4xx_with_a_message(api: Api, method: str, path: str, body: bytes | None, status: int) -> None:
    headers = {**api.register(), "content-type": "application/json"}
    r = api.client.request(method.upper(), path, content=body, headers=headers)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["status"] == status and error["message"]
    assert "server-timing" in r.headers


def test_streamed_body_over_the_limit_is_413(api: Api) -> None:
    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b"x" * 65536

    r = api.client.post("/topics", content=chunks(), headers={**api.register(), "content-type": "application/json"})
    assert r.status_code == 413


# --- operations -------------------------------------------------------------------------------------


def test_inactive_categories_are_not_listed(api: Api) -> None:
    inactive = {r[0] for r in api.sql("SELECT id FROM forum_categories WHERE is_active = FALSE")}
    assert inactive and not inactive & {c["id"] for c in api.client.get("/categories").json()}
    assert api.client.get(f"/categories/{min(inactive)}/topics").status_code == 404


def test_healthz_reports_what_is_in_force(api: Api) -> None:
    assert api.client.get("/categories").status_code == 200
    db = api.client.get("/healthz").json()["database"]
    if api.backend == "dual":  # the router: the route, both sides' settings, the experiment's counters
        assert db["backend"] == "router" and db["route"] == "dual" and not db["frozen"]
        lite = db["sqlite"]  # opened as optimized mode opens it: WAL, a busy timeout, synchronous=NORMAL
        assert lite["journal_mode"] == "wal" and lite["busy_timeout"] == 10000 and lite["synchronous"] == 1
        assert db["postgresql"]["pool_max"] == 8
        assert db["dual"]["breaker"]["state"] == "closed" and db["dual"]["shadow_reads"] >= 1
    elif api.backend == "postgres":
        assert db["backend"] == "postgresql" and db["statement_timeout"] == "30s" and db["pool_max"] == 8
        assert db["pool"]["pool_max"] == 8 and db["pgbouncer"] == api.pgbouncer
        assert db["prepare_threshold"] == (None if api.pgbouncer else 5)  # PgBouncer 1.18 keeps no prepared statements
    elif api.mode == "legacy":
        assert db["journal_mode"] == "delete" and db["busy_timeout"] == 0 and db["pool_size"] == 15
    else:
        assert db["journal_mode"] == "wal" and db["busy_timeout"] == 10000 and db["synchronous"] == 1


def test_every_response_has_server_timing_and_metrics_count_queries(api: Api) -> None:
    r = api.client.get("/topics/1", params={"limit": 3})
    assert queries_of(r) >= 1 and r.headers["x-request-id"]
    assert queries_of(api.client.get("/openapi.json")) == 0
    text = api.client.get("/metrics").text
    assert 'forum_http_requests_total{method="GET",route="/topics/{topic_id}",status="200"} 1.0' in text
    assert 'forum_db_queries_per_request_count{method="GET",route="/topics/{topic_id}"} 1.0' in text
    assert "forum_http_request_duration_seconds_bucket" in text
    spec = api.client.get("/openapi.json").json()
    assert "/topics/{topic_id}" in spec["paths"] and "HTTPBearer" in spec["components"]["securitySchemes"]
