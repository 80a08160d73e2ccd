"""What `pgferry migrate start`'s copy does to an application that keeps writing: the writers' worst wait
and the WAL file's size while it copies, with the file kept in rollback-journal mode
(`--keep-journal-mode`) and switched to WAL first (the default); and, as the baseline of the same run,
the one-snapshot copy (`pgferry copy`, no capture) of the same file in WAL mode, whose reader holds back
every checkpoint while it reads (migrate start reads a chunk per read transaction instead).

The file is a seeded forum (`forum seed`) plus a table the writers write: 4 threads, one single-row
write transaction each every 4 ms (BEGIN IMMEDIATE, busy_timeout 30 s), timed from asking for the
transaction to its commit. Each mode runs on a fresh copy of the file: 2 s of writes alone (the
baseline), then the copy with the writes going on. The WAL file's size is sampled every 20 ms.

    .venv/bin/python bench/copy_under_writes.py                   # scale 0.1, about a minute
    .venv/bin/python bench/copy_under_writes.py --scale 0.3 --json bench/out/copy_writes.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from forum.seed import generate
from pgferry.capture.migration import start
from pgferry.migrate.options import CopyOptions
from pgferry.migrate.run import copy_database
from pgferry.pg.cluster import throwaway_cluster

WRITERS = 4
PERIOD_S = 0.004


class Writes:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.stop = threading.Event()
        self.samples: list[tuple[float, float]] = []  # (when, seconds waited)
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.write, args=(i,)) for i in range(WRITERS)]

    def write(self, number: int) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        n = 0
        while not self.stop.is_set():
            began = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO bench_writes (writer, n) VALUES (?, ?)", (number, n))
            conn.execute("COMMIT")
            took = time.perf_counter() - began
            with self.lock:
                self.samples.append((time.monotonic(), took))
            n += 1
            time.sleep(PERIOD_S)
        conn.close()

    def between(self, first: float, last: float) -> dict[str, float]:
        waits = sorted(took * 1000 for at, took in self.samples if first <= at <= last)
        if not waits:
            return {"n": 0}
        return {
            "n": len(waits),
            "p50_ms": round(waits[len(waits) // 2], 2),
            "p99_ms": round(waits[min(len(waits) - 1, int(len(waits) * 0.99))], 2),
            "max_ms": round(waits[-1], 2),
        }


def one_mode(seeded: Path, dsn: str, schema: str, mode: str) -> dict[str, Any]:
    """`mode`: keep (migrate start --keep-journal-mode), wal (migrate start), snapshot (pgferry copy, WAL)."""
    wal = mode != "keep"
    with tempfile.TemporaryDirectory(prefix="copy-writes-") as tmp:
        path = Path(tmp) / "forum.db"
        shutil.copy(seeded, path)
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE bench_writes (id INTEGER PRIMARY KEY, writer INTEGER, n INTEGER)")
            if mode == "snapshot":
                conn.execute("PRAGMA journal_mode = WAL")
        writes = Writes(path)
        wal_bytes = [0]
        sampling = threading.Event()

        def sample_wal() -> None:
            wal_file = Path(f"{path}-wal")
            while not sampling.is_set():
                if wal_file.exists():
                    wal_bytes[0] = max(wal_bytes[0], wal_file.stat().st_size)
                time.sleep(0.02)

        sampler = threading.Thread(target=sample_wal)
        for thread in writes.threads:
            thread.start()
        sampler.start()
        try:
            base_from = time.monotonic()
            time.sleep(2.0)
            copy_from = time.monotonic()
            options = CopyOptions(schema=schema, jobs=1)
            journal = None
            if mode == "snapshot":
                copy_database(path, dsn, options)
            else:
                journal = start(path, dsn, options, wal=wal).journal
            copy_to = time.monotonic()
        finally:
            writes.stop.set()
            for thread in writes.threads:
                thread.join(60)
            sampling.set()
            sampler.join(10)
        baseline = writes.between(base_from, copy_from)
        during = writes.between(copy_from, copy_to)
        return {
            "mode": mode,
            "journal": None if journal is None else journal.as_dict(),
            "copy_s": round(copy_to - copy_from, 2),
            "writers_baseline": baseline,
            "writers_during_copy": during,
            "worst_wait_ratio": round(during["max_ms"] / baseline["max_ms"], 1) if baseline.get("max_ms") else None,
            "wal_max_bytes": wal_bytes[0],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="copy-writes-seed-") as tmp, throwaway_cluster() as cluster:
        seeded = Path(tmp) / "seed.db"
        generate(seeded, scale=args.scale, seed=42, force=True)
        runs = [one_mode(seeded, cluster.dsn(), f"bench_{mode}", mode) for mode in ("keep", "wal", "snapshot")]
    for run in runs:
        print(
            f"{run['mode']:>8}: copy {run['copy_s']} s; writers' wait during the copy {run['writers_during_copy']} "
            f"vs alone {run['writers_baseline']} (worst {run['worst_wait_ratio']}x); WAL at most "
            f"{run['wal_max_bytes'] / 2**20:.1f} MiB; {run['journal']['note'] if run['journal'] else ''}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
