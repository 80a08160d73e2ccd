"""What indexes cost writers: time N inserts into a scratch copy of a table under two index sets.

Every index is one more b-tree to update on each INSERT, UPDATE of its columns, and DELETE. The cost
is measured, not assumed: the table's own CREATE TABLE goes into a scratch file in the temporary
directory (never next to the database), with real rows from the sample; it is preloaded, then the
same N rows are inserted with each index set, alternating, three times; the median counts. The
ratio between index sets is taken from SQLite's VM instruction count (a progress handler), which is
the same on every run: timings on a quiet table differ by noise, and a ratio that flips around 1
from run to run would make the doctor's advice flip with it. The source database is only read.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pgferry.doctor.stats import SAMPLE_SCHEMA, Statistics
from pgferry.sqlite.schema import Table
from pgferry.sqltext import quote_ident

INSERTS = 2000
PRELOAD = 5000
REPEATS = 3
_TICK = 100  # VM instructions per progress-handler call


@dataclass(frozen=True)
class InsertCost:
    """Median ms, and VM instructions (thousands), per 1,000 single-row inserts under each index set."""

    table: str
    rows_inserted: int
    rows_preloaded: int
    ms_per_1000: dict[str, float]
    kops_per_1000: dict[str, float] | None = None

    def ratio(self, slow: str, fast: str) -> float:
        """How much more work `slow` does: by VM instructions when counted, else by time."""
        work = self.kops_per_1000 if self.kops_per_1000 is not None else self.ms_per_1000
        return work[slow] / work[fast] if work[fast] else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "inserts": self.rows_inserted,
            "preloaded_rows": self.rows_preloaded,
            "ms_per_1000_inserts": {k: round(v, 3) for k, v in self.ms_per_1000.items()},
            **(
                {"vm_kops_per_1000_inserts": {k: round(v, 1) for k, v in self.kops_per_1000.items()}}
                if self.kops_per_1000 is not None
                else {}
            ),
            "method": f"scratch copy of the table, median of {REPEATS} runs; the ratio from VM instructions",
        }


def measure_insert_cost(
    statistics_: Statistics, table: Table, index_sets: dict[str, Sequence[str]], *, inserts: int = INSERTS
) -> InsertCost | None:
    """Time inserts of sampled rows under each index set (CREATE INDEX statements); None if no rows."""
    sample = statistics_.sample(table.name)
    if sample.sample_rows < 2:
        return None
    columns = [c.name for c in table.columns if c.generated is None]
    names = ", ".join(quote_ident(c) for c in columns)
    rows = statistics_.conn.execute(f"SELECT {names} FROM {SAMPLE_SCHEMA}.{quote_ident(table.name)}").fetchall()
    n = min(inserts, max(1, len(rows) // 2))
    preload, batch = rows[: min(PRELOAD, len(rows) - n)], rows[len(rows) - n :]
    insert = f"INSERT INTO {quote_ident(table.name)} ({names}) VALUES ({', '.join('?' for _ in columns)})"
    timings: dict[str, list[float]] = {label: [] for label in index_sets}
    ops: dict[str, list[int]] = {label: [] for label in index_sets}
    counter = [0]

    def tick() -> int:
        counter[0] += 1
        return 0

    fd, path = tempfile.mkstemp(prefix="pgferry-writecost-", suffix=".db")
    os.close(fd)
    try:
        scratch = sqlite3.connect(path, isolation_level=None)
        scratch.execute("PRAGMA synchronous = OFF")
        for _ in range(REPEATS):
            for label, creates in index_sets.items():
                scratch.execute("BEGIN")
                scratch.execute(table.sql)
                for sql in creates:
                    scratch.execute(sql)
                scratch.executemany(insert, preload)
                scratch.execute("COMMIT")
                counter[0] = 0
                scratch.set_progress_handler(tick, _TICK)
                started = time.perf_counter()
                scratch.execute("BEGIN")
                for row in batch:
                    scratch.execute(insert, row)
                scratch.execute("COMMIT")
                timings[label].append((time.perf_counter() - started) * 1000 / len(batch) * 1000)
                scratch.set_progress_handler(None, 0)
                ops[label].append(counter[0])
                scratch.execute(f"DROP TABLE {quote_ident(table.name)}")
        scratch.close()
    except sqlite3.Error:
        return None  # a table the scratch file cannot hold as is (a module, a collation): no figure
    finally:
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path + suffix)
    return InsertCost(
        table.name,
        len(batch),
        len(preload),
        {k: statistics.median(v) for k, v in timings.items()},
        {k: statistics.median(v) * _TICK / len(batch) for k, v in ops.items()},  # thousands per 1,000
    )
