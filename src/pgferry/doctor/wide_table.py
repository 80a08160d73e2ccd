"""Wide tables: how full each column is, which columns are filled together, and a split plan.

The measuring and the proposal are `pgferry split`'s own (pgferry.split.propose: one scan that
counts the table's NULL patterns, families by the phi coefficient of their "is filled" indicators,
sparse families as key-value rows), so the plan in the finding is exactly what `pgferry split DB
TABLE --plan FILE` accepts. This module decides which tables are worth it and turns the proposal into
a finding with its evidence. A table split cannot take (no primary key, triggers of its own) is still
reported, with the reason instead of a plan.

The proposal is made from the data alone, so the families are the columns really filled together.
`pgferry split --auto --workload FILE` can then keep the workload's hot columns in the core table
(reads of them need no join), which moves a family's hot members out of it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from pgferry.doctor.report import Finding, Fix
from pgferry.errors import PgferryError
from pgferry.split import propose
from pgferry.sqlite.schema import Schema, Table

WIDE_COLUMNS = 20


def _evidence(plan: Any, table: Table) -> dict[str, Any]:
    profile = plan.profile
    ratios = {c.name: round(1 - c.ratio, 4) for c in profile.columns}
    return {
        "columns": len(table.columns),
        "rows": profile.rows,
        "null_share": round(profile.null_ratio(), 4),
        "null_ratio": ratios,
        "families": [
            {"name": f.table, "columns": f.columns, "proposal": f.kind, "note": f.note} for f in plan.families
        ],
        "top_null_patterns": [{"filled": cols, "rows": rows} for cols, rows in profile.top_patterns(5)],
        "measured_by": "one scan counting NULL patterns (pgferry.split.propose)",
    }


def analyze_wide_table(conn: sqlite3.Connection, table: Table, workload: str | Path | None = None) -> Finding | None:
    """A wide_table finding with split's proposal, or None when the table is not wide or nothing would
    move out of it (a split that moves no column only rebuilds the table)."""
    if len(table.columns) < WIDE_COLUMNS:
        return None
    try:
        plan = propose(conn, table.name, workload)
    except PgferryError as exc:
        return Finding(
            "wide_table",
            "low",
            f"{table.name} has {len(table.columns)} columns; no split can be proposed: {exc}",
            table=table.name,
            evidence={"columns": len(table.columns), "why_no_plan": str(exc)},
            fix=Fix("fix what stops the split first, then run `pgferry split DB TABLE --auto`"),
        )
    families = plan.families
    if not families:
        return None
    evidence = _evidence(plan, table)
    severity = "high" if evidence["null_share"] >= 0.5 else "medium"
    moved = ", ".join(f"{f.table} ({len(f.columns)} columns, {f.kind.replace('_', '-')})" for f in families)
    return Finding(
        "wide_table",
        severity,
        f"{table.name} has {len(table.columns)} columns, {evidence['null_share']:.0%} of its cells NULL; "
        f"{len(families)} column famil{'y' if len(families) == 1 else 'ies'} could move out",
        table=table.name,
        columns=[c.name for c in table.columns],
        evidence=evidence,
        fix=Fix(
            f"split {table.name}: {len(plan.core_columns)} columns stay in {plan.core_table}"
            + f"; {moved}"
            + "; write the plan with `pgferry doctor --split-plans DIR` and apply it with "
            f"`pgferry split DB {table.name} --plan DIR/{table.name}.split.toml --apply`",
            plan=plan.to_dict(),
        ),
    )


def find_wide_tables(conn: sqlite3.Connection, schema: Schema, workload: str | Path | None = None) -> list[Finding]:
    out = []
    for table in schema.tables:
        finding = analyze_wide_table(conn, table, workload)
        if finding is not None:
            out.append(finding)
    return out
