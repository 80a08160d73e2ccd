"""Search."""

from __future__ import annotations

from fastapi import APIRouter

from forum.store.records import SearchResults
from forum.web.deps import ForumDep, errors
from forum.web.schemas import Cursor, Limit, SearchText

router = APIRouter(tags=["search"])


@router.get("/search", response_model=SearchResults, responses=errors(400))
def search(q: SearchText, forum: ForumDep, limit: Limit = 20, cursor: Cursor = None) -> SearchResults:
    """Topics and published wiki pages whose title holds `q`, any case (`%` and `_` are literal):
    topics first, then pages, each by id."""
    return forum.search.titles(q, limit, cursor)
