"""`tune()`: diagnose, plan, and with `apply=True` change the database and measure the difference.

Without `apply` nothing is written: the result holds the plan only. With it, the workload is
replayed before and after on the same file (replay.py), insert cost is measured for every table the
plan touches under its index sets before and after (doctor/writecost.py), and the rollback script
is written before the first change (apply.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgferry.doctor import Report, diagnose
from pgferry.doctor.stats import Statistics
from pgferry.doctor.workload import WorkloadView, load_workload
from pgferry.doctor.writecost import measure_insert_cost
from pgferry.events import Listener, Phases, no_events
from pgferry.sqlite.connect import open_readonly
from pgferry.sqlite.schema import read_schema
from pgferry.tune.apply import ApplyResult, apply_plan
from pgferry.tune.plan import TunePlan, build_plan
from pgferry.tune.replay import ReplayResult, replay
from pgferry.workload import Statement


@dataclass
class TuneResult:
    report: Report
    plan: TunePlan
    applied: ApplyResult | None = None
    before: ReplayResult | None = None
    after: ReplayResult | None = None
    insert_cost: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def speedup(self) -> float | None:
        if self.before is None or self.after is None or not self.after.total_ms:
            return None
        return self.before.total_ms / self.after.total_ms

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"database": self.report.database, "plan": self.plan.to_dict(), "applied": None}
        if self.applied is not None:
            out["applied"] = self.applied.to_dict()
        if self.report.workload is not None:  # statements the plan could not judge, and why
            out["workload"] = {k: self.report.workload[k] for k in ("statements", "unusable_statements", "unusable")}
        if self.before is not None and self.after is not None:
            per_fp = []
            for fid, b in self.before.timings.items():
                a = self.after.timings.get(fid)
                per_fp.append(
                    {
                        "id": fid,
                        "text": b.text[:200],
                        "calls": b.calls,
                        "before_median_ms": None if b.median_ms is None else round(b.median_ms, 4),
                        "after_median_ms": None if a is None or a.median_ms is None else round(a.median_ms, 4),
                    }
                )
            work = self.before.total_kops / self.after.total_kops if self.after.total_kops else None
            out["replay"] = {
                "before_total_ms": round(self.before.total_ms, 3),
                "after_total_ms": round(self.after.total_ms, 3),
                "speedup": None if self.speedup is None else round(self.speedup, 2),
                "before_total_kops": round(self.before.total_kops, 1),
                "after_total_kops": round(self.after.total_kops, 1),
                "work_ratio": None if work is None else round(work, 2),
                "fingerprints": per_fp,
                "unusable": self.before.unusable.to_dict(),
            }
        out["insert_cost_ms_per_1000"] = self.insert_cost
        return out


def _insert_costs(path: Path | str, plan: TunePlan) -> dict[str, dict[str, float]]:
    tables = sorted({s.table for s in plan.steps if s.table})
    if not tables:
        return {}
    conn = open_readonly(path)
    try:
        schema = read_schema(conn)
        statistics = Statistics(conn, schema)
        out = {}
        for name in tables:
            table = schema.table(name)
            before = [i.sql for i in table.indexes if i.origin == "c" and i.sql]
            dropped = {s.index for s in plan.steps if s.kind == "drop_index" and s.table == name}
            created = [sql for s in plan.steps if s.kind == "create_index" and s.table == name for sql in s.sql]
            after = [i.sql for i in table.indexes if i.origin == "c" and i.sql and i.name not in dropped] + created
            cost = measure_insert_cost(statistics, table, {"before": before, "after": after})
            if cost is not None:
                out[name] = {k: round(v, 3) for k, v in cost.ms_per_1000.items()}
        return out
    finally:
        conn.close()


def tune(
    path: str | Path,
    workload: str | Path | Iterable[Statement] | WorkloadView | None = None,
    *,
    only: list[str] | tuple[str, ...] | None = None,
    apply: bool = False,
    rollback_path: str | Path | None = None,
    size_limit: int | None = None,
    events: Listener = no_events,
) -> TuneResult:
    """Plan fixes for `path`; with `apply=True` make them and measure before and after."""
    progress = Phases(events, "tune")
    view = None
    if workload is not None:
        view = workload if isinstance(workload, WorkloadView) else load_workload(workload)
    report = diagnose(path, view, size_limit=size_limit, events=events, measure_writes=False)
    plan = build_plan(report, only)
    result = TuneResult(report, plan)
    if not apply or plan.empty:
        return result
    progress.start("measuring insert cost", None)
    result.insert_cost = _insert_costs(path, plan)
    if view is not None:
        progress.start("replaying the workload (before)", None)
        result.before = replay(path, view)
    progress.start("applying the plan", len(plan.steps))
    result.applied = apply_plan(plan, path, rollback_path, progress)
    if view is not None:
        progress.start("replaying the workload (after)", None)
        result.after = replay(path, view)
    progress.finish()
    return result
