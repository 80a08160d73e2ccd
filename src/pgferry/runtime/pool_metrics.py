"""Prometheus metrics of a runtime database's connections and replicas, read at each scrape:

    db_pool_connections{database, state}        in_use (checked out by a caller) / idle connections of
                                                the pool; those it is opening or resetting are neither
    db_pool_max_connections{database}           the pool's ceiling (usage = in_use / max)
    db_pool_usage_ratio{database}               in_use / max of the pool; with several processes the
                                                most used process's pool (what the alert reads)
    db_pool_waiting{database}                   requests waiting for a connection now
    db_pool_wait_seconds_total{database}        time requests waited for a connection (counter)
    pgferry_replica_up{replica}                 1 while a replica is reachable
    pgferry_replica_lag_seconds{replica}        how far behind it is by the heartbeat (an idle primary
                                                still beats, so it does not look like lag)

`database` is "primary" or a replica's name. A database that is not PostgreSQL adds nothing.

With several processes (prometheus_client's multiprocess mode) each process samples its own pools
into the shared files (pgferry.runtime.multiprocess.LiveGauges) and a scrape combines them as
`multiprocess_modes` says: the pool gauges summed over the live processes (N workers with a pool of
P each: db_pool_max_connections is N x P, so in_use / max is the usage of all of them) except
db_pool_usage_ratio, the largest of the processes' own (one full pool beside an idle one is a full
pool to the requests of its process, not half of one), a replica
up only if every process reaches it, its lag the largest any process that reaches it measured (absent
when none does: LiveGauges writes a series it no longer has as "no value", not its last reading).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pgferry.runtime.postgres import PostgresDatabase
from pgferry.runtime.postgres.replicas import ReplicaDatabase


class DatabaseCollector(Collector):
    multiprocess_modes: ClassVar[Mapping[str, str]] = {
        "db_pool_connections": "livesum",
        "db_pool_max_connections": "livesum",
        "db_pool_waiting": "livesum",
        "db_pool_usage_ratio": "livemax",
        "pgferry_replica_up": "livemin",
        "pgferry_replica_lag_seconds": "livemax",
    }

    def __init__(self, db: Any) -> None:
        self.db = db

    def _pools(self) -> list[tuple[str, dict[str, int]]]:
        if isinstance(self.db, ReplicaDatabase):
            stats = self.db.replica_stats()
            return [("primary", self.db.primary.pool_stats())] + [(r["name"], r["pool"]) for r in stats["replicas"]]
        if isinstance(self.db, PostgresDatabase):
            return [("primary", self.db.pool_stats())]
        return []

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        pools = self._pools()
        connections = GaugeMetricFamily(
            "db_pool_connections", "Pool connections by state.", labels=["database", "state"]
        )
        ceiling = GaugeMetricFamily("db_pool_max_connections", "The pool's ceiling.", labels=["database"])
        usage = GaugeMetricFamily(
            "db_pool_usage_ratio", "Connections in use over the pool's ceiling.", labels=["database"]
        )
        waiting = GaugeMetricFamily("db_pool_waiting", "Requests waiting for a connection.", labels=["database"])
        waited = CounterMetricFamily(
            "db_pool_wait_seconds", "Time requests waited for a connection.", labels=["database"]
        )
        for name, stats in pools:
            in_use = stats.get("in_use", 0)
            connections.add_metric([name, "in_use"], in_use)
            connections.add_metric([name, "idle"], stats.get("pool_available", 0))
            ceiling.add_metric([name], stats.get("pool_max", 0))
            if stats.get("pool_max"):
                usage.add_metric([name], in_use / stats["pool_max"])
            waiting.add_metric([name], stats.get("requests_waiting", 0))
            waited.add_metric([name], stats.get("requests_wait_ms", 0) / 1000)
        yield from (connections, ceiling, usage, waiting, waited)
        if isinstance(self.db, ReplicaDatabase):
            up = GaugeMetricFamily("pgferry_replica_up", "1 while a replica is reachable.", labels=["replica"])
            lag = GaugeMetricFamily("pgferry_replica_lag_seconds", "Replica lag by the heartbeat.", labels=["replica"])
            for replica in self.db.replica_stats()["replicas"]:
                up.add_metric([replica["name"]], 1.0 if replica["up"] else 0.0)
                if replica["lag_s"] is not None:
                    lag.add_metric([replica["name"]], replica["lag_s"])
            yield up
            yield lag
