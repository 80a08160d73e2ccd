"""Index findings, in the order that makes them consistent with each other.

1. Structural redundancy (schema only) is settled first, and those indexes are dropped from the
   planner copy: missing indexes are then judged against the schema as it will be after the fix.
2. Missing indexes are chosen over the workload (indexes_missing.py) and kept in the copy; an
   existing index one of them starts with is flagged prefix_covered now, so that the run after
   `tune` has nothing left to drop (doctor and tune converge).
3. Low-selectivity indexes are dropped from the copy one by one; one that a statement still needs
   (its plan gets much worse without it: a rare flag value looked up) is put back and not flagged.
4. With a workload, indexes that no statement's plan uses, on tables the workload touches, are
   flagged unused_by_workload (never applied by `tune` unless asked: a workload may be partial).
   "Uses" is read from the very plans the findings show (plan_before). An index a foreign key needs
   is never flagged low_selectivity or unused (indexes_redundant.serves_foreign_key).
5. Write amplification is measured per table on a scratch copy: inserts with all the current
   indexes against inserts without the redundant ones.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from pgferry.doctor.indexes_missing import (
    HELPED_RATIO,
    MIN_ROWS_SAVED,
    ChosenIndex,
    StatementCase,
    build_cases,
    choose_indexes,
    indexable_weight,
)
from pgferry.doctor.indexes_redundant import (
    STRUCTURAL,
    IndexView,
    Redundant,
    covered_by_proposed,
    find_low_selectivity,
    find_structural,
    index_views,
    key_names,
    serves_foreign_key,
)
from pgferry.doctor.planner import PlannerCopy
from pgferry.doctor.predicates import analyze_statement
from pgferry.doctor.report import Finding, Fix
from pgferry.doctor.stats import Statistics
from pgferry.doctor.workload import WorkloadView
from pgferry.doctor.writecost import measure_insert_cost
from pgferry.events import Phases, no_events
from pgferry.sqlite.schema import Schema
from pgferry.sqltext import quote_ident

_REASON_TEXT = {
    "duplicates_primary_key": "duplicates the primary key",
    "duplicates_unique": "duplicates a UNIQUE constraint",
    "exact_duplicate": "is an exact duplicate of",
    "prefix_covered": "is a leading prefix of",
    "low_selectivity": "has too few distinct values:",
    "unused_by_workload": "is used by no statement of the workload",
}


@dataclass
class IndexAnalysis:
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cases: list[StatementCase] = field(default_factory=list)
    chosen: list[ChosenIndex] = field(default_factory=list)


def analyze_indexes(
    conn: sqlite3.Connection,
    schema: Schema,
    statistics: Statistics,
    view: WorkloadView | None,
    *,
    measure_writes: bool = True,
    progress: Phases | None = None,
) -> IndexAnalysis:
    progress = progress or Phases(no_events, "doctor")
    out = IndexAnalysis()
    views = index_views(conn, schema)
    structural = find_structural(views)
    flagged = {r.index.name for r in structural}
    progress.start("index selectivity", None)
    low = find_low_selectivity(conn, statistics, views, flagged)
    unused: list[Redundant] = []
    if view is not None and view.fingerprints:
        progress.start("planning the workload", None)
        low, covered, unused = _with_workload(schema, statistics, view, views, structural, low, out, progress)
        structural = structural + covered
    redundant = structural + low + unused
    costs = _write_costs(schema, statistics, redundant, progress) if measure_writes else {}
    for item in redundant:
        cost = costs.get(item.index.table.name)
        if item.reason == "low_selectivity" and cost is not None and cost["write_amplification"] < 1:
            # its only case is the writes it costs, and dropping it measured no faster
            out.notes.append(
                f"{item.index.name} on {item.index.table.name}: {item.covered_by}, but inserts measured no faster "
                f"without it (write amplification {cost['write_amplification']}); not flagged"
            )
            continue
        out.findings.append(_redundant_finding(item, cost))
    return out


def _with_workload(
    schema: Schema,
    statistics: Statistics,
    view: WorkloadView,
    views: dict[str, list[IndexView]],
    structural: list[Redundant],
    low: list[Redundant],
    out: IndexAnalysis,
    progress: Phases,
) -> tuple[list[Redundant], list[Redundant], list[Redundant]]:
    """Low-selectivity indexes the workload does not need, prefixes of the proposed indexes, and unused
    indexes; the missing-index findings go straight into `out`."""
    infos = [i for i in view.fingerprints.values() if i.kind in ("read", "write") and i.examples]
    tables: set[str] = set()
    for info in infos:
        shape = analyze_statement(info.examples[0].sql, schema)
        if shape is not None:
            tables |= shape.tables
    planner = PlannerCopy(schema, statistics, sorted(tables))
    out.notes.extend(planner.problems)
    try:
        for item in structural:
            if item.index.table.name in tables:
                planner.drop(item.index.name, reload=False)
        planner.db.execute("ANALYZE sqlite_schema")
        cases, notes = build_cases(planner, schema, infos, view.unusable)
        out.notes.extend(notes)
        out.cases = cases
        progress.start("choosing indexes", None)
        chosen = choose_indexes(planner, schema, statistics, cases, indexable_weight(cases))
        out.chosen = chosen
        taken = {i.name for t in schema.tables for i in t.indexes}
        missing = [_missing_finding(pick, statistics, view, taken) for pick in chosen]
        out.findings.extend(missing)
        # "Used" is read from the same EXPLAIN QUERY PLAN the findings show: each statement's plan on the
        # schema as it is (the missing-index findings' plan_before), and every plan tried after it.
        used = {name for case in cases for name in case.base.indexes_used | case.current.indexes_used}
        used |= {name for pick in chosen for _case, before, _after in pick.helped for name in before.indexes_used}
        kept_low = _check_low_selectivity(planner, cases, low, tables)
        flagged = {r.index.name for r in structural + kept_low}
        proposed = [(f.table or "", f.index or "", pick.spec.keys) for f, pick in zip(missing, chosen, strict=True)]
        covered = covered_by_proposed(views, proposed, flagged)
        unused = []
        for table_views in views.values():
            for iv in table_views:
                candidate = (
                    iv.droppable
                    and not iv.unique
                    and iv.table.name in tables
                    and not serves_foreign_key(iv, table_views)
                )
                if candidate and iv.name not in flagged and iv.name not in used:
                    unused.append(Redundant(iv, "unused_by_workload", f"{len(cases)} statement shapes", {}))
        return kept_low, covered, unused
    finally:
        planner.close()


def _check_low_selectivity(
    planner: PlannerCopy, cases: list[StatementCase], low: list[Redundant], tables: set[str]
) -> list[Redundant]:
    kept = []
    for item in low:
        name = item.index.name
        if item.index.table.name not in tables:
            kept.append(item)
            continue
        item.evidence["checked_against_workload"] = True
        users = [c for c in cases if name in c.current.indexes_used]
        planner.drop(name)
        after = {c.id: planner.plan(c.sql, c.params, c.shape.aliases, c.shape.limit, c.shape.filters) for c in users}
        needed = [
            c
            for c in users
            if c.current.cost <= after[c.id].cost * HELPED_RATIO and after[c.id].cost - c.current.cost >= MIN_ROWS_SAVED
        ]
        if needed:
            planner.restore(name)
            continue
        for case in users:
            case.current = after[case.id]
        item.evidence["used_by_statements"] = len(users)
        kept.append(item)
    return kept


def _write_costs(
    schema: Schema, statistics: Statistics, redundant: list[Redundant], progress: Phases
) -> dict[str, dict[str, Any]]:
    by_table: dict[str, set[str]] = {}
    for item in redundant:
        if item.reason != "unused_by_workload":
            by_table.setdefault(item.index.table.name, set()).add(item.index.name)
    progress.start("measuring write cost", len(by_table))
    costs: dict[str, dict[str, Any]] = {}
    for name, drop in by_table.items():
        table = schema.table(name)
        created = [(i.name, i.sql) for i in table.indexes if i.origin == "c" and i.sql]
        cost = measure_insert_cost(
            statistics,
            table,
            {
                "all_indexes": [sql for _name, sql in created],
                "without_redundant": [sql for name, sql in created if name not in drop],
            },
        )
        progress.advance()
        if cost is not None:
            ratio = cost.ratio("all_indexes", "without_redundant")
            costs[name] = {
                **cost.to_dict(),
                "write_amplification": round(ratio, 2),
                "redundant_indexes_on_table": len(drop),
            }
    return costs


def _redundant_finding(item: Redundant, write_cost: dict[str, Any] | None) -> Finding:
    iv = item.index
    reason = item.reason
    if reason in ("low_selectivity",):
        text = f"{iv.name} on {iv.table.name} has too few distinct values ({item.covered_by})"
    elif reason == "unused_by_workload":
        text = f"{iv.name} on {iv.table.name} is used by none of the workload's {item.covered_by}"
    else:
        text = f"{iv.name} on {iv.table.name} {_REASON_TEXT[reason]} {item.covered_by}".replace("  ", " ")
    evidence: dict[str, Any] = {"reason_detail": item.covered_by, **item.evidence}
    if reason in STRUCTURAL:
        evidence["covered_by"] = item.covered_by
    if write_cost is not None:
        evidence["write_cost"] = write_cost
    severity = "medium" if reason in STRUCTURAL else "low"
    fix_text = (
        "drop it"
        if reason != "low_selectivity"
        else ("drop it; if queries look for one rare value, a partial index (WHERE col = value) serves them")
    )
    # Few distinct values say nothing of the queries: a lookup of a rare value still gains from the index.
    # Only a workload whose statements were planned without it makes the drop safe to apply unasked.
    unchecked = reason == "low_selectivity" and not item.evidence.get("checked_against_workload")
    if unchecked:
        fix_text = (
            "drop it if no query looks for one of its rare values (no workload shows the queries on this table: "
            "give one with --workload and the doctor checks); for such queries a partial index (WHERE col = value) "
            "is enough"
        )
    if reason == "unused_by_workload":
        fix_text = "drop it if no other code path needs it (the workload may not show every query)"
    if write_cost is not None and write_cost["write_amplification"] < 1:
        fix_text += (
            f"; inserts measured no faster without it (write amplification {write_cost['write_amplification']}, "
            "within noise): the gain is its space and one index fewer for the planner, not write speed"
        )
    return Finding(
        "redundant_index",
        severity,
        text,
        table=iv.table.name,
        index=iv.name,
        columns=key_names(iv),
        reason=reason,
        evidence=evidence,
        fix=Fix(
            fix_text,
            sql=[f"DROP INDEX {quote_ident(iv.name)}"],
            reverse_sql=[iv.sql] if iv.sql else [],
            auto=reason != "unused_by_workload" and not unchecked,
        ),
    )


def _missing_finding(pick: ChosenIndex, statistics: Statistics, view: WorkloadView, taken: set[str]) -> Finding:
    spec = pick.spec
    name = spec.suggested_name()
    while name in taken:
        name += "_2"
    taken.add(name)
    total = view.total_weight or 1.0
    share = pick.benefit / total
    statements = []
    ms_saved = 0.0
    for case, before, after in pick.helped:
        stats = case.info.stats
        saved = stats.total_ms * (1 - after.cost / before.cost) if before.cost else 0.0
        ms_saved += saved
        statements.append(
            {
                "fingerprint": stats.id,
                "statement": stats.text,
                "calls": stats.calls,
                "total_ms": round(stats.total_ms, 3),
                "plan_before": before.lines,
                "plan_after": [line.replace(pick.name_in_copy, name) for line in after.lines],
                "estimated_rows_before": round(before.cost),
                "estimated_rows_after": round(after.cost),
            }
        )
    sample = statistics.sample(spec.table)
    figures = statistics.key_stat(spec.table, spec.keys, spec.where)
    source = "sqlite_stat1 and a sample" if statistics.stat1 else "a sample"
    if not sample.sampled:
        source = "sqlite_stat1 and the whole table" if statistics.stat1 else "the whole table"
    severity = "high" if share >= 0.10 else "medium" if share >= 0.01 else "low"
    keys = [k.column if k.column is not None else k.sql for k in spec.keys]
    return Finding(
        "missing_index",
        severity,
        f"{spec.label} would serve {len(statements)} statement shape(s), about {share:.0%} of the workload's time",
        table=spec.table,
        index=name,
        columns=keys,
        evidence={
            "statements": statements,
            "key_sql": [k.render() for k in spec.keys],
            "index_statistics": {"rows": figures[0], "avg_rows_per_key_prefix": figures[1:]},
            "verified_by": f"EXPLAIN QUERY PLAN on a schema copy with statistics from {source}",
        },
        fix=Fix(
            "create the index",
            sql=[spec.create_sql(name)],
            reverse_sql=[f"DROP INDEX IF EXISTS {quote_ident(name)}"],
            auto=True,
        ),
        gain={
            "workload_share": round(share, 4),
            "ms": round(ms_saved, 3) if view.timed else None,
            "how": "planner estimate: rows visited before and after, weighted by each statement's total time",
        },
    )
