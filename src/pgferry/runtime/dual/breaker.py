"""A circuit breaker for the candidate: after `failures` consecutive candidate failures (errors or
timeouts) it opens and the candidate is skipped; after `cooldown_s` one trial is let through
(half-open): its success closes the breaker, its failure opens it again for another cool-down.

Outcomes are reported with the ticket `allow()` gave: an outcome from before the breaker last
changed state (a unit that started while it was closed and ends after it opened) is ignored, so only
the trial decides a half-open breaker. Pure apart from the clock, which tests pass in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class Ticket:
    generation: int
    trial: bool


class Breaker:
    def __init__(self, failures: int = 5, cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        if failures < 1 or cooldown_s <= 0:
            raise ValueError(f"breaker: failures >= 1 and cooldown_s > 0, not {failures}, {cooldown_s}")
        self.failures, self.cooldown_s, self._clock = failures, cooldown_s, clock
        self._lock = threading.Lock()
        self.state = CLOSED
        self._generation = 0
        self._consecutive = 0
        self._opened_at = 0.0
        self._trial_out = False
        self.opened = 0  # times it opened
        self.skipped = 0  # units refused while open (or while a trial was out)

    def _move(self, state: str) -> None:
        self.state = state
        self._generation += 1
        self._trial_out = False
        if state == OPEN:
            self.opened += 1
            self._opened_at = self._clock()
        if state == CLOSED:
            self._consecutive = 0

    def allow(self) -> Ticket | None:
        """A ticket to run the candidate for one unit (a statement, a transaction), or None: skip it."""
        with self._lock:
            if self.state == OPEN and self._clock() - self._opened_at >= self.cooldown_s:
                self._move(HALF_OPEN)
            if self.state == CLOSED:
                return Ticket(self._generation, trial=False)
            if self.state == HALF_OPEN and not self._trial_out:
                self._trial_out = True
                return Ticket(self._generation, trial=True)
            self.skipped += 1
            return None

    def done(self, ticket: Ticket, ok: bool | None) -> None:
        """The unit's outcome: True (the candidate worked; a mismatch is still a success), False (it
        failed or timed out), None (it ended without one: the control rolled back first)."""
        with self._lock:
            if ticket.generation != self._generation:
                return
            if self.state == HALF_OPEN and ticket.trial:
                if ok is None:
                    self._trial_out = False
                else:
                    self._move(CLOSED if ok else OPEN)
            elif self.state == CLOSED and ok is not None:
                self._consecutive = 0 if ok else self._consecutive + 1
                if self._consecutive >= self.failures:
                    self._move(OPEN)

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "state": self.state,
                "consecutive_failures": self._consecutive,
                "opened": self.opened,
                "skipped": self.skipped,
                "failures_to_open": self.failures,
                "cooldown_s": self.cooldown_s,
            }
