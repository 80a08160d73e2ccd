"""Whether a migration may start a cutover: the one list of conditions behind both `migrate cutover`'s
refusal (before any attempt) and the readiness `migrate status --serve` shows, so the two cannot
disagree. Each condition is a kind; each caller words it its own way (a command's error with what to
run; a line on the dashboard). The dashboard adds what an attempt checks later under its lock (the
route, the applier's lag, open verify failures).
"""

from __future__ import annotations

from dataclasses import dataclass

from pgferry.capture.status import MigrationStatus

NO_MIGRATION = "no_migration"
COPY_UNFINISHED = "copy_unfinished"
FAILED = "failed"
WIDENED_KEYS = "widened_keys"
CONSTRAINTS_PENDING = "constraints_pending"


def start_blockers(status: MigrationStatus) -> list[str]:
    """The kinds of condition that refuse a cutover before its first attempt, in the order checked."""
    if status.phase in ("not started", "installed"):  # nothing recorded in PostgreSQL
        return [NO_MIGRATION]
    found = []
    if not status.copied or status.watermark is None:
        found.append(COPY_UNFINISHED)
    if status.phase == "failed":
        found.append(FAILED)
    if status.widened_keys:
        found.append(WIDENED_KEYS)
    if status.constraints == "pending":
        found.append(CONSTRAINTS_PENDING)
    return found


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reasons: list[str]  # why not (empty when ready)


def cutover_readiness(status: MigrationStatus, route: str, max_lag_s: float) -> Readiness:
    """Whether `pgferry migrate cutover` would start an attempt now, and what holds it back."""
    reasons = []
    if route != "sqlite":
        reasons.append(f"the route is {route} already")
    reasons += [_reason(kind, status) for kind in start_blockers(status)]
    if status.lag_seconds is None and status.lag_changes:
        reasons.append(f"{status.lag_changes:,} changes wait and the applier has not reported when it last caught up")
    elif status.lag_seconds is not None and status.lag_seconds > max_lag_s:
        reasons.append(f"the applier is {status.lag_seconds:.1f} s behind (--max-lag {max_lag_s:g})")
    if status.verify is not None and status.verify.open_failures:
        reasons.append(f"{status.verify.open_failures} rows differ (pgferry migrate verify)")
    return Readiness(not reasons, reasons)


def _reason(kind: str, status: MigrationStatus) -> str:
    """The dashboard's line for a start blocker (`migrate cutover` words its errors itself)."""
    if kind in (NO_MIGRATION, COPY_UNFINISHED):
        return f"the copy has not finished (phase {status.phase})"
    if kind == FAILED:
        return f"the applier stopped on an error: {status.last_error}"
    if kind == WIDENED_KEYS:
        return "the copy widened the partitioned tables' keys (--partition-widen-keys): a cutover is refused"
    return "the UNIQUE indexes and foreign keys the copy held back are built once following caught up"
