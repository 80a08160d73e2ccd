"""Statements of a workload that could not be used, counted by reason with a few examples.

A statement the doctor cannot plan or tune cannot replay is not silently dropped: every report that
reads a workload says how many statements it left out and why, so a workload in a style nobody
expected shows up as "1,200 statements: parameters do not fit the markers", not as a clean bill.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

EXAMPLES = 3

INTERNAL = "run by the framework on its own account (introspection, migrations, query logging)"
FAILED = "failed when it was captured"
NOT_UNDERSTOOD = "not understood (no table found, or the SQL does not parse)"
NOT_PLANNED = "SQLite cannot plan it on this schema"
NO_VALUES = "the log has no parameter values to replay it with"
NOT_REPLAYED = "failed when replayed"


@dataclass
class Unusable:
    """Counts (statements, not shapes) per reason; the first EXAMPLES statements of each, with a detail."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def add(self, reason: str, sql: str, detail: str | None = None, *, count: int = 1) -> None:
        self.counts[reason] += count
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < EXAMPLES and all(e["sql"] != sql for e in bucket):
            bucket.append({"sql": sql[:500], **({"detail": detail} if detail else {})})

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> list[dict[str, Any]]:
        """[{reason, statements, examples: [{sql, detail?}]}], most statements first."""
        return [
            {"reason": reason, "statements": n, "examples": self.examples.get(reason, [])}
            for reason, n in sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
