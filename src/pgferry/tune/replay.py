"""Replay a captured workload against a database file and time it, fingerprint by fingerprint.

Used before and after `tune --apply` on the same file, so the two figures compare the indexes and
nothing else. Each fingerprint's examples (real statements with their parameters, see
doctor/workload.py) run REPEATS times; reads fetch all their rows, writes run inside a savepoint that
is rolled back at once, so the replay leaves the data as it found it and holds the write lock only
for one statement at a time. The total is sum(median ms x calls) over fingerprints: what the
captured workload would cost now. A fingerprint that cannot be replayed (no examples, no values in
the log, every run failed) is counted by reason in `unusable`, so a replay of nothing says so.
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgferry.doctor.workload import WorkloadView
from pgferry.sqlite.busy import is_busy
from pgferry.sqlite.connect import open_writable
from pgferry.workload.paramstyle import markers
from pgferry.workload.unusable import NO_VALUES, NOT_REPLAYED, Unusable

REPEATS = 3
EXAMPLES = 5
BUDGET_S = 5.0  # per fingerprint per replay: a statement that is slow stops early, its median stays


@dataclass
class FingerprintTiming:
    id: str
    text: str
    calls: int
    median_ms: float | None
    runs: int
    errors: list[str] = field(default_factory=list)
    median_kops: float | None = None  # thousands of SQLite VM instructions: the same work, without the clock

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "calls": self.calls,
            "median_ms": None if self.median_ms is None else round(self.median_ms, 4),
            "median_kops": self.median_kops,
            "runs": self.runs,
            "errors": self.errors[:3],
        }


@dataclass
class ReplayResult:
    timings: dict[str, FingerprintTiming]
    unusable: Unusable = field(default_factory=Unusable)

    @property
    def total_ms(self) -> float:
        """Estimated time of the whole captured workload: median x calls, summed."""
        return sum(t.median_ms * t.calls for t in self.timings.values() if t.median_ms is not None)

    @property
    def total_kops(self) -> float:
        """The same total in VM instructions (thousands): deterministic, so tests can compare it."""
        return sum(t.median_kops * t.calls for t in self.timings.values() if t.median_kops is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total_ms": round(self.total_ms, 3),
            "total_kops": round(self.total_kops, 1),
            "fingerprints": [t.to_dict() for t in self.timings.values()],
            "unusable": self.unusable.to_dict(),
        }


class _Ops:
    """Counts SQLite VM instructions in thousands (a progress handler called every 1,000)."""

    def __init__(self) -> None:
        self.kops = 0

    def tick(self) -> int:
        self.kops += 1
        return 0


def _run(conn: sqlite3.Connection, sql: str, params: Any, many: int | None, write: bool) -> float:
    args = params if params is not None else ()
    started = time.perf_counter()
    if write:
        conn.execute("SAVEPOINT pgferry_replay")
        try:
            if many is not None:
                conn.executemany(sql, args)
            else:
                conn.execute(sql, args)
        except sqlite3.IntegrityError:
            pass  # the captured row exists already: the statement still did its lookups, which is the cost
        finally:
            conn.execute("ROLLBACK TO pgferry_replay")
            conn.execute("RELEASE pgferry_replay")
    else:
        conn.execute(sql, args).fetchall()
    return (time.perf_counter() - started) * 1000


def replay(
    path: str | Path,
    view: WorkloadView,
    *,
    repeats: int = REPEATS,
    examples: int = EXAMPLES,
    fingerprints: list[str] | None = None,
) -> ReplayResult:
    """Time the workload's reads and writes on `path` (writes are rolled back); see the module docstring."""
    conn = open_writable(path)
    timings: dict[str, FingerprintTiming] = {}
    unusable = Unusable()
    try:
        for fid, info in view.fingerprints.items():
            if fingerprints is not None and fid not in fingerprints:
                continue
            if info.kind not in ("read", "write") or not info.examples:
                continue  # no examples: counted when the workload was loaded (view.unusable)
            runnable = [ex for ex in info.examples if ex.params is not None or not markers(ex.sql).count]
            if not runnable:
                unusable.add(NO_VALUES, info.stats.example, count=info.stats.calls)
                continue
            times: list[float] = []
            kops: list[int] = []
            errors: list[str] = []
            deadline = time.perf_counter() + BUDGET_S
            for _ in range(repeats):
                for ex in runnable[:examples]:
                    if time.perf_counter() > deadline and times:
                        break
                    ops = _Ops()
                    conn.set_progress_handler(ops.tick, 1000)
                    try:
                        times.append(_run(conn, ex.sql, ex.params, ex.many, info.kind == "write"))
                        kops.append(ops.kops)
                    except sqlite3.Error as exc:
                        if is_busy(exc):
                            continue
                        errors.append(f"{type(exc).__name__}: {exc}")
                    finally:
                        conn.set_progress_handler(None, 0)
            if not times and errors:
                unusable.add(NOT_REPLAYED, info.stats.example, errors[0], count=info.stats.calls)
            timings[fid] = FingerprintTiming(
                fid,
                info.stats.text,
                info.stats.calls,
                statistics.median(times) if times else None,
                len(times),
                errors,
                statistics.median(kops) if kops else None,
            )
    finally:
        conn.close()
    return ReplayResult(timings, unusable)
