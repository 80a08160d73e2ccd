"""The applier loop's stopping rules (pgferry.capture.loop), on a scripted step."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from pgferry.capture.loop import run_batches


@dataclass(frozen=True)
class Step:
    entries: int
    drained: bool


def scripted(*steps: Step | None) -> tuple[list[int], Callable[[], Step | None]]:
    """A step function that plays `steps` in order, then finds nothing; and the calls made."""
    calls: list[int] = []

    def step() -> Step | None:
        calls.append(len(calls))
        return steps[len(calls) - 1] if len(calls) <= len(steps) else None

    return calls, step


def test_until_caught_up_ends_on_a_drained_batch_while_writes_go_on() -> None:
    # writers keep writing: no step ever finds nothing, but the third one read all there was
    calls, step = scripted(Step(100, False), Step(100, False), Step(7, True), Step(3, True))
    assert run_batches(step, lambda: False, None, True, None, lambda: 0) == 207
    assert len(calls) == 3


def test_until_caught_up_ends_when_a_step_finds_nothing() -> None:
    calls, step = scripted(Step(100, False))
    assert run_batches(step, lambda: False, None, True, None, lambda: 0) == 100
    assert len(calls) == 2


def test_following_goes_on_past_drained_batches_until_stopped() -> None:
    stop = threading.Event()
    seen: list[Step | None] = []

    def on_batch(batch: Step | None) -> None:
        seen.append(batch)
        if len(seen) == 4:
            stop.set()

    _, step = scripted(Step(5, True), None, Step(2, True))
    assert run_batches(step, lambda: False, stop, False, on_batch, lambda: 0) == 7
    assert len(seen) == 4


def test_routed_away_ends_the_loop_before_another_step() -> None:
    calls, step = scripted(Step(5, False), Step(5, False))
    away = iter([False, True])
    assert run_batches(step, lambda: next(away), None, False, None, lambda: 0) == 5
    assert len(calls) == 1
