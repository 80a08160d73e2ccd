"""The pause a cutover puts on the forum's users (forum.live): `forum serve FILE --postgres DSN` under
`forum traffic` (50 users, closed loop), `pgferry migrate start` while the traffic runs (the copy, then
following), then `pgferry migrate cutover`, then traffic on PostgreSQL for a while.

Reported: every error a user saw (the goal: none); the pause as the writers saw it, from the server's
router (`/healthz`: database.router.pauses: each write transaction that waited out the freeze or was
rerouted, from asking for its transaction to having it; the goal: p99 under 100 ms, never over 500 ms);
the cutover's own phases; and request latencies, in flight during the freeze against all the others in
the same run (with a closed loop on one server process they include its queueing).

PostgreSQL is a throwaway cluster on 127.0.0.1 (LocalCluster: fsync off, as in the tests).

    .venv/bin/python bench/cutover_pause.py                      # about half a minute
    .venv/bin/python bench/cutover_pause.py --runs 3 --json bench/out/cutover.json
    .venv/bin/python bench/cutover_pause.py --cycles 5 --gap 3      # cutover and rollback 5 times, then cutover
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from forum.live import live_migration
from forum.seed import generate
from pgferry.pg.cluster import throwaway_cluster


def one_run(scale: float, users: int, gap_s: float, seed: int, cycles: int) -> dict[str, Any]:
    with throwaway_cluster() as cluster, tempfile.TemporaryDirectory(prefix="cutover-bench-") as tmp:
        path = Path(tmp) / "forum.db"
        generate(path, scale=scale, seed=seed, force=True)
        steps = ("cutover", "rollback") * cycles + ("cutover",)
        run = live_migration(path, cluster.dsn(), users=users, seed=seed, gap_s=gap_s, steps=steps)
        return {"scale": scale, "users": users, **run.as_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.02)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--gap", type=float, default=5.0, help="seconds of traffic before and after the cutover")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--cycles", type=int, default=0, help="cutover + rollback pairs before the last cutover")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs = [one_run(args.scale, args.users, args.gap, args.seed + i, args.cycles) for i in range(args.runs)]
    for run in runs:
        last = run["switches"][-1]["attempts"][-1]
        phases = ", ".join(f"{k} {v * 1000:.1f}" for k, v in last["phases"].items())
        print(
            f"scale {run['scale']}, {run['users']} users: {run['requests']} requests, {run['errors']} errors; "
            f"cutover {last['outcome']}, freeze to commit {last['pause_s'] * 1000:.1f} ms (phases {phases} ms)"
        )
        for switch in run["switches"]:
            pause = switch["pause_s"]
            print(f"  {switch['step']}: freeze to commit {'-' if pause is None else f'{pause * 1000:.1f} ms'}")
        print(f"  writers that waited (the router's pauses), ms: {run['writer_pauses']}")
        print(f"  writes in flight during the freeze: {run['latency_ms']['writes']['during']}")
        print(f"  other writes: {run['latency_ms']['writes']['else']}")
        print(
            f"  acknowledged writes read back: {run['acknowledged_writes']}, not as acknowledged: "
            f"{len(run['not_as_acknowledged'])}; SQLite and PostgreSQL identical at the end: {run['sides_identical']}"
        )
        for sample in run["error_samples"]:
            print(f"  error a user saw: {sample}")
        for text in run["server_errors"]:
            print(f"  server log: {text}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
