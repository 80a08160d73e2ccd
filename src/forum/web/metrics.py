"""Prometheus metrics of one app instance: requests, latency per route, statements per request.

Each app gets its own registry (tests build many apps in one process). Labels use the route
template (/topics/{topic_id}), never the raw path, so the series count stays bounded.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from pgferry.runtime.metrics import process_metrics
from pgferry.runtime.pool_metrics import DatabaseCollector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
QUERY_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233)


class Metrics:
    def __init__(self, db: Any = None) -> None:
        process_metrics()  # the statements are counted from now on
        self.registry = CollectorRegistry()
        if db is not None:  # its pool and replicas, read at each scrape (nothing for SQLite)
            self.registry.register(DatabaseCollector(db))
        self.requests = Counter(
            "forum_http_requests", "HTTP requests served.", ("method", "route", "status"), registry=self.registry
        )
        self.latency = Histogram(
            "forum_http_request_duration_seconds",
            "Time to serve a request, per route.",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queries = Histogram(
            "forum_db_queries_per_request",
            "Database statements run for one request, per route.",
            ("method", "route"),
            buckets=QUERY_BUCKETS,
            registry=self.registry,
        )
        self.db_time = Histogram(
            "forum_db_time_per_request_seconds",
            "Time spent in database statements for one request, per route.",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.db_wait = Histogram(
            "forum_db_wait_per_request_seconds",
            "Time one request waited for a database connection (legacy pool) or the writer queue (optimized).",
            ("method", "route"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.unavailable = Counter(
            "forum_db_unavailable",
            "Requests refused because the database was locked or no connection was free.",
            ("kind",),
            registry=self.registry,
        )

    def observe(
        self, method: str, route: str, status: int, seconds: float, queries: int, db_seconds: float, wait_seconds: float
    ) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        self.queries.labels(method, route).observe(queries)
        self.db_time.labels(method, route).observe(db_seconds)
        self.db_wait.labels(method, route).observe(wait_seconds)

    def render(self) -> bytes:
        """The app's metrics and the process's statement metrics (pgferry.runtime.metrics)."""
        return generate_latest(self.registry) + generate_latest(process_metrics().registry)
