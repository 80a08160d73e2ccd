"""One ASGI middleware around the whole app: request id, statement counting, Server-Timing, metrics,
body size limit, the read-your-writes cookie, and the last-resort 500.

It is the outermost layer on purpose: every response, errors included, carries
`Server-Timing: db;desc="queries=N";dur=MS` and an `X-Request-ID`, and the request id is the
workload capture's request scope, so a captured statement can be traced to its request.

Read-your-writes with replicas: the request runs in the session of its `db_position` cookie (pgferry's
replicas.session), and a response after a write sets the cookie to the primary's new position, so the
client's next request, in whichever worker process, reads a replica only once it has replayed that
write. A cookie, not a header: browsers and HTTP clients with a cookie jar carry it unasked. Without
replicas the position never moves and no cookie is set.
"""

from __future__ import annotations

import json
import logging
import re
import time
from http.cookies import CookieError, SimpleCookie
from typing import Any

from forum.web.metrics import Metrics
from forum.web.shortcut import JSON, Shortcut
from pgferry.runtime import querystats
from pgferry.runtime.postgres import replicas
from pgferry.workload.capture import new_request_id, request_scope

log = logging.getLogger("forum.web")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
POSITION_COOKIE = "db_position"


def position_of(headers: dict[bytes, bytes]) -> str | None:
    """The read-your-writes position the client's cookie carries (None: none, or not parseable)."""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get(b"cookie", b"").decode("latin-1"))
    except CookieError:
        return None
    morsel = jar.get(POSITION_COOKIE)
    return morsel.value if morsel is not None else None


def position_cookie(token: str) -> bytes:
    return f"{POSITION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax".encode("latin-1")


def error_body(status: int, code: str, message: str) -> bytes:
    return json.dumps({"error": {"status": status, "code": code, "message": message}}).encode()


class ForumMiddleware:
    def __init__(self, app: Any, metrics: Metrics, max_body_bytes: int, shortcut: Shortcut) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.shortcut = shortcut

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

        given_position = position_of(headers)
        with (
            self.metrics.in_flight.track_inprogress(),
            querystats.counting() as stats,
            request_scope(rid),
            replicas.session(given_position) as db_session,
        ):

            async def send_wrapper(message: dict[str, Any]) -> None:
                nonlocal status, started
                if message["type"] == "http.response.start":
                    started = True
                    status = message["status"]
                    extra = [
                        (b"server-timing", stats.server_timing().encode()),
                        (b"x-request-id", rid.encode()),
                    ]
                    token = db_session.token()
                    if token is not None and token != given_position:
                        extra.append((b"set-cookie", position_cookie(token)))
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
            cached = self.shortcut.lookup(scope)
            if too_large:
                await plain(413, "too_large", f"request body over {self.max_body} bytes")
            elif cached is not None:  # L1 holds this public read's JSON: answered without routing
                body, template = cached
                length = str(len(body)).encode()
                await send_wrapper(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [(b"content-type", JSON.encode()), (b"content-length", length)],
                    }
                )
                await send_wrapper({"type": "http.response.body", "body": body})
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
        template = cached[1] if cached is not None else getattr(route, "path", None) or "unmatched"
        self.metrics.observe(
            scope.get("method", "?"),
            template,
            status,
            time.perf_counter() - t0,
            stats.queries,
            stats.ms / 1000,
            stats.wait_ms / 1000,
        )
