"""What a copy is asked to do: the options the CLI, the demo and the library share."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from pgferry.errors import UsageError

ON_ERROR = ("stop", "reject")
FRAMEWORKS = ("auto", "none", "django", "sqlalchemy", "rails")


def default_jobs() -> int:
    """Workers for a machine: one per CPU and one more, at most 8. Each worker alternates between
    SQLite (rendering), the network and PostgreSQL (parsing, committing); a spare one keeps every CPU
    busy through those waits (the scale-1 forum on 2 vCPUs: 3 workers about 8% faster than 2, 4 slower)."""
    return min(8, (os.cpu_count() or 1) + 1)


@dataclass(frozen=True)
class CopyOptions:
    schema: str = "public"
    jobs: int = field(default_factory=default_jobs)
    resume: bool = False
    casts_file: str | None = None
    on_error: str = "stop"  # or "reject": bad rows go to the reject file, the copy goes on
    reject_file: str | None = None
    keep_case: bool = False
    chunk_rows: int = 20_000
    full_census: bool = False  # type big tables from a census of every row instead of a sample
    framework: str = "auto"  # whose PostgreSQL types to use (pgferry.migrate.frameworks): detected, none, or named
    into_existing: bool = False  # fill the tables the target has (pgferry.migrate.existing) instead of making them
    truncate_existing: bool = False  # --into-existing: empty target tables that hold rows first

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise UsageError(f"--on-error must be one of {', '.join(ON_ERROR)}, not {self.on_error!r}")
        if self.framework not in FRAMEWORKS:
            raise UsageError(f"--framework must be one of {', '.join(FRAMEWORKS)}, not {self.framework!r}")
        if self.truncate_existing and not self.into_existing:
            raise UsageError("--truncate-existing goes with --into-existing")
        if self.into_existing and self.casts_file:
            raise UsageError("--cast does not go with --into-existing: the target's column types decide")
        if self.jobs < 1 or self.chunk_rows < 1:
            raise UsageError("--jobs and --chunk-rows must be at least 1")
