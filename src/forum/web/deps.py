"""FastAPI dependencies shared by the routes: the Forum, the signed-in user, the client address."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from forum.services import Forum
from forum.store.records import SessionInfo
from forum.web.schemas import ErrorOut
from forum.web.shortcut import Shortcut

_bearer = HTTPBearer(auto_error=False, description="The token from /auth/register or /auth/login.")


async def get_forum(request: Request) -> Forum:
    """Async, like client_ip: FastAPI runs a plain def dependency in its thread pool, a hand-off that
    costs more than these do (they never block)."""
    return request.app.state.forum


def current_session(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> SessionInfo:
    forum: Forum = request.app.state.forum
    return forum.auth.authenticate(credentials.credentials if credentials else None)


async def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


async def get_shortcut(request: Request) -> Shortcut:
    return request.app.state.shortcut  # type: ignore[no-any-return]


ForumDep = Annotated[Forum, Depends(get_forum)]
ShortcutDep = Annotated[Shortcut, Depends(get_shortcut)]
Actor = Annotated[SessionInfo, Depends(current_session)]
ClientIp = Annotated[str | None, Depends(client_ip)]

_TEXT = {
    400: "Bad request (an invalid cursor).",
    401: "No valid session.",
    403: "Not the author or an admin.",
    404: "No such object.",
    409: "Conflicts with the current state.",
    413: "Request body too large.",
    422: "Invalid input.",
    429: "Too many attempts.",
    503: "Database busy; retry later.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error statuses a route can return (always 413, 422 and 503)."""
    return {c: {"model": ErrorOut, "description": _TEXT[c]} for c in sorted({*codes, 413, 422, 503})}
