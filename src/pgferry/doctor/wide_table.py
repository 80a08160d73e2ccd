"""Wide tables: how full each column is, which optional columns are filled together, and a split.

Measured in one pass over the table (or its sample, see stats.py): the fill of every column and, for
every pair of optional columns, how often both are filled. Columns filled together form families:
pairs are linked by the phi coefficient of their "is filled" indicators (1: always together, 0:
independent), and families grow by average linkage while the link stays at least FAMILY_PHI. That
finds a family whose members are each filled only sometimes (a user with a few of eleven social
links), which an overlap measure (Jaccard) would miss.

The proposal: key, NOT NULL and mostly-filled columns stay in the core table; each family becomes a
side table (one row per parent row that has any value), except sparse families (on average less
than KV_FILL of the family filled where any is) of a few or more columns, which become key-value rows.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from pgferry.doctor.report import Finding, Fix
from pgferry.doctor.stats import SAMPLE_SCHEMA, Statistics
from pgferry.sqlite.schema import Schema, Table, quote_ident

WIDE_COLUMNS = 20
CORE_FILL = 0.5
FAMILY_PHI = 0.15
KV_FILL = 0.4
KV_MIN_COLUMNS = 3
MAX_RESULT_COLUMNS = 500


@dataclass
class Family:
    columns: list[str]
    fill: float  # share of rows with at least one member filled
    member_fill: float  # mean share of members filled, among rows with any
    cohesion: float  # mean phi between members
    kind: str  # side_table or key_value
    name: str


def _fill_counts(statistics: Statistics, table: Table) -> tuple[int, dict[str, int]]:
    target = f"{SAMPLE_SCHEMA}.{quote_ident(table.name)}"
    names = [c.name for c in table.columns]
    counts: dict[str, int] = {}
    rows = 0
    for start in range(0, len(names), MAX_RESULT_COLUMNS):
        chunk = names[start : start + MAX_RESULT_COLUMNS]
        sums = ", ".join(f"count({quote_ident(c)})" for c in chunk)
        row = statistics.conn.execute(f"SELECT count(*), {sums} FROM {target}").fetchone()
        rows = row[0]
        counts.update(zip(chunk, row[1:], strict=True))
    return rows, counts


def _pair_counts(statistics: Statistics, table: Table, optional: list[str]) -> dict[tuple[str, str], int]:
    target = f"{SAMPLE_SCHEMA}.{quote_ident(table.name)}"
    pairs = [(a, b) for i, a in enumerate(optional) for b in optional[i + 1 :]]
    out: dict[tuple[str, str], int] = {}
    for start in range(0, len(pairs), MAX_RESULT_COLUMNS):
        chunk = pairs[start : start + MAX_RESULT_COLUMNS]
        sums = ", ".join(
            f"coalesce(sum({quote_ident(a)} IS NOT NULL AND {quote_ident(b)} IS NOT NULL), 0)" for a, b in chunk
        )
        row = statistics.conn.execute(f"SELECT {sums} FROM {target}").fetchone()
        out.update(zip(chunk, row, strict=True))
    return out


def _phi(n: int, a: int, b: int, both: int) -> float:
    pa, pb, pab = a / n, b / n, both / n
    denominator = math.sqrt(pa * (1 - pa) * pb * (1 - pb))
    return (pab - pa * pb) / denominator if denominator else 0.0


def families_of(n: int, fills: dict[str, int], pairs: dict[tuple[str, str], int], optional: list[str]) -> list[list[str]]:
    """Average-linkage clusters of optional columns whose link (phi) is at least FAMILY_PHI."""
    phi = {}
    for (a, b), both in pairs.items():
        phi[(a, b)] = phi[(b, a)] = _phi(n, fills[a], fills[b], both)
    clusters = [[c] for c in optional]
    while len(clusters) > 1:
        best, pair = FAMILY_PHI, None
        for i in range(len(clusters)):
            for j in range(i + 1, len(clusters)):
                links = [phi.get((a, b), 0.0) for a in clusters[i] for b in clusters[j]]
                mean = sum(links) / len(links)
                if mean >= best:
                    best, pair = mean, (i, j)
        if pair is None:
            break
        i, j = pair
        clusters[i] = clusters[i] + clusters[j]
        del clusters[j]
    order = {c: k for k, c in enumerate(optional)}
    return [sorted(c, key=order.__getitem__) for c in clusters]


def _family_name(table: str, columns: list[str], used: set[str], number: int) -> str:
    tokens = Counter(t for c in columns for t in set(re.split(r"[^a-z0-9]+", c.lower())) if t and not t.isdigit())
    word = next((t for t, k in tokens.most_common() if k * 2 >= len(columns) and len(t) > 1), None)
    name = f"{table}_{word}" if word else f"{table}_family_{number}"
    while name in used:
        name += "_2"
    used.add(name)
    return name


def analyze_wide_table(statistics: Statistics, table: Table) -> Finding | None:
    """A wide_table finding with a split proposal, or None when the table is not wide."""
    if len(table.columns) < WIDE_COLUMNS:
        return None
    sample = statistics.sample(table.name)
    n, fills = _fill_counts(statistics, table)
    if n == 0:
        return None
    key = list(table.primary_key) or ([table.rowid_alias] if table.rowid_alias else [])
    optional = [
        c.name
        for c in table.columns
        if c.name not in key and not c.notnull and fills[c.name] / n < CORE_FILL and fills[c.name] > 0
    ]
    pairs = _pair_counts(statistics, table, optional)
    clusters = families_of(n, fills, pairs, optional)
    families: list[Family] = []
    used: set[str] = {t.name for t in statistics.schema.tables}
    in_family: set[str] = set()
    for cluster in clusters:
        if len(cluster) < 2:
            continue
        any_filled = _rows_with_any(statistics, table, cluster)
        member_fill = sum(fills[c] for c in cluster) / (len(cluster) * any_filled) if any_filled else 0.0
        links = [_phi(n, fills[a], fills[b], pairs.get((a, b), pairs.get((b, a), 0))) for a in cluster for b in cluster if a < b]
        kind = "key_value" if member_fill < KV_FILL and len(cluster) >= KV_MIN_COLUMNS else "side_table"
        name = _family_name(table.name, cluster, used, len(families) + 1)
        families.append(Family(cluster, any_filled / n, member_fill, sum(links) / len(links), kind, name))
        in_family.update(cluster)
    core = [c.name for c in table.columns if c.name not in in_family]
    null_ratio = {c.name: round(1 - fills[c.name] / n, 4) for c in table.columns}
    cells = n * len(table.columns)
    null_share = 1 - sum(fills.values()) / cells
    nullable = [c for c in table.columns if not c.notnull and c.name not in key]
    severity = "high" if null_share >= 0.5 and families else "medium" if families else "low"
    plan = split_plan(table, key, core, families)
    return Finding(
        "wide_table",
        severity,
        f"{table.name} has {len(table.columns)} columns, {null_share:.0%} of its cells NULL; "
        f"{len(families)} column famil{'y' if len(families) == 1 else 'ies'} could move out",
        table=table.name,
        columns=[c.name for c in table.columns],
        evidence={
            "columns": len(table.columns),
            "nullable_columns": len(nullable),
            "rows": sample.rows,
            "rows_measured": n,
            "sampled": sample.sampled,
            "null_share": round(null_share, 4),
            "null_ratio": null_ratio,
            "families": [
                {
                    "name": f.name,
                    "columns": f.columns,
                    "rows_with_any": round(f.fill, 4),
                    "member_fill": round(f.member_fill, 4),
                    "cohesion_phi": round(f.cohesion, 3),
                    "proposal": f.kind,
                }
                for f in families
            ],
        },
        fix=Fix(
            f"split {table.name}: {len(core)} columns stay, "
            + ", ".join(f"{f.name} ({len(f.columns)} columns, {f.kind.replace('_', ' ')})" for f in families)
            + "; apply with `pgferry split DB TABLE --plan FILE`",
            plan=plan,
        ),
    )


def _rows_with_any(statistics: Statistics, table: Table, columns: list[str]) -> int:
    target = f"{SAMPLE_SCHEMA}.{quote_ident(table.name)}"
    test = " OR ".join(f"{quote_ident(c)} IS NOT NULL" for c in columns)
    return statistics.conn.execute(f"SELECT count(*) FROM {target} WHERE {test}").fetchone()[0]


def split_plan(table: Table, key: list[str], core: list[str], families: list[Family]) -> dict[str, Any]:
    """The proposal as a plan file (JSON): what stays, which side tables, which key-value tables."""
    return {
        "version": 1,
        "table": table.name,
        "key": key,
        "core": core,
        "side_tables": [{"name": f.name, "columns": f.columns} for f in families if f.kind == "side_table"],
        "key_value_tables": [
            {"name": f.name, "columns": f.columns, "key_column": "field", "value_column": "value"}
            for f in families
            if f.kind == "key_value"
        ],
    }


def find_wide_tables(statistics: Statistics, schema: Schema) -> list[Finding]:
    out = []
    for table in schema.tables:
        finding = analyze_wide_table(statistics, table)
        if finding is not None:
            out.append(finding)
    return out
