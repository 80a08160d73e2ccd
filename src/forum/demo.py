"""The demo: seed a legacy forum database, copy it into PostgreSQL with pgferry, verify the copy,
then serve the forum on the seeded database in both modes under the same short traffic burst, then on
the PostgreSQL copy (direct, with the caches, and through PgBouncer with reads on a streaming replica),
and migrate a copy of it live while the forum serves traffic (forum.live: migrate start, cutover,
rollback, cutover).

Each step tells `on_up` where its pages are while they are up (every forum server's /metrics, and
during the live migration the migration dashboard): the CLI prints them.

It uses PGFERRY_DSN when set (copying into a new schema named after the time, never touching
existing ones) and otherwise starts a throwaway PostgreSQL cluster on 127.0.0.1 for the run. The
traffic runs on throwaway copies of the seeded file, so the file itself stays as seeded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from forum.live import LiveRun, OnUp, in_schema, live_migration
from forum.seed import SeedReport, generate
from forum.traffic import TrafficOptions, run_traffic
from forum.web.process import answering_pids, running_server
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.report import CopyReport
from pgferry.migrate.run import copy_and_verify
from pgferry.migrate.verify import VerifyReport
from pgferry.pg.cluster import LocalCluster, throwaway_cluster, throwaway_replica
from pgferry.pg.pgbouncer import throwaway_pgbouncer
from pgferry.runtime.cache import hit_rate
from pgferry.runtime.cache.server import throwaway_redis


@dataclass
class DemoResult:
    seed: SeedReport
    copy: CopyReport
    verify: VerifyReport
    target: str  # where the copy went, password redacted
    traffic: dict[str, dict[str, Any]] = field(default_factory=dict)  # mode -> `forum traffic` report
    on_postgres: dict[str, dict[str, Any]] = field(default_factory=dict)  # setup -> `forum traffic` report
    live: LiveRun | None = None  # the live migration under traffic (forum.live)


@contextlib.contextmanager
def postgres_target() -> Iterator[tuple[str, str, LocalCluster | None]]:
    """(dsn, schema, cluster): PGFERRY_DSN with a fresh schema (no cluster of ours), or a throwaway
    local cluster."""
    dsn = os.environ.get("PGFERRY_DSN")
    if dsn:
        yield dsn, time.strftime("forum_demo_%Y%m%d_%H%M%S"), None
        return
    with throwaway_cluster() as cluster:
        yield cluster.dsn(), "public", cluster


def _announce(on_up: OnUp | None, what: str, url: str) -> None:
    if on_up is not None:
        on_up(what, f"{url}/metrics")


def postgres_burst(
    dsn: str,
    schema: str,
    cluster: LocalCluster | None,
    users: int,
    seconds: float,
    seed: int,
    on_up: OnUp | None = None,
) -> dict[str, dict[str, Any]]:
    """The same traffic on the PostgreSQL copy: direct, direct with the caches (L1 in the process, L2 in
    a throwaway redis-server: pgferry.runtime.cache), then (on a cluster of ours) through PgBouncer in
    transaction pooling with reads on a streaming replica (`pg_basebackup -R`) behind a PgBouncer of its
    own. With PGFERRY_DSN, direct only: the copy is in a schema of its own, and PgBouncer 1.18 does not
    pass the search_path a client asks for."""
    reports = {}
    with running_server(in_schema(dsn, schema), "optimized") as server:
        _announce(on_up, "forum serve on postgres: metrics", server.url)
        reports["postgres"] = run_traffic(server.url, TrafficOptions(users, seconds, seed)).to_dict()
    with (
        throwaway_redis() as redis,
        running_server(
            in_schema(dsn, schema), "optimized", extra_args=("--redis", redis.url), workers=CACHED_WORKERS
        ) as server,
    ):
        _announce(
            on_up, "forum serve on postgres with caches (L1, L2 in a throwaway redis-server): metrics", server.url
        )
        report = run_traffic(server.url, TrafficOptions(users, seconds, seed)).to_dict()
        report["cache"] = cache_summary(server.url, CACHED_WORKERS)
        reports["postgres + caches"] = report
    if cluster is None:
        return reports
    pools = {"default_pool_size": 10, "log_connections": False}
    with (
        throwaway_replica(cluster) as replica,
        throwaway_pgbouncer(dsn, **pools) as to_primary,
        throwaway_pgbouncer(replica.dsn(), **pools) as to_replica,
    ):
        extra = ("--pgbouncer", "--replica", to_replica.dsn())
        with running_server(to_primary.dsn(), "optimized", extra_args=extra) as server:
            _announce(on_up, "forum serve on pgbouncer + replica: metrics", server.url)
            before = replica_reads(server.url, until_usable_s=REPLICA_WAIT_S)
            report = run_traffic(server.url, TrafficOptions(users, seconds, seed)).to_dict()
            report["reads"] = {k: n - before.get(k, 0) for k, n in replica_reads(server.url).items()}
            reports["pgbouncer + replica"] = report
    return reports


CACHED_WORKERS = 2  # two processes: L2 serves each what the other loaded, and invalidations cross between them


def cache_summary(url: str, workers: int) -> dict[str, Any]:
    """Every worker's cache counters (from /healthz) summed per level, and the hit rates of the sums."""
    levels: dict[str, dict[str, int]] = {}
    answered = answering_pids(url, workers, within_s=30)
    for response in answered.values():
        for level, counts in response.json()["cache"]["levels"].items():
            into = levels.setdefault(level, dict.fromkeys(counts, 0))
            for event, n in counts.items():
                into[event] += n
    return {"workers": len(answered), "levels": levels, "hit_rate": {lv: hit_rate(c) for lv, c in levels.items()}}


