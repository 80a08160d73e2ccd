"""Row counts, samples and index statistics of the real database, measured cheaply.

The planner copy needs sqlite_stat1 rows for every index it is shown, the ones that exist and the
candidates. When the database has sqlite_stat1, the rows of existing indexes are copied as they are.
Otherwise, and for candidates, they are estimated the way `.expert` does it: from a sample of the
table. Small tables are read whole (exact figures); large ones through random rowids (each a b-tree
seek, so a 1 GB table costs what a 20,000-row sample costs), and the number of distinct keys is
estimated with the Duj1 estimator (Haas et al., 1995), which corrects the sample's distinct count by
how many values were seen only once. Samples live in an attached in-memory database, never in the
source file.
"""

from __future__ import annotations

import math
import random
import sqlite3
from dataclasses import dataclass
from typing import Any

from pgferry.sqlite.busy import retry
from pgferry.sqlite.schema import Schema, Table
from pgferry.sqltext import quote_ident

SAMPLE_ROWS = 20_000
SAMPLE_SCHEMA = "pgferry_sample"


@dataclass(frozen=True)
class KeyPart:
    """One key of an index as SQL: a quoted column or an expression, with its collation and order."""

    sql: str
    collation: str | None = None
    desc: bool = False
    column: str | None = None  # the column name when the key is a plain column

    def render(self) -> str:
        out = self.sql
        if self.collation:
            out += f" COLLATE {self.collation}"
        if self.desc:
            out += " DESC"
        return out


KeyIdent = tuple[tuple[str, str | None, bool], ...]
"""Index keys as comparable data: (sql, collation, desc) per key."""


def keys_ident(keys: tuple[KeyPart, ...]) -> KeyIdent:
    return tuple((k.sql, k.collation, k.desc) for k in keys)


@dataclass(frozen=True)
class TableSample:
    table: str
    rows: int  # rows in the real table
    sample_rows: int  # rows copied into the sample table
    seed: int

    @property
    def sampled(self) -> bool:
        return self.sample_rows < self.rows


