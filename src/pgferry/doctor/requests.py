"""Patterns inside one request: N+1 loops and multi-step writes without a transaction.

Both need the workload's request scopes (the `request` field of the log): statements of one web
request or job, in the order they ran.

- n_plus_one: the same read fingerprint at least N_PLUS_ONE_MIN times in one request, after a
  different statement (the parent, usually the query that produced the ids). Findings are grouped by
  (repeated fingerprint, parent fingerprint) over all requests.
  A repeated statement that reads no table (Django's DEBUG-mode `SELECT QUOTE(?)`) or only SQLite's
  catalog is no N+1 loop: the application has no rows to fetch together.
- missing_transaction: two or more writes of one request outside any transaction. pgferry's capture
  records the transaction each statement ran in as the driver reports it (`tx`), so writes inside
  the transaction Python's sqlite3 opens implicitly (SQLAlchemy's flush) count as guarded; for a log
  without `tx` (older logs, .sql files) BEGIN ... COMMIT statements in the log are all there is.
"""

from __future__ import annotations

import functools
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

from pgferry.doctor.report import Finding, Fix
from pgferry.doctor.workload import Call, WorkloadView
from pgferry.sqlparse import parse_one

N_PLUS_ONE_MIN = 5


@dataclass
class _Loop:
    requests: int = 0
    repeats: list[int] = field(default_factory=list)
    ms: float = 0.0
    sites: Counter[str] = field(default_factory=Counter)
    parent_sites: Counter[str] = field(default_factory=Counter)
    example_request: str | None = None


def _severity(share: float) -> str:
    return "high" if share >= 0.10 else "medium" if share >= 0.01 else "low"


def _worse(a: str, b: str) -> str:
    order = ("high", "medium", "low")
    return a if order.index(a) <= order.index(b) else b


def _batched(text: str) -> str | None:
    """The repeated statement rewritten to fetch all rows at once: its first `col = ?` becomes `col IN (...)`."""
    try:
        tree = parse_one(text, read="sqlite")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None
    where = tree.args.get("where") if isinstance(tree, exp.Select) else None
    if where is None:
        return None
    for node in where.find_all(exp.EQ):
        column, value = node.this, node.expression
        if isinstance(value, exp.Column) and isinstance(column, exp.Placeholder):
            column, value = value, column
        if isinstance(column, exp.Column) and isinstance(value, exp.Placeholder):
            node.replace(exp.In(this=column.copy(), expressions=[exp.Placeholder(), exp.Placeholder()]))
            return tree.sql(dialect="sqlite").replace("IN (?, ?)", "IN (?, ?, ...)")
    return None


def find_n_plus_one(view: WorkloadView) -> list[Finding]:
    loops: dict[tuple[str, str], _Loop] = {}
    for request, calls in view.requests.items():
        counts = Counter(c.fp for c in calls if c.kind == "read")
        for fp, count in counts.items():
            if count < N_PLUS_ONE_MIN or not _reads_a_table(view.fingerprints[fp].stats.text):
                continue
            first = next(i for i, c in enumerate(calls) if c.fp == fp)
            parent = next((calls[j] for j in range(first - 1, -1, -1) if calls[j].fp != fp), None)
            if parent is None:
                continue
            loop = loops.setdefault((fp, parent.fp), _Loop())
            loop.requests += 1
            loop.repeats.append(count)
            loop.example_request = loop.example_request or request
            for call in calls:
                if call.fp == fp:
                    loop.ms += call.ms or 0.0
                    if call.site:
                        loop.sites[call.site] += 1
            if parent.site:
                loop.parent_sites[parent.site] += 1
    total_ms = sum(i.stats.total_ms for i in view.fingerprints.values()) or 1.0
    findings = []
    for (fp, parent_fp), loop in sorted(loops.items(), key=lambda kv: -kv[1].ms):
        info, parent_info = view.fingerprints[fp], view.fingerprints[parent_fp]
        site = loop.sites.most_common(1)[0][0] if loop.sites else None
        batched = _batched(info.stats.text)
        median = statistics.median(loop.repeats)
        fix = Fix(
            "load the rows in one statement instead of one per parent row: join them to the parent query, or "
            "collect the keys and fetch them together" + (f": {batched}" if batched else ""),
            sql=[batched] if batched else [],
        )
        findings.append(
            Finding(
                kind="n_plus_one",
                severity=_worse(
                    _severity(loop.ms / total_ms) if view.timed else "medium", "medium" if median >= 10 else "low"
                ),
                title=f"{sum(loop.repeats):,} repeated reads in {loop.requests:,} requests "
                f"(median {median:g} per request) at {site or 'an unknown site'}",
                table=None,
                evidence={
                    "fingerprint": fp,
                    "statement": info.stats.text,
                    "count": sum(loop.repeats),
                    "requests": loop.requests,
                    "per_request": {"median": median, "max": max(loop.repeats)},
                    "total_ms": round(loop.ms, 3),
                    "call_site": site,
                    "call_sites": [{"site": s, "calls": n} for s, n in loop.sites.most_common(3)],
                    "parent": {
                        "fingerprint": parent_fp,
                        "statement": parent_info.stats.text,
                        "call_site": loop.parent_sites.most_common(1)[0][0] if loop.parent_sites else None,
                    },
                    "example_request": loop.example_request,
                },
                fix=fix,
                gain={"ms": round(loop.ms * (1 - 1 / max(median, 1)), 3), "how": "one statement instead of N"},
            )
        )
    return findings


