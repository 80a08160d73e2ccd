"""Prometheus metrics of one app instance: requests, latency per route, statements per request, the
cache's events when there is a cache, and the database's pool and replicas.

Each app gets its own registry (tests build many apps in one process). Labels use the route
template (/topics/{topic_id}), never the raw path, so the series count stays bounded. Under
`forum serve --workers N` (prometheus_client's multiprocess mode, pgferry.runtime.multiprocess) a
scrape renders the sum of every worker's files instead, and the pool and replicas are sampled into
them by each worker.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from pgferry.runtime import multiprocess
from pgferry.runtime.cache import Cache
from pgferry.runtime.cache.metrics import CacheMetrics
from pgferry.runtime.metrics import process_metrics
from pgferry.runtime.pool_metrics import DatabaseCollector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
QUERY_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233)


class Metrics:
    def __init__(self, db: Any = None, cache: Cache | None = None) -> None:
        process_metrics()  # the statements are counted from now on
        self.multiprocess = multiprocess.enabled()
        self.registry = CollectorRegistry()
        self.live: multiprocess.LiveGauges | None = None
        if db is not None:  # its pool and replicas (nothing for SQLite)
            collector = DatabaseCollector(db)
            if self.multiprocess:  # sampled into this worker's files, combined at the scrape
                self.live = multiprocess.LiveGauges(collector, collector.multiprocess_modes).start()
            else:  # read at each scrape
                self.registry.register(collector)
        if cache is not None:
            CacheMetrics(self.registry).watch(cache)
        self.in_flight = Gauge(
            "forum_http_requests_in_flight",
            "Requests being served now (summed over the workers).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
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
        """The app's metrics and the process's statement metrics (pgferry.runtime.metrics); with several
        workers, the sum of all of theirs."""
        if self.multiprocess:
            return generate_latest(multiprocess.scrape_registry())
        return generate_latest(self.registry) + generate_latest(process_metrics().registry)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
