"""pgferry doctor and tune on the scale-1 forum: doctor time, and the captured workload replayed before
and after `tune --apply`.

    .venv/bin/python bench/doctor_forum.py [--db /tmp/forum1.db] [--users 4] [--duration 20] [--repeat 3]

Steps (all on copies in a temporary directory; the seeded file is only read):
1. `forum seed --scale 1 --seed 42` unless --db exists;
2. capture a legacy workload: `forum serve --mode legacy --capture` under `forum traffic` (bounded);
3. doctor, --repeat times, with the workload and without; baseline in the same run: reading the
   whole file once (sequential read, page cache warm), so the figure is also a ratio;
4. tune --apply on a copy: replay before and after (median ms per fingerprint x calls, and VM
   instructions), insert cost per table; then the rollback script, checked to restore the index set.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from forum.seed import generate
from forum.traffic.run import TrafficOptions, run_traffic
from forum.web.process import running_server
from pgferry.doctor import diagnose, load_workload
from pgferry.tune import index_set, run_script, tune


def read_file_s(path: Path) -> float:
    started = time.perf_counter()
    with path.open("rb") as handle:
        while handle.read(1 << 20):
            pass
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="/tmp/forum1.db")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    source = Path(args.db)
    if not source.exists():
        generate(source, scale=1, seed=42)
    out: dict = {"database": str(source), "size_bytes": source.stat().st_size, "load_1m": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="pgferry-bench-") as tmp:
        work = Path(tmp) / "forum.db"
        shutil.copyfile(source, work)
        log = Path(tmp) / "legacy.jsonl"
        with running_server(work, "legacy", capture=log) as server:
            traffic = run_traffic(
                server.url, TrafficOptions(users=args.users, duration_s=args.duration, seed=42, max_requests=5000)
            )
        view = load_workload(log)
        out["workload"] = {**view.to_dict(), "requests_sent": traffic.requests, "errors": traffic.errors}
        baseline = min(read_file_s(work) for _ in range(args.repeat))
        timings: dict[str, list[float]] = {"with_workload": [], "without_workload": []}
        for _ in range(args.repeat):
            started = time.perf_counter()
            report = diagnose(work, view)
            timings["with_workload"].append(time.perf_counter() - started)
            started = time.perf_counter()
            diagnose(work)
            timings["without_workload"].append(time.perf_counter() - started)
        out["doctor_s"] = {k: [round(v, 2) for v in vs] for k, vs in timings.items()}
        out["doctor_median_s"] = {k: round(statistics.median(vs), 2) for k, vs in timings.items()}
        out["read_whole_file_s"] = round(baseline, 3)
        out["doctor_vs_file_read"] = round(statistics.median(timings["with_workload"]) / baseline, 1)
        out["doctor_phases_s"] = {k: round(v, 2) for k, v in report.seconds.items()}
        out["findings"] = report.counts()
        tuned = Path(tmp) / "tuned.db"
        shutil.copyfile(work, tuned)
        original = index_set(tuned)
        script = Path(tmp) / "rollback.sql"
        result = tune(tuned, view, apply=True, rollback_path=script)
        data = result.to_dict()
        replay = data["replay"]
        out["tune"] = {
            "steps": len(result.plan.steps),
            "longest_lock_ms": data["applied"]["longest_lock_ms"],
            "replay_before_ms": replay["before_total_ms"],
            "replay_after_ms": replay["after_total_ms"],
            "speedup": replay["speedup"],
            "work_ratio_vm_instructions": replay["work_ratio"],
            "top_fingerprints": sorted(
                replay["fingerprints"], key=lambda f: -(f["before_median_ms"] or 0) * f["calls"]
            )[:5],
            "insert_cost_ms_per_1000": data["insert_cost_ms_per_1000"],
        }
        run_script(tuned, script.read_text())
        out["rollback_restores_index_set"] = index_set(tuned) == original
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
