"""The doctor's output as plain data: findings with evidence and a fix, gathered in one report.

The library returns these; the CLI renders them (rich text, one JSON object, or an HTML page). Every
field is JSON-ready through `to_dict()`, so what a script reads is what the terminal shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("high", "medium", "low")
KINDS = (
    "missing_index",
    "redundant_index",
    "wide_table",
    "n_plus_one",
    "missing_transaction",
    "pragma",
    "fk_without_index",
    "no_primary_key",
    "integrity",
    "growth",
    "split_sync",
)


@dataclass
class Fix:
    """What to do about a finding.

    `sql`: statements that apply the fix; `reverse_sql`: statements that undo it (the rollback script);
    `plan`: a structured plan where SQL alone is not the fix (a split plan); `auto`: whether `tune`
    applies it without being asked by `--only` (False for fixes that need a person's judgement).
    """

    description: str
    sql: list[str] = field(default_factory=list)
    reverse_sql: list[str] = field(default_factory=list)
    plan: dict[str, Any] | None = None
    auto: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"description": self.description, "sql": self.sql, "auto": self.auto}
        if self.reverse_sql:
            out["reverse_sql"] = self.reverse_sql
        if self.plan is not None:
            out["plan"] = self.plan
        return out


@dataclass
class Finding:
    """One problem: what (`kind`, `reason`), where (`table`, `index`, `columns`), how bad, why we think so."""

    kind: str
    severity: str
    title: str
    table: str | None = None
    index: str | None = None
    columns: list[str] | None = None
    reason: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    fix: Fix | None = None
    gain: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "severity": self.severity, "title": self.title}
        for key in ("table", "index", "columns", "reason"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["evidence"] = self.evidence
        out["fix"] = self.fix.to_dict() if self.fix is not None else None
        if self.gain is not None:
            out["gain"] = self.gain
        return out


@dataclass
class Report:
    """Everything `doctor` found about one database (and, where given, its workload)."""

    database: str
    sqlite_version: str
    size_bytes: int
    tables: int
    indexes: int
    workload: dict[str, Any] | None
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # sampling and other caveats, said once
    charts: dict[str, Any] = field(default_factory=dict)  # data behind the HTML charts
    seconds: dict[str, float] = field(default_factory=dict)  # time per phase
    framework: str | None = None  # the framework whose migration tables the file holds (index advice follows it)

    def by_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "sqlite_version": self.sqlite_version,
            "size_bytes": self.size_bytes,
            "tables": self.tables,
            "indexes": self.indexes,
            "workload": self.workload,
            "framework": self.framework,
            "counts": self.counts(),
            "findings": [f.to_dict() for f in self.findings],
            "notes": self.notes,
            "charts": self.charts,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }
