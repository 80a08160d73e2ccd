"""L1: a per-process TTL + LRU cache (cachetools) with single flight: of the threads that miss one key
at once, one loads and the others wait for its result (bounded; then they load themselves).

Entries carry the stamp they were computed under, and a lookup names the current stamp: an entry of
an older stamp (a tag invalidated since, in any process) is a miss, never served.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from cachetools import TTLCache

from pgferry.runtime.cache.codec import Stamp
from pgferry.runtime.cache.counters import Counters

T = TypeVar("T")
_MISSING = object()


class LocalCache:
    def __init__(self, size: int, ttl_s: float, counters: Counters) -> None:
        self._entries: TTLCache[str, tuple[Stamp, Any]] = TTLCache(maxsize=size, ttl=ttl_s)
        self._lock = threading.Lock()
        self._flights: dict[tuple[str, Stamp], Future[Any]] = {}
        self._counters = counters

    def _get(self, key: str, stamp: Stamp) -> Any:
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] == stamp else _MISSING

    def peek(self, key: str, stamp: Stamp, default: Any) -> Any:
        """The value of `key` under `stamp` if L1 has it (a hit), else `default` (nothing counted)."""
        with self._lock:
            found = self._get(key, stamp)
            if found is _MISSING:
                return default
            self._counters.add("l1", "hits")
            return found

    def get_or_load(self, key: str, stamp: Stamp, load: Callable[[], T], wait_s: float) -> T:
        """The value of `key` under `stamp`: from L1, or from one `load()` per process at a time."""
        with self._lock:
            found = self._get(key, stamp)
            if found is not _MISSING:
                self._counters.add("l1", "hits")
                return found  # type: ignore[no-any-return]
            self._counters.add("l1", "misses")
            flight = self._flights.get((key, stamp))
            leader = flight is None
            if flight is None:
                flight = self._flights[(key, stamp)] = Future()
        if not leader:
            self._counters.add("l1", "waits")
            try:
                return flight.result(timeout=wait_s)  # type: ignore[no-any-return]
            except FutureTimeout:
                self._counters.add("l1", "wait_timeouts")
                return load()
        try:
            value = load()
        except BaseException as exc:
            with self._lock:
                self._flights.pop((key, stamp), None)
            flight.set_exception(exc)
            raise
        with self._lock:  # the entry before the flight ends: a thread arriving now finds it
            self._entries[key] = (stamp, value)
            self._flights.pop((key, stamp), None)
        flight.set_result(value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class LocalGenerations:
    """Tag generations in this process: a cache's own writes bump them, and with Redis the
    invalidation stream bumps them for every other process's writes (pgferry.runtime.cache.follower)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gens: dict[str, int] = {}
        self.epoch = secrets.token_hex(8)

    def stamp(self, tags: Sequence[str]) -> Stamp:
        """Without the lock (every lookup takes a stamp): a bump or reset that runs meanwhile leaves a
        stamp of some old and some new parts, which the current stamp never equals (a miss, not stale)."""
        gens = self._gens
        return (self.epoch, *[str(gens.get(tag, 0)) for tag in tags])

    def bump(self, tags: Sequence[str]) -> None:
        with self._lock:
            for tag in tags:
                self._gens[tag] = self._gens.get(tag, 0) + 1

    def reset(self) -> None:
        """A new epoch: every entry stamped before is a miss (what was invalidated is not known)."""
        with self._lock:
            self._gens.clear()
            self.epoch = secrets.token_hex(8)
