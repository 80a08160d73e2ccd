"""`diagnose()`: read a SQLite database (and optionally its workload) and return a Report.

The database is opened read-only and never written: samples, the planner copy and write-cost
measurements all live in memory or in scratch files in the temporary directory. Checks run in the
order that lets later ones build on earlier ones (see indexes.py); quick_check reads the whole file
in a thread meanwhile.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from pgferry.doctor.frameworks import in_framework_terms
from pgferry.doctor.growth import analyze_growth
from pgferry.doctor.indexes import IndexAnalysis, analyze_indexes
from pgferry.doctor.integrity import QuickCheck, find_fk_without_index, find_no_primary_key
from pgferry.doctor.pragma import find_pragma_problems, read_settings
from pgferry.doctor.report import Finding, Report
from pgferry.doctor.requests import find_missing_transactions, find_n_plus_one
from pgferry.doctor.splits import find_split_problems
from pgferry.doctor.stats import SAMPLE_ROWS, Statistics
from pgferry.doctor.wide_table import find_wide_tables
from pgferry.doctor.workload import WorkloadView, load_workload
from pgferry.events import Listener, Phases, no_events
from pgferry.migrate.frameworks import detect
from pgferry.sqlite.busy import DEADLINE_S, retry
from pgferry.sqlite.connect import check_sqlite_file, open_readonly
from pgferry.sqlite.schema import read_schema
from pgferry.workload import Statement

T = TypeVar("T")
_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}
TOP_FINGERPRINTS = 20


def diagnose(
    path: str | Path,
    workload: str | Path | Iterable[Statement] | WorkloadView | None = None,
    *,
    size_limit: int | None = None,
    events: Listener = no_events,
    sample_rows: int = SAMPLE_ROWS,
    measure_writes: bool = True,
    check_integrity: bool = True,
) -> Report:
    """Diagnose the database at `path`; `workload` is a log file, statements, or an already loaded view."""
    progress = Phases(events, "doctor")
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = seconds.get(name, 0.0) + now - clock
        clock = now

    file = check_sqlite_file(path)
    view: WorkloadView | None = None
    if workload is not None:
        progress.start("reading the workload", None)
        view = workload if isinstance(workload, WorkloadView) else load_workload(workload)
        lap("workload")
    checker = QuickCheck(file) if check_integrity else None
    conn = open_readonly(file, lock_wait_s=DEADLINE_S)
    try:
        progress.start("reading the schema", None)
        schema = retry(lambda: read_schema(conn), what=str(file))
        statistics = Statistics(conn, schema, sample_rows=sample_rows)
        settings = read_settings(conn)
        findings: list[Finding] = []
        notes: list[str] = []
        lap("schema")

        def run(name: str, func: Callable[[], T], default: T) -> T:
            """One phase; a damaged page it trips on becomes a note (quick_check reports the damage)."""
            progress.start(name, None)
            try:
                return retry(func, what=str(file))
            except sqlite3.DatabaseError as exc:
                notes.append(f"{name}: skipped, SQLite said: {exc}")
                return default
            finally:
                lap(name)

        findings += run("settings", lambda: find_pragma_problems(conn, schema, statistics, view)[0], [])
        analysis = run(
            "indexes",
            lambda: analyze_indexes(conn, schema, statistics, view, measure_writes=measure_writes, progress=progress),
            IndexAnalysis(),
        )
        findings += analysis.findings
        notes += analysis.notes
        chosen_keys = [(c.spec.table, [k.column for k in c.spec.keys]) for c in analysis.chosen]
        fk = run("foreign keys", lambda: find_fk_without_index(schema, statistics), list[Finding]())
        findings += [f for f in fk if not _served(f, chosen_keys)]
        findings += run("primary keys", lambda: find_no_primary_key(schema, statistics), list[Finding]())
        findings += run("splits", lambda: find_split_problems(conn, schema), list[Finding]())
        wide = run("wide tables", lambda: find_wide_tables(conn, schema), list[Finding]())
        findings += wide
        if view is not None:
            findings += run(
                "request patterns", lambda: find_n_plus_one(view) + find_missing_transactions(view), list[Finding]()
            )
        growth, growth_chart = run(
            "growth",
            lambda: analyze_growth(conn, statistics, schema, file, settings, size_limit),
            (list[Finding](), dict[str, Any]()),
        )
        findings += growth
        if checker is not None:
            progress.start("quick_check", None)
            findings += checker.result()
            lap("integrity")
        progress.finish()
        notes += _sampling_notes(statistics)
        framework = detect(schema)  # index fixes on its database go through its models
        if framework is not None:
            findings = in_framework_terms(findings, framework)
            notes.append(f"managed by {framework.name} ({framework.evidence}): index changes are advised in its models")
        findings.sort(key=lambda f: (_SEVERITY_ORDER[f.severity], f.kind, f.table or "", f.index or ""))
        charts: dict[str, Any] = {
            "growth": growth_chart,
            "null_maps": {
                f.table: {"null_ratio": f.evidence["null_ratio"], "families": f.evidence["families"]}
                for f in wide
                if "null_ratio" in f.evidence  # a table split cannot take has a reason, not a map
            },
        }
        if view is not None:
            plans = {case.id: case.base.lines for case in analysis.cases}  # EXPLAIN QUERY PLAN, as things stand
            charts["fingerprints"] = [
                {
                    "id": i.stats.id,
                    "text": i.stats.text[:200],
                    "calls": i.stats.calls,
                    "total_ms": round(i.stats.total_ms, 3),
                    "plan": plans.get(i.stats.id, []),
                }
                for i in list(view.fingerprints.values())[:TOP_FINGERPRINTS]
            ]
        return Report(
            database=str(file),
            sqlite_version=sqlite3.sqlite_version,
            size_bytes=settings["page_count"] * settings["page_size"],
            tables=len(schema.tables),
            indexes=sum(len(t.indexes) for t in schema.tables),
            workload=view.to_dict() if view is not None else None,
            findings=findings,
            notes=notes,
            charts=charts,
            seconds=seconds,
            framework=framework.name if framework is not None else None,
        )
    finally:
        conn.close()


def _served(finding: Finding, chosen: list[tuple[str, list[str | None]]]) -> bool:
    """A foreign key that a chosen missing index already leads with needs no finding of its own."""
    cols = set(finding.columns or ())
    return any(table == finding.table and set(keys[: len(cols)]) == cols for table, keys in chosen)


def _sampling_notes(statistics: Statistics) -> list[str]:
    notes = []
    for sample in sorted(statistics.samples(), key=lambda s: s.table):
        if sample.sampled:
            notes.append(
                f"{sample.table}: statistics, NULL ratios and growth measured on a random sample of "
                f"{sample.sample_rows:,} of {sample.rows:,} rows"
            )
    return notes
