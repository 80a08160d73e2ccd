"""When a replica may serve a read, and how its lag is measured: the lag bound, the heartbeat's pace,
how often each replica is read, and how a replica that went away is tried again.

Lag is measured with a heartbeat row the runtime writes on the primary every `heartbeat_s`: a replica's
lag is its clock minus the newest heartbeat it has replayed. That reading runs up to `heartbeat_s` high
(the next beat may not be written yet) and is `check_s` old when used, so the bound must exceed both;
a replica read `check_s` ago counts as that much further behind (a link that broke just after the
reading cannot look fresh).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReplicaPolicy:
    max_lag_s: float = 5.0  # a replica further behind than this serves no reads
    heartbeat_s: float = 0.5  # the primary's heartbeat row is written this often
    check_s: float = 0.5  # each replica's lag and replay position are read this often
    retry_max_s: float = 10.0  # a replica that failed is tried again after check_s, doubling up to this
    heartbeat_key: str = "pgferry-runtime"  # the heartbeat row's key (every process of an application shares it)

    def __post_init__(self) -> None:
        if min(self.heartbeat_s, self.check_s) <= 0 or self.retry_max_s < self.check_s:
            raise ValueError("heartbeat_s and check_s must be above 0, and retry_max_s at least check_s")
        if self.max_lag_s <= self.heartbeat_s + self.check_s:
            raise ValueError(
                f"max_lag_s ({self.max_lag_s:g}) must exceed heartbeat_s + check_s "
                f"({self.heartbeat_s + self.check_s:g}): a replica that is up to date reads up to that far behind"
            )

    def retry_after(self, failures: int) -> float:
        """Seconds before trying a replica again after `failures` failures in a row (bounded backoff)."""
        return float(min(self.retry_max_s, self.check_s * 2 ** max(0, failures - 1)))

    def describe(self) -> dict[str, Any]:
        return {
            "max_lag_s": self.max_lag_s,
            "heartbeat_s": self.heartbeat_s,
            "check_s": self.check_s,
            "retry_max_s": self.retry_max_s,
        }
