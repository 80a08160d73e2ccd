"""The forum's journey: the same traffic on the scale-1 forum at each stage of the migration plan.

Setups (a function each; all serve with `forum serve --workers W`):
  legacy     (a) legacy code on the legacy file, as seeded
  tuned      (b) optimized code on the file after `pgferry tune --apply` (the doctor's fixes, judged on a
                 legacy workload captured first): the plan's Week 1
  postgres   (c) optimized code on PostgreSQL direct: a default `pgferry copy` of the tuned file (the
                 plan moves after Week 1) into a throwaway cluster (fsync on: SQLite's durability)
  pgbouncer  (d) PostgreSQL through PgBouncer (transaction pooling) with replica reads
  cached     (e) PostgreSQL direct with the caches (L1 per worker, L2 Redis): bench/forum_cache.py

The traffic is the forum's own mix (`forum traffic`: topic views and lists with Zipf popularity, wiki
reads and edits, replies, new topics, notifications), written once as a plan of requests that `wrk`
replays with bench/forum_journey.lua: a compiled load generator, so the Python server gets the CPU.
Every setup gets the same plan and the same signed-in users (registered in the file before it is tuned
or copied). Each point is one wrk run of warm-up + measured seconds at U connections (= users, each in
a closed loop, or with --think-ms pauses); only responses that complete after the warm-up count.
Latency is timed per request in the Lua script; statements per request and database time come from
the forum's Server-Timing header; 503s are split by cause (database locked / no free connection).
CPU seconds of the forum's processes, PostgreSQL, PgBouncer and wrk are read per point from /proc,
which says how the cores were shared.

    .venv/bin/python bench/forum_journey.py                      # full: 50, 200, 500 users, 20 s each
    .venv/bin/python bench/forum_journey.py --quick              # smoke: a few seconds per point
    .venv/bin/python bench/forum_journey.py --setups legacy,tuned --users 50

Prints one JSON line per point, then Markdown tables and the plan's claims with the measured verdicts
(--json FILE writes everything as one JSON object too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import psycopg

from forum.seed import generate
from forum.services import AuthPolicy, Forum
from forum.services.passwords import PasswordPolicy
from forum.traffic import TrafficOptions, run_traffic
from forum.traffic.run import User, World, discover, next_request
from forum.traffic.stats import TrafficReport, latency_summary
from forum.web.app import create_app
from forum.web.process import answering_pids, running_server
from pgferry.doctor import load_workload
from pgferry.migrate.run import copy_database
from pgferry.pg.cluster import FAST_SETTINGS, LocalCluster, throwaway_cluster, throwaway_replica
from pgferry.pg.pgbouncer import throwaway_pgbouncer
from pgferry.runtime.cache.server import throwaway_redis
from pgferry.tune import tune
from proctree import pin, postmaster_pid, tree_cpu_s

HERE = Path(__file__).resolve().parent
LUA = HERE / "forum_journey.lua"
PLAN_REQUESTS = 20_000
CHEAP_PASSWORDS = AuthPolicy(passwords=PasswordPolicy(time_cost=1, memory_cost_kib=1024, parallelism=1))
# The bench's PostgreSQL keeps what SQLite keeps: commits that survive a crash (the tests' clusters do not).
DURABLE = {**FAST_SETTINGS, "fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
CLAIM_P95_MS = 100.0
CLAIM_REDUCTION = 0.70
T = TypeVar("T")


@dataclass
class Target:
    """A running setup: where to send the traffic, and CPU-second counters of its parts."""

    url: str
    cpu: dict[str, Callable[[], float]]
    roots: list[int]  # processes to pin with --server-cpus
    workers: int = 1
    log: Callable[[], str] = str  # the server's log so far
    replicas: bool = False

    def reads(self) -> dict[str, int]:
        """Reads so far per target (primary, replica), summed over the workers' /healthz; {} without replicas."""
        total: dict[str, int] = {}
        if not self.replicas:
            return total
        for r in answering_pids(self.url, self.workers, 30).values():
            routed = r.json()["database"].get("replicas") or {}
            for where, n in (routed.get("reads") or {}).items():
                key = "primary" if where == "primary" else "replica"
                total[key] = total.get(key, 0) + int(n)
        return total