@functools.lru_cache(maxsize=4096)
def _reads_a_table(text: str) -> bool:
    """Whether a statement reads an application table (not only values, not only SQLite's catalog)."""
    try:
        tree = parse_one(text, read="sqlite")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return True  # cannot tell: keep it
    names = [t.name.lower() for t in tree.find_all(exp.Table)]
    return any(not (n.startswith(("sqlite_", "pragma_")) or n == "") for n in names)


def _writes_outside_transactions(calls: list[Call]) -> list[Call]:
    depth = 0
    outside = []
    for call in calls:
        if call.tx is not None:  # the capture said: "" outside any transaction, else inside one
            if call.kind == "write" and call.tx == "":
                outside.append(call)
            continue
        if call.kind == "begin":
            depth += 1
        elif call.kind == "end":
            depth = max(0, depth - 1) if depth > 1 else 0
        elif call.kind == "write" and depth == 0:
            outside.append(call)
    return outside


def find_missing_transactions(view: WorkloadView) -> list[Finding]:
    groups: dict[str, list[tuple[str, list[Call]]]] = {}
    for request, calls in view.requests.items():
        outside = _writes_outside_transactions(calls)
        if len(outside) >= 2:
            groups.setdefault(outside[0].fp, []).append((request, outside))  # one group per first write
    findings = []
    for _first, members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        key = tuple(dict.fromkeys(c.fp for _r, calls in members for c in calls))  # write shapes, in order
        example_request, _example = max(members, key=lambda m: len(m[1]))
        sites = Counter(c.site for _r, calls in members for c in calls if c.site)
        writes: list[dict[str, Any]] = []
        for fp in key:
            info = view.fingerprints[fp]
            site = next((c.site for _r, calls in members for c in calls if c.fp == fp), None)
            writes.append({"fingerprint": fp, "statement": info.stats.text, "call_site": site})
        tables = {_target_table(w["statement"]) for w in writes} - {None}
        per_request = [len(calls) for _r, calls in members]
        first_site = writes[0]["call_site"]
        findings.append(
            Finding(
                kind="missing_transaction",
                severity="high" if len(tables) > 1 else "medium",
                title=f"{len(members):,} requests make {max(per_request)} writes without a transaction "
                f"(first at {first_site or 'an unknown site'})",
                table=None,
                evidence={
                    "requests": len(members),
                    "writes_per_request": {"median": statistics.median(per_request), "max": max(per_request)},
                    "writes": writes,
                    "tables": sorted(tables),
                    "call_sites": [{"site": s, "calls": n} for s, n in sites.most_common(5)],
                    "example_request": example_request,
                },
                fix=Fix(
                    "run the writes of one request in one transaction (BEGIN IMMEDIATE ... COMMIT): a failure half "
                    "way then leaves nothing behind, and the writer takes the lock once instead of once per statement",
                    sql=["BEGIN IMMEDIATE", *(w["statement"] for w in writes), "COMMIT"],
                ),
            )
        )
    return findings


def _target_table(text: str) -> str | None:
    try:
        tree = parse_one(text, read="sqlite")
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return None
    table = tree.find(exp.Table)
    return table.name if table is not None else None
