"""Writers of one process wait their turn on an in-process lock before BEGIN IMMEDIATE.

SQLite's busy handler sleeps and polls with growing back-off (1 to 100 ms, no queue), so threads
waiting on it miss the moments the write lock is free; a lock in the process hands it over at once.
It is per process: busy_timeout still covers writers in other processes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from pgferry.runtime import querystats
from pgferry.runtime.errors import Unavailable


class WriterQueue:
    def __init__(self, wait_s: float, *, enabled: bool = True) -> None:
        self.wait_s = wait_s
        self.enabled = enabled
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """This thread's turn to write; Unavailable("write_lock_timeout") after `wait_s` in the queue."""
        if not self.enabled:
            yield
            return
        t0 = time.perf_counter()
        if not self._lock.acquire(timeout=self.wait_s):
            querystats.waited(t0)
            querystats.refused()
            raise Unavailable("too many writers queued; try again", kind="write_lock_timeout")
        querystats.waited(t0)
        try:
            yield
        finally:
            self._lock.release()
