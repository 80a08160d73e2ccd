"""Holding a resource from another thread while a test acts: the pool's only connection, the writer
queue's turn, or SQLite's lock taken by another connection."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path


@contextmanager
def held_elsewhere(enter: Callable[[], AbstractContextManager[object]]) -> Iterator[None]:
    """`enter()`'s block runs in another thread and stays entered while the caller's block runs."""
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with enter():
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=hold)
    worker.start()
    try:
        inside.wait(5)
        yield
    finally:
        release.set()
        worker.join()


@contextmanager
def locked_by_another(path: Path) -> Iterator[None]:
    """Another connection holds an EXCLUSIVE lock on `path` (readers are refused too in rollback-journal mode)."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()
