"""Seed throughput and peak memory: `forum seed` at a given scale, in a fresh child process.

Runs the library call (forum.seed.generate) in a fresh interpreter per run and prints, per run, one
JSON line: rows, seconds and rows/s (total rows / wall time of generate(), index builds included),
the process's wall and CPU time (interpreter start-up included), peak RSS and the 1-minute load
average (the machine is shared: a high load means other work was competing for the two cores).

    .venv/bin/python bench/seed_throughput.py --scale 1 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = """
import json, sys
from forum.seed import generate
r = generate(sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), force=True)
print(json.dumps({"rows": r.total_rows, "seconds": r.seconds, "bytes": r.bytes}))
"""


def run_once(scale: float, seed: int, directory: str) -> dict[str, float]:
    """One generate() in a fresh interpreter: rows, seconds, rows/s, peak RSS and CPU seconds.

    os.wait4 gives this run's own rusage: ru_maxrss is the largest of the interpreter and the
    processes it waited for (the batch process), so it is the peak of either, not their sum.
    """
    path = os.path.join(directory, "bench.db")
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", CHILD, path, str(scale), str(seed)], stdout=out)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            raise SystemExit(f"generate failed with exit code {child.returncode}")
        out.seek(0)
        result = json.loads(out.read())
    os.unlink(path)
    return {
        "scale": scale,
        "rows": result["rows"],
        "seconds": round(result["seconds"], 3),
        "rows_per_s": round(result["rows"] / result["seconds"]),
        "process_wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # KiB on Linux
        "file_mib": round(result["bytes"] / 2**20, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--dir", default=None, help="where to write the database (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        for _ in range(args.repeat):
            print(json.dumps(run_once(args.scale, args.seed, directory)), flush=True)


if __name__ == "__main__":
    main()
