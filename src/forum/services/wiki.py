"""Wiki pages and their revisions: every edit writes a revision in the same unit of work.

Pages are community-edited: any signed-in user edits an unlocked page; a locked or protected page
only its author or an admin. Deleting (archiving) a page is for its author or an admin.
"""

from __future__ import annotations

from collections.abc import Callable

from forum.services import cachetags
from forum.services.caching import Render, Rendered
from forum.services.topics import check_owner
from forum.services.units import Units, now_text
from forum.store import cursors
from forum.store.errors import Conflict, NotFound
from forum.store.records import RevisionSummary, SessionInfo, WikiPage, WikiPageList, WikiRevision


class WikiService:
    def __init__(self, units: Units) -> None:
        self.units = units
        self.repo = units.repo

    def list_pages(self, limit: int, cursor: str | None) -> WikiPageList:
        return self.units.cache.read(f"wiki_list:{limit}:{cursor}", [cachetags.WIKI], lambda: self._list(limit, cursor))

    def _list(self, limit: int, cursor: str | None) -> WikiPageList:
        with self.units.read():
            if self.units.optimized:
                pages = self.repo.wiki_keyset(limit, cursors.keyset_of(cursor))
                last = pages[-1] if pages else None
                return WikiPageList(pages, cursors.next_keyset(last.slug, last.id, limit, len(pages)) if last else None)
            offset = cursors.offset_of(cursor)
            pages = self.repo.wiki_offset(limit, offset)
            return WikiPageList(pages, cursors.next_offset(offset, limit, len(pages)))

    def _page(self, slug: str) -> WikiPage:
        page = self.repo.wiki_page(slug)
        if page is None:
            raise NotFound(f"no wiki page {slug!r}")
        return page

    def page(self, slug: str) -> WikiPage:
        return self.units.cache.read(*self._page_entry(slug))

    def page_json(self, slug: str, render: Render[WikiPage]) -> Rendered:
        return self.units.cache.read_json(*self._page_entry(slug), render)

    def _page_entry(self, slug: str) -> tuple[str, list[str], Callable[[], WikiPage]]:
        return f"wiki:{slug}", [cachetags.wiki_page(slug)], lambda: self._read_page(slug)

    def _read_page(self, slug: str) -> WikiPage:
        with self.units.read():
            return self._page(slug)

    def create(
        self, actor: SessionInfo, slug: str, title: str, content: str, comment: str | None, ip: str | None
    ) -> WikiPage:
        """Page, first revision, the author's edit count, activity."""
        now = now_text()
        with self.units.write() as changed:
            changed.update({cachetags.wiki_page(slug), cachetags.WIKI, cachetags.stats(actor.user_id)})
            if self.repo.wiki_slug_taken(slug):
                raise Conflict(f"a wiki page {slug!r} already exists")
            page_id = self.repo.insert_wiki(slug, title, content, actor.user_id, now)
            self.repo.insert_revision(page_id, actor.user_id, content, comment or "created", False, now)
            self.repo.bump_stats(actor.user_id, "wiki_edits", now)
            self.repo.log_activity(actor.user_id, "edit_wiki", ("wiki_page", page_id), ip, None, now)
            return self._page(slug)

    def edit(
        self,
        actor: SessionInfo,
        slug: str,
        content: str,
        title: str | None,
        comment: str | None,
        minor: bool,
        ip: str | None,
    ) -> WikiPage:
        """Update the page and write its revision, the editor's stats and activity."""
        now = now_text()
        with self.units.write() as changed:
            changed.update({cachetags.wiki_page(slug), cachetags.WIKI, cachetags.stats(actor.user_id)})
            page = self._page(slug)
            if page.is_locked or page.is_protected:
                check_owner(actor, page.author.id, "locked wiki page")
            self.repo.update_wiki(page.id, title or page.title, content, now)
            self.repo.insert_revision(page.id, actor.user_id, content, comment, minor, now)
            self.repo.bump_stats(actor.user_id, "wiki_edits", now)
            self.repo.log_activity(actor.user_id, "edit_wiki", ("wiki_page", page.id), ip, None, now)
            return self._page(slug)

    def archive(self, actor: SessionInfo, slug: str) -> None:
        now = now_text()
        with self.units.write() as changed:
            changed.update({cachetags.wiki_page(slug), cachetags.WIKI})
            page = self._page(slug)
            check_owner(actor, page.author.id, "wiki page")
            self.repo.archive_wiki(page.id, now)

    def history(self, slug: str, limit: int) -> list[RevisionSummary]:
        return self.units.cache.read(*self._history_entry(slug, limit))

    def history_json(self, slug: str, limit: int, render: Render[list[RevisionSummary]]) -> Rendered:
        return self.units.cache.read_json(*self._history_entry(slug, limit), render)

    def _history_entry(self, slug: str, limit: int) -> tuple[str, list[str], Callable[[], list[RevisionSummary]]]:
        return f"wiki_history:{slug}:{limit}", [cachetags.wiki_page(slug)], lambda: self._history(slug, limit)

    def _history(self, slug: str, limit: int) -> list[RevisionSummary]:
        with self.units.read():
            return self.repo.revisions(self._page(slug).id, limit)

    def revision(self, slug: str, revision_id: int) -> WikiRevision:
        with self.units.read():
            found = self.repo.revision(self._page(slug).id, revision_id)
        if found is None:
            raise NotFound(f"wiki page {slug!r} has no revision {revision_id}")
        return found
