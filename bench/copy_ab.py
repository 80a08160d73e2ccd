"""A/B of `pgferry copy`: two source trees (or two sets of flags), alternating runs on one throwaway cluster.

On a shared machine wall time moves by a third between identical runs, so a change to the copy is
judged by alternating A and B (ABBA...) and comparing medians of wall time, pgferry's own CPU seconds
(GNU time, user + system) and the PostgreSQL server's CPU seconds over each run:

    .venv/bin/python bench/copy_ab.py forum1.db --a-tree /tmp/old-checkout --runs 4
    .venv/bin/python bench/copy_ab.py forum1.db --b-flags "--jobs 2" --runs 4

A tree is a checkout of this repository: its `src` goes first on PYTHONPATH, so the same installed
dependencies run either version.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from copy_vs_pgloader import _tail, drop_database, fresh_database, log, run_measured, server_cpu_s
from pgferry.pg.cluster import throwaway_cluster

HERE = Path(__file__).resolve().parent.parent
TIMEOUT_S = 600.0


@dataclass
class Run:
    variant: str
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float


def _one(cluster, variant: str, tree: Path, flags: list[str], src: Path, run: int) -> Run:  # type: ignore[no-untyped-def]
    dbname = fresh_database(cluster, f"ab_{variant.lower()}_{run}")
    pgferry = str(Path(sys.executable).with_name("pgferry"))
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    argv = [pgferry, "copy", str(src), cluster.dsn(dbname), "--no-verify", "--json", *flags]
    before = server_cpu_s(cluster.datadir)
    proc = run_measured(argv, timeout=TIMEOUT_S, env=env)
    time.sleep(0.3)  # let the backends exit, so their CPU is counted
    server = server_cpu_s(cluster.datadir) - before
    drop_database(cluster, dbname)
    if proc.returncode != 0 or proc.cpu_s is None:
        raise SystemExit(f"variant {variant} failed: {_tail(proc.stderr, cluster.password)}")
    return Run(variant, round(proc.seconds, 3), round(proc.cpu_s, 2), round(server, 2))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sqlite_path", type=Path)
    parser.add_argument("--a-tree", type=Path, default=HERE, help="checkout for A (default: this one)")
    parser.add_argument("--b-tree", type=Path, default=HERE, help="checkout for B (default: this one)")
    parser.add_argument("--a-flags", default="", help="extra pgferry copy flags for A")
    parser.add_argument("--b-flags", default="", help="extra pgferry copy flags for B")
    parser.add_argument("--runs", type=int, default=4, help="runs of each variant (default 4)")
    parser.add_argument("--json", action="store_true", help="print the runs and medians as JSON")
    args = parser.parse_args()
    variants = {
        "A": (args.a_tree.resolve(), shlex.split(args.a_flags)),
        "B": (args.b_tree.resolve(), shlex.split(args.b_flags)),
    }
    runs: list[Run] = []
    with throwaway_cluster() as cluster:
        for run in range(args.runs):
            for name in ("A", "B") if run % 2 == 0 else ("B", "A"):
                tree, flags = variants[name]
                result = _one(cluster, name, tree, flags, args.sqlite_path.resolve(), run)
                log(f"{name}: wall {result.wall_s:.2f} s, pgferry CPU {result.client_cpu_s:.2f} s, "
                    f"server CPU {result.server_cpu_s:.2f} s")  # fmt: skip
                runs.append(result)
    medians = {}
    for name, (tree, flags) in variants.items():
        mine = [r for r in runs if r.variant == name]
        medians[name] = {
            "tree": str(tree),
            "flags": flags,
            **{f: statistics.median(getattr(r, f) for r in mine) for f in ("wall_s", "client_cpu_s", "server_cpu_s")},
        }
    if args.json:
        print(json.dumps({"runs": [asdict(r) for r in runs], "medians": medians}))
    for name, m in medians.items():
        log(f"{name} {m['tree']} {' '.join(m['flags'])}: median wall {m['wall_s']:.2f} s, "
            f"pgferry CPU {m['client_cpu_s']:.2f} s, server CPU {m['server_cpu_s']:.2f} s")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
