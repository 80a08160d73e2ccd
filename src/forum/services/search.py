"""Search: topics and published wiki pages by a text in their title, any case.

Pages as every list does: by OFFSET in legacy mode, by keyset (kind, id) in optimized mode, behind
the same opaque cursor. Not cached: each text is its own key, and few are asked twice.
"""

from __future__ import annotations

from forum.services.units import Units
from forum.store import cursors
from forum.store.records import SearchResults


class SearchService:
    def __init__(self, units: Units) -> None:
        self.units = units
        self.repo = units.repo

    def titles(self, text: str, limit: int, cursor: str | None) -> SearchResults:
        with self.units.read():
            if self.units.optimized:
                hits = self.repo.search_keyset(text, limit, cursors.keyset_of(cursor))
                last = hits[-1] if hits else None
                following = cursors.next_keyset(last.kind, last.id, limit, len(hits)) if last else None
                return SearchResults(hits, following)
            offset = cursors.offset_of(cursor)
            hits = self.repo.search_offset(text, limit, offset)
            return SearchResults(hits, cursors.next_offset(offset, limit, len(hits)))
