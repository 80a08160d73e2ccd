"""The demo: seed a legacy forum database, copy it into PostgreSQL with pgferry, verify the copy.

It uses PGFERRY_DSN when set (copying into a new schema named after the time, never touching
existing ones) and otherwise starts a throwaway PostgreSQL cluster on 127.0.0.1 for the run.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from forum.seed import SeedReport, generate
from pgferry.migrate.copy import CopyOptions, CopyReport
from pgferry.migrate.run import copy_database
from pgferry.migrate.verify import VerifyReport, verify_copy
from pgferry.pg.cluster import throwaway_cluster


@dataclass
class DemoResult:
    seed: SeedReport
    copy: CopyReport
    verify: VerifyReport
    target: str  # where the copy went, password redacted


@contextlib.contextmanager
def postgres_target() -> Iterator[tuple[str, str]]:
    """(dsn, schema): PGFERRY_DSN with a fresh schema, or a throwaway local cluster."""
    dsn = os.environ.get("PGFERRY_DSN")
    if dsn:
        yield dsn, time.strftime("forum_demo_%Y%m%d_%H%M%S")
        return
    with throwaway_cluster() as cluster:
        yield cluster.dsn(), "public"


def run_demo(database: Path, scale: float, seed: int, jobs: int = 2) -> DemoResult:
    """Seed `database` (overwriting it), copy it to PostgreSQL and verify the copy."""
    database.parent.mkdir(parents=True, exist_ok=True)
    seeded = generate(database, scale=scale, seed=seed, force=True)
    with postgres_target() as (dsn, schema):
        copied = copy_database(database, dsn, CopyOptions(schema=schema, jobs=jobs))
        verified = verify_copy(database, dsn, schema=schema, jobs=jobs, plan=copied.plan)
    return DemoResult(seeded, copied, verified, copied.target)
