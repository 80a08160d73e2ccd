"""Errors become HTTP responses here, in one JSON shape: {"error": {"status", "code", "message"}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from forum.store.errors import ForumError, RateLimited, Unavailable
from forum.web.metrics import Metrics

log = logging.getLogger("forum.web")


def _response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "code": code, "message": message}}, status, headers=headers)


def _where(loc: tuple[object, ...]) -> str:
    return ".".join(str(p) for p in loc if p not in ("body",)) or "body"


def install(app: FastAPI, metrics: Metrics) -> None:
    @app.exception_handler(ForumError)
    async def forum_error(request: Request, exc: ForumError) -> JSONResponse:
        headers = None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        if exc.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return _response(exc.status, exc.code, str(exc), headers)

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, exc: Unavailable) -> JSONResponse:
        """The runtime refused the statement (locked, no connection, writer queue full): retry later."""
        metrics.unavailable.labels(exc.kind).inc()
        return _response(503, "unavailable", str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            return _response(
                422, "invalid", f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'malformed')})"
            )
        where = _where(tuple(first.get("loc", ())))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return _response(422, "invalid", f"{where}: {first.get('msg')}{more}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(exc.status_code, "error")
        return _response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))
