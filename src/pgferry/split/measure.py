"""Before/after figures for a split: bytes of the tables and their indexes, and hot-read timings.

Sizes come from the dbstat virtual table (pages actually used per table and index) when the
SQLite library has it (Debian's and Python's builds do, SQLITE_ENABLE_DBSTAT_VTAB); otherwise
they are estimated from the stored values' lengths, and say so. Timings run each read several
times within a small time budget and keep the median, so one cold page does not decide.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from pgferry.sqltext import quote_ident as q

READ_BUDGET_S = 0.25
MAX_REPS = 400
SAMPLE_KEYS = 200


@dataclass
class Sizes:
    method: str  # "dbstat" or "estimate"
    objects: dict[str, int] = field(default_factory=dict)  # table or index name -> bytes

    @property
    def total(self) -> int:
        return sum(self.objects.values())

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "total_bytes": self.total, "objects": dict(self.objects)}


def has_dbstat(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1 FROM dbstat('main', 1) LIMIT 1").fetchall()
    except sqlite3.OperationalError:
        return False
    return True


def objects_of(conn: sqlite3.Connection, tables: list[str]) -> list[str]:
    """The tables and every index on them (automatic ones included): what their bytes are made of."""
    names = list(tables)
    for table in tables:
        names += [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? ORDER BY name", (table,)
            )
        ]
    return names


def sizes(conn: sqlite3.Connection, tables: list[str]) -> Sizes:
    names = objects_of(conn, tables)
    if has_dbstat(conn):
        out = Sizes("dbstat")
        for name in names:
            row = conn.execute("SELECT coalesce(sum(pgsize), 0) FROM dbstat('main', 1) WHERE name = ?", (name,))
            out.objects[name] = int(row.fetchone()[0])
        return out
    return _estimate(conn, tables)


def _estimate(conn: sqlite3.Connection, tables: list[str]) -> Sizes:
    """Stored bytes of every value plus a header byte per column and 12 bytes per row, / 0.9 page fill."""
    out = Sizes("estimate")
    for table in tables:
        cols = [r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]
        lengths = " + ".join(f"coalesce(length(CAST({q(c)} AS BLOB)), 0)" for c in cols) or "0"
        row = conn.execute(f"SELECT count(*), coalesce(sum({lengths}), 0) FROM {q(table)}").fetchone()
        out.objects[table] = int((row[1] + row[0] * (len(cols) + 12)) / 0.9)
        for (index,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,)):
            keys = [r[2] for r in conn.execute("SELECT * FROM pragma_index_info(?)", (index,)) if r[2]]
            klen = " + ".join(f"coalesce(length(CAST({q(c)} AS BLOB)), 0)" for c in keys) or "0"
            irow = conn.execute(f"SELECT count(*), coalesce(sum({klen}), 0) FROM {q(table)}").fetchone()
            out.objects[index] = int((irow[1] + irow[0] * (len(keys) + 12)) / 0.9)
    return out


# --- reads -----------------------------------------------------------------------------------------


@dataclass
class Read:
    """One read timed before and after: on the old table, on the core table, and through the view."""

    label: str
    sql_before: str
    sql_core: str | None  # the read rewritten onto the core table (None when it needs moved columns)
    params: list[Any]  # parameter sets, cycled through
    before_ms: float | None = None
    core_ms: float | None = None
    view_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "label": self.label,
            "sql": self.sql_before,
            "sql_core": self.sql_core,
            "before_ms": r(self.before_ms),
            "after_core_ms": r(self.core_ms),
            "after_view_ms": r(self.view_ms),
            "core_speedup": None if not (self.before_ms and self.core_ms) else round(self.before_ms / self.core_ms, 2),
        }


def time_read(conn: sqlite3.Connection, sql: str, params: list[Any]) -> float | None:
    """Median ms per execution (fetching all rows), within READ_BUDGET_S; None when it fails."""
    sets = params or [()]
    try:
        conn.execute(sql, sets[0]).fetchall()  # warm-up: compile, load pages
    except (sqlite3.Error, ValueError):
        return None
    samples: list[float] = []
    start = time.perf_counter()
    i = 0
    while len(samples) < MAX_REPS and (time.perf_counter() - start) < READ_BUDGET_S:
        args = sets[i % len(sets)]
        t0 = time.perf_counter()
        conn.execute(sql, args).fetchall()
        samples.append((time.perf_counter() - t0) * 1000)
        i += 1
    return statistics.median(samples)


def sample_keys(conn: sqlite3.Connection, table: str, key: list[str], n: int = SAMPLE_KEYS) -> list[tuple[Any, ...]]:
    """About n keys spread evenly over the table (every k-th row in key order)."""
    total = conn.execute(f"SELECT count(*) FROM {q(table)}").fetchone()[0]
    step = max(1, total // n)
    keys = ", ".join(q(k) for k in key)
    rows = conn.execute(
        f"SELECT {keys} FROM (SELECT {keys}, row_number() OVER (ORDER BY {keys}) AS _n FROM {q(table)}) "
        f"WHERE _n % ? = 0 LIMIT ?",
        (step, n),
    ).fetchall()
    return [tuple(r) for r in rows]
