"""How many statements a unit of work ran and how long they took (an application's Server-Timing).

A contextvar holds one mutable `QueryStats` per request. The application sets it before the handler
runs (`counting()`); a worker thread started with a copy of the context points at the same object,
so the counts a backend makes there are visible when the response goes out. Outside `counting()`
nothing is counted and the backends' calls here cost one contextvar read.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass
class QueryStats:
    queries: int = 0
    ms: float = 0.0
    busy: int = 0  # statements refused because the database was locked or out of connections
    wait_ms: float = 0.0  # waiting for a connection (a pool) or for the writer queue
    shadow_queries: int = 0  # a dual route's candidate statements (querystats.aside), not in Server-Timing
    shadow_ms: float = 0.0

    def add(self, ms: float) -> None:
        self.queries += 1
        self.ms += ms

    def server_timing(self) -> str:
        """The header value: `db;desc="queries=N";dur=MS`."""
        return f'db;desc="queries={self.queries}";dur={self.ms:.3f}'


_CURRENT: contextvars.ContextVar[QueryStats | None] = contextvars.ContextVar("pgferry_query_stats", default=None)


def current() -> QueryStats | None:
    return _CURRENT.get()


@contextlib.contextmanager
def counting() -> Iterator[QueryStats]:
    """Count the statements run in this block (and in threads started from it with its context)."""
    stats = QueryStats()
    token = _CURRENT.set(stats)
    try:
        yield stats
    finally:
        _CURRENT.reset(token)


@contextlib.contextmanager
def aside() -> Iterator[None]:
    """Count the statements of this block apart, as `shadow_queries` and `shadow_ms`: a dual route's
    candidate runs beside the statement the caller waits for, and Server-Timing reports the latter."""
    stats = _CURRENT.get()
    if stats is None:
        yield
        return
    inner = QueryStats()
    token = _CURRENT.set(inner)
    try:
        yield
    finally:
        _CURRENT.reset(token)
        stats.shadow_queries += inner.queries
        stats.shadow_ms += inner.ms


def statement(since: float) -> None:
    """One statement ran, started at `since` (time.perf_counter())."""
    stats = _CURRENT.get()
    if stats is not None:
        stats.add((time.perf_counter() - since) * 1000)


# A driver error -> the exception the application sees instead (Unavailable), or None to raise it as is.
Translate = Callable[[Exception], Exception | None]


# Called after every statement with (sql, seconds, the error's kind or None): pgferry.runtime.metrics.
Observer = Callable[[str, float, str | None], None]
_observers: list[Observer] = []


def observe(observer: Observer) -> Callable[[], None]:
    """Have `observer` called after every statement of every backend in this process; returns the
    function that stops it. Without observers a statement pays one list check."""
    _observers.append(observer)
    return lambda: _observers.remove(observer) if observer in _observers else None


def _kind(exc: BaseException) -> str:
    return str(getattr(exc, "kind", None) or type(exc).__name__)


@contextlib.contextmanager
def timed(translate: Translate, sql: str = "") -> Iterator[None]:
    """One statement (BEGIN and COMMIT count as one each): counted and timed, and a driver error
    `translate` recognises raised as what it returns. Every backend runs its statements through it;
    `sql` (the statement, or BEGIN / COMMIT / ROLLBACK) is what observers are told."""
    t0 = time.perf_counter()
    error: str | None = None
    try:
        yield
    except Exception as exc:
        refused = translate(exc)
        error = _kind(refused if refused is not None else exc)
        if refused is not None:
            raise refused from None
        raise
    finally:
        statement(t0)
        if _observers:
            seconds = time.perf_counter() - t0
            for observer in list(_observers):
                observer(sql, seconds, error)


def waited(since: float) -> None:
    """Time spent since `since` waiting for a connection or the writer queue."""
    stats = _CURRENT.get()
    if stats is not None:
        stats.wait_ms += (time.perf_counter() - since) * 1000


def refused() -> None:
    """One statement was refused (locked, no connection)."""
    stats = _CURRENT.get()
    if stats is not None:
        stats.busy += 1
