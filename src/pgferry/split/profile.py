"""One pass over a table that tells which columns are filled and which are filled together.

SQLite does the pass: each row becomes a bit mask of its non-NULL columns (62 columns per
integer) and the masks are counted with GROUP BY, so the scan runs in C and Python only sees the
distinct NULL patterns (few in real tables: families of columns are filled together). From the
pattern counts numpy derives, for every pair of columns, how often both are filled and the phi
coefficient (the correlation of two yes/no variables), which is what the proposal clusters on:
columns of one family have a high phi with each other and about zero with everything else.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pgferry.sqltext import quote_ident as q

BITS = 62  # bits per mask integer, so masks stay positive 64-bit integers


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    filled: int  # rows where the column is not NULL
    ratio: float  # filled / rows (0 for an empty table)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "filled": self.filled, "null_ratio": round(1 - self.ratio, 4)}


@dataclass
class TableProfile:
    """NULL patterns of a table: per-column fill counts and pairwise co-occurrence."""

    table: str
    rows: int
    columns: list[ColumnProfile]
    patterns: np.ndarray = field(repr=False)  # distinct patterns x columns, bool
    counts: np.ndarray = field(repr=False)  # rows per pattern

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def index(self, name: str) -> int:
        return self.names.index(name)

    def together(self) -> np.ndarray:
        """Rows where both column i and column j are filled (columns x columns)."""
        bits = self.patterns.astype(np.float64)
        both: np.ndarray = bits.T @ (bits * self.counts[:, None])
        return both

    def phi(self) -> np.ndarray:
        """Phi coefficient of every pair of columns' "is filled" indicators; 0 where undefined."""
        n = float(self.rows)
        both = self.together()
        filled = np.diag(both).copy()
        num = n * both - np.outer(filled, filled)
        spread = filled * (n - filled)
        den = np.sqrt(np.outer(spread, spread))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
        return out

    def null_ratio(self) -> float:
        """Share of NULL cells in the whole table (the "93% nullable" figure)."""
        cells = self.rows * len(self.columns)
        return 0.0 if cells == 0 else 1 - sum(c.filled for c in self.columns) / cells

    def top_patterns(self, limit: int = 10) -> list[tuple[list[str], int]]:
        """The most frequent sets of filled columns, with their row counts."""
        order = np.argsort(-self.counts, kind="stable")[:limit]
        names = self.names
        return [([names[j] for j in np.flatnonzero(self.patterns[i])], int(self.counts[i])) for i in order]

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "rows": self.rows,
            "null_ratio": round(self.null_ratio(), 4),
            "distinct_null_patterns": len(self.counts),
            "columns": [c.to_dict() for c in self.columns],
            "top_patterns": [{"filled": cols, "rows": rows} for cols, rows in self.top_patterns()],
        }


def profile_table(conn: sqlite3.Connection, table: str, columns: list[str]) -> TableProfile:
    """Count the NULL patterns of `columns` in `table` in one scan."""
    groups = [columns[i : i + BITS] for i in range(0, len(columns), BITS)] or [[]]
    masks = []
    for g, group in enumerate(groups):
        terms = [f"(({q(c)} IS NOT NULL) << {b})" for b, c in enumerate(group)] or ["0"]
        masks.append(f"({' | '.join(terms)}) AS m{g}")
    keys = ", ".join(f"m{g}" for g in range(len(groups)))
    sql = f"SELECT {keys}, count(*) FROM (SELECT {', '.join(masks)} FROM {q(table)}) GROUP BY {keys}"
    rows = conn.execute(sql).fetchall()
    patterns = np.zeros((len(rows), len(columns)), dtype=bool)
    counts = np.zeros(len(rows), dtype=np.float64)
    for i, row in enumerate(rows):
        counts[i] = row[-1]
        for g, group in enumerate(groups):
            mask = row[g]
            for b in range(len(group)):
                if mask >> b & 1:
                    patterns[i, g * BITS + b] = True
    total = int(counts.sum())
    filled = (patterns * counts[:, None]).sum(axis=0) if len(rows) else np.zeros(len(columns))
    profiles = [
        ColumnProfile(name, int(filled[j]), float(filled[j] / total) if total else 0.0)
        for j, name in enumerate(columns)
    ]
    return TableProfile(table=table, rows=total, columns=profiles, patterns=patterns, counts=counts)
