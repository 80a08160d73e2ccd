"""The forum's HTTP API: `create_app(forum)` gives a FastAPI app; `forum serve` runs it with uvicorn.

Handlers are plain `def`s: FastAPI runs them on its worker threads, where the blocking sqlite3
calls belong (optimized mode keeps one connection per worker thread).
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Response

from forum import __version__
from forum.services import Forum
from forum.web import errors, routes_auth, routes_forum, routes_people, routes_search, routes_wiki
from forum.web.deps import ForumDep
from forum.web.metrics import Metrics
from forum.web.middleware import ForumMiddleware
from forum.web.schemas import Health
from forum.web.shortcut import Shortcut

MAX_BODY_BYTES = 1 << 20


def create_app(forum: Forum, *, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    app = FastAPI(
        title="forum",
        version=__version__,
        description=(
            "The reference community platform pgferry migrates: users and sessions, a forum with tags, "
            f"a wiki with revisions, notifications. Running in **{forum.mode}** mode. Every response carries "
            '`Server-Timing: db;desc="queries=N";dur=MS`.'
        ),
    )
    metrics = Metrics(forum.store.db, forum.cache.cache)
    app.state.forum = forum
    app.state.metrics = metrics
    app.state.shortcut = shortcut = Shortcut(forum.cache)
    errors.install(app, metrics)
    for module in (routes_auth, routes_forum, routes_wiki, routes_people, routes_search):
        app.include_router(module.router)

    @app.get("/healthz", response_model=Health, tags=["ops"])
    def healthz(forum: ForumDep) -> Health:
        """The mode, the process that answered and the database settings in force (read back from SQLite)."""
        return Health(
            status="ok",
            mode=str(forum.mode),
            pid=os.getpid(),
            database=forum.store.db.settings(),
            cache=forum.cache.stats(),
        )

    @app.get("/metrics", tags=["ops"], response_class=Response, responses={200: {"content": {"text/plain": {}}}})
    def prometheus() -> Response:
        """Prometheus text format."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    app.add_middleware(ForumMiddleware, metrics=metrics, max_body_bytes=max_body_bytes, shortcut=shortcut)
    return app
