"""Prometheus metrics of the statements an application runs through pgferry.runtime, in a registry of
the caller's (one per process; the forum's app gives its own).

    db_query_duration_seconds{operation, table}    histogram, the migration plan's buckets
    db_query_errors_total{operation, kind}         statements that failed, by the error's kind
                                                   (Unavailable's kind: locked, pool_timeout, ...)

`operation` is the statement's first keyword (select, insert, update, delete, begin, commit, ...);
`table` the first table it names (FROM, INTO, UPDATE, JOIN), "-" for none. Both come from a cheap
scan of the text, remembered per statement text (an application runs a few hundred texts), so the
label sets stay bounded: a text pgferry cannot read gets "other".
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

from pgferry.runtime import querystats

BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5)  # the migration plan's
OPERATIONS = frozenset({"select", "insert", "update", "delete", "with", "begin", "commit", "rollback", "savepoint"})
_FIRST = re.compile(r"^\s*([A-Za-z]+)")
_NAME = r"(\"[^\"]+\"|[A-Za-z_][\w$]*)"
_TABLE = re.compile(rf"\b(?:from|into|update|join)\s+(?:only\s+)?{_NAME}(?:\.{_NAME})?", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def labels_of(sql: str) -> tuple[str, str]:
    """(operation, table) of a statement's text."""
    first = _FIRST.match(sql)
    operation = first.group(1).lower() if first else "other"
    if operation not in OPERATIONS:
        operation = "other"
    found = _TABLE.search(sql)
    if found is None:
        return operation, "-"
    name = found.group(2) or found.group(1)
    return operation, name.strip('"').lower()


class QueryMetrics:
    """The statement metrics, fed by querystats' observer hook from `start()` to `stop()`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.duration = Histogram(
            "db_query_duration_seconds",
            "Time of one database statement, by operation and table.",
            ("operation", "table"),
            buckets=BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "db_query_errors",
            "Database statements that failed, by operation and kind.",
            ("operation", "kind"),
            registry=registry,
        )
        self._stop: Callable[[], None] | None = None

    def record(self, sql: str, seconds: float, error: str | None) -> None:
        operation, table = labels_of(sql)
        self.duration.labels(operation, table).observe(seconds)
        if error is not None:
            self.errors.labels(operation, error).inc()

    def start(self) -> QueryMetrics:
        if self._stop is None:
            self._stop = querystats.observe(self.record)
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None


_PROCESS: QueryMetrics | None = None
_PROCESS_LOCK = threading.Lock()


def process_metrics() -> QueryMetrics:
    """This process's statement metrics, in a registry of their own, started on first use: every app
    of the process (the forum's tests build many) renders the same counts instead of each adding an
    observer of its own."""
    global _PROCESS
    with _PROCESS_LOCK:
        if _PROCESS is None:
            _PROCESS = QueryMetrics(CollectorRegistry()).start()
        return _PROCESS
