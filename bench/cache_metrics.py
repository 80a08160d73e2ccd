"""What counting a cache's events for Prometheus costs a lookup: L1 hits of `Cache(None).get` (the
cheapest lookup, so the largest share), without and with `CacheMetrics` watching, in one process
(prometheus_client's default values) and in multiprocess mode (each increment written to an mmap'd
file), each mode in a fresh interpreter; two caches in it, timed in turn (interleaved), best of
`--repeat` runs of `--n` lookups each; the ratio is with / without in the same run.

    .venv/bin/python bench/cache_metrics.py --n 200000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = """
import json, sys, time
from prometheus_client import CollectorRegistry
from pgferry.runtime.cache import Cache
from pgferry.runtime.cache.metrics import CacheMetrics

n, repeat = int(sys.argv[1]), int(sys.argv[2])
plain, watched = Cache(None), Cache(None)
CacheMetrics(CollectorRegistry()).watch(watched)
best = {"plain": float("inf"), "watched": float("inf")}
for _ in range(repeat):  # interleaved, so both see the same machine
    for name, cache in (("plain", plain), ("watched", watched)):
        cache.get("k", lambda: 1, tags=["t"])
        t0 = time.perf_counter()
        for _ in range(n):
            cache.get("k", lambda: 1, tags=["t"])
        best[name] = min(best[name], (time.perf_counter() - t0) / n * 1e9)
print(json.dumps(best))
"""


def run(n: int, repeat: int, multiprocess: bool) -> dict[str, float]:
    env = dict(os.environ)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        if multiprocess:
            env["PROMETHEUS_MULTIPROC_DIR"] = tmp
        args = [sys.executable, "-c", CHILD, str(n), str(repeat)]
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=True, timeout=600)
    return dict(json.loads(done.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    print("| values | lookup ns, unwatched | lookup ns, watched | ratio |")
    print("| --- | --- | --- | --- |")
    for multiprocess in (False, True):
        best = run(opts.n, opts.repeat, multiprocess)
        plain, watched = best["plain"], best["watched"]
        name = "multiprocess (mmap)" if multiprocess else "one process"
        print(f"| {name} | {plain:,.0f} | {watched:,.0f} | {watched / plain:.2f}x |")


if __name__ == "__main__":
    main()
