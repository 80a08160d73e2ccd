"""`forum traffic` keeps each user's cookies to that user: a server that sets a cookie naming the user
at sign-up sees every later request carry the cookie of the user whose token it carries (the forum's
read-your-writes cookie works the same way). The server is a small FastAPI app speaking the forum's
API shape, served by uvicorn on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from forum.traffic import TrafficOptions, run_traffic
from forum.web.process import free_port


def shaped_like_the_forum(seen: list[tuple[str, str]]) -> FastAPI:
    app = FastAPI()

    @app.get("/categories")
    def categories() -> list[dict[str, int]]:
        return [{"id": 1}]

    @app.get("/categories/1/topics")
    def topics() -> dict[str, object]:
        return {"topics": [{"id": 1, "is_locked": False, "author": {"id": 1}}]}

    @app.get("/wiki")
    def wiki() -> dict[str, object]:
        return {"pages": [{"slug": "home"}]}

    @app.get("/wiki/home")
    def page(request: Request) -> dict[str, object]:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token:
            seen.append((token, request.cookies.get("who", "")))
        return {"slug": "home", "is_locked": False, "is_protected": False}

    @app.get("/tags")
    def tags() -> list[object]:
        return [{"name": "news"}]

    @app.post("/auth/register", status_code=201)
    async def register(request: Request, response: Response) -> dict[str, str]:
        name = (await request.json())["username"]
        response.set_cookie("who", name)
        return {"token": name}

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT"])
    def anything(request: Request) -> dict[str, object]:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        seen.append((token, request.cookies.get("who", "")))
        return {"notifications": []}

    return app


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    seen: list[tuple[str, str]] = []
    port = free_port()
    config = uvicorn.Config(shaped_like_the_forum(seen), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        running.should_exit = True
        thread.join(10)


def test_each_user_sends_only_its_own_cookies(server: tuple[str, list[tuple[str, str]]]) -> None:
    url, seen = server
    run_traffic(url, TrafficOptions(users=5, duration_s=1.0, max_requests=200))
    signed_in = [(token, cookie) for token, cookie in seen if token]
    assert len({token for token, _ in signed_in}) == 5
    assert all(cookie == token for token, cookie in signed_in), [p for p in signed_in if p[0] != p[1]][:5]