@dataclass
class Journey:
    """What every setup shares: the options, the working directory, the file every setup starts from, the
    PostgreSQL cluster (started on first use; stopped, with all it holds, when the journey ends)."""

    args: argparse.Namespace
    work: Path
    base: Path  # the seeded file plus the bench's users
    plan: Path  # the requests wrk replays
    prepared: dict[str, Any] = field(default_factory=dict)  # what preparing each setup did, for the record
    _cluster: LocalCluster | None = None
    _dsn: str | None = None  # the copy's database (with the cluster's password: not for the record)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> Journey:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def keep(self, context: contextlib.AbstractContextManager[T]) -> T:
        """Enter `context` until the journey ends (a server other setups reuse)."""
        return self._stack.enter_context(context)

    def cluster(self) -> LocalCluster:
        """The throwaway PostgreSQL cluster."""
        if self._cluster is None:
            self._cluster = self.keep(throwaway_cluster(settings=DURABLE))
        return self._cluster

    def tuned_file(self) -> Path:
        """The base file after `pgferry tune --apply`, judged on a legacy workload captured on it first
        (made once; the setups serve copies of it)."""
        tuned = self.work / "tuned-pristine.db"
        if "tune" in self.prepared:
            return tuned
        shutil.copyfile(self.base, tuned)
        workload = self.work / "legacy-workload.jsonl"
        with running_server(tuned, "legacy", capture=workload) as server:
            options = TrafficOptions(users=4, duration_s=self.args.capture_s, seed=self.args.seed, max_requests=5000)
            captured = run_traffic(server.url, options)
        started = time.perf_counter()
        result = tune(tuned, load_workload(workload), apply=True, rollback_path=self.work / "rollback.sql").to_dict()
        replay = result.get("replay") or {}
        kinds: dict[str, int] = {}
        for step in result["plan"]["steps"]:
            kinds[step["kind"]] = kinds.get(step["kind"], 0) + 1
        self.prepared["tune"] = {
            "workload_requests": captured.requests,
            "seconds": round(time.perf_counter() - started, 1),
            "steps": kinds,
            "replay_before_ms": replay.get("before_total_ms"),
            "replay_after_ms": replay.get("after_total_ms"),
        }
        return tuned

    def postgres_copy(self) -> str:
        """DSN of the database a default `pgferry copy` made of the tuned file (made once): the plan moves
        to PostgreSQL after Week 1."""
        if self._dsn is None:
            cluster = self.cluster()
            with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
                conn.execute("CREATE DATABASE forum")
            started = time.perf_counter()
            report = copy_database(self.tuned_file(), cluster.dsn("forum"))
            self.prepared["postgres_copy"] = {
                "seconds": round(time.perf_counter() - started, 1),
                "tables": len(report.tables),
            }
            self._dsn = cluster.dsn("forum")
        return self._dsn


# ---------------------------------------------------------------- setups


@contextlib.contextmanager
def serving(
    j: Journey,
    database: str | Path,
    mode: str,
    extra: tuple[str, ...] = (),
    parts: dict[str, Callable[[], float]] | None = None,
) -> Iterator[Target]:
    with running_server(database, mode, extra_args=extra, start_timeout_s=120, workers=j.args.workers) as server:
        pid = server.process.pid
        cpu = {"forum": lambda: tree_cpu_s(pid), **(parts or {})}
        yield Target(server.url, cpu, [pid], j.args.workers, server.log)


@contextlib.contextmanager
def setup_legacy(j: Journey) -> Iterator[Target]:
    """(a) The legacy code on the legacy file."""
    db = j.work / "legacy.db"
    shutil.copyfile(j.base, db)
    with serving(j, db, "legacy") as target:
        yield target


@contextlib.contextmanager
def setup_tuned(j: Journey) -> Iterator[Target]:
    """(b) The optimized code on the file `pgferry tune --apply` fixed (the plan's Week 1)."""
    db = j.work / "tuned.db"
    shutil.copyfile(j.tuned_file(), db)
    with serving(j, db, "optimized") as target:
        yield target


@contextlib.contextmanager
def setup_postgres(j: Journey) -> Iterator[Target]:
    """(c) The optimized code on PostgreSQL direct: the default copy of the tuned file."""
    dsn = j.postgres_copy()
    datadir = j.cluster().datadir
    with serving(j, dsn, "optimized", parts={"postgres": lambda: tree_cpu_s(postmaster_pid(datadir))}) as target:
        target.roots.append(postmaster_pid(datadir))
        yield target


