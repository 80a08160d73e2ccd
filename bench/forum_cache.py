"""Forum traffic on PostgreSQL with and without the caches (L1 per process, L2 Redis), at 50, 200 and
500 users: throughput, p95, hit rate per level, database statements per request, and a stale-read
checker that writes and reads back.

One throwaway PostgreSQL cluster and one throwaway Redis; a seeded forum copied with a default
`pgferry copy`; for each user count, `forum serve --workers W` twice, uncached and with `--redis`
(Redis flushed first: both start cold), each given an unmeasured warm-up and then a measured phase
of the read-heavy mix (forum.traffic.mix.READ_HEAVY, about 6% writes). Hit rates are the workers'
counter deltas over the measured phase (/healthz, every worker); statements per request come from
Server-Timing. The topic view's share served without the database is 1 - its statements per request
cached over uncached.

The checker, beside the traffic: its own topic and wiki page; each round it replies (or edits the
page), and once the write's response is back reads it three times over fresh connections (any
worker): each read must show the write. A read that does not is a stale read.

    .venv/bin/python bench/forum_cache.py --duration 15 --warmup 5
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from forum.seed import generate
from forum.traffic import TrafficOptions, run_traffic
from forum.traffic.mix import READ_HEAVY
from forum.web.process import answering_pids, running_server
from pgferry.dsn import with_database
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database
from pgferry.pg.cluster import throwaway_cluster
from pgferry.runtime.cache import hit_rate
from pgferry.runtime.cache.server import throwaway_redis

READS_PER_WRITE = 3


class Checker(threading.Thread):
    """Writes, then reads back over fresh connections; counts reads that miss the write."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.checks = 0
        self.stale = 0
        self.errors = 0

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, limits=httpx.Limits(max_keepalive_connections=0))

    def run(self) -> None:
        with self._client() as c:
            name = f"checker{os.getpid()}{time.monotonic_ns() % 10**6}"
            body = {"username": name, "email": f"{name}@example.org", "password": "correct horse"}
            me = {"Authorization": f"Bearer {c.post('/auth/register', json=body).json()['token']}"}
            category = c.get("/categories").json()[0]["id"]
            topic = c.post(
                "/topics", json={"category_id": category, "title": name, "content": "x", "tags": []}, headers=me
            ).json()["id"]
            slug = f"{name}-page"
            c.post("/wiki", json={"slug": slug, "title": name, "content": "v0"}, headers=me)
            round_ = 0
            while not self.stop.is_set() and round_ < 10_000:
                round_ += 1
                try:
                    if round_ % 2:
                        r = c.post(f"/topics/{topic}/replies", json={"content": f"r{round_}"}, headers=me)
                        want = (round_ + 1) // 2
                        ok = r.status_code == 201 and self._reads(c, f"/topics/{topic}", want)
                    else:
                        r = c.put(f"/wiki/{slug}", json={"content": f"v{round_}"}, headers=me)
                        ok = r.status_code == 200 and self._reads(c, f"/wiki/{slug}", f"v{round_}")
                    if not ok and r.status_code >= 400:
                        self.errors += 1
                except httpx.HTTPError:
                    self.errors += 1

    def _reads(self, c: httpx.Client, path: str, want: int | str) -> bool:
        fresh = True
        for _ in range(READS_PER_WRITE):
            r = c.get(path, params={"limit": 50} if isinstance(want, int) else None)
            if r.status_code != 200:
                self.errors += 1
                continue
            self.checks += 1
            if older(r.json(), want):
                self.stale += 1
                fresh = False
        return fresh


def older(read: dict[str, Any], want: int | str) -> bool:
    """Whether a read shows a state from before the checker's returned write. The traffic's users may
    find the checker's topic and page too (they discover the forum as the checker starts), so a reply
    count above the checker's own is not stale, nor is a page another user edited since: stale is a
    count below it, or one of the checker's own earlier versions of the page."""
    if isinstance(want, int):  # the topic's reply count, not its page of replies: a page holds 200 at most
        return int(read["topic"]["reply_count"]) < want
    content = str(read["content"])
    return content != want and content.startswith("v") and content[1:].isdigit()


