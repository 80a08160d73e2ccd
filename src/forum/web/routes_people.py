"""Users, their stats and activity, notifications."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from forum.store.records import ActivityList, NotificationList, User, UserStats
from forum.web.deps import Actor, ForumDep, ShortcutDep, errors
from forum.web.schemas import Id, Limit, Marked
from forum.web.shortcut import renderer

router = APIRouter(tags=["people"])
USER_STATS = renderer(UserStats)


@router.get("/users/{user_id}", response_model=User, responses=errors(404))
def profile(user_id: Id, forum: ForumDep) -> User:
    return forum.people.profile(user_id)


@router.get("/users/{user_id}/stats", response_model=UserStats, responses=errors(404))
def stats(request: Request, user_id: Id, forum: ForumDep, shortcut: ShortcutDep) -> Response:
    return shortcut.remember(request, forum.people.stats_json(user_id, USER_STATS))


@router.get("/users/{user_id}/activity", response_model=ActivityList, responses=errors(401, 403))
def activity(user_id: Id, actor: Actor, forum: ForumDep, limit: Limit = 20) -> ActivityList:
    """A user's activity log: for that user and admins."""
    return forum.people.activity(actor, user_id, limit)


@router.get("/notifications", response_model=NotificationList, responses=errors(401))
def notifications(actor: Actor, forum: ForumDep, limit: Limit = 20) -> NotificationList:
    """Your notifications, unread first, newest first."""
    return forum.people.notifications(actor, limit)


@router.post("/notifications/read-all", response_model=Marked, responses=errors(401))
def read_all(actor: Actor, forum: ForumDep) -> Marked:
    return Marked(marked=forum.people.mark_all_read(actor))


@router.post(
    "/notifications/{notification_id}/read", status_code=204, response_class=Response, responses=errors(401, 403, 404)
)
def read_one(notification_id: Id, actor: Actor, forum: ForumDep) -> Response:
    forum.people.mark_read(actor, notification_id)
    return Response(status_code=204)