@contextlib.contextmanager
def setup_pgbouncer(j: Journey) -> Iterator[Target]:
    """(d) The optimized code on PostgreSQL through PgBouncer (transaction pooling, 20 server connections),
    reads on a streaming replica (`pg_basebackup -R`) through a PgBouncer of its own."""
    dsn = j.postgres_copy()
    primary = j.cluster()
    replica = j.keep(throwaway_replica(primary))
    pools = {"default_pool_size": 20, "max_client_conn": 1000, "log_connections": False}
    to_primary = j.keep(throwaway_pgbouncer(dsn, **pools))
    to_replica = j.keep(throwaway_pgbouncer(replica.dsn("forum"), **pools))
    extra = ("--pgbouncer", "--replica", to_replica.dsn("forum"))
    parts = {
        "postgres": lambda: tree_cpu_s(postmaster_pid(primary.datadir)) + tree_cpu_s(postmaster_pid(replica.datadir)),
        "pgbouncer": lambda: tree_cpu_s(to_primary.pid) + tree_cpu_s(to_replica.pid),
    }
    with serving(j, to_primary.dsn("forum"), "optimized", extra, parts) as target:
        target.replicas = True
        target.roots += [
            postmaster_pid(primary.datadir),
            postmaster_pid(replica.datadir),
            to_primary.pid,
            to_replica.pid,
        ]
        yield target


@contextlib.contextmanager
def setup_cached(j: Journey) -> Iterator[Target]:
    """(e) PostgreSQL direct, as (c), with the caches: L1 in each worker, L2 in a throwaway redis-server (the
    plan's Weeks 7-8)."""
    dsn = j.postgres_copy()
    datadir = j.cluster().datadir
    with throwaway_redis() as redis_server:
        redis_pid = redis_server.pid or 0
        parts = {
            "postgres": lambda: tree_cpu_s(postmaster_pid(datadir)),
            "redis": lambda: tree_cpu_s(redis_pid),
        }
        with serving(j, dsn, "optimized", ("--redis", redis_server.url), parts) as target:
            target.roots += [postmaster_pid(datadir), redis_pid]
            yield target


SETUPS: dict[str, Callable[[Journey], contextlib.AbstractContextManager[Target]]] = {
    "legacy": setup_legacy,
    "tuned": setup_tuned,
    "postgres": setup_postgres,
    "pgbouncer": setup_pgbouncer,
    "cached": setup_cached,
}


# ---------------------------------------------------------------- preparation


def prepare_base(args: argparse.Namespace, work: Path) -> tuple[Path, list[str]]:
    """A copy of the seeded file with the bench's signed-in users; their session tokens."""
    seeded = Path(args.db)
    if not seeded.exists():
        print(f"seeding {seeded} (scale {args.scale:g}, seed 42): cached for the next run", flush=True)
        generate(seeded, scale=args.scale, seed=42)
    base = work / "base.db"
    shutil.copyfile(seeded, base)
    forum = Forum.open(base, "legacy", policy=CHEAP_PASSWORDS)  # legacy: the file stays as the plan found it
    try:
        tokens = [
            forum.auth.register(f"journey{i}", f"journey{i}@bench.example", f"pw-{i}-journey", None, None, None).token
            for i in range(args.accounts)
        ]
    finally:
        forum.close()
    return base, tokens


async def _discover(base: Path, seed: int) -> World:
    forum = Forum.open(base, "optimized")
    try:
        transport = httpx.ASGITransport(app=create_app(forum))
        async with httpx.AsyncClient(transport=transport, base_url="http://forum") as client:
            return await discover(client, seed)
    finally:
        forum.close()


def write_plan(
    base: Path, tokens: list[str], seed: int, path: Path, weights: dict[str, int] | None = None
) -> dict[str, int]:
    """The requests wrk replays: the traffic mix of `forum traffic` (or `weights`), user after user; the
    mix written."""
    world = asyncio.run(_discover(base, seed))
    users = [User(i, random.Random(seed * 1_000_003 + i)) for i in range(len(tokens))]
    mix: dict[str, int] = {}
    with path.open("w") as out:
        for n in range(PLAN_REQUESTS):
            user = users[n % len(users)]
            name, method, where, kwargs = next_request(user, world, can_write=True, mix=weights)
            if kwargs.get("params"):
                where += "?" + urlencode(kwargs["params"])
            body = json.dumps(kwargs["json"]) if "json" in kwargs else ""
            out.write(f"{name}\t{method}\t{where}\t{tokens[user.index]}\t{body}\n")
            mix[name] = mix.get(name, 0) + 1
    return dict(sorted(mix.items(), key=lambda kv: -kv[1]))


