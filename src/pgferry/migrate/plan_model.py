"""The migration plan as data: tables, columns, the steps after the data, what is not carried.

pgferry.migrate.plan builds it; the copy, verify and --resume read it (stored in the control schema
as `MigrationPlan.to_dict()`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pgferry.migrate.names import Renamed
from pgferry.migrate.types import TypeChoice
from pgferry.pg.partition_ranges import Partition


@dataclass(frozen=True)
class ColumnPlan:
    source: str
    target: str
    choice: TypeChoice
    notnull: bool
    default: str | None
    identity: bool = False
    generated: str | None = None  # PostgreSQL expression of a STORED generated column
    default_note: str | None = None

    @property
    def copied(self) -> bool:
        """Generated columns are computed by PostgreSQL, not copied."""
        return self.generated is None


@dataclass(frozen=True)
class Step:
    """One statement run after the data is in; `kind` groups them in the report."""

    kind: str
    table: str
    name: str
    sql: str
    required: bool = False  # a failing required step stops the copy (primary keys)
    references: str | None = None  # a foreign key's referenced table (source name)

    # pgferry.steps.PlanStep: undone with the target schema, never alone.
    @property
    def forward(self) -> list[str]:
        return [self.sql]

    @property
    def reverse(self) -> list[str]:
        return []

    @property
    def transactional(self) -> bool:
        return True

    def describe(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Skipped:
    kind: str
    name: str
    reason: str


@dataclass
class PartitionLayout:
    """A table made `PARTITION BY RANGE (column)` (copy --partition): its partitions, then a DEFAULT one."""

    column: str  # target name of the partition key
    unit: str  # month, week or day (pgferry.pg.partition_ranges.UNITS)
    partitions: list[Partition]


@dataclass
class TablePlan:
    source: str
    target: str
    columns: list[ColumnPlan]
    key: tuple[str, ...]  # source columns the copy pages by (rowid when empty)
    rows: int
    identity_start: int | None = None
    notes: list[str] = field(default_factory=list)
    # Types chosen from a sample of this many rows: the copy checks every value against them (guarded
    # rendering) and re-plans the table from a full census when one does not fit.
    sampled_rows: int | None = None
    # Primary-key columns holding NULLs (SQLite allows them in a key that is not the rowid): the key
    # is then a UNIQUE index on nullable columns, and rows have no key to be found by.
    key_nulls: tuple[str, ...] = ()
    after: list[str] = field(default_factory=list)  # --into-existing: tables copied first (foreign keys)
    serial: bool = False  # --into-existing: parts one after another (the table references itself)
    partition: PartitionLayout | None = None

    @property
    def copied_columns(self) -> list[ColumnPlan]:
        return [column for column in self.columns if column.copied]


@dataclass
class MigrationPlan:
    schema: str
    tables: list[TablePlan]
    steps: list[Step]
    skipped: list[Skipped]
    extensions: list[str]
    framework: dict[str, str] | None = None  # the framework whose types were used (frameworks.Framework)
    views: dict[str, str] = field(default_factory=dict)  # source view -> target name
    # Every name that is more than folded (shortened to 63 bytes, hashed, freed from a system name, a
    # constraint name taken): the report lists them, and verify and --resume read them from the stored plan.
    renamed: list[Renamed] = field(default_factory=list)
    into_existing: bool = False  # fills tables the target has (pgferry.migrate.existing): no DDL
    notes: list[str] = field(default_factory=list)  # what --into-existing found and does
    types: list[str] = field(default_factory=list)  # CREATE TYPE statements run before the tables (--native-plan)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MigrationPlan:
        """Inverse of to_dict (a plan stored in the control schema)."""
        tables = [
            TablePlan(
                **{
                    **t,
                    "key": tuple(t["key"]),
                    "key_nulls": tuple(t.get("key_nulls", ())),
                    "partition": _layout(t.get("partition")),
                    "columns": [ColumnPlan(**{**c, "choice": TypeChoice(**c["choice"])}) for c in t["columns"]],
                }
            )
            for t in data["tables"]
        ]
        return cls(
            schema=data["schema"],
            tables=tables,
            steps=[Step(**step) for step in data["steps"]],
            skipped=[Skipped(**item) for item in data["skipped"]],
            extensions=list(data["extensions"]),
            framework=data.get("framework"),
            views=dict(data.get("views", {})),
            renamed=[Renamed(**item) for item in data.get("renamed", [])],
            into_existing=bool(data.get("into_existing")),
            notes=list(data.get("notes", [])),
            types=list(data.get("types", [])),
        )

    def table(self, source: str) -> TablePlan:
        for table in self.tables:
            if table.source == source:
                return table
        raise KeyError(source)


def _layout(data: dict[str, Any] | None) -> PartitionLayout | None:
    if data is None:
        return None
    return PartitionLayout(data["column"], data["unit"], [Partition(**p) for p in data["partitions"]])
