"""Wiki pages and revisions."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from forum.store.records import RevisionSummary, WikiPage, WikiPageList, WikiRevision
from forum.web.deps import Actor, ClientIp, ForumDep, ShortcutDep, errors
from forum.web.schemas import Cursor, Id, Limit, SlugPath, WikiEdit, WikiIn
from forum.web.shortcut import renderer

router = APIRouter(tags=["wiki"])
WIKI_PAGE = renderer(WikiPage)
REVISIONS = renderer(list[RevisionSummary])


@router.get("/wiki", response_model=WikiPageList, responses=errors(400))
def pages(forum: ForumDep, limit: Limit = 20, cursor: Cursor = None) -> WikiPageList:
    """Published pages by slug."""
    return forum.wiki.list_pages(limit, cursor)


@router.post("/wiki", status_code=201, response_model=WikiPage, responses=errors(401, 409))
def create_page(body: WikiIn, actor: Actor, forum: ForumDep, ip: ClientIp) -> WikiPage:
    return forum.wiki.create(actor, body.slug, body.title, body.content, body.comment, ip)


@router.get("/wiki/{slug}", response_model=WikiPage, responses=errors(404))
def page(request: Request, slug: SlugPath, forum: ForumDep, shortcut: ShortcutDep) -> Response:
    return shortcut.remember(request, forum.wiki.page_json(slug, WIKI_PAGE))


@router.put("/wiki/{slug}", response_model=WikiPage, responses=errors(401, 403, 404))
def edit_page(slug: SlugPath, body: WikiEdit, actor: Actor, forum: ForumDep, ip: ClientIp) -> WikiPage:
    """Edit a page: writes a revision. Locked or protected pages: author or admin only."""
    return forum.wiki.edit(actor, slug, body.content, body.title, body.comment, body.minor, ip)


@router.delete("/wiki/{slug}", status_code=204, response_class=Response, responses=errors(401, 403, 404))
def archive_page(slug: SlugPath, actor: Actor, forum: ForumDep) -> Response:
    """Archive a page (author or admin); its history stays."""
    forum.wiki.archive(actor, slug)
    return Response(status_code=204)


@router.get("/wiki/{slug}/revisions", response_model=list[RevisionSummary], responses=errors(404))
def history(request: Request, slug: SlugPath, forum: ForumDep, shortcut: ShortcutDep, limit: Limit = 20) -> Response:
    """A page's revisions, newest first."""
    return shortcut.remember(request, forum.wiki.history_json(slug, limit, REVISIONS))


@router.get("/wiki/{slug}/revisions/{revision_id}", response_model=WikiRevision, responses=errors(404))
def revision(slug: SlugPath, revision_id: Id, forum: ForumDep) -> WikiRevision:
    return forum.wiki.revision(slug, revision_id)
