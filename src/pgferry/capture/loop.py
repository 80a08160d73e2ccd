"""The loop both appliers follow with: batches until stopped, caught up, or routed away."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

IDLE_SLEEP_S = 0.02


class Applied(Protocol):
    @property
    def entries(self) -> int: ...

    @property
    def drained(self) -> bool: ...


B = TypeVar("B", bound=Applied)


def run_batches(
    step: Callable[[], B | None],
    routed_away: Callable[[], bool],
    stop: threading.Event | None,
    until_caught_up: bool,
    on_batch: Callable[[B | None], None] | None,
    idle_s: Callable[[], float] = lambda: IDLE_SLEEP_S,
) -> int:
    """Call `step` until `stop` is set, `routed_away()` (the route now calls for the other applier),
    or, with `until_caught_up`, a step finds nothing or applies everything there was when it began
    (so it ends while writes go on, as soon as the applier has been caught up once); `on_batch` after
    each, a sleep of `idle_s()` after one that found nothing. Returns the entries applied."""
    applied = 0
    while (stop is None or not stop.is_set()) and not routed_away():
        batch = step()
        if on_batch is not None:
            on_batch(batch)
        if batch is not None:
            applied += batch.entries
            if until_caught_up and batch.drained:
                break
        elif until_caught_up:
            break
        elif stop is not None:
            stop.wait(idle_s())
        else:
            time.sleep(idle_s())
    return applied
