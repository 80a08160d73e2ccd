"""Denormalised counters (topic reply_count, user_stats, tag usage) accumulated while rows stream by.

The legacy application kept these counters by hand, so the database must hold them consistent with
the rows. A dict or an array per topic and user would grow with scale; instead each batch is reduced
with numpy (`Tally.of`) and upserted into small tables of a private temporary SQLite database, which
SQLite spills to disk. That happens in the process that makes the rows, off the writer's critical
path; at the end the totals (one row per counted id) are handed to the writer, loaded into TEMP
tables and written into the real tables in one statement per table (`Tallies.apply`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from forum.seed.distributions import START_EPOCH
from forum.seed.schema import TABLE_BY_NAME
from pgferry.sqltext import quote_ident as q

# Counter columns per target table. "*_at" columns keep the latest time, the others count events.
TARGETS: dict[str, tuple[str, ...]] = {
    "forum_topics": ("reply_count", "last_reply_at"),
    "forum_categories": ("topic_count",),
    "tags": ("usage_count",),
    "user_stats": ("topic_count", "reply_count", "wiki_edit_count", "last_active_at"),
}
# user_stats.reputation = 5 per topic + 2 per reply + 3 per wiki edit; "trusted" from 100 on.
REPUTATION = {"per_topic": 5, "per_reply": 2, "per_edit": 3, "trusted": 100}
TOTALS_CHUNK = 10_000


@dataclass(frozen=True)
class Tally:
    """One batch's events for `target`, reduced per id: +counts[i] to `count`, latest[i] kept in `latest`."""

    target: str
    ids: list[int]
    count: str | None = None
    counts: list[int] | None = None
    latest: str | None = None
    latest_values: list[int] | None = None

    @classmethod
    def of(
        cls,
        target: str,
        ids: np.ndarray,
        count: str | None = None,
        latest: str | None = None,
        seconds: np.ndarray | None = None,
    ) -> Tally:
        order = np.argsort(ids, kind="stable")
        uniq, first = np.unique(ids[order], return_index=True)
        counts = np.diff(np.append(first, len(ids))).tolist() if count else None
        latest_values = np.maximum.reduceat(seconds[order], first).tolist() if latest and seconds is not None else None
        return cls(target, uniq.tolist(), count, counts, latest, latest_values)


@dataclass(frozen=True)
class Totals:
    """A chunk of final counter rows for one target: (id, *TARGETS[target]) each."""

    target: str
    rows: list[tuple[Any, ...]]


def _table(target: str, schema: str) -> str:
    return f"{q(schema)}.{q('tally_' + target)}"


class Tallies:
    """Counter tables in `schema` of `conn`: "temp" in the writer, "main" of a private scratch database."""

    def __init__(self, conn: sqlite3.Connection, schema: str = "temp") -> None:
        self.conn = conn
        self.schema = schema
        for target, columns in TARGETS.items():
            cols = ", ".join(f"{q(c)} INTEGER NOT NULL DEFAULT {-1 if c.endswith('_at') else 0}" for c in columns)
            conn.execute(f"CREATE TABLE {_table(target, schema)} ({q('id')} INTEGER PRIMARY KEY, {cols})")

    @classmethod
    def scratch(cls) -> Tallies:
        """Counters in a private temporary database (on disk, deleted when closed): memory stays flat."""
        conn = sqlite3.connect("", isolation_level=None)
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")  # never committed: the database is thrown away on close
        return cls(conn, schema="main")

    def add(self, tally: Tally) -> None:
        columns, values, updates = [], [tally.ids], []
        if tally.count and tally.counts is not None:
            columns.append(tally.count)
            values.append(tally.counts)
            updates.append(f"{q(tally.count)} = {q(tally.count)} + excluded.{q(tally.count)}")
        if tally.latest and tally.latest_values is not None:
            columns.append(tally.latest)
            values.append(tally.latest_values)
            updates.append(f"{q(tally.latest)} = max({q(tally.latest)}, excluded.{q(tally.latest)})")
        names = ", ".join(q(c) for c in ("id", *columns))
        marks = ", ".join("?" for _ in range(len(columns) + 1))
        self.conn.executemany(
            f"INSERT INTO {_table(tally.target, self.schema)} ({names}) VALUES ({marks}) "
            f"ON CONFLICT ({q('id')}) DO UPDATE SET {', '.join(updates)}",
            zip(*values, strict=True),
        )

    def totals(self) -> Iterator[Totals]:
        """Every counter row, in id order, in chunks."""
        for target, columns in TARGETS.items():
            names = ", ".join(q(c) for c in ("id", *columns))
            cursor = self.conn.execute(f"SELECT {names} FROM {_table(target, self.schema)} ORDER BY {q('id')}")
            while chunk := cursor.fetchmany(TOTALS_CHUNK):
                yield Totals(target, chunk)

    def load(self, totals: Totals) -> None:
        names = ", ".join(q(c) for c in ("id", *TARGETS[totals.target]))
        marks = ", ".join("?" for _ in range(len(TARGETS[totals.target]) + 1))
        self.conn.executemany(
            f"INSERT INTO {_table(totals.target, self.schema)} ({names}) VALUES ({marks})", totals.rows
        )

    def apply(self, updated_at: str) -> None:
        """Write the counters into the real tables; user_stats gets one row per user."""
        params = {"start": START_EPOCH, "updated_at": updated_at, **REPUTATION}
        for target in ("forum_topics", "forum_categories", "tags"):
            sets = ", ".join(f"{q(c)} = {self._value(c)}" for c in TARGETS[target])
            self.conn.execute(
                f"UPDATE {q(target)} SET {sets} FROM {_table(target, self.schema)} AS t "
                f"WHERE {q(target)}.{q('id')} = t.{q('id')}",
                params,
            )
        stats = TABLE_BY_NAME["user_stats"].column_names
        counts = [f"coalesce(t.{q(c)}, 0)" for c in ("topic_count", "reply_count", "wiki_edit_count")]
        reputation = (
            f"coalesce(:per_topic * t.{q('topic_count')} + :per_reply * t.{q('reply_count')}"
            f" + :per_edit * t.{q('wiki_edit_count')}, 0)"
        )
        last_active = f"coalesce({self._value('last_active_at')}, u.{q('last_login')}, u.{q('created_at')})"
        self.conn.execute(
            f"INSERT INTO {q('user_stats')} ({', '.join(q(c) for c in stats)}) "
            f"SELECT u.{q('id')}, {', '.join(counts)}, {reputation}, {reputation} >= :trusted, {last_active}, "
            f":updated_at FROM {q('users')} AS u LEFT JOIN {_table('user_stats', self.schema)} AS t "
            f"ON t.{q('id')} = u.{q('id')} ORDER BY u.{q('id')}",
            params,
        )

    @staticmethod
    def _value(column: str) -> str:
        """A counter as SQL: a count as is; a latest time as legacy 'YYYY-MM-DD HH:MM:SS' text (NULL if none)."""
        if not column.endswith("_at"):
            return f"t.{q(column)}"
        return f"CASE WHEN t.{q(column)} >= 0 THEN datetime(:start + t.{q(column)}, 'unixepoch') END"

    def close(self) -> None:
        self.conn.close()
