"""Index fixes on a database a framework manages: its models, not the file, say which indexes exist.

An index changed in the file behind the framework's back does not stay changed: Django rebuilds a
SQLite table from its model on most migrations (remake_table: create, copy, drop, rename), which
drops an index `tune` created and brings back one it dropped; Alembic's autogenerate compares the
models with the database and writes the difference into the next revision; Rails' other
environments get only what migrations make. So on such a database the doctor still names the index
to create or drop, but says how to declare the change in the framework, and `tune` does not drop
the framework's indexes (auto=False).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pgferry.doctor.report import Finding
from pgferry.migrate.frameworks import DJANGO, RAILS, SQLALCHEMY, Framework


@dataclass(frozen=True)
class IndexAdvice:
    """How one framework declares an index, and what happens to a change made in the file only."""

    declare: str
    undeclare: str
    created_only_in_file: str
    dropped_only_in_file: str


ADVICE = {
    DJANGO: IndexAdvice(
        "Meta.indexes = [models.Index(fields=[...], name=...)] on the model, then makemigrations",
        "db_index=False on the field (or its entry in Meta.indexes), then makemigrations",
        "Django's next rebuild of the table on SQLite (most AlterField migrations) drops indexes its models "
        "do not declare",
        "Django's next rebuild of the table on SQLite creates it again",
    ),
    SQLALCHEMY: IndexAdvice(
        "Index(...) or index=True on the model, then an Alembic revision",
        "remove index=True (or its Index(...)) from the model, then an Alembic revision",
        "Alembic's autogenerate compares the models with the database and would drop it in the next revision",
        "Alembic's autogenerate would create it again in the next revision",
    ),
    RAILS: IndexAdvice(
        "add_index in a migration",
        "remove_index in a migration",
        "other environments (and a db:schema:load) get only the indexes migrations make",
        "other environments keep it: only a migration drops it everywhere",
    ),
}


def in_framework_terms(findings: list[Finding], framework: Framework) -> list[Finding]:
    """The same findings, with index fixes said the way `framework` must make them."""
    return [_advise(finding, framework) for finding in findings]


def _advise(finding: Finding, framework: Framework) -> Finding:
    fix, advice = finding.fix, ADVICE[framework]
    if fix is None or finding.kind not in ("missing_index", "fk_without_index", "redundant_index"):
        return finding
    managed = f"{framework.name} manages this database ({framework.evidence})"
    if finding.kind == "redundant_index":
        description = (
            f"{fix.description}, through the framework: {advice.undeclare}. {managed}: dropped in the file only, "
            f"{advice.dropped_only_in_file}; tune leaves it"
        )
        return dataclasses.replace(finding, fix=dataclasses.replace(fix, description=description, auto=False))
    description = (
        f"{fix.description}, and declare it in the framework too ({advice.declare}). {managed}: "
        f"{advice.created_only_in_file}"
    )
    return dataclasses.replace(finding, fix=dataclasses.replace(fix, description=description))
