"""What a split or a revert did, as data the CLI renders (text or one JSON object)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pgferry.split.measure import Read, Sizes


@dataclass
class SplitReport:
    database: str
    table: str
    plan: dict[str, Any]
    rows: int
    rows_per_table: dict[str, int]
    kept_indexes: list[str]
    dropped_indexes: list[str]
    rebuilt_tables: list[str]
    preexisting_fk_violations: int
    size_before: Sizes | None
    size_after: Sizes | None
    reads: list[Read] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stage: str = "expand"

    def to_dict(self) -> dict[str, Any]:
        before = self.size_before.total if self.size_before else None
        after = self.size_after.total if self.size_after else None
        return {
            "database": self.database,
            "table": self.table,
            "applied": True,
            "stage": self.stage,
            "rows": self.rows,
            "rows_per_table": self.rows_per_table,
            "kept_indexes": self.kept_indexes,
            "dropped_indexes": self.dropped_indexes,
            "rebuilt_tables": self.rebuilt_tables,
            "preexisting_fk_violations": self.preexisting_fk_violations,
            "size": {
                "before": self.size_before.to_dict() if self.size_before else None,
                "after": self.size_after.to_dict() if self.size_after else None,
                "ratio": None if not (before and after) else round(after / before, 3),
            },
            "reads": [r.to_dict() for r in self.reads],
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
            "plan": self.plan,
        }


@dataclass
class RevertReport:
    database: str
    table: str
    rows: int
    restored_indexes: list[str]
    rebuilt_tables: list[str]
    dropped_tables: list[str]
    seconds: float = 0.0
    stage: str = "expand"  # the stage reverted from

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "table": self.table,
            "reverted": True,
            "from_stage": self.stage,
            "rows": self.rows,
            "restored_indexes": self.restored_indexes,
            "rebuilt_tables": self.rebuilt_tables,
            "dropped_tables": self.dropped_tables,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class ContractReport:
    database: str
    table: str
    rows: int
    removed_columns: list[str]
    moved_indexes: list[str]  # recreated on a side table under the same name
    dropped_indexes: list[str]  # they spanned the core and moved columns, or a key-value family
    workload_users: list[dict[str, Any]] = field(default_factory=list)  # statements still naming moved columns
    forced: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "table": self.table,
            "contracted": True,
            "rows": self.rows,
            "removed_columns": self.removed_columns,
            "moved_indexes": self.moved_indexes,
            "dropped_indexes": self.dropped_indexes,
            "workload_users": self.workload_users,
            "forced": self.forced,
            "seconds": round(self.seconds, 3),
        }
