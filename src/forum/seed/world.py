"""What every table generator must agree on: row counts, when row i of each table was created, and
which rows are popular. All of it is a pure function of (seed, scale, table, index), so a reply can
name a topic, and be dated after it, without the topic being in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from forum.seed import distributions as dist
from forum.seed.schema import TABLE_BY_NAME, TABLES, planned_rows
from forum.seed.tally import Tally

# Zipf exponents of "who gets picked": a few topics get most replies, a few users write most posts.
POPULARITY = {"users": 1.0, "forum_topics": 1.1, "wiki_pages": 1.0, "tags": 1.0, "forum_categories": 0.8}
_TABLE_NO = {t.name: n for n, t in enumerate(TABLES)}


class World:
    """The shared facts of one (seed, scale): every generator asks here instead of keeping state."""

    def __init__(self, seed: int, scale: float) -> None:
        self.seed = seed
        self.scale = scale
        self.rows = planned_rows(scale)

    def key(self, table: str, purpose: int = 0) -> int:
        """A 64-bit key for the pure per-row functions of one table (times, slugs)."""
        mixed = dist.hash_unit(np.array([_TABLE_NO[table] * 64 + purpose]), self.seed)[0]
        return int(mixed * (1 << 53))

    def rng(self, table: str, batch: int) -> np.random.Generator:
        return dist.batch_rng(self.seed, _TABLE_NO[table], batch)

    def seconds(self, table: str, index: np.ndarray) -> np.ndarray:
        """Creation time (seconds since START) of rows `index` (0-based) of `table`: later ids, later times."""
        return dist.stratified_seconds(index, self.rows[table], self.key(table))

    @cached_property
    def _popularity(self) -> dict[str, dist.Popularity]:
        return {t: dist.Popularity(self.rows[t], s, self.key(t, 1)) for t, s in POPULARITY.items()}

    def popularity(self, table: str) -> dist.Popularity:
        return self._popularity[table]

    def pick(self, table: str, rng: np.random.Generator, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Popular rows of `table` that exist at times `at`: (0-based indexes, their creation times)."""
        limit = np.maximum(dist.existing(at, self.rows[table]), 1)
        index = self.popularity(table).pick_existing(rng, limit)
        return index, self.seconds(table, index)


@dataclass(frozen=True)
class Batch:
    """Rows for one INSERT batch, as columns in the table's order, and the counters they feed.

    Columns stay columns until `rows()`: long texts travel as TextRefs (cut where they are inserted)
    and the tuples SQLite binds are made lazily, one at a time.
    """

    table: str
    columns: tuple[Sequence[Any] | dist.TextRef, ...]
    size: int
    tallies: tuple[Tally, ...] = ()

    @classmethod
    def of(cls, table: str, columns: dict[str, Sequence[Any] | dist.TextRef], *tallies: Tally) -> Batch:
        """Order `columns` as the schema does; a missing or extra column is an error, never a shift."""
        names = TABLE_BY_NAME[table].column_names
        if set(columns) != set(names):
            raise KeyError(f"{table}: columns {sorted(set(columns) ^ set(names))} do not match the schema")
        ordered = tuple(columns[n] for n in names)
        sizes = {len(c.offsets) if isinstance(c, dist.TextRef) else len(c) for c in ordered}
        if len(sizes) != 1:
            raise ValueError(f"{table}: columns of different lengths {sorted(sizes)}")
        return cls(table, ordered, sizes.pop(), tallies)

    def rows(self) -> Iterator[tuple[Any, ...]]:
        return zip(*(c.materialize() if isinstance(c, dist.TextRef) else c for c in self.columns), strict=True)
