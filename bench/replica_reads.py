"""What routing reads to a replica costs, measured against the primary alone in the same run.

Starts a throwaway primary and a streaming replica (pgferry.pg.cluster.throwaway_replica) on 127.0.0.1,
fills a table, then times, one thread, the same statements:
  read:   point reads on the primary's PostgresDatabase (the baseline) and through a ReplicaDatabase
          whose reads the replica serves (routing + another server; the ratio is the figure)
  write:  an UPDATE then a read of it, on the primary alone, and through the ReplicaDatabase in a
          session (the position read after the write, then the read routed by it)
  return: after a write, how long until the session's reads are served by the replica again (the
          prober reads replay positions every check_s, so this is about check_s / 2 on average)
and reports the replica's heartbeat lag sampled while the primary is idle.

    .venv/bin/python bench/replica_reads.py --reads 5000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

import psycopg

from pgferry.pg.cluster import throwaway_cluster, throwaway_replica
from pgferry.runtime.postgres import PostgresDatabase, PostgresPolicy
from pgferry.runtime.postgres.replicas import ReplicaDatabase, ReplicaPolicy

ROWS = 10_000
READ = "SELECT id, body FROM item WHERE id = $1"
WRITE = "UPDATE item SET body = $2 WHERE id = $1"


def per_op_us(work: Callable[[int], object], n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        work(i)
    return (time.perf_counter() - t0) / n * 1e6


def median_of(repeat: int, run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    policy = PostgresPolicy(pool_min=1, pool_max=2)
    with throwaway_cluster() as primary, throwaway_replica(primary) as replica:
        with psycopg.connect(primary.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE item (id int PRIMARY KEY, body text NOT NULL)")
            conn.execute("INSERT INTO item SELECT g, 'body ' || g FROM generate_series(1, %s) g", [ROWS])
        replica.wait_replayed(primary)
        direct = PostgresDatabase(primary.dsn(), policy)
        routed = ReplicaDatabase(
            PostgresDatabase(primary.dsn(), policy), [PostgresDatabase(replica.dsn(), policy)], ReplicaPolicy()
        )
        try:
            for _ in range(100):  # until the heartbeat table is replayed and the replica serves
                if routed.check_replicas()["replicas"][0]["lag_s"] is not None:
                    break
                time.sleep(0.05)
            key = lambda i: (i % ROWS + 1,)  # noqa: E731
            base_read = median_of(args.repeat, lambda: per_op_us(lambda i: direct.one(READ, key(i)), args.reads))
            with routed.session():
                replica_read = median_of(args.repeat, lambda: per_op_us(lambda i: routed.one(READ, key(i)), args.reads))

            def write_then_read(db: PostgresDatabase | ReplicaDatabase) -> Callable[[int], object]:
                def step(i: int) -> object:
                    db.run(WRITE, (*key(i), f"v{i}"))
                    return db.one(READ, key(i))

                return step

            base_write = median_of(args.repeat, lambda: per_op_us(write_then_read(direct), args.writes))
            with routed.session():
                routed_write = median_of(args.repeat, lambda: per_op_us(write_then_read(routed), args.writes))
            returns = []
            for i in range(20):
                with routed.session():
                    routed.run(WRITE, (1, f"r{i}"))
                    t0 = time.perf_counter()
                    served = routed.replica_stats()["reads"].get("replica-1", 0)
                    while routed.replica_stats()["reads"].get("replica-1", 0) == served:
                        routed.one(READ, (1,))
                        time.sleep(0.005)
                    returns.append(time.perf_counter() - t0)
            lags = []
            for _ in range(20):
                time.sleep(0.25)
                lags.append(routed.replica_stats()["replicas"][0]["lag_s"])
            stats = routed.replica_stats()
        finally:
            direct.close()
            routed.close()
    print(
        json.dumps(
            {
                "load_1m": round(os.getloadavg()[0], 2),
                "read_us": {"primary_direct": round(base_read, 1), "replica_routed": round(replica_read, 1)},
                "read_ratio": round(replica_read / base_read, 2),
                "write_then_read_us": {"primary_direct": round(base_write, 1), "routed": round(routed_write, 1)},
                "write_then_read_ratio": round(routed_write / base_write, 2),
                "back_on_replica_after_write_s": {
                    "median": round(statistics.median(returns), 3),
                    "max": round(max(returns), 3),
                },
                "idle_lag_s": {"median": statistics.median(lags), "max": max(lags)},
                "reads": stats["reads"],
                "primary_because": stats["primary_because"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
