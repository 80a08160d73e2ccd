"""The plan's "10,000 concurrent connections": 10,000 client connections held open through PgBouncer
1.18 (transaction pooling) while forum traffic runs over about 20 server connections.

One throwaway PostgreSQL cluster; a seeded forum (scale 0.1) copied with a default `pgferry copy`;
`forum serve --pgbouncer --pool-size 20` in its own process on PgBouncer (default_pool_size 20, so
the forum's 20 client connections map onto at most 20 server ones); `forum traffic` (the library
call) in this process. After an unmeasured warm-up, three phases of the same traffic: without the
idle clients, with 10,000 idle clients held open (each logged in with SCRAM and ran one `SELECT 1`,
then stays idle), and without them again. The result is the ratio of p50/p95 with them over without
them (both baselines' mean), plus errors, PgBouncer's RSS (/proc/PID/status) and SHOW MEM while they are held.

The idle clients live in --holder-processes processes (asyncio, psycopg.AsyncConnection), each with
its open-file limit raised; PgBouncer's limit is raised in the process it starts (LocalPgBouncer's
`nofile`, a preexec_fn setrlimit). Bounded: each phase lasts --duration seconds; connecting has a
deadline.

    .venv/bin/python bench/pgbouncer_10k.py --clients 10000 --duration 15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg

from forum.seed import generate
from forum.traffic import TrafficOptions, run_traffic
from forum.web.process import running_server
from pgferry.dsn import with_database
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database
from pgferry.pg.cluster import throwaway_cluster
from pgferry.pg.pgbouncer import LocalPgBouncer, throwaway_pgbouncer

CONNECT_DEADLINE_S = 60.0  # for all of them: on a busy machine fewer are held, and the report says how many
CONNECT_CONCURRENCY = 100  # logins in flight per holder process (SCRAM costs the client a few ms of CPU each)


def raise_open_files(needed: int) -> None:
    """Raise this process's soft open-file limit to the hard one, which must allow `needed`."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"the open-file hard limit is {hard}, below the {needed} needed: raise it (ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def hold(dsn: str, count: int, release: Any, report: Any) -> None:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    held: list[psycopg.AsyncConnection[Any]] = []
    errors: dict[str, int] = {}

    async def one() -> None:
        async with gate:
            try:
                conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, prepare_threshold=None)
                await conn.execute("SELECT 1")
                held.append(conn)
            except psycopg.Error as exc:
                key = str(exc).strip().splitlines()[0][:80] if str(exc).strip() else type(exc).__name__
                errors[key] = errors.get(key, 0) + 1

    t0 = time.monotonic()
    try:
        await asyncio.wait_for(asyncio.gather(*(one() for _ in range(count))), CONNECT_DEADLINE_S)
    except TimeoutError:
        errors["connect deadline passed"] = count - len(held)
    report.put({"held": len(held), "errors": errors, "connect_s": round(time.monotonic() - t0, 1)})
    while not release.is_set():  # idle: the connections stay open, nothing is sent
        await asyncio.sleep(0.2)
    for conn in held:
        await conn.close()


def holder(dsn: str, count: int, release: Any, report: Any) -> None:
    raise_open_files(count + 100)
    asyncio.run(hold(dsn, count, release, report))


