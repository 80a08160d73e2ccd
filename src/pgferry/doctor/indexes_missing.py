"""Indexes the workload needs: candidates from each statement, judged by the planner, chosen for all.

For every fingerprint, its example statement is parsed (predicates.py) and candidates are built per
table: equality keys first (most selective first), then one range key or the ORDER BY / GROUP BY
keys, then a covering variant that adds the remaining small columns the statement reads. Each
candidate is created in the planner copy (planner.py) and every statement on its table is planned
again. Selection is greedy over the whole workload: the candidate whose plans save the most weighted
work (calls x time of each statement it helps) goes in first, and the others are judged again with it
in place, so one index that serves several statements beats several that serve one each. Finally a
chosen index that is a prefix of another chosen one is dropped when the longer one serves its
statements as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pgferry.doctor.planner import IndexSpec, Plan, PlannerCopy
from pgferry.doctor.predicates import StatementShape, TableUse, analyze_statement
from pgferry.doctor.stats import KeyIdent, KeyPart, Statistics, keys_ident
from pgferry.doctor.workload import FingerprintInfo
from pgferry.sqlite.schema import Schema
from pgferry.sqltext import quote_ident
from pgferry.workload.unusable import NOT_PLANNED, NOT_UNDERSTOOD, Unusable

MAX_KEYS = 6
MAX_COVERING_EXTRA = 3
# A statement counts as helped when its plan costs at most this share of what it cost before and
# saves at least MIN_ROWS_SAVED row visits; smaller gains do not pay for an index's writes.
HELPED_RATIO = 1 / 3
MIN_ROWS_SAVED = 50
MIN_SHARE = 0.001  # of the workload's weight
TIE = 0.95
_SMALL_TYPE = re.compile(r"INT|REAL|FLOA|DOUB|NUM|DEC|BOOL|DATE|TIME|CHAR\s*\(\s*(\d+)", re.IGNORECASE)

SpecIdent = tuple[str, KeyIdent]  # a candidate index as data: its table and keys


@dataclass
class StatementCase:
    """A fingerprint the planner can judge: its example, parsed, and its plan as things stand."""

    info: FingerprintInfo
    sql: str
    params: Any
    shape: StatementShape
    base: Plan
    current: Plan

    @property
    def id(self) -> str:
        return self.info.stats.id


@dataclass
class ChosenIndex:
    spec: IndexSpec
    name_in_copy: str
    helped: list[tuple[StatementCase, Plan, Plan]] = field(default_factory=list)  # (case, before, after)
    benefit: float = 0.0


def build_cases(
    planner: PlannerCopy, schema: Schema, fingerprints: list[FingerprintInfo], unusable: Unusable | None = None
) -> tuple[list[StatementCase], list[str]]:
    """Parse and plan each fingerprint's example; notes for the ones that could not be judged, whose
    statements are also counted in `unusable`."""
    cases, notes = [], []
    unusable = unusable if unusable is not None else Unusable()
    for info in fingerprints:
        if info.kind not in ("read", "write") or not info.examples:
            continue
        example = info.examples[0]
        if example.many is not None:
            params = example.params[0] if isinstance(example.params, list) and example.params else None
        else:
            params = example.params
        shape = analyze_statement(example.sql, schema)
        if shape is None or not shape.tables:
            if info.kind == "write" or shape is None:  # a read of no table (SELECT 1) needs no index
                unusable.add(NOT_UNDERSTOOD, info.stats.example, count=info.stats.calls)
            continue
        plan = planner.plan(example.sql, params, shape.aliases, shape.limit, shape.filters)
        if plan.error:
            notes.append(f"fingerprint {info.stats.id} not planned: {plan.error}")
            unusable.add(NOT_PLANNED, info.stats.example, plan.error, count=info.stats.calls)
            continue
        cases.append(StatementCase(info, example.sql, params, shape, plan, plan))
    return cases, notes


def _small(schema: Schema, table: str, column: str) -> bool:
    """A column cheap to carry in an index (numbers, dates, short strings), not prose or blobs."""
    declared = schema.table(table).column(column).declared_type
    m = _SMALL_TYPE.search(declared)
    if m is None:
        return False
    return m.group(1) is None or int(m.group(1)) <= 64


def candidates_for(use: TableUse, schema: Schema, statistics: Statistics) -> list[IndexSpec]:
    """Index candidates for one table reference, most specific first."""

    def selectivity(part: KeyPart) -> tuple[int, str]:
        try:
            figures = statistics.key_stat(use.table, (part,))
            return figures[1], part.sql
        except Exception:  # an expression the sample cannot evaluate: order by text
            return 1 << 30, part.sql

    eq = sorted(use.eq, key=selectivity)
    joins = sorted((p for p in use.join_eq if all(p.sql != e.sql for e in eq)), key=selectivity)
    in_eq = {p.sql for p in eq}
    order = [p for p in use.order if p.sql not in in_eq]
    group = [p for p in use.group if p.sql not in in_eq]
    ranges = [p for p in use.ranges if p.sql not in in_eq]
    bases: list[tuple[KeyPart, ...]] = []
    if eq:
        bases.append(tuple(eq))
        if ranges:
            bases.append((*eq, ranges[0]))
    if order:
        bases.append((*eq, *order))
    if group:
        bases.append((*eq, *group))
    if joins:
        bases.append((*eq, *joins))
        if eq:
            bases.append(tuple(joins))
    if not eq and ranges:
        bases.append((ranges[0],))
    specs: list[IndexSpec] = []
    seen: set[KeyIdent] = set()

    def push(keys: tuple[KeyPart, ...], covering: int = 0) -> None:
        keys = keys[:MAX_KEYS]
        if not keys:
            return
        ident = keys_ident(keys)
        if ident not in seen:
            seen.add(ident)
            specs.append(IndexSpec(use.table, keys, covering=max(0, covering - (len(keys) - MAX_KEYS))))

    for keys in bases:
        push(keys)
    if use.columns is not None and bases:
        table = schema.table(use.table)
        for keys in bases:
            have = {k.column for k in keys if k.column}
            extra = sorted(c for c in use.columns if c not in have and c != table.rowid_alias)
            if extra and len(extra) <= MAX_COVERING_EXTRA and all(_small(schema, use.table, c) for c in extra):
                push((*keys, *(KeyPart(quote_ident(c), None, False, c) for c in extra)), covering=len(extra))
    return specs


def _gain(case: StatementCase, before: float, after: float) -> float:
    return case.info.weight * (before - after) / before if before > 0 else 0.0


def indexable_weight(cases: list[StatementCase]) -> float:
    """The weight of the statements an index could serve (a predicate, a join, an order or a group):
    MIN_SHARE is of this, not of the whole workload, whose commits (an INSERT's fsync on a slow or busy
    disk) no index shortens and which would otherwise drown a hot lookup."""
    return sum(
        case.info.weight
        for case in cases
        if any(use.eq or use.join_eq or use.ranges or use.order or use.group for use in case.shape.uses)
    )


def _helped(before: float, after: float) -> bool:
    return after <= before * HELPED_RATIO and before - after >= MIN_ROWS_SAVED


def choose_indexes(
    planner: PlannerCopy,
    schema: Schema,
    statistics: Statistics,
    cases: list[StatementCase],
    total_weight: float,
    *,
    max_indexes: int = 30,
) -> list[ChosenIndex]:
    """Greedy selection over the whole workload (see the module docstring); the copy keeps the chosen."""
    by_table: dict[str, list[StatementCase]] = {}
    for case in cases:
        for table in case.shape.tables:
            by_table.setdefault(table, []).append(case)
    pool: dict[SpecIdent, IndexSpec] = {}
    existing = _existing_keys(schema, planner)
    for case in cases:
        for use in case.shape.uses:
            for spec in candidates_for(use, schema, statistics):
                ident = (spec.table, keys_ident(spec.keys))
                if ident not in existing:
                    pool.setdefault(ident, spec)
    scores: dict[SpecIdent, tuple[float, list[tuple[StatementCase, Plan]]]] = {}
    chosen: list[ChosenIndex] = []
    floor = total_weight * MIN_SHARE
    while pool and len(chosen) < max_indexes:
        for ident, spec in pool.items():
            if ident not in scores:
                scores[ident] = _score(planner, spec, by_table.get(spec.table, []))
        eligible = [
            (value, ident)
            for ident, (value, trials) in scores.items()
            if value >= floor and value > 0 and any(_helped(c.current.cost, p.cost) for c, p in trials)
        ]
        if not eligible:
            break
        top = max(value for value, _ident in eligible)

        # Among near-ties: fewest sorts left, then fewest covering-only columns, then fewest keys; a
        # column that saves 2% of a statement's work is not worth its cost to every write.
        def preference(vi: tuple[float, SpecIdent]) -> tuple[int, int, int, float]:
            sorts = sum(p.sorts for _c, p in scores[vi[1]][1])
            return sorts, pool[vi[1]].covering, len(pool[vi[1]].keys), -vi[0]

        best_value, best_ident = min(((v, i) for v, i in eligible if v >= top * TIE), key=preference)
        spec = pool.pop(best_ident)
        _value, trials = scores.pop(best_ident)
        name = planner.add(spec)
        pick = ChosenIndex(spec, name, benefit=best_value)
        for case, _trial in trials:
            after = planner.plan(case.sql, case.params, case.shape.aliases, case.shape.limit, case.shape.filters)
            if after.cost < case.current.cost:
                pick.helped.append((case, case.current, after))
            case.current = after
        chosen.append(pick)
        for ident in [i for i in scores if i[0] == spec.table]:
            del scores[ident]
    return _consolidate(planner, chosen, by_table)


def _existing_keys(schema: Schema, planner: PlannerCopy) -> set[SpecIdent]:
    out: set[SpecIdent] = set()
    for table in schema.tables:
        for index in table.indexes:
            if index.name in planner.dropped or index.where is not None:
                continue
            keys: list[tuple[str, str | None, bool]] = []
            for col in index.columns:
                sql = quote_ident(col.name) if col.name is not None else (col.expression or "")
                collation = None if (col.collation or "BINARY") == "BINARY" else col.collation
                keys.append((sql, collation, col.desc))
            out.add((table.name, tuple(keys)))
    return out


def _score(
    planner: PlannerCopy, spec: IndexSpec, cases: list[StatementCase]
) -> tuple[float, list[tuple[StatementCase, Plan]]]:
    if not cases:
        return 0.0, []
    try:
        name = planner.add(spec)
    except Exception:  # an expression SQLite refuses in an index (non-deterministic): not a candidate
        return 0.0, []
    trials = []
    value = 0.0
    try:
        for case in cases:
            plan = planner.plan(case.sql, case.params, case.shape.aliases, case.shape.limit, case.shape.filters)
            trials.append((case, plan))
            value += _gain(case, case.current.cost, plan.cost)
    finally:
        planner.drop(name)
    return value, trials


def _consolidate(
    planner: PlannerCopy, chosen: list[ChosenIndex], by_table: dict[str, list[StatementCase]]
) -> list[ChosenIndex]:
    """Drop a chosen index that is a prefix of another chosen one when its statements lose nothing."""
    keep = list(chosen)
    for short in sorted(chosen, key=lambda c: len(c.spec.keys)):
        longer = [
            c
            for c in keep
            if c is not short
            and c.spec.table == short.spec.table
            and len(c.spec.keys) > len(short.spec.keys)
            and c.spec.keys[: len(short.spec.keys)] == short.spec.keys
        ]
        if not longer or short not in keep:
            continue
        cases = by_table.get(short.spec.table, [])
        planner.drop(short.name_in_copy)
        worse = False
        plans = {}
        for case in cases:
            plan = planner.plan(case.sql, case.params, case.shape.aliases, case.shape.limit, case.shape.filters)
            plans[case.id] = plan
            if plan.cost > case.current.cost * 1.1:
                worse = True
                break
        if worse:
            short.name_in_copy = planner.add(short.spec)
            continue
        keep.remove(short)
        target = longer[0]
        for case in cases:
            case.current = plans.get(case.id, case.current)
        for case, before, _after in short.helped:
            if all(h[0] is not case for h in target.helped):
                target.helped.append((case, before, case.current))
        target.benefit += short.benefit
    return keep
