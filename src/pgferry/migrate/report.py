"""What a copy reports: rows per table, type choices, what was not carried, re-plans, phases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pgferry.migrate.fkeys import UnvalidatedKey
from pgferry.migrate.names import Renamed
from pgferry.migrate.plan import MigrationPlan, Skipped


@dataclass
class TableResult:
    source: str
    target: str
    rows: int
    rejected: int = 0


@dataclass(frozen=True)
class Replan:
    """A table re-planned during the copy: its sample missed a value its types could not hold."""

    table: str
    refused: str  # what PostgreSQL (or the guard) refused
    changes: list[str]  # "column: old -> new"; empty when the full census confirmed the types

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "refused": self.refused, "changes": self.changes}


@dataclass
class CopyReport:
    source: str
    target: str
    schema: str
    tables: list[TableResult]
    seconds: float
    choices: list[dict[str, Any]]
    skipped: list[Skipped]
    not_carried: list[Skipped]
    rejected: int
    resumed: bool
    snapshot: str
    phases: dict[str, float] = field(default_factory=dict)
    plan: MigrationPlan | None = field(default=None, repr=False, compare=False)  # for verify_copy
    replanned: list[Replan] = field(default_factory=list)
    watermark: Any = None  # what copy_database's `watermark` read in the copy's snapshot (JSON-able)
    # Foreign keys added NOT VALID: child rows point at parents that are not there (pgferry.migrate.fkeys).
    unvalidated: list[UnvalidatedKey] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # --into-existing: matching, order, TRUNCATE, sequences

    @property
    def renamed(self) -> list[Renamed]:
        """Source names PostgreSQL got under another name (shortened, hashed, freed from a system name)."""
        return [] if self.plan is None else self.plan.renamed

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "schema": self.schema,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows / self.seconds) if self.seconds else None,
            "resumed": self.resumed,
            "snapshot": self.snapshot,
            "watermark": self.watermark,
            "framework": self.plan.framework if self.plan is not None else None,
            "rejected": self.rejected,
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
            "tables": [t.__dict__ for t in self.tables],
            "type_choices": self.choices,
            "skipped": [s.__dict__ for s in self.skipped],
            "not_carried": [s.__dict__ for s in self.not_carried],
            "replanned": [r.as_dict() for r in self.replanned],
            "unvalidated_foreign_keys": [u.as_dict() for u in self.unvalidated],
            "renamed": [r.__dict__ for r in self.renamed],
            "notes": self.notes,
        }
