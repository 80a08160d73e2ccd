"""A tuning plan: the doctor's fixes as ordered steps, each with the SQL that undoes it.

Order: new indexes first (statements move to them while the old ones still exist), then the drops,
then persistent pragmas, then ANALYZE so the planner knows the new indexes. Each step is small on
purpose: `apply` runs one step per transaction so a live application's writers get the lock back
between steps. The reverse of every step is recorded before it runs (rollback.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pgferry.doctor.report import Finding, Report
from pgferry.errors import UsageError

# What --only accepts. `unused_index` (indexes no statement of the workload used) is never in the
# default set: a captured workload may not show every query the application can run.
ONLY_CHOICES = ("missing_index", "redundant_index", "unused_index", "fk_without_index", "pragma")
DEFAULT_KINDS = ("missing_index", "redundant_index", "pragma")
ANALYZE_SQL = ("PRAGMA analysis_limit = 1000", "ANALYZE")
_CREATE_INDEX = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(?!IF\s+NOT\s+EXISTS)", re.IGNORECASE)


@dataclass
class Step:
    """One change: `sql` runs in one transaction (unless `transactional` is False: PRAGMAs)."""

    kind: str  # create_index, drop_index, pragma, analyze
    description: str
    sql: list[str]
    reverse_sql: list[str]
    table: str | None = None
    index: str | None = None
    transactional: bool = True

    # pgferry.steps.PlanStep
    @property
    def forward(self) -> list[str]:
        return self.sql

    @property
    def reverse(self) -> list[str]:
        return self.reverse_sql

    def describe(self) -> str:
        return self.description

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "description": self.description,
            "table": self.table,
            "index": self.index,
            "sql": self.sql,
            "reverse_sql": self.reverse_sql,
        }


@dataclass
class TunePlan:
    database: str
    steps: list[Step] = field(default_factory=list)
    kinds: tuple[str, ...] = DEFAULT_KINDS

    @property
    def empty(self) -> bool:
        return not self.steps

    def to_dict(self) -> dict[str, Any]:
        return {"database": self.database, "kinds": list(self.kinds), "steps": [s.to_dict() for s in self.steps]}


def idempotent_create(sql: str) -> str:
    """CREATE INDEX ... as CREATE INDEX IF NOT EXISTS ... (SQLite stores it without the clause)."""
    return _CREATE_INDEX.sub(lambda m: f"CREATE {m.group(1) or ''}INDEX IF NOT EXISTS ", sql, count=1)


def _selected(finding: Finding, kinds: tuple[str, ...]) -> bool:
    if finding.fix is None or not finding.fix.sql:
        return False
    if finding.kind == "redundant_index" and finding.reason == "unused_by_workload":
        return "unused_index" in kinds
    if finding.kind == "fk_without_index":
        return "fk_without_index" in kinds
    return finding.kind in kinds and finding.fix.auto


def build_plan(report: Report, only: tuple[str, ...] | list[str] | None = None) -> TunePlan:
    """The steps that fix the report's findings of the chosen kinds (default: DEFAULT_KINDS)."""
    kinds = tuple(only) if only else DEFAULT_KINDS
    unknown = [k for k in kinds if k not in ONLY_CHOICES]
    if unknown:
        raise UsageError(f"--only {unknown[0]}: not a kind tune can fix (choose from {', '.join(ONLY_CHOICES)})")
    chosen = [f for f in report.findings if _selected(f, kinds)]
    creates, drops, pragmas = [], [], []
    wants_analyze = False
    for f in chosen:
        assert f.fix is not None
        if f.kind in ("missing_index", "fk_without_index"):
            creates.append(Step("create_index", f.title, list(f.fix.sql), list(f.fix.reverse_sql), f.table, f.index))
        elif f.kind == "redundant_index":
            reverse = [idempotent_create(s) for s in f.fix.reverse_sql]
            drops.append(Step("drop_index", f.title, list(f.fix.sql), reverse, f.table, f.index))
        elif f.kind == "pragma":
            if any(s.upper().startswith("ANALYZE") for s in f.fix.sql):
                wants_analyze = True
            else:
                pragmas.append(Step("pragma", f.title, list(f.fix.sql), list(f.fix.reverse_sql), transactional=False))
    steps = creates + drops + pragmas
    if creates or drops or wants_analyze:
        steps.append(
            Step("analyze", "refresh the planner's statistics (sampled: analysis_limit)", list(ANALYZE_SQL), [])
        )
    return TunePlan(report.database, steps, kinds)