def traffic(url: str, users: int, duration: float, think_ms: float, seed: int) -> dict[str, Any]:
    report = run_traffic(url, TrafficOptions(users=users, duration_s=duration, seed=seed, think_ms=think_ms)).to_dict()
    return {
        "requests": report["requests"],
        "throughput_rps": report["throughput_rps"],
        "errors": report["errors"],
        "errors_by_status": report["errors_by_status"],
        "p50_ms": report["latency_ms"]["p50"],
        "p95_ms": report["latency_ms"]["p95"],
        "p99_ms": report["latency_ms"]["p99"],
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def bouncer_memory(bouncer: LocalPgBouncer) -> dict[str, Any]:
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{bouncer.pid}/status").read_text().splitlines() if ":" in line
    )
    mem = bouncer.show("MEM")
    pools = [p for p in bouncer.show("POOLS") if p["database"] != "pgbouncer"]
    return {
        "rss_mib": round(int(status["VmRSS"].split()[0]) / 1024, 1),
        "peak_rss_mib": round(int(status["VmHWM"].split()[0]) / 1024, 1),
        "show_mem_total_mib": round(sum(int(row["memtotal"]) for row in mem) / 2**20, 1),
        "show_mem": {row["name"]: {"used": row["used"], "memtotal": row["memtotal"]} for row in mem},
        "clients": sum(int(p["cl_active"]) + int(p["cl_waiting"]) for p in pools),
        "server_connections": sum(int(p["sv_active"]) + int(p["sv_idle"]) + int(p["sv_used"]) for p in pools),
        "max_wait_s": max((int(p["maxwait"]) for p in pools), default=0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10_000, help="idle client connections to hold")
    parser.add_argument("--holder-processes", type=int, default=4)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of traffic per phase")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of unmeasured traffic first")
    parser.add_argument("--users", type=int, default=20, help="simulated forum users")
    parser.add_argument("--think-ms", type=float, default=20.0, help="mean pause between a user's requests")
    parser.add_argument("--server-pool", type=int, default=20, help="PgBouncer's default_pool_size = forum's pool")
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    started = time.monotonic()
    raise_open_files(args.clients + 2_000)  # what PgBouncer, started from here, is given (its nofile)
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="pgbouncer-10k-") as tmp, throwaway_cluster() as cluster:
        seeded = Path(tmp) / "forum.db"
        generate(seeded, scale=args.scale, seed=args.seed)
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE forum")
            admin.execute("ALTER DATABASE forum SET statement_timeout = '30s'")  # 1.18 passes no startup options
        copy_database(seeded, with_database(cluster.dsn(), "forum"), CopyOptions(jobs=2))
        with throwaway_pgbouncer(
            cluster.dsn(),
            default_pool_size=args.server_pool,
            max_client_conn=args.clients + 500,
            listen_backlog=4096,
            log_connections=False,
            nofile=args.clients + 2_000,
        ) as bouncer:
            target = bouncer.dsn("forum")
            extra = ("--pgbouncer", "--pool-size", str(args.server_pool))
            with running_server(target, "optimized", extra_args=extra) as server:

                def phase(name: str) -> dict[str, Any]:
                    result = {"phase": name, **traffic(server.url, args.users, args.duration, args.think_ms, args.seed)}
                    result["bouncer"] = bouncer_memory(bouncer)
                    print(json.dumps(result), flush=True)
                    return result

                traffic(server.url, args.users, args.warmup, args.think_ms, args.seed + 1)  # warm caches, not measured
                before = phase("without idle clients")
                release, report = ctx.Event(), ctx.Queue()
                share = [args.clients // args.holder_processes] * args.holder_processes
                share[0] += args.clients - sum(share)
                holders = [ctx.Process(target=holder, args=(target, n, release, report)) for n in share]
                for p in holders:
                    p.start()
                parts = [report.get(timeout=CONNECT_DEADLINE_S + 30) for _ in holders]
                errors: Counter[str] = Counter()
                for part in parts:
                    errors.update(part["errors"])
                held = {
                    "held": sum(p["held"] for p in parts),
                    "connect_s": max(p["connect_s"] for p in parts),
                    "errors": dict(errors),
                    "bouncer": bouncer_memory(bouncer),
                }
                print(json.dumps({"phase": "idle clients connected", **held}), flush=True)
                during = phase(f"with {held['held']:,} idle clients")
                release.set()
                for p in holders:
                    p.join(30)
                after = phase("without idle clients, again")
            assert server.process.returncode == 0, server.log()[-2000:]
    base = {k: (before[k] + after[k]) / 2 for k in ("p50_ms", "p95_ms", "throughput_rps")}
    print()
    print("| phase | requests | req/s | errors | p50 ms | p95 ms | p99 ms | PgBouncer clients | RSS MiB | load |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in (before, during, after):
        b = r["bouncer"]
        print(
            f"| {r['phase']} | {r['requests']:,} | {r['throughput_rps']:.0f} | {r['errors']} | {r['p50_ms']:.1f}"
            f" | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {b['clients']:,} | {b['rss_mib']} | {r['load_avg_1m']} |"
        )
    print(
        f"\nwith / without: p50 {during['p50_ms'] / base['p50_ms']:.2f}x, p95 {during['p95_ms'] / base['p95_ms']:.2f}x,"
        f" req/s {during['throughput_rps'] / base['throughput_rps']:.2f}x; {held['held']:,} of {args.clients:,} idle"
        f" clients held (connected in {held['connect_s']} s, errors {held['errors'] or 'none'}); PgBouncer RSS"
        f" {held['bouncer']['rss_mib']} MiB with them (peak {during['bouncer']['peak_rss_mib']} MiB, SHOW MEM"
        f" {held['bouncer']['show_mem_total_mib']} MiB), {during['bouncer']['server_connections']} server"
        f" connections; {time.monotonic() - started:.0f} s in all"
    )


if __name__ == "__main__":
    main()
