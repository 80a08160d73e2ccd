"""The most any cache can give the forum's read-heavy mix on this machine: its cost split by what a
cache can serve and what it cannot, each part measured alone.

The read-heavy mix (forum.traffic.mix.READ_HEAVY) is 86% public reads a cache can answer (topic views,
topic lists, wiki pages) and 14% it cannot (writes, search, and per-user reads that still check the
session). Both setups of bench/forum_cache.py run at once; wrk replays, in turn:

  mix        the whole mix, on both setups: what bench/forum_cache.py measures (the actual ratio)
  cacheable  only the cacheable reads, on the cached setup: after the warm-up every one is an L1 hit,
             nothing invalidates them (no writes): the cost of a perfect hit
  rest       only the rest, on both setups: what a cache cannot remove (on the cached setup with the
             cost of invalidating; on the uncached one without)

A request's cost is the CPU it takes on the whole machine (forum workers, PostgreSQL, Redis, wrk)
divided by the requests answered: cores busy over throughput. Both setups are CPU-bound on the same
cores, so the cached forum's throughput over the uncached one's is at most

    cost(uncached, mix) / (share_cacheable x cost(cached, cacheable) + share_rest x cost(setup, rest))

with the rest's cost as the uncached setup pays it (a cache whose invalidation were free: the bound
for any cache), and as the cached one does (ours). Amdahl's law, with every term measured.

    .venv/bin/python bench/cache_ceiling.py --json bench/out/cache_ceiling.json
    .venv/bin/python bench/cache_ceiling.py --trigram --json bench/out/cache_ceiling_trigram.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from forum.traffic.mix import READ_HEAVY
from forum_cache import trigram_indexes
from forum_journey import SETUPS, Journey, add_arguments, prepare_base, run_point, write_plan

CACHEABLE = frozenset({"topic_view", "topic_list", "wiki_view"})  # the reads forum.web.shortcut serves
RUNS = (("mix", "postgres"), ("mix", "cached"), ("cacheable", "cached"), ("rest", "postgres"), ("rest", "cached"))


def cost(point: dict[str, Any]) -> float:
    """Core-milliseconds per answered request, the whole machine."""
    return 1000 * point["cores_busy"] / point["throughput_rps"]


def bounds(costs: dict[tuple[str, str], float]) -> dict[str, float]:
    share = sum(w for name, w in READ_HEAVY.items() if name in CACHEABLE) / sum(READ_HEAVY.values())
    hit = share * costs[("cacheable", "cached")]
    uncached = costs[("mix", "postgres")]
    return {
        "share_cacheable": round(share, 3),
        "actual_x": round(uncached / costs[("mix", "cached")], 2),
        "ceiling_ours_x": round(uncached / (hit + (1 - share) * costs[("rest", "cached")]), 2),
        "ceiling_any_cache_x": round(uncached / (hit + (1 - share) * costs[("rest", "postgres")]), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, users="50", warm=10.0)
    parser.add_argument("--trigram", action="store_true", help="the search's pg_trgm indexes, in both setups")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (scripts/setup.sh lists it)")
    started = time.perf_counter()
    result: dict[str, Any] = {"options": vars(args), "load_1m_before": os.getloadavg()[0]}
    users = int(args.users.split(",")[0])
    with tempfile.TemporaryDirectory(prefix="cache-ceiling-") as tmp:
        work = Path(tmp)
        base, tokens = prepare_base(args, work)
        plans = {
            "mix": READ_HEAVY,
            "cacheable": {k: v for k, v in READ_HEAVY.items() if k in CACHEABLE},
            "rest": {k: v for k, v in READ_HEAVY.items() if k not in CACHEABLE},
        }
        paths = {name: work / f"plan-{name}.tsv" for name in plans}
        result["plans"] = {
            name: write_plan(base, tokens, args.seed, paths[name], weights=w) for name, w in plans.items()
        }
        points: list[dict[str, Any]] = []
        with Journey(args, work, base, paths["mix"]) as journey:
            if args.trigram:
                result["trigram"] = trigram_indexes(journey.postgres_copy())
            targets = {setup: journey.keep(SETUPS[setup](journey)) for setup in ("postgres", "cached")}
            for plan, setup in RUNS:
                journey.plan = paths[plan]
                point = run_point(journey, f"{setup}-{plan}", targets[setup], users)
                point.update(plan=plan, cost_core_ms=round(cost(point), 3))
                print(json.dumps({k: point[k] for k in ("setup", "throughput_rps", "cores_busy", "cost_core_ms")}))
                points.append(point)
    costs = {(p["plan"], p["setup"].split("-")[0]): cost(p) for p in points}
    result.update(points=points, bounds=bounds(costs), total_s=round(time.perf_counter() - started, 1))
    print()
    print("| plan | setup | req/s | cores busy | core-ms per request | CPU s |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for p in points:
        cpu = ", ".join(f"{part} {v:.1f}" for part, v in p["cpu_s"].items())
        print(
            f"| {p['plan']} | {p['setup'].split('-')[0]} | {p['throughput_rps']:,.1f} | {p['cores_busy']:.2f} | "
            f"{p['cost_core_ms']:.3f} | {cpu} |"
        )
    print()
    print(json.dumps(result["bounds"]))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
