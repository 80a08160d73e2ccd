"""Dual writes with shadow reads (GitHub Scientist is the anchor): the control (SQLite) answers the
caller; the candidate (PostgreSQL) runs the same statements within a time budget, its exceptions
recorded and never raised, its answers compared, and a circuit breaker stops it after repeated
failures. Used by `pgferry.runtime.routed.Router` on route `dual`.

Layout: `compare` (values and rows across engines: pure), `log` (the discrepancy log), `breaker`,
`experiment` (the policy, candidate attempts, comparison, counters), `shadow` (the candidate
transaction that mirrors a control transaction).
"""

from __future__ import annotations

from pgferry.runtime.dual.breaker import Breaker
from pgferry.runtime.dual.compare import Comparator, RowDifference, compare_results, equivalent
from pgferry.runtime.dual.experiment import DualPolicy, Experiment, candidate_policy
from pgferry.runtime.dual.log import Discrepancy, DiscrepancyLog

__all__ = [
    "Breaker",
    "Comparator",
    "Discrepancy",
    "DiscrepancyLog",
    "DualPolicy",
    "Experiment",
    "RowDifference",
    "candidate_policy",
    "compare_results",
    "equivalent",
]
