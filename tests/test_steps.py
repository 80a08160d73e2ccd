"""The one step contract (pgferry.steps): every plan's steps keep it, and one script renders any of them."""

from __future__ import annotations

import sqlite3

from hypothesis import given
from hypothesis import strategies as st

from pgferry.migrate.plan import Step as CopyStep
from pgferry.split.ddl import Script
from pgferry.split.ddl import Step as SplitStep
from pgferry.steps import PlanStep, script
from pgferry.tune.plan import Step as TuneStep


def test_every_plan_step_keeps_the_contract() -> None:
    steps = [
        CopyStep("index", "t", "t_a", 'CREATE INDEX "t_a" ON "public"."t" ("a")'),
        TuneStep("create_index", "index on t(a)", ["CREATE INDEX i ON t(a)"], ["DROP INDEX i"]),
        SplitStep("create the core table", "CREATE TABLE core (id INTEGER PRIMARY KEY)"),
    ]
    for step in steps:
        assert isinstance(step, PlanStep)
        assert list(step.forward) and step.describe()


def test_reverse_script_undoes_in_reverse_order_and_marks_non_transactional_steps() -> None:
    steps = [
        TuneStep("pragma", "WAL", ["PRAGMA journal_mode = WAL"], ["PRAGMA journal_mode = DELETE"], transactional=False),
        TuneStep("create_index", "index on t(a)", ["CREATE INDEX i ON t(a);"], ["DROP INDEX i"]),
    ]
    text = script(steps, reverse=True)
    assert text.index("DROP INDEX i;") < text.index("PRAGMA journal_mode = DELETE;")
    assert "-- undo: WAL (outside a transaction)" in text and ";;" not in text
    assert script([], reverse=True) == ""


names = st.text(alphabet="abcdefghij_", min_size=1, max_size=8)


@given(st.lists(names, min_size=1, max_size=6, unique=True))
def test_a_split_script_runs_as_written(tables: list[str]) -> None:
    """The rendered script is SQL SQLite executes: every step's statement, once, in order."""
    plan = Script()
    for name in tables:
        plan.add(f"create {name}", f'CREATE TABLE "{name}" (id INTEGER PRIMARY KEY)')
    conn = sqlite3.connect(":memory:")
    conn.executescript(plan.sql())
    created = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")]
    assert created == tables
