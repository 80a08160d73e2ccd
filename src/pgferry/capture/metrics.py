"""A live migration's state as Prometheus metrics, read from both databases at each scrape (a custom
collector: nothing is kept in the process, so any process can serve them, and a scrape shows what
`pgferry migrate status` would print at that instant).

Metrics (gauges unless said), all labelled with the target `schema`:

    pgferry_migration_phase{phase}                 1 for the phase the migration is in
    pgferry_migration_applier_running              1 while an applier follows (its heartbeat is fresh)
    pgferry_migration_lag_changes                  changelog entries not applied yet
    pgferry_migration_lag_seconds                  an upper bound of the oldest unapplied change's age
    pgferry_migration_apply_rate                   changes applied per second (over the last seconds)
    pgferry_migration_applied_changes_total        counter: changes applied
    pgferry_migration_changelog_entries            entries in the changelog (applied ones not yet pruned too)
    pgferry_migration_wal_bytes                    the SQLite file's WAL
    pgferry_migration_verify_failures              differences that outlived the lag (open)
    pgferry_migration_verify_suspects              differences waiting for the applier and the grace
    pgferry_migration_reverse_lag_changes          after a cutover: PostgreSQL's changes not in SQLite yet
    pgferry_migration_reverse_lag_seconds          an upper bound of the oldest one's age
    pgferry_migration_rollback_unfinished          1 when a rollback was killed after its flip (run it again)
    pgferry_migration_stray_sqlite_writes          after a cutover: writes committed to SQLite since (capture.strays)
    pgferry_migration_route{route}                 1 for the route in force (sqlite, dual, postgres)
    pgferry_cutover_attempts_total{outcome}        counter: cutover attempts by outcome (gh-ost exports the same)
    pgferry_cutover_last_phase_seconds{phase}      the last attempt's time in each phase
    pgferry_cutover_last_pause_seconds             the last attempt's freeze-to-commit time: the longest writers waited
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from pgferry.capture import cutover_log, pgstate
from pgferry.capture.status import read_status
from pgferry.pg.connect import connect
from pgferry.runtime.route import Route, read_route
from pgferry.sqlite.connect import open_readonly

PHASES = (*pgstate.PHASES, "not started", "installed")


class MigrationCollector(Collector):
    def __init__(self, path: str | Path, dsn: str, schema: str) -> None:
        self.path, self.dsn, self.schema = Path(path), dsn, schema

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        status = read_status(self.path, self.dsn, self.schema)
        labels = ["schema"]

        def gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
            family = GaugeMetricFamily(name, doc, labels=labels)
            if value is not None:
                family.add_metric([self.schema], value)
            return family

        phase = GaugeMetricFamily("pgferry_migration_phase", "1 for the migration's phase.", labels=[*labels, "phase"])
        for name in PHASES:
            phase.add_metric([self.schema, name], 1.0 if status.phase == name else 0.0)
        yield phase
        yield gauge("pgferry_migration_applier_running", "1 while an applier follows.", float(status.applier_running))
        yield gauge("pgferry_migration_lag_changes", "Changelog entries not applied yet.", status.lag_changes)
        yield gauge("pgferry_migration_lag_seconds", "Age of the oldest unapplied change (bound).", status.lag_seconds)
        yield gauge("pgferry_migration_apply_rate", "Changes applied per second.", status.applied_per_s)
        applied = CounterMetricFamily("pgferry_migration_applied_changes", "Changes applied.", labels=labels)
        applied.add_metric([self.schema], status.applied_changes)
        yield applied
        yield gauge("pgferry_migration_changelog_entries", "Entries in the changelog.", status.changelog_entries)
        yield gauge("pgferry_migration_wal_bytes", "The SQLite file's WAL size.", status.wal_bytes)
        verify = status.verify
        yield gauge("pgferry_migration_verify_failures", "Open verify failures.", verify.open_failures if verify else 0)
        yield gauge("pgferry_migration_verify_suspects", "Differences in wait.", verify.suspects if verify else 0)
        strays = None if status.strays is None else status.strays.count
        reverse = (
            ("reverse_lag_changes", "Reverse changelog entries not in SQLite yet.", status.reverse_lag_changes),
            ("reverse_lag_seconds", "Age of the oldest of them (bound).", status.reverse_lag_seconds),
            ("rollback_unfinished", "1: a rollback was killed after its flip.", float(status.rollback_unfinished)),
            ("stray_sqlite_writes", "Writes committed to SQLite after the cutover.", strays),
        )
        for name, doc, number in reverse:
            yield gauge(f"pgferry_migration_{name}", doc, number)
        yield self._route()
        yield from self._cutover()

    def _route(self) -> GaugeMetricFamily:
        conn = open_readonly(self.path)
        try:
            current = read_route(conn).route
        finally:
            conn.close()
        family = GaugeMetricFamily("pgferry_migration_route", "1 for the route in force.", labels=["schema", "route"])
        for route in Route:
            family.add_metric([self.schema, route.value], 1.0 if route is current else 0.0)
        return family

    def _cutover(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with connect(self.dsn) as pg:
            attempts = cutover_log.read(pg, self.schema)
        outcomes = collections.Counter(a["outcome"] for a in attempts)
        total = CounterMetricFamily(
            "pgferry_cutover_attempts", "Cutover attempts by outcome.", labels=["schema", "outcome"]
        )
        for outcome, count in sorted(outcomes.items()):
            total.add_metric([self.schema, outcome], count)
        yield total
        phases = GaugeMetricFamily(
            "pgferry_cutover_last_phase_seconds", "The last cutover attempt's phases.", labels=["schema", "phase"]
        )
        pause = GaugeMetricFamily("pgferry_cutover_last_pause_seconds", "The last attempt's pause.", labels=["schema"])
        if attempts:
            last = attempts[-1]
            for name, seconds in last["phases"].items():
                phases.add_metric([self.schema, name], float(seconds))
            if last["pause_s"] is not None:
                pause.add_metric([self.schema], float(last["pause_s"]))
        yield phases
        yield pause


def serve_metrics(path: str | Path, dsn: str, schema: str, port: int, host: str = "127.0.0.1") -> MetricsServer:
    """/metrics on `host`:`port` (loopback by default), read from both databases at each scrape."""
    registry = CollectorRegistry()
    registry.register(MigrationCollector(path, dsn, schema))
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(server, thread, f"http://{host}:{server.server_port}/metrics")


class MetricsServer:
    def __init__(self, server: WSGIServer, thread: threading.Thread, url: str) -> None:
        self.server, self.thread, self.url = server, thread, url

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
