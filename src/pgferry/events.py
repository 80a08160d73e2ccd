"""Progress as events: one shape for every long piece of work pgferry does (census, copy, verify,
tune, split, seed), so one listener renders a terminal's bars, others (a log, metrics) join it with
fan_out, and the library knows none of them.

A producer calls its listener with an Event each time a task moves; the listener must be quick and
thread-safe (copy workers call it from their threads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """`task` of `phase` has `done` of `total` units (total None: not known in advance)."""

    phase: str  # the larger piece of work: "census", "copy", "verify", "tune", "split", ...
    task: str  # what moves within it: a table, a step
    done: int
    total: int | None = None
    unit: str = "rows"
    detail: str = ""  # what the task is doing right now (a step's purpose), for a bar's label

    @property
    def finished(self) -> bool:
        return self.total is not None and self.done >= self.total


Listener = Callable[[Event], None]


def no_events(event: Event) -> None:
    """The listener of library calls nobody watches."""


def fan_out(*listeners: Listener | None) -> Listener:
    """One listener calling each of `listeners` (None ones left out) in turn."""
    chosen = [listener for listener in listeners if listener is not None]
    if not chosen:
        return no_events
    if len(chosen) == 1:
        return chosen[0]

    def each(event: Event) -> None:
        for listener in chosen:
            listener(event)

    return each


class Phases:
    """Events for work done one task at a time (the doctor's analyses, tune's steps, split's
    statements): starting a task finishes the one before, so a listener can put each away."""

    def __init__(self, listener: Listener, phase: str, unit: str = "steps") -> None:
        self.listener = listener
        self.phase = phase
        self.unit = unit
        self.task: str | None = None
        self.done = 0
        self.total: int | None = None

    def start(self, task: str, total: int | None = None) -> None:
        self.finish()
        self.task, self.done, self.total = task, 0, total
        self._emit()

    def advance(self, steps: int = 1, detail: str = "") -> None:
        if self.task is not None:
            self.done += steps
            self._emit(detail)

    def finish(self) -> None:
        """The current task is over, however far its count got."""
        if self.task is not None:
            self.total = max(self.done, self.total or 0)
            self.done = self.total
            self._emit()
            self.task = None

    def _emit(self, detail: str = "") -> None:
        assert self.task is not None
        self.listener(Event(self.phase, self.task, self.done, self.total, self.unit, detail))
