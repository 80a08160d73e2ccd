"""Categories, topics, replies, tags."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from forum.store.records import Category, CategoryStatsList, Reply, Tag, Topic, TopicPage, TopicSummary, TopicView
from forum.web.deps import Actor, ClientIp, ForumDep, ShortcutDep, errors
from forum.web.schemas import Cursor, Id, Limit, ReplyIn, Status, TagPath, TopicEdit, TopicIn
from forum.web.shortcut import renderer

router = APIRouter(tags=["forum"])
TOPIC_PAGE = renderer(TopicPage)
TOPIC_VIEW = renderer(TopicView)


@router.get("/categories", response_model=list[Category], responses=errors())
def categories(forum: ForumDep) -> list[Category]:
    return forum.topics.categories()


@router.get("/categories/stats", response_model=CategoryStatsList, responses=errors())
def category_stats(forum: ForumDep) -> CategoryStatsList:
    """Topics, unique posters and last activity per category: live, or (PostgreSQL with the caches on)
    from the forum_stats materialized view, with its age."""
    return forum.topics.category_stats()


@router.post("/categories/stats/refresh", response_model=CategoryStatsList, responses=errors(401, 403))
def refresh_category_stats(actor: Actor, forum: ForumDep) -> CategoryStatsList:
    """Refresh the forum_stats view now (admins); live stats have nothing to refresh."""
    forum.topics.refresh_stats(actor)
    return forum.topics.category_stats()


@router.get("/categories/{category_id}/topics", response_model=TopicPage, responses=errors(400, 404))
def topics(
    request: Request,
    category_id: Id,
    forum: ForumDep,
    shortcut: ShortcutDep,
    status: Status = "open",
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """Topics of a category, newest activity first; pass next_cursor back for the next page."""
    return shortcut.remember(request, forum.topics.list_topics_json(category_id, status, limit, cursor, TOPIC_PAGE))


@router.get("/tags", response_model=list[Tag], responses=errors())
def tags(forum: ForumDep, limit: Limit = 20) -> list[Tag]:
    return forum.topics.popular_tags(limit)


@router.get("/tags/{name}/topics", response_model=list[TopicSummary], responses=errors())
def tagged(name: TagPath, forum: ForumDep, limit: Limit = 20) -> list[TopicSummary]:
    return forum.topics.topics_of_tag(name, limit)


@router.post("/topics", status_code=201, response_model=Topic, responses=errors(401, 404))
def create_topic(body: TopicIn, actor: Actor, forum: ForumDep, ip: ClientIp) -> Topic:
    """Create a topic with its tags (tags are created as needed)."""
    tag_names = list(dict.fromkeys(t.lower() for t in body.tags))
    return forum.topics.create_topic(actor, body.category_id, body.title, body.content, tag_names, ip)


@router.get("/topics/{topic_id}", response_model=TopicView, responses=errors(400, 404))
def view_topic(
    request: Request,
    topic_id: Id,
    forum: ForumDep,
    shortcut: ShortcutDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Replies per page.")] = 50,
    cursor: Cursor = None,
) -> Response:
    """A topic with a page of its replies and their authors."""
    return shortcut.remember(request, forum.topics.view_json(topic_id, limit, cursor, TOPIC_VIEW))


@router.patch("/topics/{topic_id}", response_model=Topic, responses=errors(401, 403, 404))
def edit_topic(topic_id: Id, body: TopicEdit, actor: Actor, forum: ForumDep) -> Topic:
    return forum.topics.edit_topic(actor, topic_id, body.title, body.content)


@router.delete("/topics/{topic_id}", status_code=204, response_class=Response, responses=errors(401, 403, 404))
def delete_topic(topic_id: Id, actor: Actor, forum: ForumDep, ip: ClientIp) -> Response:
    """Delete a topic with its replies and tag links."""
    forum.topics.delete_topic(actor, topic_id, ip)
    return Response(status_code=204)


@router.post("/topics/{topic_id}/replies", status_code=201, response_model=Reply, responses=errors(401, 404, 409))
def create_reply(topic_id: Id, body: ReplyIn, actor: Actor, forum: ForumDep, ip: ClientIp) -> Reply:
    """Reply to a topic; the topic's author is notified."""
    return forum.topics.create_reply(actor, topic_id, body.content, ip)


@router.get("/replies/{reply_id}", response_model=Reply, responses=errors(404))
def get_reply(reply_id: Id, forum: ForumDep) -> Reply:
    return forum.topics.reply(reply_id)


@router.patch("/replies/{reply_id}", response_model=Reply, responses=errors(401, 403, 404))
def edit_reply(reply_id: Id, body: ReplyIn, actor: Actor, forum: ForumDep) -> Reply:
    return forum.topics.edit_reply(actor, reply_id, body.content)


@router.delete("/replies/{reply_id}", status_code=204, response_class=Response, responses=errors(401, 403, 404))
def delete_reply(reply_id: Id, actor: Actor, forum: ForumDep) -> Response:
    forum.topics.delete_reply(actor, reply_id)
    return Response(status_code=204)