# ---------------------------------------------------------------- one point


def _cpus(text: str | None) -> set[int] | None:
    return None if not text else {int(c) for c in text.split(",")}


def settle(target: Target, limit_s: float = 90.0) -> float:
    """Wait until the setup is idle (under 0.2 cores for a second): requests of the previous point whose
    clients are gone still run to the end, and must not be measured as this point's. The seconds waited."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        before = sum(counter() for counter in target.cpu.values())
        time.sleep(1.0)
        if sum(counter() for counter in target.cpu.values()) - before < 0.2:
            break
    return round(time.perf_counter() - started, 1)


def run_point(
    j: Journey,
    setup: str,
    target: Target,
    users: int,
    during: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
) -> dict[str, Any]:
    """One wrk run against `target`; `during` is entered while wrk runs (a checker beside the traffic)."""
    args = j.args
    drained_s = settle(target)
    samples = j.work / f"samples-{setup}-{users}.txt"
    seconds = math.ceil(args.warm + args.duration)  # wrk counts whole seconds
    command = ["wrk", "-t", str(min(args.wrk_threads, users)), "-c", str(users), "-d", f"{seconds}s"]
    command += ["--timeout", "60s", "-s", str(LUA), target.url, "--", str(j.plan), f"{args.think_ms:g}"]
    generator_cpus = _cpus(args.generator_cpus)
    reads = target.reads()
    before = {part: counter() for part, counter in target.cpu.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with during():
        done = subprocess.run(
            command,
            env={**os.environ, "JOURNEY_SAMPLES": str(samples)},
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            preexec_fn=(lambda: os.sched_setaffinity(0, generator_cpus)) if generator_cpus else None,
            check=False,
        )
    wall = time.perf_counter() - started
    if done.returncode != 0 or not samples.exists():
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {part: round(counter() - before[part], 1) for part, counter in target.cpu.items()}
    cpu["wrk"] = round(after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime, 1)
    point = summarize(samples, users, args.warm)
    backlog_s = settle(target)  # the answers still owed to wrk's closed connections
    routed = {where: n - reads.get(where, 0) for where, n in target.reads().items()}
    if "500" in point["errors_by_status"]:  # a bug, not a load effect: keep what the server said
        point["server_log_tail"] = target.log()[-3000:]
    point.update(
        setup=setup,
        drained_s=drained_s,
        backlog_s=backlog_s,
        reads=routed,
        cpu_s=cpu,
        cores_busy=round(sum(cpu.values()) / wall, 2),
        load_1m=os.getloadavg()[0],
    )
    samples.unlink()
    return point


def run_setup(j: Journey, setup: str, user_counts: list[int], result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every user count against one running setup."""
    points = []
    started = time.perf_counter()
    with SETUPS[setup](j) as target:
        result.setdefault("setup_s", {})[setup] = round(time.perf_counter() - started, 1)
        for root in target.roots if j.args.server_cpus else ():
            pin(root, _cpus(j.args.server_cpus) or set())
        for users in user_counts:
            point = run_point(j, setup, target, users)
            print(json.dumps(point), flush=True)
            points.append(point)
    return points


