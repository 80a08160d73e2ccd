"""When another connection holds the lock: one test for it, and one way to wait it out.

busy_timeout already waits inside SQLite, but its handler is unfair (sleeps of 1 to 100 ms, no
queue), and some waits never reach it (a deferred transaction that upgrades, a COMMIT that needs
readers gone). `retry` wraps work that is safe to run again in a deadline measured in seconds, not
a count of tries, so the worst case a user waits is known; the backoff is modelled on psycopg_pool's
AttemptWithBackoff, with the jitter drawn at every attempt so that writers who collided once do not
collide again in step.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pgferry.errors import SourceError

T = TypeVar("T")

BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
DEADLINE_S = 30.0  # about what the old five retries of a 5 s busy_timeout added up to


def is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED (any extended code), here or in the error it was raised from.

    The error code is the truth; the message is read only for errors that carry no code.
    """
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, sqlite3.Error):
            code = getattr(current, "sqlite_errorcode", None)
            if code is not None:
                return (code & 0xFF) in BUSY_CODES
            text = str(current).lower()
            return "database is locked" in text or "table is locked" in text or "database is busy" in text
        current = current.__cause__
    return False


@dataclass(frozen=True)
class Backoff:
    """How long to wait between tries: `initial_s`, times `factor` each time, at most `max_s`, each
    wait moved by up to +/- `jitter` (a fraction) using `rand` (injectable for tests)."""

    initial_s: float = 0.05
    factor: float = 2.0
    max_s: float = 2.0
    jitter: float = 0.1
    rand: Callable[[], float] = field(default=random.random, compare=False)


BACKOFF = Backoff()


class Attempt:
    """One piece of work being retried: when to give up and how long to wait next (pure: the
    caller passes the clock, so a schedule can be checked without sleeping)."""

    def __init__(self, deadline_s: float, now: float, backoff: Backoff = BACKOFF) -> None:
        self.backoff = backoff
        self.started = now
        self.give_up_at = now + deadline_s
        self.tries = 0
        self._base = backoff.initial_s

    def next_delay(self, now: float) -> float | None:
        """The pause before the next try, cut short at the deadline; None once the deadline has passed."""
        self.tries += 1
        if now >= self.give_up_at:
            return None
        b = self.backoff
        delay = self._base * (1.0 + b.jitter * (2.0 * b.rand() - 1.0))
        self._base = min(self._base * b.factor, b.max_s)
        return max(0.0, min(delay, self.give_up_at - now))


class DatabaseLocked(SourceError):
    """A writer kept the lock past the deadline (a server turns this into "retry later")."""


def retry(work: Callable[[], T], *, what: str, deadline_s: float = DEADLINE_S, backoff: Backoff = BACKOFF) -> T:
    """`work()`, again after a pause while the database is busy; SourceError naming `what` past the deadline.

    Only work that changes nothing when it fails (a read, a whole transaction) may be retried.
    """
    attempt = Attempt(deadline_s, time.monotonic(), backoff)
    while True:
        try:
            return work()
        except Exception as exc:
            if not is_busy(exc):
                raise
            delay = attempt.next_delay(time.monotonic())
            if delay is None:
                raise DatabaseLocked(locked_message(what, attempt.tries, time.monotonic() - attempt.started)) from None
            time.sleep(delay)


def locked_message(what: str, tries: int, seconds: float) -> str:
    """What a user reads when a writer kept the lock too long, and what to do about it."""
    if tries <= 1:
        held = "the database is locked by a writer"
    else:
        held = f"the database stayed locked by a writer for {seconds:.1f} s ({tries} tries)"
    return f"{what}: {held}; try again when it is quieter, or give it a longer busy timeout"
