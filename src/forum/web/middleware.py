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

from forum.web.metrics import Metrics
from pgferry.runtime import querystats
from pgferry.workload.capture import new_request_id, request_scope

log = logging.getLogger("forum.web")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def error_body(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"status": status, "code": code, "message": message}}).encode()


class ForumMiddleware:
    def __init__(self, app: Any, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes

    async def _buffered(self, receive: Any) -> tuple[Any, bool]:
        """Read a body of unknown length up to the limit; (a receive that replays it, whether it was too big)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:
                return receive, True
            if not message.get("more_body", False):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> dict[str, Any]:
            return replay.pop() if replay else await receive()

        return replayed, False

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
            body_receive = receive
            too_large = length is not None and (not length.isdigit() or int(length) > self.max_body)
            if length is None and scope.get("method") in ("POST", "PUT", "PATCH"):
                # No Content-Length (chunked): read the body here, up to the limit, and replay it.
                body_receive, too_large = await self._buffered(receive)
            if too_large:
                await plain(413, "too_large", f"request body over {self.max_body} bytes")
            else:
                try:
                    await self.app(scope, body_receive, send_wrapper)
                except Exception:
                    log.exception("request %s %s failed", scope.get("method"), scope.get("path"))
                    if not started:
                        await plain(500, "internal", f"internal error (request id {rid})")
                    else:
                        raise

        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        self.metrics.observe(
            scope.get("method", "?"),
            template,
            status,
            time.perf_counter() - t0,
            stats.queries,
            stats.ms / 1000,
            stats.wait_ms / 1000,
        )
