"""Propose a split from the data: the core columns, families filled together, sparse key-value families.

Rules, in order:

- the core keeps the key, NOT NULL columns, columns a constraint or another table needs, columns
  filled in at least `core_fill` of the rows, and the columns the workload's hot statements use;
- the other columns are clustered on the phi coefficient of their "is filled" indicators
  (average linkage, merge while the mean phi between two clusters is at least `together`): a
  family is a cluster of two or more; a column filled independently of all others stays in core;
- a family becomes a key-value table when its columns share one type affinity, carry no
  constraint or index, and are sparse inside the family (rows that have the family fill fewer
  than half of its columns): social links, gamer tags. Otherwise it becomes a side table.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import numpy as np

from pgferry.split.hot import HotStatement, Workload, hot_statements
from pgferry.split.plan import Family, SplitPlan
from pgferry.split.profile import TableProfile, profile_table
from pgferry.split.sqltext import fold
from pgferry.split.validate import affinity, find_table, key_value_problem, pinned_to_core
from pgferry.sqlite.connect import open_readonly
from pgferry.sqlite.schema import Schema, Table, read_schema

CORE_FILL = 0.5
TOGETHER = 0.2
KV_DENSITY = 0.5
KV_MIN_COLUMNS = 3


def propose(
    conn_or_path: sqlite3.Connection | str | os.PathLike[str],
    table: str,
    workload: Workload | None = None,
    *,
    core_fill: float = CORE_FILL,
    together: float = TOGETHER,
) -> SplitPlan:
    """A split plan for `table`, read from the data (one scan) and, when given, the workload.

    Only reads: pass a read-only connection or a path (opened read-only). The returned plan's
    `profile` holds the NULL-pattern evidence (TableProfile.to_dict()).
    """
    if isinstance(conn_or_path, sqlite3.Connection):
        return _propose(conn_or_path, table, workload, core_fill, together)
    conn = open_readonly(Path(conn_or_path))
    try:
        return _propose(conn, table, workload, core_fill, together)
    finally:
        conn.close()


def _propose(
    conn: sqlite3.Connection, name: str, workload: Workload | None, core_fill: float, together: float
) -> SplitPlan:
    schema = read_schema(conn)
    table = find_table(conn, schema, name)
    columns = [c.name for c in table.columns]
    profile = profile_table(conn, table.name, columns)
    hot = hot_statements(workload, table.name, columns) if workload is not None else []
    reasons = _core_reasons(schema, table, profile, hot, core_fill)
    candidates = [c for c in columns if fold(c) not in reasons]
    clusters = _cluster(profile, candidates, together)
    families: list[Family] = []
    taken = _taken_names(schema)
    for cluster in clusters:
        if len(cluster) < 2:
            reasons[fold(cluster[0])] = "not filled together with other columns"
            continue
        families.append(_family(table, profile, cluster, taken))
    core_columns = [c for c in columns if fold(c) in reasons]
    plan = SplitPlan(
        table=table.name,
        key=list(table.primary_key),
        core_table=table.name,
        core_columns=core_columns,
        families=families,
        notes=_notes(table, families, hot),
        profile=profile,
        hot=hot,
    )
    return plan


def _core_reasons(
    schema: Schema, table: Table, profile: TableProfile, hot: list[HotStatement], core_fill: float
) -> dict[str, str]:
    reasons = pinned_to_core(schema, table)
    for column in table.columns:
        key = fold(column.name)
        if key in reasons:
            continue
        ratio = profile.columns[profile.index(column.name)].ratio
        if column.notnull:
            reasons[key] = "NOT NULL"
        elif ratio >= core_fill:
            reasons[key] = f"filled in {ratio:.0%} of rows"
        elif profile.rows and ratio == 0:
            reasons[key] = "never filled (consider dropping it)"
    for statement in hot:
        for name in statement.columns:
            reasons.setdefault(name, f"used by hot statement {statement.fingerprint}")
    return reasons


def _cluster(profile: TableProfile, candidates: list[str], together: float) -> list[list[str]]:
    """Average-linkage clustering on phi; clusters in table order, columns in table order."""
    if not candidates:
        return []
    idx = [profile.index(c) for c in candidates]
    phi = profile.phi()[np.ix_(idx, idx)]
    clusters: list[list[int]] = [[i] for i in range(len(candidates))]
    while len(clusters) > 1:
        best, pair = together, None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                score = float(phi[np.ix_(clusters[a], clusters[b])].mean())
                if score >= best:
                    best, pair = score, (a, b)
        if pair is None:
            break
        a, b = pair
        clusters[a] = sorted(clusters[a] + clusters[b])
        del clusters[b]
    clusters.sort(key=lambda c: c[0])
    return [[candidates[i] for i in c] for c in clusters]


def _family(table: Table, profile: TableProfile, cluster: list[str], taken: set[str]) -> Family:
    idx = [profile.index(c) for c in cluster]
    sub = profile.patterns[:, idx]
    has_any = sub.any(axis=1)
    rows_with = float(profile.counts[has_any].sum())
    density = float((sub[has_any].sum(axis=1) * profile.counts[has_any]).sum() / (rows_with * len(cluster)))
    columns = [table.column(c) for c in cluster]
    kv_problem = key_value_problem(columns, table)
    kind = "key_value" if density < KV_DENSITY and len(cluster) >= KV_MIN_COLUMNS and kv_problem is None else "side"
    share = rows_with / profile.rows if profile.rows else 0.0
    note = (
        f"{len(cluster)} columns filled together: {rows_with:.0f} rows ({share:.1%}) have any of them, "
        f"and those fill {density:.0%} of the family"
    )
    if kind == "key_value":
        note += f"; sparse and all {affinity(columns[0].declared_type)}, so one row per value"
    prefix = _common_prefix(cluster)
    base = f"{table.name}_{prefix}" if prefix else f"{table.name}_{'attributes' if kind == 'key_value' else 'extra'}"
    return Family(kind=kind, table=_unique_name(base, taken), columns=cluster, note=note)  # type: ignore[arg-type]


def _common_prefix(names: list[str]) -> str:
    """The leading words (split at '_') all names share, e.g. 'avatar' for avatar_x, avatar_y."""
    words = [n.split("_") for n in names]
    common: list[str] = []
    for parts in zip(*words, strict=False):
        if len({fold(p) for p in parts}) != 1:
            break
        common.append(parts[0])
    prefix = "_".join(common)
    return prefix if len(prefix) >= 2 and all(len(w) > len(common) for w in words) else ""


def _taken_names(schema: Schema) -> set[str]:
    names = {fold(t.name) for t in schema.tables} | {fold(v.name) for v in schema.views}
    names |= {fold(i.name) for t in schema.tables for i in t.indexes} | {fold(t.name) for t in schema.triggers}
    return names | {fold(v.name) for v in schema.virtual_tables}


def _unique_name(base: str, taken: set[str]) -> str:
    name, n = base, 2
    while fold(name) in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(fold(name))
    return name


def _notes(table: Table, families: list[Family], hot: list[HotStatement]) -> list[str]:
    notes = [
        "The split is expand/contract: --apply keeps the table as it is and keeps the new tables in step "
        "both ways by triggers (writes on either side cost extra during the transition); --contract removes "
        "the moved columns once no code uses them.",
    ]
    moved = {fold(c) for f in families for c in f.columns}
    spanning = [
        i.name
        for i in table.indexes
        if i.origin == "c"
        and {fold(n) for n in i.column_names if n} & moved
        and not {fold(n) for n in i.column_names if n} <= moved
    ]
    if spanning:
        notes.append(
            f"Indexes spanning core and moved columns are dropped by --contract (revert restores them): "
            f"{', '.join(spanning)}"
        )
    stars = [h.fingerprint for h in hot if h.star]
    if stars:
        notes.append(f"Hot statements selecting every column must change before --contract: {', '.join(stars)}")
    return notes
