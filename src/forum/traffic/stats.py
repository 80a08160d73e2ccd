"""What `forum traffic` measures and how it reports it: pure functions, tested with hypothesis."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from forum.traffic.acks import Acknowledged

_SERVER_TIMING = re.compile(r'(?:^|,)\s*db\s*;\s*desc="queries=(\d+)"\s*;\s*dur=(\d+(?:\.\d+)?)')


def parse_server_timing(header: str | None) -> tuple[int, float] | None:
    """(queries, ms) from `Server-Timing: db;desc="queries=N";dur=MS` (other metrics may sit beside it)."""
    if not header:
        return None
    match = _SERVER_TIMING.search(header)
    return (int(match.group(1)), float(match.group(2))) if match else None


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies_ms: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    return {f"p{p}": round(percentile(ordered, p), 2) for p in (50, 95, 99)}


@dataclass
class EndpointTally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    queries: int = 0
    timed: int = 0  # responses that carried Server-Timing

    def add(self, ms: float, error: bool, queries: int | None) -> None:
        self.latencies_ms.append(ms)
        self.errors += error
        if queries is not None:
            self.queries += queries
            self.timed += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": len(self.latencies_ms),
            "errors": self.errors,
            "latency_ms": latency_summary(self.latencies_ms),
            "queries_per_request": round(self.queries / self.timed, 2) if self.timed else 0.0,
        }


@dataclass(frozen=True)
class Sample:
    """One request of a timeline: when it was sent (epoch s), what, how long it took, its status."""

    at: float
    endpoint: str
    ms: float
    status: int | str

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "endpoint": self.endpoint, "ms": self.ms, "status": self.status}


@dataclass
class TrafficReport:
    """The result of one run; `to_dict()` is the documented JSON object, exactly."""

    users: int
    duration_s: float
    elapsed_s: float = 0.0
    endpoints: dict[str, EndpointTally] = field(default_factory=dict)
    statuses: Counter[str] = field(default_factory=Counter)
    timeline: list[Sample] | None = None  # every request, when asked for (--timeline)
    acknowledged: Acknowledged | None = None  # the writes answered 2xx, when asked for (forum.traffic.acks)

    def add(self, endpoint: str, ms: float, status: int | str, queries: int | None, at: float = 0.0) -> None:
        error = not isinstance(status, int) or status >= 400
        self.endpoints.setdefault(endpoint, EndpointTally()).add(ms, error, queries)
        if error:
            self.statuses[str(status)] += 1
        if self.timeline is not None:
            self.timeline.append(Sample(at, endpoint, round(ms, 3), status))

    @property
    def requests(self) -> int:
        return sum(len(t.latencies_ms) for t in self.endpoints.values())

    @property
    def errors(self) -> int:
        return sum(t.errors for t in self.endpoints.values())

    def to_dict(self) -> dict[str, Any]:
        everything = [ms for t in self.endpoints.values() for ms in t.latencies_ms]
        timed = sum(t.timed for t in self.endpoints.values())
        return {
            "users": self.users,
            "duration_s": self.duration_s,
            "requests": self.requests,
            "errors": self.errors,
            "errors_by_status": dict(sorted(self.statuses.items())),
            "throughput_rps": round(self.requests / self.elapsed_s, 2) if self.elapsed_s > 0 else 0.0,
            "latency_ms": latency_summary(everything),
            "queries_per_request": (
                round(sum(t.queries for t in self.endpoints.values()) / timed, 2) if timed else 0.0
            ),
            "by_endpoint": {name: self.endpoints[name].to_dict() for name in sorted(self.endpoints)},
        }
