"""Chaos at scale: rounds of a live migration under writers (tests/chaos_app.py: a list-append writer
whose every acknowledged value is recorded, and a forum-like mix), each round killing `pgferry migrate`
with SIGKILL again and again: at named points with a random count (PGFERRY_KILL_AT=point@N) and at
random instants (a SIGKILL after a random delay), in the copy, the applier, the cutover, the reverse
applier and the rollback, and resuming after each kill, while the writers go through the cutover and
the rollback. Each round checks: every acknowledged value on PostgreSQL exactly once with SQLite's id
after the cutover, and in SQLite after the rollback; no unacknowledged one; no writer error; both sides
equal (pgferry verify) before the cutover and after the rollback; the board counters consistent.

    .venv/bin/python bench/chaos_kills.py                    # 12 rounds, about 110 kills, a few minutes
    .venv/bin/python bench/chaos_kills.py --rounds 2 --json bench/out/chaos.json
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from capture_util import assert_same  # noqa: E402
from chaos_app import Writers, background, board_counters_hold, ledger, make_router, make_source  # noqa: E402
from pgferry.capture import pgstate  # noqa: E402
from pgferry.pg.cluster import throwaway_cluster  # noqa: E402

NAMED = {
    "copy": ["copy:before_chunk_commit", "copy:after_chunk_commit"],
    "apply": ["apply:before_commit", "apply:after_commit", "apply:after_prune"],
    "cutover": ["cutover:locked", "cutover:drained", "cutover:before_pg_commit", "cutover:after_pg_commit"],
    "reverse": ["reverse:before_commit", "reverse:after_commit"],
    "rollback": ["rollback:after_flip"],
}
NAMED_WAIT_S = 15.0
REACHED = {
    "copy": 6,
    "apply": 3,
    "cutover": 1,
    "reverse": 3,
    "rollback": 1,
}  # a point's count is drawn up to this (a cutover passes each once)
INSTANTS = {
    "copy": (0.5, 2.0),
    "apply": (0.6, 2.5),
    "cutover": (0.5, 1.2),
    "reverse": (0.6, 2.5),
    "rollback": (0.5, 1.2),
}  # start-up takes about 0.5 s
COMMANDS = {
    "copy": ("migrate", "start", "--until-caught-up", "--chunk-rows", "100", "--jobs", "1"),
    "resume": ("migrate", "follow", "--until-caught-up"),
    "apply": ("migrate", "follow", "--batch", "20"),
    "cutover": ("migrate", "cutover", "--json"),
    "reverse": ("migrate", "follow", "--batch", "20"),  # on route postgres, follow runs the reverse applier
    "rollback": ("migrate", "rollback", "--json"),
}


class Round:
    def __init__(self, rng: random.Random, dsn: str, directory: Path) -> None:
        self.rng, self.dsn = rng, dsn
        self.path = make_source(directory / "app.db", posts=2000)
        self.kills: collections.Counter[str] = collections.Counter()

    def run(self, phase: str, command: str, *, kill: bool) -> int:
        """Run a command, killed at a random named point or a random instant when `kill` (a named
        point not reached within NAMED_WAIT_S becomes an instant); its exit code."""
        verb, sub, *options = COMMANDS[command]
        args = (verb, sub, str(self.path), self.dsn, *options)
        point = None
        if kill and self.rng.random() < 0.7:
            point = f"{self.rng.choice(NAMED[phase])}@{self.rng.randint(1, REACHED[phase])}"
        process = background(*args, kill_at=point)
        wait = None if not kill else NAMED_WAIT_S if point else self.rng.uniform(*INSTANTS[phase])
        try:
            process.communicate(timeout=wait)
        except subprocess.TimeoutExpired:
            point = None
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
        if process.returncode == -signal.SIGKILL:
            self.kills[point.split("@")[0] if point else f"{phase}:random"] += 1
        return process.returncode

    def started(self) -> bool:
        with psycopg.connect(self.dsn) as pg:
            return pgstate.read(pg, "public") is not None

    def until_done(self, phase: str, command: str, kills: int) -> None:
        """Up to `kills` killed runs (one that finishes first ends it), then one run to the end."""
        for _ in range(kills):
            if self.run(phase, command, kill=True) == 0:
                return
            if command == "copy" and self.started():
                command = "resume"  # start was killed after it recorded the migration: follow takes it up
        assert self.run(phase, command, kill=False) == 0


def one_round(number: int, seed: int, dsn: str) -> dict[str, Any]:
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        job = Round(rng, dsn, Path(tmp))
        router = make_router(job.path, dsn)
        try:
            with Writers(router, seed=seed) as writers:
                writers.wrote_more(20)
                job.until_done("copy", "copy", kills=3)
                for _ in range(5):
                    job.run("apply", "apply", kill=True)
                    writers.wrote_more(10)
                writers.stop()
                assert job.run("apply", "resume", kill=False) == 0
                assert_same(job.path, dsn)
            acked = set(writers.acked)
            with Writers(router, seed=seed + 1, writer=2) as writers:  # through the cutover, then on PostgreSQL
                writers.wrote_more(20)
                job.until_done("cutover", "cutover", kills=4)
                writers.wrote_more(20)
                for _ in range(3):  # the reverse applier carries PostgreSQL's writes back, killed
                    job.run("reverse", "reverse", kill=True)
                    writers.wrote_more(10)
                writers.stop()
            assert writers.errors == [], writers.errors
            acked |= set(writers.acked)
            on_sqlite, on_postgres = ledger(job.path, dsn)
            assert set(on_postgres) == acked, "an acknowledged write is missing or an unacknowledged one is present"
            assert on_sqlite.items() <= on_postgres.items()
            with Writers(router, seed=seed + 2, writer=3) as writers:  # through the rollback, then on SQLite
                writers.wrote_more(20)
                job.until_done("rollback", "rollback", kills=3)
                writers.wrote_more(20)
                writers.stop()
            assert writers.errors == [], writers.errors
            acked |= set(writers.acked)
        finally:
            router.close()
        assert job.run("apply", "resume", kill=False) == 0  # forward again: PostgreSQL catches up with SQLite
        on_sqlite, on_postgres = ledger(job.path, dsn)
        assert set(on_sqlite) == acked, "an acknowledged write is missing from SQLite after the rollback"
        assert on_sqlite == on_postgres
        assert_same(job.path, dsn)
        assert board_counters_hold(dsn)
    return {"round": number, "kills": dict(job.kills), "acknowledged": len(acked)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rounds = []
    started = time.monotonic()
    for number in range(args.rounds):
        with throwaway_cluster() as cluster:
            rounds.append(one_round(number, args.seed + number, cluster.dsn()))
        print(f"round {number}: {sum(rounds[-1]['kills'].values())} kills, all invariants held", flush=True)
    total: collections.Counter[str] = collections.Counter()
    for r in rounds:
        total.update(r["kills"])
    summary = {"rounds": len(rounds), "kills": sum(total.values()), "by_point": dict(sorted(total.items())),
               "seconds": round(time.monotonic() - started, 1)}  # fmt: skip
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"summary": summary, "rounds": rounds}, indent=2))


if __name__ == "__main__":
    main()
