"""Reading a live database: retries when a writer holds a lock longer than busy_timeout.

A reader on a rollback-journal database is refused (SQLITE_BUSY) while a writer commits; busy_timeout
waits for it, and a few retries with backoff and jitter cover writers slower than that. Past the
deadline the user gets one line that says what to do.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pgferry.errors import SourceError
from pgferry.sqlite.connect import open_readonly

T = TypeVar("T")

RETRIES = 5


def is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def with_retries(func: Callable[[], T], *, what: str, retries: int = RETRIES, first_wait_s: float = 0.1) -> T:
    """Run `func`, again after a pause when the database is busy; SourceError once retries run out."""
    wait = first_wait_s
    for attempt in range(retries + 1):
        try:
            return func()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or attempt == retries:
                if is_busy(exc):
                    raise SourceError(
                        f"{what}: the database stayed locked by a writer through {retries} retries; try again "
                        "when it is quieter, or give it a longer busy timeout"
                    ) from None
                raise
            time.sleep(wait * (0.5 + random.random()))
            wait *= 2
    raise AssertionError("unreachable")


def open_live(path: str | Path, *, retries: int = RETRIES) -> sqlite3.Connection:
    """open_readonly, retried with backoff while a writer holds the database locked."""
    wait = 0.1
    for attempt in range(retries + 1):
        try:
            return open_readonly(path)
        except SourceError as exc:
            if "locked" not in str(exc) or attempt == retries:
                raise
            time.sleep(wait * (0.5 + random.random()))
            wait *= 2
    raise AssertionError("unreachable")
