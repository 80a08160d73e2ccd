"""The contract every plan's steps keep: the copy's steps after the data, tune's fixes, split's
statements, and next the change-capture install. One shape lets one renderer print any plan for a
dry run, and lets the cutover and rollback treat any step the same way.

A step says what it runs (`forward`), what undoes it (`reverse`: empty when the step is undone with
the whole operation, as a copy's are by dropping the target schema, or split's by its revert),
whether its statements may run inside a transaction (`transactional`: PRAGMA journal_mode may not),
and a one-line `describe()` for humans.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class PlanStep(Protocol):
    @property
    def forward(self) -> Sequence[str]: ...

    @property
    def reverse(self) -> Sequence[str]: ...

    @property
    def transactional(self) -> bool: ...

    def describe(self) -> str: ...


def statement_text(statement: str) -> str:
    """A statement as a script line: one terminating semicolon."""
    return statement.rstrip().rstrip(";") + ";"


def script(steps: Iterable[PlanStep], reverse: bool = False) -> str:
    """The statements of `steps` as a commented SQL script (their reverse, in reverse order, with
    `reverse`), one comment line per step: what a dry run prints."""
    chosen = list(steps)
    if reverse:
        chosen.reverse()
    blocks = []
    for step in chosen:
        statements = step.reverse if reverse else step.forward
        if not statements:
            continue
        undo = "undo: " if reverse else ""
        lines = [f"-- {undo}{step.describe()}" + ("" if step.transactional else " (outside a transaction)")]
        lines += [statement_text(s) for s in statements]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")
