"""The order the applier writes tables in: parents before children, by the plan's foreign keys (so in
"ordered" mode, without session_replication_role, a batch's upserts never precede their parents)."""

from __future__ import annotations

from pgferry.migrate.plan import MigrationPlan


def parents_first(plan: MigrationPlan, names: list[str]) -> list[str]:
    """Parents before children (foreign keys of the plan); a cycle is broken where it closes."""
    parents: dict[str, set[str]] = {n: set() for n in names}
    for step in plan.steps:
        parent = step.references
        if step.kind == "foreign_key" and step.table in parents and parent in parents and parent != step.table:
            parents[step.table].add(parent)
    done: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name in visiting:
            return
        visiting.add(name)
        for parent in sorted(parents[name]):
            visit(parent)
        visiting.discard(name)
        done.append(name)

    for name in names:
        visit(name)
    return done