def cache_levels(url: str, workers: int) -> dict[int, dict[str, dict[str, int]]]:
    """pid -> its cache counters (every worker's /healthz)."""
    answered = answering_pids(url, workers, within_s=30)
    return {pid: r.json()["cache"]["levels"] for pid, r in answered.items() if r.json().get("cache")}


def level_deltas(before: dict[int, Any], after: dict[int, Any]) -> dict[str, dict[str, int]]:
    total: dict[str, dict[str, int]] = {}
    for pid, levels in after.items():
        for level, counts in levels.items():
            into = total.setdefault(level, dict.fromkeys(counts, 0))
            for event, n in counts.items():
                into[event] += n - before.get(pid, {}).get(level, {}).get(event, 0)
    return total


def phase(url: str, users: int, duration: float, seed: int) -> dict[str, Any]:
    opts = TrafficOptions(users=users, duration_s=duration, seed=seed, mix=READ_HEAVY)
    return run_traffic(url, opts).to_dict()


def one_run(dsn: str, redis_url: str | None, args: argparse.Namespace, users: int) -> dict[str, Any]:
    extra = ("--pool-size", str(args.pool_size), *(("--redis", redis_url) if redis_url else ()))
    with running_server(dsn, "optimized", extra_args=extra, workers=args.workers) as srv:
        phase(srv.url, users, args.warmup, args.seed)
        before = cache_levels(srv.url, args.workers) if redis_url else {}
        checker = Checker(srv.url)
        checker.start()
        load_before = os.getloadavg()[0]
        report = phase(srv.url, users, args.duration, args.seed + 1)
        checker.stop.set()
        checker.join(timeout=60)
        after = cache_levels(srv.url, args.workers) if redis_url else {}
    levels = level_deltas(before, after) if redis_url else {}
    view = report["by_endpoint"].get("topic_view", {})
    return {
        "users": users,
        "cached": redis_url is not None,
        "requests": report["requests"],
        "errors": report["errors"],
        "throughput_rps": report["throughput_rps"],
        "p50_ms": report["latency_ms"]["p50"],
        "p95_ms": report["latency_ms"]["p95"],
        "statements_per_request": report["queries_per_request"],
        "topic_view_statements_per_request": view.get("queries_per_request"),
        "hit_rate": {lv: (round(r, 3) if r is not None else None) for lv, c in levels.items() if (r := hit_rate(c))}
        if levels
        else {},
        "levels": levels,
        "checker": {"checks": checker.checks, "stale": checker.stale, "errors": checker.errors},
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "server_errors": "Traceback" in srv.log(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of unmeasured traffic first")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool-size", type=int, default=10, help="per worker")
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    started = time.monotonic()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="forum-cache-") as tmp, throwaway_cluster() as cluster:
        seeded = Path(tmp) / "forum.db"
        generate(seeded, scale=args.scale, seed=args.seed)
        with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE forum")
        dsn = with_database(cluster.dsn(), "forum")
        copy_database(seeded, dsn, CopyOptions(jobs=2))
        with throwaway_redis() as redis_server:
            client = __import__("redis").Redis.from_url(redis_server.url)
            for users in args.users:
                for cached in (False, True):
                    client.flushall()
                    runs.append(one_run(dsn, redis_server.url if cached else None, args, users))
                    print(json.dumps(runs[-1]), flush=True)
    ratios = {}
    for users in args.users:
        plain, cached_run = (next(r for r in runs if r["users"] == users and r["cached"] is c) for c in (False, True))
        ratios[users] = {
            "throughput_x": round(cached_run["throughput_rps"] / plain["throughput_rps"], 2),
            "p95_ratio": round(cached_run["p95_ms"] / plain["p95_ms"], 2),
            "topic_view_served_without_db": round(
                1 - cached_run["topic_view_statements_per_request"] / plain["topic_view_statements_per_request"], 3
            ),
        }
    print(json.dumps({"ratios": ratios, "cpus": os.cpu_count(), "elapsed_s": round(time.monotonic() - started, 1)}))


if __name__ == "__main__":
    main()
