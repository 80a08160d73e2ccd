"""`Cache`: L1 (this process) in front of L2 (Redis), tag invalidation after commit, one recompute per
key across processes, and the database as the answer whenever Redis is not there.

    cache = Cache("redis://127.0.0.1:6379/0", CachePolicy(namespace="shop"))
    item = cache.get(f"item:{sku}", lambda: load_item(sku), tags=[f"item:{sku}"], version="2")
    with cache.invalidating() as tags:     # wraps the transaction: invalidates after it committed
        with db.transaction():
            db.run(TAKE, (sku, 1))
            tags.add(f"item:{sku}")

A value is served only under the stamp it was computed with (the epoch and its tags' generations,
read before the load), so a load that raced a write is stored under the old stamp and never served
once the write's invalidation has returned. L1's stamps are this process's generations, which the
invalidation stream keeps current (pgferry.runtime.cache.follower): an L1 hit asks Redis nothing, and
a write returns once every process that may serve from L1 has acknowledged its invalidation, or at the
latest `policy.confirm_s` after publishing it, by which time every process that serves from L1 has
applied it. L2's stamps are read from Redis (one MGET) on an L1 miss. Without a
Redis URL the cache is L1 only and its invalidations reach this process alone.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

from pgferry.dsn import redact
from pgferry.runtime.cache.codec import Stamp, Stored, decode, encode
from pgferry.runtime.cache.counters import Counters, hit_rate
from pgferry.runtime.cache.follower import Follower
from pgferry.runtime.cache.local import LocalCache, LocalGenerations
from pgferry.runtime.cache.policy import CachePolicy
from pgferry.runtime.cache.remote import RedisError, RedisTimeout, RemoteCache

T = TypeVar("T")
RETRY_BUMP_S = 0.05  # between two tries of an invalidation that did not reach Redis
ACK_POLL_S = 0.001  # a write's first look whether the followers acknowledged its invalidation; each
# later look waits twice as long, up to the followers' own cadence (policy.follow_s): an acknowledgement
# comes with a follower's read, so looking more often only costs the write CPU (a late follower made a
# write look 50 times in confirm_s)
ACK_FRESH = 2.0  # a follower heard from within this many confirm_s may be serving: its acknowledgement counts


class Cache:
    def __init__(self, redis_url: str | None = None, policy: CachePolicy | None = None) -> None:
        self.policy = policy or CachePolicy()
        self.counters = Counters()
        self._l1 = LocalCache(self.policy.l1_size, self.policy.l1_ttl_s, self.counters)
        self._gens = LocalGenerations()
        self._remote = RemoteCache(redis_url, self.policy, self.counters) if redis_url else None
        self._follower = (
            Follower(self._remote, self.policy, self._gens.bump, self._gens.reset) if self._remote is not None else None
        )
        if self._follower is not None:  # a cache dropped without close() must not leave its thread polling Redis
            weakref.finalize(self, self._follower.stop)

    def get(self, key: str, load: Callable[[], T], *, tags: Sequence[str] = (), version: str = "1") -> T:
        """The value of `key` (computed by `load()` when no level has it under the current stamp).

        `tags` name what the value shows ("topic:42"); `version` is the shape of the value: change it
        when the code that makes or reads the value changes."""
        full = f"{version}:{key}"
        tags = tuple(tags)
        remote = self._remote
        if remote is None:
            return self._l1.get_or_load(full, self._gens.stamp(tags), load, self.policy.wait_s)
        if not remote.available():
            return self._bypass(load)
        assert self._follower is not None
        if self._follower.confirmed(self.policy.redis_timeout_s):
            return self._l1.get_or_load(
                full,
                self._gens.stamp(tags),
                lambda: self._through_l2(remote, full, tags, version, load),
                self.policy.wait_s,
            )
        self.counters.add("l1", "bypass")  # invalidations not confirmed: L1 might hold what a write replaced
        return self._through_l2(remote, full, tags, version, load)

    def peek(self, key: str, *, tags: Sequence[str] = (), version: str = "1", default: Any = None) -> Any:
        """The value of `key` if this process's L1 holds it under the current stamp, else `default`;
        never loads, waits or asks Redis (a caller's fast path: on `default`, it calls get())."""
        if self._follower is not None and not self._follower.following:
            return default
        return self._l1.peek(f"{version}:{key}", self._gens.stamp(tuple(tags)), default)

    def _through_l2(
        self, remote: RemoteCache, full: str, tags: Sequence[str], version: str, load: Callable[[], T]
    ) -> T:
        try:
            stamp = remote.stamp(tags)
        except RedisError as exc:
            remote.failed(exc)
            return self._bypass(load)
        return self._from_l2(remote, full, stamp, version, load)

    def _bypass(self, load: Callable[[], T]) -> T:
        self.counters.add("l2", "bypass")
        return load()

    def _from_l2(self, remote: RemoteCache, full: str, stamp: Stamp, version: str, load: Callable[[], T]) -> T:
        key = remote.value_key(full)
        try:
            stored = self._usable(remote, key, stamp, version)
            if stored is not None and time.time() < stored.fresh_until:
                self.counters.add("l2", "hits")
                return stored.value  # type: ignore[no-any-return]
            token = remote.lock(key)
            if token is None and stored is not None:  # another caller recomputes: the previous value meanwhile
                self.counters.add("l2", "stale")
                return stored.value  # type: ignore[no-any-return]
            self.counters.add("l2", "misses" if stored is None else "stale")
            if token is None:
                return self._wait(remote, key, stamp, version, load)
        except RedisError as exc:
            remote.failed(exc)
            return self._bypass(load)
        return self._recompute(remote, key, stamp, version, load, token)

    def _usable(self, remote: RemoteCache, key: str, stamp: Stamp, version: str) -> Stored | None:
        blob = remote.get(key)
        stored = decode(blob, version) if blob is not None else None
        return stored if stored is not None and stored.stamp == stamp else None

    def _wait(self, remote: RemoteCache, key: str, stamp: Stamp, version: str, load: Callable[[], T]) -> T:
        """Another caller holds the lock and there is nothing to serve: wait (bounded) for its value, or
        take the lock when it frees it without one (its load failed, or its deadline passed)."""
        self.counters.add("l2", "waits")
        deadline = time.monotonic() + self.policy.wait_s
        while time.monotonic() < deadline:
            time.sleep(self.policy.poll_s)
            stored = self._usable(remote, key, stamp, version)
            if stored is not None:
                return stored.value  # type: ignore[no-any-return]
            token = remote.lock(key)
            if token is not None:
                return self._recompute(remote, key, stamp, version, load, token)
        self.counters.add("l2", "wait_timeouts")
        return self._recompute(remote, key, stamp, version, load, None)

    def _recompute(
        self, remote: RemoteCache, key: str, stamp: Stamp, version: str, load: Callable[[], T], token: str | None
    ) -> T:
        """load(), stored under the stamp read before it, then the lock freed (in that order: a waiter
        that takes the freed lock must find the value, not load it again)."""
        try:
            if token is not None:  # the holder before us may have stored it between our look and our lock
                try:
                    stored = self._usable(remote, key, stamp, version)
                except RedisError as exc:
                    remote.failed(exc)
                    stored = None
                if stored is not None and time.time() < stored.fresh_until:
                    self.counters.add("l2", "hits")
                    return stored.value  # type: ignore[no-any-return]
            self.counters.add("l2", "recomputes")
            value = load()
            try:
                remote.put(key, encode(Stored(version, stamp, time.time() + self.policy.fresh_s, value)))
            except RedisError as exc:
                remote.failed(exc)
        finally:
            if token is not None:
                with contextlib.suppress(RedisError):
                    remote.unlock(key, token)
        return value

    # --- invalidation ------------------------------------------------------------------------------------

    def invalidate(self, tags: Iterable[str]) -> None:
        """Every value carrying one of `tags` is gone, in every process: call it after the commit."""
        unique = sorted(set(tags))
        if not unique:
            return
        self.counters.add("l1", "invalidations", len(unique))
        self._gens.bump(unique)
        if self._remote is None:
            return
        self.counters.add("l2", "invalidations", len(unique))
        number = self._publish_patiently(self._remote, unique)
        if number is not None:
            self._await_followers(self._remote, number)

    def _await_followers(self, remote: RemoteCache, number: int) -> None:
        """Return once every process that serves from L1 has applied entry `number`: when all of them
        acknowledged it, or at the latest `confirm_s` after the publish (a process that did not read the
        stream since has stopped serving from L1 by then)."""
        deadline = time.monotonic() + self.policy.confirm_s
        fresh_s = ACK_FRESH * self.policy.confirm_s
        pause = ACK_POLL_S
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(pause, left))
            pause = min(2 * pause, max(ACK_POLL_S, self.policy.follow_s))
            try:
                if remote.acked(number, fresh_s=fresh_s):
                    self.counters.add("l1", "confirm_acks")
                    return
            except RedisError:  # no early return without the acknowledgements: wait the deadline out
                time.sleep(max(0.0, deadline - time.monotonic()))
                break
        self.counters.add("l1", "confirm_timeouts")

    def _publish_patiently(self, remote: RemoteCache, tags: list[str]) -> int | None:
        """The new generations in Redis and on its invalidation stream; the entry's number, None when
        they did not get there. Other processes that still reach Redis would serve the old values until
        this one's next contact, so a write is not acknowledged on one failed command: a
        timeout (Redis paused, a core starved: it answers late, to others too) is tried again for up to
        `policy.invalidate_s`; a refused or broken connection (Redis gone: others cannot reach it
        either, and read from the database) once more, on a fresh connection. Then it is a missed
        invalidation: everything is dropped at this process's next contact."""
        deadline = time.monotonic() + self.policy.invalidate_s
        refused = 0
        while True:
            try:
                return remote.publish(tags)
            except RedisError as exc:
                remote.failed(exc)
                refused += not isinstance(exc, RedisTimeout)
                if refused > 1 or time.monotonic() + RETRY_BUMP_S >= deadline:
                    remote.missed_invalidation()
                    return None
            time.sleep(RETRY_BUMP_S)

    @contextlib.contextmanager
    def invalidating(self) -> Iterator[set[str]]:
        """Collect tags in the block, invalidate them when it ends. Put the block around the transaction:
        invalidating inside it would let a reader refill the old value before the commit. It invalidates
        after an error too (a unit that wrote some statements before failing; an extra miss is harmless)."""
        tags: set[str] = set()
        try:
            yield tags
        finally:
            self.invalidate(tags)

    # --- state ---------------------------------------------------------------------------------------

    @property
    def levels(self) -> tuple[str, ...]:
        """The levels this cache has: l1, and l2 with Redis (l3, a materialized view, is the caller's)."""
        return ("l1",) if self._remote is None else ("l1", "l2")

    @property
    def remote(self) -> RemoteCache | None:
        """L2's Redis side (None without Redis): its keys, lock and health, for tools and tests."""
        return self._remote

    def stats(self) -> dict[str, Any]:
        """Counts per level (l1, l2, l3), hit rates, L1's size and Redis's state: for a metrics exporter."""
        levels = self.counters.snapshot()
        return {
            "levels": levels,
            "hit_rate": {level: hit_rate(counts) for level, counts in levels.items()},
            "l1_entries": len(self._l1),
            "redis": None
            if self._remote is None or self._follower is None
            else {"url": redact(self._remote.url), "up": self._remote.up, "following": self._follower.following},
        }

    def close(self) -> None:
        if self._follower is not None:
            self._follower.close()
        if self._remote is not None:
            self._remote.close()
