"""The forum's use of pgferry.runtime.cache: which reads are cached, under which keys and tags.

Tags (what a write names, after its commit; forum.services.cachetags spells them): `topic:ID` (its
view), `category:ID` (its topic list), `categories` (the category list and its counts), `category_stats`,
`wiki:SLUG` (a page and its history), `wiki` (the page list), `stats:USER` (a user's counters),
`notifications:USER` (a user's notifications: per user, so only that user's requests read them).
Values are the records themselves (pickled), or for the hottest reads their JSON (`read_json`: a hit
then costs no serialisation, and the HTTP layer can serve it without routing, forum.web.shortcut);
their version is a digest of every record dataclass's fields, so a changed record never reads a value
cached in the old shape.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from forum.store import records
from pgferry.runtime.cache import Cache

T = TypeVar("T")
Render = Callable[[T], bytes]  # a record to the JSON the API answers with


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A read's JSON with the key and tags it is cached under (to find it again: `peek_json`)."""

    body: bytes
    key: str
    tags: tuple[str, ...]


def records_version() -> str:
    """A digest of every record's name and fields: changes whenever a cached shape does."""
    shapes = sorted(
        f"{name}:{','.join(f.name + '=' + str(f.type) for f in dataclasses.fields(cls))}"
        for name, cls in vars(records).items()
        if isinstance(cls, type) and dataclasses.is_dataclass(cls)
    )
    return hashlib.sha256("\n".join(shapes).encode()).hexdigest()[:12]


VERSION = records_version()


class ForumCache:
    """The cache or nothing: without one, reads load and tags are dropped."""

    def __init__(self, cache: Cache | None) -> None:
        self.cache = cache

    @property
    def on(self) -> bool:
        return self.cache is not None

    def read(self, key: str, tags: Sequence[str], load: Callable[[], T]) -> T:
        if self.cache is None:
            return load()
        return self.cache.get(key, load, tags=tags, version=VERSION)

    def read_json(self, key: str, tags: Sequence[str], load: Callable[[], T], render: Render[T]) -> Rendered:
        """The JSON of `load()`'s value, cached as JSON (under a key of its own: `read` caches records)."""
        json_key = f"json:{key}"
        if self.cache is None:
            return Rendered(render(load()), json_key, tuple(tags))
        body = self.cache.get(json_key, lambda: render(load()), tags=tags, version=VERSION)
        return Rendered(body, json_key, tuple(tags))

    def peek_json(self, key: str, tags: Sequence[str]) -> bytes | None:
        """What read_json cached under `key` (as Rendered.key names it), if this process's L1 has it
        current; never loads or waits."""
        if self.cache is None:
            return None
        found = self.cache.peek(key, tags=tags, version=VERSION)
        return found if isinstance(found, bytes) else None

    @contextmanager
    def writing(self) -> Iterator[set[str]]:
        """Tags the write names, invalidated when the block (around the transaction) ends."""
        if self.cache is None:
            yield set()
            return
        with self.cache.invalidating() as tags:
            yield tags

    def stats(self) -> dict[str, Any] | None:
        return None if self.cache is None else self.cache.stats()

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