def summarize(samples: Path, users: int, warm_s: float) -> dict[str, Any]:
    """The responses that completed after the warm-up, as `forum traffic` reports them (same stats)."""
    rows, socket_errors, wrk_s = [], {}, 0.0
    for line in samples.read_text().splitlines():
        if line.startswith("# wrk "):
            _, _, duration_us, connect, read, write, timeout, _status = line.split()
            wrk_s = int(duration_us) / 1e6
            socket_errors = {"connect": int(connect), "read": int(read), "write": int(write), "timeout": int(timeout)}
            continue
        name, status, sent, answered, queries, db_ms = line.split()
        rows.append((name, status, int(sent) if sent != "-" else None, int(answered), queries, db_ms))
    # the measure: from warm_s after the first request to the end of the run (none answered: nothing counts)
    start = min((r[2] for r in rows if r[2] is not None), default=0)
    measure_from = start + warm_s * 1e6
    kept = [r for r in rows if r[3] >= measure_from]
    window_s = max(wrk_s - warm_s, 1e-3)
    report = TrafficReport(users=users, duration_s=round(window_s, 1), elapsed_s=window_s)
    ok_ms, db = [], []
    db_by_endpoint: dict[str, float] = {}
    unmatched = 0
    for name, status, sent, answered, queries, db_ms in kept:
        if sent is None:  # no X-Request-ID echoed back: cannot be timed
            unmatched += 1
            continue
        ms = (answered - sent) / 1000
        code: int | str = int(status) if status.isdigit() else status
        report.add(name, ms, code, int(queries) if queries != "-" else None)
        if isinstance(code, int) and code < 400:
            ok_ms.append(ms)
        if db_ms != "-":
            db.append(float(db_ms))
            db_by_endpoint[name] = db_by_endpoint.get(name, 0.0) + float(db_ms)
    out = report.to_dict()
    ends = out["by_endpoint"]
    return {
        "users": users,
        "measured_s": round(window_s, 1),
        "requests": out["requests"],
        "throughput_rps": out["throughput_rps"],
        "ok_rps": round(len(ok_ms) / window_s, 1),
        "latency_ms": out["latency_ms"],
        "ok_latency_ms": latency_summary(ok_ms),
        "db_ms": latency_summary(db),
        "errors": out["errors"] + unmatched,
        "errors_by_status": out["errors_by_status"],
        "socket_errors": {k: v for k, v in socket_errors.items() if v},
        "statements_per_request": out["queries_per_request"],
        "statements_per_topic_view": ends.get("topic_view", {}).get("queries_per_request"),
        "by_endpoint": {
            name: {
                **{k: e[k] for k in ("requests", "errors", "latency_ms", "queries_per_request")},
                "db_s": round(db_by_endpoint.get(name, 0.0) / 1000, 2),
            }
            for name, e in ends.items()
        },
    }


# ---------------------------------------------------------------- report


def replica_share(point: dict[str, Any]) -> str:
    reads = point.get("reads") or {}
    total = sum(reads.values())
    return f"{reads.get('replica', 0) / total:.0%}" if total else "-"


