"""Accounts and sessions: /auth/*, /me."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from forum.services.auth import SessionGrant
from forum.store.records import User
from forum.web.deps import Actor, ClientIp, ForumDep, errors
from forum.web.schemas import LoginIn, RegisterIn

router = APIRouter(tags=["auth"])


@router.post("/auth/register", status_code=201, response_model=SessionGrant, responses=errors(409))
def register(body: RegisterIn, forum: ForumDep, ip: ClientIp, request: Request) -> SessionGrant:
    """Create an account and log it in: the token is shown once."""
    agent = request.headers.get("user-agent", "")[:255] or None
    return forum.auth.register(body.username, body.email, body.password, body.display_name, ip, agent)


@router.post("/auth/login", response_model=SessionGrant, responses=errors(401, 429))
def login(body: LoginIn, forum: ForumDep, ip: ClientIp, request: Request) -> SessionGrant:
    """Log in with username (any case) and password; attempts are rate-limited."""
    agent = request.headers.get("user-agent", "")[:255] or None
    return forum.auth.login(body.username, body.password, ip, agent)


@router.post("/auth/logout", status_code=204, response_class=Response, responses=errors(401))
def logout(actor: Actor, forum: ForumDep, ip: ClientIp) -> Response:
    """End this session: its token stops working."""
    forum.auth.logout(actor, ip)
    return Response(status_code=204)


@router.get("/me", response_model=User, responses=errors(401))
def me(actor: Actor, forum: ForumDep) -> User:
    return forum.people.profile(actor.user_id)
