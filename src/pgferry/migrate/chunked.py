"""A copy under change capture, read in one short read transaction per chunk instead of one snapshot.

A long SQLite reader keeps WAL checkpoints from finishing (the WAL grows by everything the
application writes meanwhile) and, in rollback-journal mode, blocks every writer. Under change
capture it is not needed: every row changed after the watermark (read before the first chunk) has a
changelog entry, and catch-up re-reads each such key's current row, so a chunk read at any later
instant is made right (DBLog's and Debezium's incremental snapshots stand on the same fact).

Until catch-up has made PostgreSQL equal to one SQLite instant, rows read at different instants may
break constraints that span rows: a UNIQUE value moved from one row to another between two chunks is
held by both, a child copied after its new parent's table was read points at nothing. So those
constraints (UNIQUE indexes besides the primary key, and foreign keys) are held back and built once
following has caught up (pgferry.capture.applier). The primary key holds between chunks when it is
the copy's chunk key (the rowid alias of a rowid table, a WITHOUT ROWID table's key): each key value
lies in exactly one chunk. A rowid table with another primary key (TEXT, composite) could show a row
again under a new rowid (REPLACE) if it were paged by rowid, so it is paged by its primary key, as a
WITHOUT ROWID table is, through the key's index: no table holds a read transaction for all its rows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from psycopg_pool import ConnectionPool

from pgferry.migrate.ddl import run_steps_in_order
from pgferry.migrate.fkeys import UnvalidatedKey, add_foreign_key
from pgferry.migrate.plan import MigrationPlan, Skipped, Step
from pgferry.sqlite.schema import Schema, Table


def held_back(step: Step) -> bool:
    """A step a chunked copy leaves until catch-up: UNIQUE besides the primary key, foreign keys."""
    if step.kind in ("unique", "foreign_key"):
        return True
    return step.kind == "index" and step.sql.startswith("CREATE UNIQUE INDEX")


def counted(kind: str) -> bool:
    """Whether a held-back step of `kind` counts as one constraint: a UNIQUE constraint takes over its index."""
    return kind != "unique"


def held_back_count(plan: MigrationPlan) -> int:
    """The UNIQUE indexes and foreign keys of `plan` a chunked copy leaves for catch-up."""
    return sum(1 for s in plan.steps if held_back(s) and counted(s.kind))


def pages_by_key(table: Table) -> bool:
    """Whether a chunked copy pages rowid table `table` by its primary key: the key is not the rowid."""
    if table.without_rowid or not table.primary_key:
        return False
    return tuple(table.primary_key) != (table.rowid_alias,)


def key_paged_tables(schema: Schema) -> list[str]:
    return [t.name for t in schema.tables if pages_by_key(t)]


@dataclass
class HeldBack:
    """What building the held-back constraints did: what PostgreSQL refused, and foreign keys added
    NOT VALID because child rows point at no parent (as the copy reports them)."""

    built: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    unvalidated: list[UnvalidatedKey] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "built": self.built,
            "skipped": [asdict(s) for s in self.skipped],
            "unvalidated": [u.as_dict() for u in self.unvalidated],
        }


def build_held_back(dsn: str, plan: MigrationPlan) -> HeldBack:
    """Build the plan's held-back steps, in the copy's order (UNIQUE indexes, the constraints that take
    them over, then foreign keys); each is looked up first when it was built already (a killed run)."""
    steps = [s for s in plan.steps if held_back(s)]
    report = HeldBack()
    with ConnectionPool(dsn, min_size=1, max_size=1, kwargs={"autocommit": True}) as pool:
        for kind in ("index", "unique"):
            report.skipped += run_steps_in_order(pool, [s for s in steps if s.kind == kind])
        for step in (s for s in steps if s.kind == "foreign_key"):
            found = add_foreign_key(pool, step, plan.schema, plan.table(step.table).target)
            if isinstance(found, Skipped):
                report.skipped.append(found)
            elif found is not None:
                report.unvalidated.append(found)
    report.built = held_back_count(plan) - sum(1 for s in report.skipped if counted(s.kind))
    return report