REPLICA_WAIT_S = 30.0  # a fresh replica's first lag reading comes within a second; this bounds a slow one


def replica_reads(url: str, until_usable_s: float = 0.0) -> dict[str, int]:
    """Where the forum at `url` has sent its reads so far (`primary`, `replica-1`: from /healthz).

    With `until_usable_s`, first wait (that long at most) until its replica is up and within the lag
    bound, so that the traffic measures reads on the replica rather than the minute it starts in."""
    deadline = time.monotonic() + until_usable_s
    while True:
        stats = httpx.get(f"{url}/healthz", timeout=10).json()["database"]["replicas"]
        replica = stats["replicas"][0]
        usable = replica["up"] and replica["lag_s"] is not None and replica["lag_s"] < stats["max_lag_s"]
        if usable or time.monotonic() >= deadline:
            return dict(stats["reads"])
        time.sleep(0.1)


def traffic_burst(
    database: Path, users: int, seconds: float, seed: int, on_up: OnUp | None = None
) -> dict[str, dict[str, Any]]:
    """The same traffic against the forum in each mode, each on its own copy of `database`."""
    reports = {}
    with tempfile.TemporaryDirectory(prefix="forum-demo-") as tmp:
        for mode in ("legacy", "optimized"):
            copy = Path(tmp) / f"{mode}.db"
            shutil.copy(database, copy)
            with running_server(copy, mode) as server:
                _announce(on_up, f"forum serve --mode {mode}: metrics", server.url)
                reports[mode] = run_traffic(server.url, TrafficOptions(users, seconds, seed)).to_dict()
    return reports


def run_demo(
    database: Path,
    scale: float,
    seed: int,
    jobs: int = 2,
    traffic_users: int = 20,
    traffic_seconds: float = 4.0,
    on_up: OnUp | None = None,
) -> DemoResult:
    """Seed `database` (overwriting it), copy it to PostgreSQL, verify the copy, then a traffic burst
    per mode (skipped when traffic_seconds is 0); `on_up` is told where each step's pages are."""
    database.parent.mkdir(parents=True, exist_ok=True)
    seeded = generate(database, scale=scale, seed=seed, force=True)
    with postgres_target() as (dsn, schema, cluster):
        job = copy_and_verify(database, dsn, CopyOptions(schema=schema, jobs=jobs))
        assert job.verify is not None  # verify=True
        result = DemoResult(seeded, job.copy, job.verify, job.copy.target)
        if traffic_seconds > 0:
            result.traffic = traffic_burst(database, traffic_users, traffic_seconds, seed, on_up)
            result.on_postgres = postgres_burst(dsn, schema, cluster, traffic_users, traffic_seconds, seed, on_up)
            with tempfile.TemporaryDirectory(prefix="forum-live-") as tmp:
                live = Path(tmp) / "live.db"
                shutil.copy(database, live)
                steps = ("cutover", "rollback", "cutover")
                result.live = live_migration(
                    live,
                    dsn,
                    schema=f"{schema}_live",
                    users=traffic_users,
                    seed=seed,
                    gap_s=traffic_seconds,
                    steps=steps,
                    on_up=on_up,
                )
    return result
