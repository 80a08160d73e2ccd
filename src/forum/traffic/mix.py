"""The simulated users' behaviour: which action next, and which topic or page (Zipf popularity).

Mostly reads (topic views and lists), some writes (replies, topics, wiki edits), notification
checks: roughly a forum's day. Each user draws from its own seeded generator, so a run's sequence
of choices per user is reproducible from --seed (the timing, and so the interleaving, is not).
"""

from __future__ import annotations

import bisect
import itertools
import random
from typing import Generic, TypeVar

T = TypeVar("T")

# endpoint name -> weight (percent)
MIX: dict[str, int] = {
    "topic_view": 38,
    "topic_list": 18,
    "wiki_view": 10,
    "notifications": 8,
    "reply_create": 8,
    "user_stats": 4,
    "wiki_edit": 4,
    "topic_create": 3,
    "wiki_history": 3,
    "notification_read": 2,
    "search": 2,
}
WRITES = frozenset({"reply_create", "wiki_edit", "topic_create", "notification_read"})
# a read-heavy day (about 6% writes): what caches are for (bench/forum_cache.py)
READ_HEAVY: dict[str, int] = {
    "topic_view": 54,
    "topic_list": 20,
    "wiki_view": 12,
    "notifications": 3,
    "reply_create": 3,
    "user_stats": 2,
    "wiki_edit": 2,
    "topic_create": 1,
    "wiki_history": 1,
    "notification_read": 1,
    "search": 1,
}


class Zipf:
    """Draw an index in [0, n) with P(k) proportional to 1/(k+1)**s: a few items get most of the hits."""

    def __init__(self, n: int, s: float = 1.1) -> None:
        if n < 1:
            raise ValueError("Zipf needs at least one item")
        self.n = n
        self._cumulative = list(itertools.accumulate(1.0 / (k + 1) ** s for k in range(n)))

    def draw(self, rng: random.Random) -> int:
        return min(bisect.bisect_left(self._cumulative, rng.random() * self._cumulative[-1]), self.n - 1)


class Popular(Generic[T]):
    """Items in a fixed, seeded popularity order (not their id order), drawn with Zipf."""

    def __init__(self, items: list[T], seed: int) -> None:
        self.items = list(items)
        random.Random(seed).shuffle(self.items)
        self._zipf = Zipf(len(self.items)) if self.items else None

    def __bool__(self) -> bool:
        return bool(self.items)

    def draw(self, rng: random.Random) -> T:
        assert self._zipf is not None
        return self.items[self._zipf.draw(rng)]


_NAMES = list(MIX)
_CUMULATIVE = list(itertools.accumulate(MIX.values()))


def next_action(rng: random.Random, can_write: bool, mix: dict[str, int] | None = None) -> str:
    """The next endpoint to call (from MIX, or `mix`: the same names, other weights); a user without a
    session only reads."""
    names, cumulative = (_NAMES, _CUMULATIVE) if mix is None else (list(mix), list(itertools.accumulate(mix.values())))
    while True:
        name = names[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]
        if can_write or (name not in WRITES and name != "notifications"):
            return name