def table(points: list[dict[str, Any]]) -> str:
    lines = [
        "| setup | users | req/s | ok req/s | p50 ms | p95 ms | p99 ms | errors (of requests) | 503 locked / pool"
        " | statements/request | per topic view | db p95 ms | reads on a replica | CPU s: forum / pg / bouncer / wrk"
        " | cores busy |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for p in points:
        lat, cpu, by = p["latency_ms"], p["cpu_s"], p["errors_by_status"]
        lines.append(
            f"| {p['setup']} | {p['users']} | {p['throughput_rps']:,.1f} | {p['ok_rps']:,.1f} | {lat['p50']:,.0f}"
            f" | {lat['p95']:,.0f} | {lat['p99']:,.0f} | {p['errors']:,} ({p['requests']:,})"
            f" | {by.get('503-locked', 0):,} / {by.get('503-pool', 0):,} | {p['statements_per_request']:.2f}"
            f" | {p['statements_per_topic_view'] or 0:.1f} | {p['db_ms']['p95']:,.1f}"
            f" | {replica_share(p)} | {cpu.get('forum', 0):.1f} / {cpu.get('postgres', 0):.1f}"
            f" / {cpu.get('pgbouncer', 0):.1f} / {cpu['wrk']:.1f}"
            f" | {p['cores_busy']:.2f} |"
        )
    return "\n".join(lines)


def claims(points: list[dict[str, Any]]) -> list[str]:
    """Each claim of the migration plan with what was measured."""
    at = {(p["setup"], p["users"]): p for p in points}
    out = []
    legacy50 = at.get(("legacy", 50))
    if legacy50:
        by = legacy50["errors_by_status"]
        pool, locked = by.get("503-pool", 0), by.get("503-locked", 0)
        if not legacy50["ok_rps"]:
            verdict = f"FAILS: no request answered successfully in {legacy50['measured_s']:g} s"
        elif legacy50["errors"]:
            share = legacy50["errors"] / max(legacy50["requests"], 1)
            verdict = f"FAILS{'' if pool >= locked else ' (but not by pool exhaustion)'}: {share:.0%} errors"
        else:
            verdict = "does not fail: no errors"
        out.append(
            f'"legacy fails at 50 concurrent users (pool exhaustion)": {verdict}; {legacy50["errors"]:,} errors in '
            f"{legacy50['requests']:,} requests: {pool:,} refused for lack of a connection, {locked:,} because the "
            f"database was locked; p95 {legacy50['latency_ms']['p95']:,.0f} ms, {legacy50['ok_rps']:,.1f} ok req/s"
        )
    for users in sorted({p["users"] for p in points}):
        legacy, tuned = at.get(("legacy", users)), at.get(("tuned", users))
        if not (legacy and tuned):
            continue
        if not legacy["ok_latency_ms"]["p50"]:
            out.append(
                f'"70% lower response time after Week 1" at {users} users: legacy answered no request successfully'
            )
            continue
        cut = {
            k: 1 - tuned["ok_latency_ms"][k] / legacy["ok_latency_ms"][k]
            for k in ("p50", "p95")
            if legacy["ok_latency_ms"][k]
        }
        held = [k for k, v in cut.items() if v >= CLAIM_REDUCTION]
        verdict = "holds" if len(held) == len(cut) else "partly" if held else "does not hold"
        before, after = legacy["ok_latency_ms"], tuned["ok_latency_ms"]
        out.append(
            f'"70% lower response time after Week 1" at {users} users: {verdict}: successful requests p50 '
            f"{before['p50']:,.0f} -> {after['p50']:,.0f} ms ({cut.get('p50', 0):.0%} lower), "
            f"p95 {before['p95']:,.0f} -> {after['p95']:,.0f} ms ({cut.get('p95', 0):.0%} lower); "
            f"ok req/s {legacy['ok_rps']:,.0f} -> {tuned['ok_rps']:,.0f}"
        )
    for p in points:
        http, db = p["latency_ms"]["p95"], p["db_ms"]["p95"]
        if not p["requests"]:
            out.append(f'"p95 under 100 ms": {p["setup"]} at {p["users"]} users: NO, no response in the measure')
            continue
        out.append(
            f'"p95 under 100 ms": {p["setup"]} at {p["users"]} users: HTTP p95 {http:,.0f} ms '
            f"({'yes' if http < CLAIM_P95_MS else 'NO'}), database time per request p95 {db:,.1f} ms "
            f"({'yes' if db < CLAIM_P95_MS else 'NO'})"
        )
    return out


def add_arguments(parser: argparse.ArgumentParser, users: str = "50,200,500", warm: float = 3.0) -> None:
    """The options every wrk-driven forum bench shares (this one, bench/forum_cache.py)."""
    parser.add_argument("--db", default="/tmp/forum1.db", help="the seeded file (made with --scale when missing)")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--users", default=users, help="comma-separated wrk connections (users)")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per point")
    parser.add_argument("--warm", type=float, default=warm, help="seconds of warm-up before each point's measure")
    parser.add_argument("--workers", type=int, default=2, help="forum serve --workers")
    parser.add_argument("--accounts", type=int, default=24, help="signed-in users the plan's writes come from")
    parser.add_argument("--think-ms", type=float, default=0.0, help="mean pause between a user's requests")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--generator-cpus", help="pin wrk to these CPUs (e.g. 1)")
    parser.add_argument("--server-cpus", help="pin the forum's processes and PostgreSQL to these CPUs (e.g. 0)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--capture-s", type=float, default=20.0, help="seconds of legacy traffic captured for tune")
    parser.add_argument("--json", dest="json_out", help="write the whole result to this file")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.add_argument("--setups", default=",".join(SETUPS))
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s points, 1 s warm-up, 3 s capture")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warm, args.capture_s = (
            min(args.duration, 3.0),
            min(args.warm, 1.0),
            min(args.capture_s, 3.0),
        )
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (scripts/setup.sh lists it)")
    setups = args.setups.split(",")
    unknown = sorted(set(setups) - set(SETUPS))
    if unknown:
        raise SystemExit(f"unknown setups {unknown}: choose from {', '.join(SETUPS)}")
    user_counts = [int(u) for u in args.users.split(",")]
    started = time.perf_counter()
    points: list[dict[str, Any]] = []
    result: dict[str, Any] = {"options": vars(args), "load_1m_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="forum-journey-") as tmp:
        work = Path(tmp)
        base, tokens = prepare_base(args, work)
        journey = Journey(args, work, base, work / "plan.tsv")
        result["mix"] = write_plan(base, tokens, args.seed, journey.plan)
        with journey:
            for setup in setups:
                points += run_setup(journey, setup, user_counts, result)
    result.update(points=points, prepared=journey.prepared, total_s=round(time.perf_counter() - started, 1))
    result["claims"] = claims(points)
    print()
    print(table(points))
    print()
    for line in result["claims"]:
        print(f"- {line}")
    print(f"\ntotal {result['total_s']:.0f} s; prepared: {json.dumps(result['prepared'])}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
