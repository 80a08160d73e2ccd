"""A second (third, fourth...) process for the cache tests: run as `python cache_worker.py MODE ...`.

stampede URL NS PROCS THREADS: THREADS threads ask for one cold key at once, after every one of
PROCS processes is ready (a barrier in Redis); the loader counts its runs in Redis. Prints the
values seen and this process's counters as one JSON line.

writer URL NS DB N: N times, writes value i into the SQLite file DB in a transaction inside
`invalidating()`, prints i once the write has returned, and waits for a line on stdin before the next.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time

import redis

from pgferry.runtime.cache import Cache, CachePolicy

BARRIER_S = 60.0


def stampede(url: str, ns: str, procs: int, threads: int) -> None:
    client = redis.Redis.from_url(url)
    # generous deadlines: on a loaded machine a slow Redis answer would count as Redis down (a bypass load)
    cache = Cache(url, CachePolicy(namespace=ns, wait_s=30.0, lock_s=30.0, redis_timeout_s=10.0))

    def load() -> str:
        client.incr(f"test:{ns}:loads")
        time.sleep(0.3)  # long enough for every caller to arrive while it runs
        return "the value"

    go = threading.Event()
    ready = threading.Barrier(threads + 1)
    seen: list[str] = []
    errors: list[str] = []

    def ask() -> None:
        ready.wait()
        go.wait()
        try:
            seen.append(cache.get("cold", load, tags=["t:1"]))
        except Exception as exc:
            errors.append(repr(exc))

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for w in workers:
        w.start()
    ready.wait()  # this process's threads all wait on `go`
    client.incr(f"test:{ns}:ready")
    deadline = time.monotonic() + BARRIER_S
    while int(client.get(f"test:{ns}:ready") or 0) < procs and time.monotonic() < deadline:
        time.sleep(0.001)
    go.set()
    for w in workers:
        w.join()
    print(json.dumps({"seen": seen, "errors": errors, "stats": cache.stats()["levels"]}), flush=True)


def writer(url: str, ns: str, db: str, n: int) -> None:
    cache = Cache(url, CachePolicy(namespace=ns, redis_timeout_s=10.0))
    conn = sqlite3.connect(db, isolation_level=None, timeout=10)
    for i in range(1, n + 1):
        with cache.invalidating() as tags:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE item SET value = ? WHERE id = 1", (i,))
            tags.add("item:1")
            conn.execute("COMMIT")
        print(i, flush=True)
        if not sys.stdin.readline():
            break
    cache.close()


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "stampede":
        stampede(args[0], args[1], int(args[2]), int(args[3]))
    else:
        writer(args[0], args[1], args[2], int(args[3]))
