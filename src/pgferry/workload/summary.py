"""Group a workload by fingerprint: where the database time goes, shape by shape."""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pgferry.workload.fingerprint import fingerprint
from pgferry.workload.record import Statement


@dataclass(frozen=True, slots=True)
class FingerprintStats:
    """Totals for one fingerprint. Times are in ms; they are None when no statement had a timing
    (a .sql file). `requests` counts distinct request ids; `top_sites` is [(site, calls), ...]."""

    id: str
    text: str
    calls: int
    timed_calls: int
    total_ms: float
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    errors: int
    requests: int
    example: str
    top_sites: list[tuple[str, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "calls": self.calls,
            "timed_calls": self.timed_calls,
            "total_ms": round(self.total_ms, 3),
            "mean_ms": _round(self.mean_ms),
            "p50_ms": _round(self.p50_ms),
            "p95_ms": _round(self.p95_ms),
            "max_ms": _round(self.max_ms),
            "errors": self.errors,
            "requests": self.requests,
            "example": self.example,
            "top_sites": [{"site": site, "calls": calls} for site, calls in self.top_sites],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class _Acc:
    __slots__ = ("calls", "errors", "example", "ms", "requests", "sites", "text")

    def __init__(self, text: str, example: str) -> None:
        self.text = text
        self.example = example
        self.calls = 0
        self.errors = 0
        self.ms = array("d")
        self.requests: set[str] = set()
        self.sites: Counter[str] = Counter()


def summarize(
    statements: Iterable[Statement], *, dialect: str = "sqlite", top_sites: int = 3
) -> list[FingerprintStats]:
    """Aggregate statements by fingerprint, most total time first (then most calls).

    Consumes the iterable once (a streaming reader is fine); memory grows with the number of
    fingerprints and timed calls (8 bytes each, for the percentiles), not with the SQL text.
    """
    accs: dict[str, _Acc] = {}
    for stmt in statements:
        fp = fingerprint(stmt.sql, dialect)
        acc = accs.get(fp.id)
        if acc is None:
            acc = accs[fp.id] = _Acc(fp.text, stmt.sql)
        acc.calls += 1
        if stmt.ms is not None:
            acc.ms.append(stmt.ms)
        if stmt.error is not None:
            acc.errors += 1
        if stmt.request is not None:
            acc.requests.add(stmt.request)
        if stmt.site is not None:
            acc.sites[stmt.site] += 1
    stats = [_finish(fid, acc, top_sites) for fid, acc in accs.items()]
    stats.sort(key=lambda s: (-s.total_ms, -s.calls, s.id))
    return stats


def _finish(fid: str, acc: _Acc, top_sites: int) -> FingerprintStats:
    timed = sorted(acc.ms)
    total = math.fsum(timed)
    return FingerprintStats(
        id=fid,
        text=acc.text,
        calls=acc.calls,
        timed_calls=len(timed),
        total_ms=total,
        mean_ms=total / len(timed) if timed else None,
        p50_ms=percentile(timed, 50),
        p95_ms=percentile(timed, 95),
        max_ms=timed[-1] if timed else None,
        errors=acc.errors,
        requests=len(acc.requests),
        example=acc.example,
        top_sites=acc.sites.most_common(top_sites),
    )


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default); None for no values."""
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * pct / 100
    lo = math.floor(rank)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (rank - lo)
