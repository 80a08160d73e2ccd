"""One check shared by the convergence tests: doctor -> tune --apply -> doctor -> tune settles."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pgferry.doctor import diagnose
from pgferry.tune import tune
from pgferry.workload import Statement

ALL_KINDS = ("missing_index", "redundant_index", "fk_without_index", "pragma")


def assert_converges(db: Path, workload: Path | Sequence[Statement] | None, only: Sequence[str] | None = None) -> None:
    kinds = list(only) if only else None
    first = tune(db, workload, only=kinds, apply=True, rollback_path=db.with_name(db.name + ".rollback.sql"))
    assert first.applied is not None and first.applied.ok
    created = {(s.table, s.index) for s in first.plan.steps if s.kind == "create_index"}
    dropped = {s.index for s in first.plan.steps if s.kind == "drop_index"}
    dropped_sql = {sql for s in first.plan.steps if s.kind == "drop_index" for sql in s.reverse_sql}
    report = diagnose(db, workload)
    for finding in report.findings:
        if finding.kind == "redundant_index":
            assert (finding.table, finding.index) not in created, finding.title  # tune made it
        if finding.kind in ("missing_index", "fk_without_index") and finding.fix is not None:
            assert finding.index not in dropped, finding.title
            assert not set(finding.fix.sql) & dropped_sql, finding.title
    second = tune(db, workload, only=kinds)
    assert [s.description for s in second.plan.steps] == []
