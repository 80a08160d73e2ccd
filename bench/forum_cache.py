"""The forum on PostgreSQL with and without the caches (L1 per process, L2 Redis) under the read-heavy
mix at 50, 200 and 500 users: throughput, p95, hit rate per level, database statements per request,
and a stale-read checker that writes and reads back.

The machinery of bench/forum_journey.py: the scale-1 forum, tuned (the plan's Week 1) and copied with a
default `pgferry copy` into a throwaway cluster (fsync on); a plan of requests drawn from the read-heavy
mix (forum.traffic.mix.READ_HEAVY, about 6% writes) that `wrk` replays with bench/forum_journey.lua, so
the Python servers get the CPU. Two of the journey's setups, the same plan and the same signed-in users:

  postgres   `forum serve --workers W` on PostgreSQL direct (the journey's setup (c))
  cached     the same with `--redis URL`: L1 in each worker, L2 in a throwaway redis-server (e)

Both setups run at once; each point is one wrk run of warm-up + measured seconds at U connections, the
setups in turn at each user count, --rounds times (a machine whose speed drifts during the run then
shifts both alike). Hit rates are the workers'
counter deltas over the whole wrk run (/healthz of every worker); statements per request come from
Server-Timing. The topic view's share served without the database is 1 - its statements per request
cached over uncached.

The checker, beside wrk: its own topic and wiki page; each round it replies (or edits the page), and
once the write's response is back reads it three times over fresh connections (any worker): each read
must show the write. A read that does not is a stale read.

    .venv/bin/python bench/forum_cache.py                    # 50, 200, 500 users, 20 s each, 2 rounds
    .venv/bin/python bench/forum_cache.py --trigram          # with the search's trigram indexes (both setups)
    .venv/bin/python bench/forum_cache.py --users 50 --duration 5 --capture-s 3    # smoke
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg

from forum.traffic.mix import READ_HEAVY
from forum.web.process import answering_pids
from forum_journey import (
    SETUPS,
    Journey,
    Target,
    add_arguments,
    prepare_base,
    run_point,
    table,
    write_plan,
)
from pgferry.runtime.cache import hit_rate

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
        return httpx.Client(base_url=self.url, timeout=60, limits=httpx.Limits(max_keepalive_connections=0))

    def run(self) -> None:
        with self._client() as c:
            name = f"checker{os.getpid()}{time.monotonic_ns() % 10**9}"
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
    find the checker's topic and page too, so a reply count above the checker's own is not stale, nor
    is a page another user edited since: stale is a count below it, or one of the checker's own earlier
    versions of the page."""
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


def measure(j: Journey, setups: list[str], users: list[int], rounds: int) -> list[dict[str, Any]]:
    """Every setup running at once (an idle one costs next to nothing), measured in turn at each user
    count, `rounds` times: a machine that slows or speeds up during the run then shifts every setup
    alike instead of the ones measured last."""
    points = []
    with contextlib.ExitStack() as stack:
        targets = {setup: stack.enter_context(SETUPS[setup](j)) for setup in setups}
        for count in users:
            for round_ in range(rounds):
                for setup, target in targets.items():
                    point = measure_point(j, setup, target, count)
                    point["round"] = round_ + 1
                    print(json.dumps(point), flush=True)
                    points.append(point)
    return points


def measure_point(j: Journey, setup: str, target: Target, count: int) -> dict[str, Any]:
    """One wrk run with the checker beside it, and the cache counters over it."""
    checker = Checker(target.url)

    @contextlib.contextmanager
    def checking() -> Iterator[None]:
        checker.start()
        try:
            yield
        finally:
            checker.stop.set()
            checker.join(timeout=120)

    before = cache_levels(target.url, target.workers)
    point = run_point(j, setup, target, count, during=checking)
    levels = level_deltas(before, cache_levels(target.url, target.workers))
    point.update(
        levels=levels,
        hit_rate={lv: round(r, 3) for lv, c in levels.items() if (r := hit_rate(c)) is not None},
        checker={"checks": checker.checks, "stale": checker.stale, "errors": checker.errors},
        server_errors="Traceback" in target.log(),
    )
    return point


def ratios(points: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Cached over uncached per user count: throughput (over all rounds, and each round's pair), p95, and
    the topic view's share served without the database."""
    out: dict[int, dict[str, Any]] = {}
    for users in sorted({p["users"] for p in points}):
        plain = [p for p in points if p["users"] == users and p["setup"] == "postgres"]
        cached = [p for p in points if p["users"] == users and p["setup"] == "cached"]
        if not plain or not cached:
            continue
        views = [p["statements_per_topic_view"] for p in cached if p["statements_per_topic_view"] is not None]
        out[users] = {
            "throughput_x": round(
                sum(p["throughput_rps"] for p in cached) / sum(p["throughput_rps"] for p in plain), 2
            ),
            "throughput_x_per_round": [
                round(c["throughput_rps"] / u["throughput_rps"], 2) for u, c in zip(plain, cached, strict=False)
            ],
            "p95_ratio": round(
                max(p["latency_ms"]["p95"] for p in cached) / max(p["latency_ms"]["p95"] for p in plain), 2
            ),
            "topic_view_served_without_db": round(1 - max(views), 3) if views else None,
        }
    return out


TRIGRAM = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ON forum_topics USING gin (title gin_trgm_ops)",
    "CREATE INDEX ON wiki_pages USING gin (title gin_trgm_ops)",
    "ANALYZE forum_topics",
    "ANALYZE wiki_pages",
)


def trigram_indexes(dsn: str) -> list[str]:
    """The search's indexes (what `pgferry advise` proposes for its ILIKE '%...%'), and the plan they give."""
    with psycopg.connect(dsn, autocommit=True) as pg:
        for ddl in TRIGRAM:
            pg.execute(ddl)
        rows = pg.execute(
            "EXPLAIN SELECT id FROM forum_topics WHERE title ILIKE '%lock%' UNION ALL"
            " SELECT id FROM wiki_pages WHERE status = 'published' AND title ILIKE '%lock%'"
        ).fetchall()
    return [r[0] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, warm=10.0)
    parser.add_argument(
        "--trigram", action="store_true", help="give the copy the pg_trgm indexes `pgferry advise` proposes for search"
    )
    parser.add_argument("--setups", default="postgres,cached", help="comma-separated: postgres, cached")
    parser.add_argument("--rounds", type=int, default=2, help="points per setup and user count, in turn")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (scripts/setup.sh lists it)")
    users = [int(u) for u in args.users.split(",")]
    started = time.perf_counter()
    result: dict[str, Any] = {"options": vars(args), "load_1m_before": os.getloadavg()[0]}
    points: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="forum-cache-") as tmp:
        work = Path(tmp)
        base, tokens = prepare_base(args, work)
        journey = Journey(args, work, base, work / "plan.tsv")
        result["mix"] = write_plan(base, tokens, args.seed, journey.plan, weights=READ_HEAVY)
        with journey:
            if args.trigram:
                result["trigram"] = trigram_indexes(journey.postgres_copy())
            points = measure(journey, args.setups.split(","), users, args.rounds)
    result.update(points=points, ratios=ratios(points), prepared=journey.prepared)
    result["total_s"] = round(time.perf_counter() - started, 1)
    print()
    print(table(points))
    print()
    for point in points:
        if point["setup"] == "cached":
            rates = " / ".join(f"{lv} {r:.2f}" for lv, r in point["hit_rate"].items())
            print(f"cached at {point['users']} users: hit rate {rates}; checker {point['checker']}")
    print(json.dumps({"ratios": result["ratios"], "total_s": result["total_s"]}))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
