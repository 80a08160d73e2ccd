"""The pause a cutover puts on the forum's users: `forum serve FILE --postgres DSN` under `forum traffic`
(50 users, closed loop), `pgferry migrate start` while the traffic runs (the copy, then following), then
`pgferry migrate cutover`, then traffic on for a while on PostgreSQL.

From the traffic's timeline (every request: when it was sent, endpoint, latency, status): the requests
in flight while the cutover's freeze was up (sent before it lifted, answered after it began) against
every other request of the same run (the baseline), writes and reads apart: p50, p99, max, and the
ratio to the baseline. Also the cutover's own phases and the pause it measured (freeze to commit), and
every error a user saw (the goal: none; pause p99 under 100 ms, never over 500 ms). The pause as the
writers saw it comes from the server's router (`/healthz`: database.router.pauses): for each write
transaction that waited out the freeze or was rerouted, the time from asking for the transaction to
having it; the request latencies add the server's own queueing under a closed loop.

PostgreSQL is a throwaway cluster on 127.0.0.1 (LocalCluster: fsync off, as in the tests).

    .venv/bin/python bench/cutover_pause.py                      # about a minute
    .venv/bin/python bench/cutover_pause.py --runs 3 --json bench/out/cutover.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from forum.seed import generate
from forum.traffic import TrafficOptions, run_traffic
from forum.traffic.mix import WRITES
from forum.traffic.stats import Sample
from forum.web.process import running_server
from pgferry.capture.cutover import Attempt, CutoverOptions, cutover
from pgferry.capture.migration import Follow, follow, start
from pgferry.migrate.options import CopyOptions
from pgferry.pg.cluster import throwaway_cluster

COPY_BUDGET_S = 10.0  # the traffic lasts long enough for a copy this long


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def at(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {"n": len(ordered), "p50": at(0.5), "p99": at(0.99), "max": round(ordered[-1], 2)}


def split(timeline: list[Sample], attempt: Attempt) -> dict[str, dict[str, dict[str, float]]]:
    """Requests in flight during the freeze against the others, writes and reads apart."""
    assert attempt.frozen_at is not None and attempt.pause_s is not None
    begin, end = attempt.frozen_at, attempt.frozen_at + attempt.pause_s
    out: dict[str, dict[str, list[float]]] = {"writes": {"during": [], "else": []}, "reads": {"during": [], "else": []}}
    for sample in timeline:
        kind = "writes" if sample.endpoint in WRITES else "reads"
        during = sample.at <= end and sample.at + sample.ms / 1000 >= begin
        out[kind]["during" if during else "else"].append(sample.ms)
    result: dict[str, dict[str, dict[str, float]]] = {}
    for kind, parts in out.items():
        result[kind] = {part: summary(values) for part, values in parts.items()}
        base = result[kind]["else"].get("p99") or 0
        during = result[kind]["during"].get("max")
        result[kind]["ratio"] = {"during_max_to_baseline_p99": round(during / base, 2) if base and during else 0}
    return result


def one_run(scale: float, users: int, before_s: float, after_s: float, seed: int) -> dict[str, Any]:
    with throwaway_cluster() as cluster, tempfile.TemporaryDirectory(prefix="cutover-bench-") as tmp:
        dsn = cluster.dsn()
        path = Path(tmp) / "forum.db"
        generate(path, scale=scale, seed=seed, force=True)
        with running_server(path, "optimized", extra_args=("--postgres", dsn)) as server:
            traffic: dict[str, Any] = {}
            duration = 2.0 + COPY_BUDGET_S + before_s + after_s  # the figures stop at the cutover's end + after_s
            opts = TrafficOptions(users, duration, seed, timeline=True)

            def load() -> None:
                traffic["report"] = run_traffic(server.url, opts)

            loader = threading.Thread(target=load, daemon=True)
            loader.start()
            time.sleep(2.0)  # users signed up, writing
            started_at = time.monotonic()
            start(path, dsn, CopyOptions(jobs=1))  # the copy while users write, then caught up
            copy_s = time.monotonic() - started_at
            stop = threading.Event()
            follower = threading.Thread(target=follow, args=(path, dsn), kwargs={"how": Follow(stop)})
            follower.start()
            time.sleep(before_s)
            report = cutover(path, dsn, options=CutoverOptions())
            time.sleep(after_s)
            health = httpx.get(f"{server.url}/healthz", timeout=10).json()
            stop.set()
            follower.join(30)
            cut_at = report.attempts[-1].frozen_at or 0
            loader.join(duration + 60)
            result = traffic["report"]
            if not result.timeline or result.timeline[-1].at < cut_at:
                raise SystemExit(f"the copy took {copy_s:.1f} s: the traffic ended before the cutover; lower --scale")
            samples = [
                s for s in result.timeline or () if s.at <= cut_at + (report.attempts[-1].pause_s or 0) + after_s
            ]
            errors = [s for s in samples if not isinstance(s.status, int) or s.status >= 400]
            return {
                "scale": scale,
                "users": users,
                "copy_s": round(copy_s, 2),
                "attempts": [a.__dict__ for a in report.attempts],
                "requests": len(samples),
                "errors": len(errors),
                "errors_by_status": sorted({str(s.status) for s in errors}),
                "error_samples": [s.to_dict() for s in errors[:5]],
                "server_log_tail": server.log_path.read_text(errors="replace")[-3000:] if errors else "",
                "latency_ms": split(samples, report.attempts[-1]),
                "writer_pauses": health["database"].get("router", {}).get("pauses"),
                "health": health,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.02)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--before", type=float, default=5.0, help="seconds of following before the cutover")
    parser.add_argument("--after", type=float, default=5.0, help="seconds of traffic on PostgreSQL after it")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runs = [one_run(args.scale, args.users, args.before, args.after, args.seed + i) for i in range(args.runs)]
    for run in runs:
        last = run["attempts"][-1]
        w = run["latency_ms"]["writes"]
        print(
            f"scale {run['scale']}, {run['users']} users: {run['requests']} requests, {run['errors']} errors; "
            f"cutover {last['outcome']} after {len(run['attempts'])} attempt(s), pause {last['pause_s'] * 1000:.1f} ms "
            f"(phases {', '.join(f'{k} {v * 1000:.1f}' for k, v in last['phases'].items())} ms)"
        )
        print(f"  the router's writers that waited (freeze or reroute), ms: {run['writer_pauses']}")
        print(f"  writes in flight during the freeze: {w['during']}; other writes: {w['else']}")
        print(f"  reads in flight during the freeze: {run['latency_ms']['reads']['during']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
