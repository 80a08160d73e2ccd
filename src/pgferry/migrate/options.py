"""What a copy is asked to do: the options the CLI, the demo and the library share."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from pgferry.errors import UsageError

ON_ERROR = ("stop", "reject")
PARTITION_UNITS = ("month", "week", "day")  # pgferry.pg.partition_ranges.UNITS
FRAMEWORKS = ("auto", "none", "django", "sqlalchemy", "rails")


def default_jobs() -> int:
    """Workers for a machine: one per CPU and one more, at most 8. Each worker alternates between
    SQLite (rendering), the network and PostgreSQL (parsing, committing); a spare one keeps every CPU
    busy through those waits (the scale-1 forum on 2 vCPUs: 3 workers about 8% faster than 2, 4 slower)."""
    return min(8, (os.cpu_count() or 1) + 1)


@dataclass(frozen=True)
class PartitionSpec:
    """`--partition TABLE=COLUMN:UNIT`: the source table made PARTITION BY RANGE (column), one partition a unit."""

    table: str
    column: str
    unit: str
    widen: bool = False  # add the column to the table's keys (a --native-plan entry's widen_keys)

    @classmethod
    def parse(cls, text: str) -> PartitionSpec:
        table, equals, rest = text.partition("=")
        column, colon, unit = rest.rpartition(":")
        if not (equals and colon and table and column):
            raise UsageError(f"--partition wants TABLE=COLUMN:UNIT (e.g. events=created_at:month), not {text!r}")
        if unit not in PARTITION_UNITS:
            units = ", ".join(PARTITION_UNITS)
            raise UsageError(f"--partition {text!r}: the unit must be one of {units}, not {unit!r}")
        return cls(table, column, unit)


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
    partitions: tuple[str, ...] = ()  # --partition TABLE=COLUMN:UNIT (PartitionSpec), one per table
    partition_widen_keys: bool = False  # add the partition key to the partitioned tables' unique keys
    partition_ahead: int = 3  # partitions made past the one holding now
    native_plan: str | None = None  # --native-plan FILE (pgferry.migrate.native_plan): partitions, BRIN, ...

    @property
    def partition_specs(self) -> tuple[PartitionSpec, ...]:
        return tuple(PartitionSpec.parse(text) for text in self.partitions)

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise UsageError(f"--on-error must be one of {', '.join(ON_ERROR)}, not {self.on_error!r}")
        if self.framework not in FRAMEWORKS:
            raise UsageError(f"--framework must be one of {', '.join(FRAMEWORKS)}, not {self.framework!r}")
        if self.truncate_existing and not self.into_existing:
            raise UsageError("--truncate-existing goes with --into-existing")
        if self.into_existing and self.casts_file:
            raise UsageError("--cast does not go with --into-existing: the target's column types decide")
        tables = [spec.table for spec in self.partition_specs]  # parsed here: a bad spec fails at once
        if len(set(tables)) < len(tables):
            raise UsageError("--partition names a table twice")
        if self.partitions and self.into_existing:
            raise UsageError("--partition does not go with --into-existing: the target's tables are already made")
        if self.native_plan and self.into_existing:
            raise UsageError("--native-plan does not go with --into-existing: the target's tables are already made")
        if self.partition_widen_keys and not self.partitions:
            raise UsageError("--partition-widen-keys goes with --partition")
        if self.partition_ahead < 0:
            raise UsageError("--partition-ahead must be at least 0")
        if self.jobs < 1 or self.chunk_rows < 1:
            raise UsageError("--jobs and --chunk-rows must be at least 1")
