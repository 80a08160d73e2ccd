"""One ASGI middleware around the whole app: request id, statement counting, Server-Timing, metrics,
body size limit, and the last-resort 500.

It is the outermost layer on purpose: every response, errors included, carries
`Server-Timing: db;desc="queries=N";dur=MS` and an `X-Request-ID`, and the request id is the
workload capture's request scope, so a captured statement can be traced to its request.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from forum.store import querystats
from forum.web.metrics import Metrics
from pgferry.workload.capture import new_request_id, request_scope

log = logging.getLogger("forum.web")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class BodyTooLarge(Exception):
    """A request body went past the limit while it was being read (no Content-Length to refuse early)."""


def error_body(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"status": status, "code": code, "message": message}}).encode()


class ForumMiddleware:
    def __init__(self, app: Any, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else new_request_id()
        t0 = time.perf_counter()
        status = 500
        started = False

        with querystats.counting() as stats, request_scope(rid):

            async def send_wrapper(message: dict[str, Any]) -> None:
                nonlocal status, started
                if message["type"] == "http.response.start":
                    started = True
                    status = message["status"]
                    extra = [
                        (b"server-timing", stats.server_timing().encode()),
                        (b"x-request-id", rid.encode()),
                    ]
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
                await send(message)

            async def plain(code: int, slug: str, message: str, more: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
                body = error_body(code, slug, message)
                await send_wrapper(
                    {
                        "type": "http.response.start",
                        "status": code,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            *more,
                        ],
                    }
                )
                await send_wrapper({"type": "http.response.body", "body": body})

            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                await plain(413, "too_large", f"request body over {self.max_body} bytes")
            else:
                seen = 0

                async def limited_receive() -> dict[str, Any]:
                    nonlocal seen
                    message = await receive()
                    if message["type"] == "http.request":
                        seen += len(message.get("body", b""))
                        if seen > self.max_body:
                            raise BodyTooLarge(f"request body over {self.max_body} bytes")
                    return message

                try:
                    await self.app(scope, limited_receive, send_wrapper)
                except Exception:
                    log.exception("request %s %s failed", scope.get("method"), scope.get("path"))
                    if not started:
                        await plain(500, "internal", f"internal error (request id {rid})")
                    else:
                        raise

        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.metrics.observe(
            scope.get("method", "?"), template, status, time.perf_counter() - t0, stats.queries, stats.ms / 1000
        )