class Statistics:
    """Counts and key statistics for one read-only connection; everything is cached."""

    def __init__(self, conn: sqlite3.Connection, schema: Schema, *, sample_rows: int = SAMPLE_ROWS, seed: int = 1):
        self.conn = conn
        self.schema = schema
        self.sample_rows = sample_rows
        self.seed = seed
        self._rows: dict[str, int] = {}
        self._samples: dict[str, TableSample] = {}
        self._key_stats: dict[tuple[Any, ...], list[int]] = {}
        attached = {row[1] for row in conn.execute("PRAGMA database_list")}
        if SAMPLE_SCHEMA not in attached:
            conn.execute(f"ATTACH DATABASE ':memory:' AS {SAMPLE_SCHEMA}")
        self.stat1 = self._read_stat1()

    def _read_stat1(self) -> dict[tuple[str, str | None], str]:
        exists = self.conn.execute("SELECT 1 FROM main.sqlite_master WHERE name = 'sqlite_stat1'").fetchone()
        if not exists:
            return {}
        rows = self.conn.execute("SELECT tbl, idx, stat FROM main.sqlite_stat1").fetchall()
        return {(tbl, idx): stat for tbl, idx, stat in rows}

    def rows(self, table: str) -> int:
        """Exact row count (SQLite counts through the smallest index)."""
        if table not in self._rows:
            sql = f"SELECT count(*) FROM main.{quote_ident(table)}"
            self._rows[table] = retry(lambda: self.conn.execute(sql).fetchone()[0], what=table)
        return self._rows[table]

    def sample(self, table: str) -> TableSample:
        """Copy a sample (or all) of `table` into the in-memory sample schema, once."""
        if table in self._samples:
            return self._samples[table]
        info = self.schema.table(table)
        total = self.rows(table)
        target = f"{SAMPLE_SCHEMA}.{quote_ident(table)}"
        source = f"main.{quote_ident(table)}"
        self.conn.execute(f"DROP TABLE IF EXISTS {target}")
        if total <= self.sample_rows * 2:
            self.conn.execute(f"CREATE TABLE {target} AS SELECT * FROM {source}")
        elif info.without_rowid:
            self.conn.execute(
                f"CREATE TABLE {target} AS SELECT * FROM {source} ORDER BY random() LIMIT ?", (self.sample_rows,)
            )
        else:
            low, high = self.conn.execute(f"SELECT min(rowid), max(rowid) FROM {source}").fetchone()
            rng = random.Random(f"{self.seed}:{table}")
            span = high - low + 1
            # Rowids have gaps after deletes: draw more points than rows wanted, in proportion.
            want = min(span, int(self.sample_rows * span / max(total, 1) * 1.05) + 1)
            picks = sorted(rng.sample(range(low, high + 1), want))
            self.conn.execute(f"CREATE TABLE {target} AS SELECT * FROM {source} WHERE 0")
            for start in range(0, len(picks), 5000):
                chunk = "[" + ",".join(map(str, picks[start : start + 5000])) + "]"
                self.conn.execute(
                    f"INSERT INTO {target} SELECT * FROM {source} WHERE rowid IN (SELECT value FROM json_each(?))",
                    (chunk,),
                )
        got = self.conn.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
        sample = TableSample(table, total, got, self.seed)
        self._samples[table] = sample
        return sample

    def samples(self) -> list[TableSample]:
        """The tables sampled so far."""
        return list(self._samples.values())

    def key_stat(self, table: str, keys: tuple[KeyPart, ...], where: str | None = None) -> list[int]:
        """sqlite_stat1 figures for an index on `keys`: [rows in the index, avg rows per 1-key prefix, ...]."""
        cache_key = (table, tuple((k.sql, k.collation) for k in keys), where)
        if cache_key in self._key_stats:
            return self._key_stats[cache_key]
        sample = self.sample(table)
        target = f"{SAMPLE_SCHEMA}.{quote_ident(table)}"
        filter_sql = f" WHERE {where}" if where else ""
        n = self.conn.execute(f"SELECT count(*) FROM {target}{filter_sql}").fetchone()[0]
        population = sample.rows if not sample.sampled else round(sample.rows * n / max(sample.sample_rows, 1))
        if not sample.sampled and where:
            population = n
        out = [max(population, 1) if population else 0]
        for k in range(1, len(keys) + 1):
            group = ", ".join(f"{p.sql} COLLATE {p.collation or 'BINARY'}" for p in keys[:k])
            distinct, singles = self.conn.execute(
                f"SELECT count(*), coalesce(sum(c = 1), 0) FROM "
                f"(SELECT count(*) AS c FROM {target}{filter_sql} GROUP BY {group})"
            ).fetchone()
            out.append(avg_per_key(n, distinct, singles, population, sample.sampled))
        self._key_stats[cache_key] = out
        return out

    def distinct_estimate(self, table: str, keys: tuple[KeyPart, ...]) -> int:
        """Estimated number of distinct values of the whole key."""
        stat = self.key_stat(table, keys)
        return max(1, round(stat[0] / stat[-1])) if stat[0] else 0


def avg_per_key(n: int, distinct: int, singles: int, population: int, sampled: bool) -> int:
    """Average rows per distinct key in the population (Duj1 when the sample is not the whole table)."""
    if n == 0 or distinct == 0:
        return 1
    if not sampled or population <= n:
        return max(1, math.ceil(n / distinct))
    estimate = n * distinct / (n - singles + singles * n / population)
    estimate = min(max(estimate, distinct), population)
    return max(1, math.ceil(population / estimate))


def index_keys(table: Table, index_name: str) -> tuple[KeyPart, ...]:
    """The keys of an existing index, as KeyParts (expressions as SQLite stored them)."""
    index = next(i for i in table.indexes if i.name == index_name)
    parts = []
    for col in index.columns:
        if col.name is not None:
            parts.append(KeyPart(quote_ident(col.name), col.collation, col.desc, col.name))
        else:
            parts.append(KeyPart(col.expression or "NULL", col.collation, col.desc))
    return tuple(parts)
