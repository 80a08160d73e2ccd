"""`pgferry advise --native-plan-out FILE`: the native-schema proposals as a plan file the user edits and
`pgferry copy --native-plan` carries out (pgferry.migrate.native_plan). Each entry is preceded by its
summary, evidence and cost as comments; the refusals close the file, as comments too."""

from __future__ import annotations

from typing import Any

from pgferry.advise.native import NativeProposal, NativeReport
from pgferry.migrate.native_plan import NativeEntry, NativePlan

REFUSED = {"partition": "not partitioned", "check": "no value list"}


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _evidence(evidence: dict[str, Any]) -> str:
    parts = []
    for key, value in evidence.items():
        if key == "statements":
            first = value[0]["query"][:100] if value else ""
            parts.append(f"{len(value)} statement(s), e.g. {first}")
        elif key == "reads" and isinstance(value, dict):
            parts.append("reads " + ", ".join(f"{k} {_figure(v)}" for k, v in value.items()))
        elif isinstance(value, (str, int, float, bool)) or value is None:
            parts.append(f"{key} {_figure(value)}")
        elif key not in ("values", "enum"):  # the entry holds the values; evidence.enum is its alternative
            parts.append(f"{key} {', '.join(map(str, value))}")
    return "evidence: " + "; ".join(parts)


def _note(proposal: NativeProposal) -> str:
    lines = [f"{proposal.kind} {proposal.table}.{proposal.column}: {proposal.summary}", _evidence(proposal.evidence)]
    return "\n".join(lines + [f"cost: {cost}" for cost in proposal.cost])


def native_plan(report: NativeReport) -> NativePlan:
    """The plan file of `report`'s proposals (one entry each), its refusals as closing comments."""
    entries = [
        NativeEntry.from_dict(p.entry, f"{p.kind} {p.table}.{p.column}", note=_note(p))
        for p in report.proposals
        if p.entry
    ]
    comments = [
        f"{REFUSED.get(r.kind, r.kind)}: {r.table}{f' ({r.column})' if r.column else ''}: {'; '.join(r.reasons)}"
        for r in report.refused
    ]
    return NativePlan(entries, ["Not proposed, and why:", *comments] if comments else [])
