"""One replica's state as the router sees it: up or down, its lag and replay position at the last
reading, and when to read it again. Pure (the caller passes the time), so the decisions are testable.

A reading is replaced whole (one attribute assignment), so request threads read a consistent state
while the prober writes the next one. Lag read `age` seconds ago counts as `age` more: a link that
broke just after a reading cannot look fresh, and a prober that stalls makes its replica look
further behind, never up to date.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from pgferry.runtime.postgres.replicas.lsn import format_lsn
from pgferry.runtime.postgres.replicas.policy import ReplicaPolicy

# Why a replica refused a read, most useful first: the one a caller can act on wins when several replicas refuse.
REFUSALS = ("behind_session", "lagging", "lag_unknown", "down")


@dataclass(frozen=True)
class Reading:
    """What a replica answered to one probe."""

    lag_s: float | None  # its clock minus the newest heartbeat it replayed; None: no heartbeat replayed yet
    replay_lsn: int | None
    receive_lsn: int | None
    paused: bool


@dataclass(frozen=True)
class State:
    up: bool
    reading: Reading | None
    read_at: float  # time.monotonic() of the reading (or of the failure)
    failures: int  # in a row
    next_check: float
    error: str | None


class ReplicaHealth:
    def __init__(self, name: str, policy: ReplicaPolicy) -> None:
        self.name = name
        self.policy = policy
        self.state = State(up=False, reading=None, read_at=0.0, failures=0, next_check=0.0, error=None)
        self.checks = 0
        self._lock = threading.Lock()

    def observed(self, reading: Reading, now: float) -> None:
        with self._lock:
            self.checks += 1
            self.state = State(True, reading, now, 0, now + self.policy.check_s, None)

    def failed(self, error: str, now: float) -> None:
        """A probe or a read failed: down until the next check, later the more failures in a row."""
        with self._lock:
            self.checks += 1
            failures = self.state.failures + 1
            self.state = State(False, self.state.reading, now, failures, now + self.policy.retry_after(failures), error)

    def lag_s(self, now: float) -> float | None:
        """Lag now, at most: the last reading plus its age; None when down or never read."""
        state = self.state
        if not state.up or state.reading is None or state.reading.lag_s is None:
            return None
        return max(0.0, state.reading.lag_s) + max(0.0, now - state.read_at)

    def refuses(self, now: float, position: int | None) -> str | None:
        """Why this replica may not serve a read that must see `position` (None: it may)."""
        state = self.state
        if not state.up:
            return "down"
        lag = self.lag_s(now)
        if lag is None:
            return "lag_unknown"
        if lag > self.policy.max_lag_s:
            return "lagging"
        replayed = state.reading.replay_lsn if state.reading else None
        if position is not None and (replayed is None or replayed < position):
            return "behind_session"
        return None

    def snapshot(self, now: float, primary_lsn: int | None) -> dict[str, Any]:
        """For settings(): lag in seconds (heartbeat) and in bytes (the primary's position at its last
        heartbeat minus this replica's replay position: approximate, the two are read apart)."""
        state = self.state
        reading = state.reading
        replay = reading.replay_lsn if reading else None
        lag = self.lag_s(now)
        return {
            "name": self.name,
            "up": state.up,
            "lag_s": None if lag is None else round(lag, 3),
            "lag_bytes": None if replay is None or primary_lsn is None else max(0, primary_lsn - replay),
            "replay_lsn": None if replay is None else format_lsn(replay),
            "receive_lsn": None if reading is None or reading.receive_lsn is None else format_lsn(reading.receive_lsn),
            "replay_paused": bool(reading and reading.paused),
            "failures_in_a_row": state.failures,
            "checks": self.checks,
            "error": state.error,
        }
