"""One dual route's experiment (GitHub Scientist's shape): the control's answer is what the caller
gets; the candidate runs the same statement, its exceptions are recorded and never raised, its
answer is compared, and a circuit breaker stops it after repeated failures.

`DualPolicy` holds the knobs; `Experiment` runs candidate work (`attempt`), compares (`check`),
shadows reads outside transactions (`shadow_read`) and keeps the counters `settings()` shows.
The candidate's time budget is its database's: open it with `candidate_policy` (statement_timeout
and the pool wait set to the budget), so a slow or locked candidate costs at most about that.
"""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pgferry.dsn import redact
from pgferry.runtime import querystats
from pgferry.runtime.dual.breaker import Breaker
from pgferry.runtime.dual.compare import Comparator, Equal, RowDifference, compare_results, equivalent
from pgferry.runtime.dual.log import Discrepancy, DiscrepancyLog
from pgferry.runtime.errors import Unavailable
from pgferry.runtime.postgres.policy import PostgresPolicy

TIMEOUT_KINDS = frozenset({"statement_timeout", "pool_timeout", "pool_queue_full"})


@dataclass(frozen=True)
class DualPolicy:
    """`sample`: the share of reads shadowed (writes always run on the candidate). `budget_ms`: the
    candidate's time per statement (see `candidate_policy`). `failures`, `cooldown_s`: the breaker.
    `unshadowed`: statement names never shadowed (schema introspection, which differs by engine).
    `comparators`: per statement name, a comparator of (control, candidate) results; `equal`: the
    value comparison of the default one."""

    sample: float = 1.0
    budget_ms: int = 50
    failures: int = 5
    cooldown_s: float = 30.0
    unshadowed: frozenset[str] = frozenset()
    comparators: Mapping[str, Comparator] = field(default_factory=dict)
    equal: Equal = equivalent

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample <= 1.0:
            raise ValueError(f"sample is a share of reads, 0 to 1, not {self.sample}")
        if self.budget_ms < 1:
            raise ValueError(f"budget_ms must be at least 1, not {self.budget_ms}")


def candidate_policy(base: PostgresPolicy, dual: DualPolicy) -> PostgresPolicy:
    """`base` for the candidate's own pool: each statement cancelled after the budget, a connection
    waited for at most the budget. Behind PgBouncer (no startup options) set the role's
    statement_timeout or PgBouncer's query_timeout instead."""
    return dataclasses.replace(
        base,
        statement_timeout_ms=dual.budget_ms,
        pool_wait_s=dual.budget_ms / 1000,
        application_name=f"{base.application_name}-candidate",
    )


def timed_out(exc: BaseException) -> bool:
    return isinstance(exc, Unavailable) and exc.kind in TIMEOUT_KINDS


def _detail(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact(f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": "))


class Experiment:
    def __init__(
        self,
        policy: DualPolicy,
        log: DiscrepancyLog | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self.log = log if log is not None else DiscrepancyLog()
        self.breaker = Breaker(policy.failures, policy.cooldown_s, clock)
        self._rand = rand
        self._lock = threading.Lock()
        self._counts = {"statements": 0, "shadow_reads": 0, "mismatches": 0, "errors": 0, "timeouts": 0, "skipped": 0}
        self._ms = 0.0

    def _count(self, name: str, n: int = 1, ms: float = 0.0) -> None:
        with self._lock:
            self._counts[name] += n
            self._ms += ms

    def attempt(self, name: str, params: Sequence[Any], call: Callable[[], Any], *, in_tx: bool) -> tuple[bool, Any]:
        """(True, what `call()` returned), or (False, None) once its exception is recorded."""
        t0 = time.perf_counter()
        try:
            with querystats.aside():
                value = call()
        except Exception as exc:
            kind = "timeout" if timed_out(exc) else "error"
            self._count("statements", ms=(time.perf_counter() - t0) * 1000)
            self._count("timeouts" if kind == "timeout" else "errors")
            self.log.record(Discrepancy(kind, name, tuple(params), detail=_detail(exc), in_transaction=in_tx))
            return False, None
        self._count("statements", ms=(time.perf_counter() - t0) * 1000)
        return True, value

    def check(self, name: str, params: Sequence[Any], control: Any, candidate: Any, *, in_tx: bool) -> bool:
        """Compare; a mismatch is recorded. True when the results agree."""
        comparator = self.policy.comparators.get(name)
        try:
            if comparator is not None:
                diffs = comparator(control, candidate)
            else:
                diffs = compare_results(control, candidate, self.policy.equal)
        except Exception as exc:  # an application's comparator that fails is its bug, never the caller's error
            diffs = [RowDifference(None, "comparator_failed", {"error": (_detail(exc), None)})]
        if not diffs:
            return True
        self._count("mismatches")
        self.log.record(Discrepancy("mismatch", name, tuple(params), tuple(diffs), in_transaction=in_tx))
        return False

    def sampled(self, name: str) -> bool:
        """Whether a read of `name` outside a write transaction is shadowed this time."""
        if name in self.policy.unshadowed:
            return False
        return self.policy.sample >= 1.0 or self._rand() < self.policy.sample

    def shadow_read(self, name: str, params: Sequence[Any], control: Any, call: Callable[[], Any]) -> None:
        """Run a read on the candidate and compare it with the control's rows (already returned)."""
        ticket = self.breaker.allow()
        if ticket is None:
            self._count("skipped")
            return
        self._count("shadow_reads")
        ok, value = self.attempt(name, params, call, in_tx=False)
        self.breaker.done(ticket, ok)
        if ok:
            self.check(name, params, control, value, in_tx=False)

    def skipped(self) -> None:
        """A candidate statement not run: the breaker was open, or its transaction had failed."""
        self._count("skipped")

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counts = dict(self._counts)
            ms = self._ms
        return {
            "sample": self.policy.sample,
            "budget_ms": self.policy.budget_ms,
            **counts,
            "candidate_ms": round(ms, 3),
            "breaker": self.breaker.describe(),
            "log": self.log.describe(),
        }
