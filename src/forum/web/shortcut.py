"""Public GET responses served from this process's L1 before routing, when the cache holds them.

A cached read costs little next to FastAPI's own work for a request (routing, parameter validation,
dependencies, a thread for the sync route, serialisation): measured, that work was most of a cached
topic view. So the routes of the public reads (the topic view, a category's topics, a wiki page) cache
their JSON (ForumCache.read_json) and `remember` the request target that produced it; the next request
for the same target is answered by the middleware from L1 (`lookup`), checked under the same stamp as
any lookup (pgferry.runtime.cache: never a value a returned write replaced), without routing. A target
whose value L1 does not hold goes through the app as usual.

Only routes that answer everyone alike call `remember` (no session, no per-user field), and only
their 200 responses. The table of known targets is a plain dict, emptied when full: a dict's get and
set are atomic, so the event loop reads it without a lock while route threads fill it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request, Response
from pydantic import TypeAdapter

from forum.services.caching import ForumCache, Rendered

T = TypeVar("T")
KNOWN_TARGETS = 50_000
JSON = "application/json"


def renderer(model: type[T]) -> Callable[[T], bytes]:
    """A record to the JSON FastAPI would answer with for `model` as the response model."""
    return TypeAdapter(model).dump_json


class Shortcut:
    def __init__(self, cache: ForumCache) -> None:
        self._cache = cache
        self._known: dict[tuple[str, bytes], tuple[str, tuple[str, ...], str]] = {}

    def remember(self, request: Request, rendered: Rendered) -> Response:
        """The response for a route's cached JSON; its target is answered from L1 from now on."""
        if self._cache.on:
            if len(self._known) >= KNOWN_TARGETS:
                self._known.clear()
            template = getattr(request.scope.get("route"), "path", "unmatched")
            self._known[(request.scope["path"], request.scope["query_string"])] = (
                rendered.key,
                rendered.tags,
                template,
            )
        return Response(rendered.body, media_type=JSON)

    def lookup(self, scope: dict[str, Any]) -> tuple[bytes, str] | None:
        """(the JSON, the route's template) for a GET whose target L1 answers now, else None."""
        if scope.get("method") != "GET" or not self._known:
            return None
        known = self._known.get((scope["path"], scope.get("query_string", b"")))
        if known is None:
            return None
        key, tags, template = known
        body = self._cache.peek_json(key, tags)
        return None if body is None else (body, template)
